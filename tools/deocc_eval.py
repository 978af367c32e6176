"""deocc-eval.

PSNR / SSIM per region (the paper's Table 1 groups) and occluder class, for checkpoints and
baselines, on a held-out shard split; results.json, results.md and a self-contained report.html.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from deocc_core.eval.evaluate import EvalConfig
from tools._cli import (
    VERBOSE_OPTION,
    VERSION_OPTION,
    esc,
    make_app,
    progress_bar,
    run_app,
    setup_logging,
    stdout,
    writable_dir,
)
from tools._options import build_config, config_params, field_default, field_help, with_options

app = make_app(
    "deocc-eval",
    "PSNR/SSIM per region and occluder class for checkpoints and baselines on a held-out split.",
    group=False,
)


@app.command()
@with_options(config_params(EvalConfig, exclude=("checkpoints", "baselines")))
def run(
    ckpt: list[Path] = typer.Option(
        [],
        "--ckpt",
        exists=True,
        help="Checkpoint file, run folder or packaged .safetensors; repeat for ablations. Each "
        "gives two rows: NAME (pasted back, what deocc-infer writes) and NAME:raw (G's raw "
        "output).",
        show_default="none: baselines only",
    ),
    name: list[str] = typer.Option(
        [], "--name", help="Method name per --ckpt, in order.", show_default="the run folder's"
    ),
    baselines: str = typer.Option(
        ",".join(field_default(EvalConfig, "baselines")),
        "--baselines",
        help=field_help(EvalConfig, "baselines") + " Comma-separated, or 'none'.",
    ),
    version: bool = VERSION_OPTION,
    verbose: bool = VERBOSE_OPTION,
    **values: Any,
) -> None:
    """Evaluate checkpoints and baselines on a shard split."""
    setup_logging(verbose)
    from deocc_core.eval.evaluate import evaluate

    if name and len(name) != len(ckpt):
        raise typer.BadParameter(f"--name given {len(name)} times for {len(ckpt)} --ckpt")
    names = name or [_default_name(c) for c in ckpt]
    writable_dir(values["out"])
    base = (
        ()
        if baselines.strip() == "none"
        else tuple(b.strip() for b in baselines.split(",") if b.strip())
    )
    checkpoints = tuple(zip(names, map(str, ckpt), strict=True))
    cfg = build_config(EvalConfig, values, checkpoints=checkpoints, baselines=base)
    if cfg.photos:
        _photos(cfg)
        return
    with progress_bar("deocc-eval", unit="sample") as advance:
        r = evaluate(cfg, progress=advance)
    stdout.print(f"{r.n_samples} samples")
    if r.protocol.get("held_out") is not None:
        stdout.print(f"held-out occluders: {', '.join(r.protocol['held_out']) or 'none'}")
    for m, groups in r.table.items():
        a = groups["all"]
        ident = (
            f"; identity {a['id_dist']:.3f} ({100 * a['id_same']:.0f} % same)"
            if "id_dist" in a
            else ""
        )
        iou = f"; m̂ IoU {a['mask_iou']:.3f}" if "mask_iou" in a else ""
        stdout.print(
            f"  {esc(m):>12}: PSNR {a['psnr']:.2f} dB, SSIM {a['ssim']:.4f}; "
            f"in occluder PSNR {a['psnr_mask']:.2f}, SSIM {a['ssim_mask']:.4f}{ident}{iou}",
            highlight=False,
        )
    out = Path(cfg.out)
    files = ", ".join(esc(out / f) for f in ("report.html", "results.md", "results.json"))
    stdout.print(f"report: {files}", highlight=False)


def _photos(cfg: EvalConfig) -> None:
    """``--photos DIR``: real occluded photos, no ground truth."""
    from deocc_core.eval.photos import evaluate_photos

    with progress_bar("deocc-eval --photos", unit="photo") as advance:
        r = evaluate_photos(cfg, progress=advance)
    share = 100 * r.n_with_face / max(r.n_photos, 1)
    area = sum(r.mask_area_face) / len(r.mask_area_face) if r.mask_area_face else float("nan")
    stdout.print(
        f"{r.n_photos} photos: a face processed in {r.n_with_face} ({share:.1f} %), "
        f"{r.n_faces} faces; m̂ covers {100 * area:.1f} % of the face on average",
        highlight=False,
    )
    for reason, n in r.skipped.items():
        stdout.print(f"  skipped {n}: {esc(reason)}", highlight=False)
    out = Path(cfg.out)
    files = ", ".join(esc(out / f) for f in ("report.html", "photos.md", "photos.json"))
    stdout.print(f"report: {files}", highlight=False)


def _default_name(ckpt: Path) -> str:
    """A method name for ``--ckpt``: the run folder's name, or the file's stem."""
    if ckpt.is_dir():
        return ckpt.name
    if ckpt.suffix == ".pt" and ckpt.parent.name == "checkpoints" and ckpt.parent.parent.name:
        return ckpt.parent.parent.name
    return ckpt.stem


def main() -> None:
    """Console script ``deocc-eval``."""
    run_app(app, "deocc-eval")


if __name__ == "__main__":
    main()
