"""train-segmenter: make the face crops, train the occlusion segmenter, export and evaluate it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import typer

from deocc_core.segment.train import SegTrainConfig
from tools._cli import esc, make_app, progress_bar, run_app, setup_logging, stdout, writable_dir
from tools._options import build_config, config_params, with_options

app = make_app(
    "train-segmenter",
    "The occlusion segmenter: aligned real face crops (crops), training with synthetic "
    "occluders (train; resumable), fp16 safetensors + card (export), held-out evaluation (eval).",
)
log = logging.getLogger("train-segmenter")


@app.command()
def crops(
    faces_bulk: Path = typer.Option(
        Path("../shared/data/faces_bulk"), help="the faces_bulk folder of ../shared/data"
    ),
    out: Path = typer.Option(Path("faces128.npz"), help="face crop file to write"),
    size: int = typer.Option(128, help="crop side, px", min=32),
) -> None:
    """Detect, align and split (identity-disjoint) every clean face of faces_bulk."""
    from deocc_core.landmarks.find import LazyDetector
    from deocc_core.segment.faces import collect_photos, crop_faces, save_face_crops

    photos = collect_photos(faces_bulk)
    with progress_bar("crops", total=len(photos), unit="img") as advance:
        rows = list(crop_faces(photos, LazyDetector(), size, lambda n: advance(n)))
    c = save_face_crops(out, rows)
    splits = {s: int((c.split == s).sum()) for s in sorted(set(c.split.tolist()))}
    stdout.print(f"{len(rows)} faces of {len(photos)} photos {splits} → {esc(out)}")


@app.command()
def pseudo(
    faces_bulk: Path = typer.Option(
        Path("../shared/data/faces_bulk"), help="the faces_bulk folder of ../shared/data"
    ),
    segmenter: Path = typer.Option(
        Path("assets/segmenter.safetensors"), help="segmenter whose m̂ seeds the labels"
    ),
    out: Path = typer.Option(Path("real_masks.npz"), help="pseudo-label file to write"),
    sheet: Path | None = typer.Option(
        None, help="contact sheet PNG of the labels (red frame: rejected)", show_default="none"
    ),
    size: int = typer.Option(128, help="crop side, px", min=32),
) -> None:
    """Pseudo-label the real face masks of with_mask and rwmfd_part1 (GrabCut, checked)."""
    from deocc_core.landmarks.find import LazyDetector
    from deocc_core.nets.segmenter import load_segmenter, run_segmenter
    from deocc_core.segment.pseudo import real_mask_photos, real_mask_rows, save_real_masks

    writable_dir(out.parent)  # before minutes of labelling, not after
    if sheet is not None:
        writable_dir(sheet.parent)
    net, _ = load_segmenter(segmenter)
    photos = real_mask_photos(faces_bulk)
    with progress_bar("labels", total=len(photos), unit="img") as advance:
        rows = list(
            real_mask_rows(
                photos, LazyDetector(), lambda c: run_segmenter(net, c), size, lambda n: advance(n)
            )
        )
    m = save_real_masks(out, rows)
    t = m.split == "train"
    stdout.print(
        f"{len(rows)} faces of {len(photos)} photos; labels kept: train {int((m.ok & t).sum())} "
        f"of {int(t.sum())}, test {int((m.ok & ~t).sum())} of {int((~t).sum())} → {esc(out)}"
    )
    if sheet is not None:
        from deocc_core.imageio import write_image
        from deocc_core.segment.pseudo import RealMasks, label_sheet

        first = RealMasks(*(getattr(m, k)[:120] for k in RealMasks.__dataclass_fields__))
        write_image(sheet, label_sheet(first))
        stdout.print(f"sheet: {esc(sheet)}")


@app.command("occ-photos")
def occ_photos(
    faces: Path = typer.Option(Path("faces128.npz"), help="face crop file (the crops command)"),
    faces_bulk: Path = typer.Option(
        Path("../shared/data/faces_bulk"), help="the faces_bulk folder of ../shared/data"
    ),
    split: str = typer.Option("train", help="split whose photos are linked: train or test"),
    n: int = typer.Option(150, help="photos per source (CelebAMask-HQ, without_mask, deepface)"),
    out: Path = typer.Option(Path("occ_photos"), help="folder of links for synth-occ --root"),
    seed: int = typer.Option(0, help="seed of the draw"),
) -> None:
    """Link one split's photos for a `synth-occ build` of 3D-occluded training/test crops."""
    from deocc_core.segment.faces import link_split_photos, load_face_crops

    if split not in ("train", "test"):
        raise typer.BadParameter("train or test", param_hint="--split")
    k = link_split_photos(load_face_crops(faces), faces_bulk, split, n, out, seed)
    stdout.print(f"{k} {split} photos → {esc(out)}")


@app.command()
@with_options(config_params(SegTrainConfig, exclude=("widths",)))
def train(**values: Any) -> None:
    """Train (or resume from OUT/latest.pt) the segmenter."""
    setup_logging(False)
    from deocc_core.segment.train import train_segmenter

    cfg = build_config(SegTrainConfig, values)
    with progress_bar("train", total=cfg.steps, unit="step") as advance:

        def report(step: int, loss: float) -> None:
            advance(1)
            if step % 20 == 0:
                log.info("step %d loss %.4f", step, loss)

        r = train_segmenter(cfg, progress=report)
    stdout.print(f"step {r.step}, loss {r.loss:.4f}, {r.seconds:.0f} s → {esc(r.checkpoint)}")


@app.command()
def export(
    run: Path = typer.Option(Path("segmenter_run"), help="training run folder (its latest.pt)"),
    out: Path = typer.Option(
        Path("assets/segmenter.safetensors"), help="fp16 safetensors to write (+ .md card)"
    ),
    note: str = typer.Option("", help="added to the card's budget line", show_default="none"),
) -> None:
    """Write a run's weights as the packaged fp16 segmenter."""
    from deocc_core.segment.report import export_segmenter

    r = export_segmenter(run, out, note)
    stdout.print(f"{r.size_bytes / 1e6:.2f} MB, step {r.step} → {esc(r.path)}")


@app.command("eval")
def evaluate(
    faces: Path = typer.Option(Path("faces128.npz"), help="face crop file (the crops command)"),
    segmenter: Path = typer.Option(
        Path("assets/segmenter.safetensors"), help="packaged segmenter to score"
    ),
    shared_data: Path = typer.Option(Path("../shared/data"), help="the shared data folder"),
    out: Path = typer.Option(Path("segmenter_eval"), help="folder for scores.json and sheets"),
    results: Path | None = typer.Option(
        None,
        help="markdown file whose segmenter section is (re)written, e.g. docs/RESULTS.md",
        show_default="none: not written",
    ),
    card: Path | None = typer.Option(
        None, help="model card (.md) whose scores are rewritten", show_default="none"
    ),
    n_faces: int = typer.Option(40, help="held-out test faces", min=1),
    n_real: int = typer.Option(16, help="real masked photos per folder for the sheets", min=0),
    with_default: bool = typer.Option(True, help="also score the default G's own m̂"),
    seed: int = typer.Option(0, help="seed of the draws"),
    occ_shards: Path | None = typer.Option(
        None,
        help="synth-occ shard folder: its samples of test photos are scored per 3D class",
        show_default="none: not scored",
    ),
    real_masks: Path | None = typer.Option(
        None,
        help="pseudo-label file (the pseudo command): m̂'s IoU with its held-out photos' labels",
        show_default="none: not scored",
    ),
) -> None:
    """Score m̂ on held-out faces x held-out real occluders (and G's m̂), write sheets."""
    setup_logging(False)
    from deocc_core.segment.report import SegReportConfig, run_segmenter_eval

    cfg = SegReportConfig(
        faces,
        segmenter,
        shared_data,
        out,
        results,
        card,
        n_faces,
        n_real,
        with_default,
        seed,
        occ_shards,
        real_masks,
    )
    with progress_bar("eval", unit="crop") as advance:
        r = run_segmenter_eval(cfg, progress=lambda n: advance(n))
    for method, rows in r.scores.items():
        stdout.print(f"[bold]{method}[/bold]")
        for k, v in rows.items():
            stdout.print(f"  {k}: {v:.3f}  (n={r.counts.get(k, 0)})", highlight=False)
    stdout.print(f"sheets: {', '.join(esc(str(p)) for p in r.sheets)}", highlight=False)


def main() -> None:
    """Console script ``train-segmenter``."""
    run_app(app, "train-segmenter")


if __name__ == "__main__":
    main()
