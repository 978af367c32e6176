"""synth-occ: build occluded-face training data with a 3DMM prior.

Subcommands: build (sharded HDF5 tuples), model info|convert, fit, landmarks, preview,
verify, inspect, merge. Each parses options, builds a config, calls one deocc_core
function and reports what it wrote.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.markup import escape

from deocc_core.errors import DeoccError
from deocc_core.occluders.classes import OccluderClass
from deocc_core.synth.pipeline import BuildConfig
from tools._cli import (
    batch_exit,
    esc,
    image_out,
    make_app,
    progress_bar,
    run_app,
    stdout,
    writable_dir,
)
from tools._options import build_config, config_params, field_default, with_options

app = make_app(
    "synth-occ",
    "Synthesize occluded faces with a 3D morphable model prior: fit and render the 3DMM, "
    "composite six occluder classes, write sharded HDF5 training tuples.",
)
model_app = typer.Typer(help="Inspect and convert 3D morphable models.", no_args_is_help=True)
app.add_typer(model_app, name="model")

# --- model info / convert, fit (3DMM core) -------------------------------------------

STRICT_OPT = typer.Option(
    False, "--strict", help="Exit 1 if any input was skipped.", show_default="off"
)
LANDMARKS_INDEX = typer.Option(
    None,
    "--landmarks-index",
    help="Text file of 68 vertex ids (0-based, iBUG order, one per line, '#' comments) for "
    "models without them.",
    show_default="none: the model's own",
)


@model_app.command("info")
def model_info(
    path: str = typer.Argument(
        ...,
        help="Model file/folder (.npz, SFM .bin, BFM .mat, 3DDFA .pkl or folder), 'starter' or "
        "'deocc-face'.",
    ),
    landmarks_index: Path = LANDMARKS_INDEX,
) -> None:
    """Print vertices, triangles, modes, landmark ids and whether the model has albedo."""
    from deocc_core.morphable.model import load_model

    m = load_model(path, landmarks_index)
    stdout.print(f"[bold]{esc(m.name)}[/bold]  ({esc(m.source or path)})")
    stdout.print(
        f"vertices {m.n_vertices}, triangles {len(m.triangles)}, identity modes {m.n_id}, "
        f"expression modes {m.n_exp}"
    )
    albedo = f"yes ({len(m.albedo_std)} modes)" if m.has_albedo else "no"
    stdout.print(f"albedo: {albedo}; units {esc(m.units)}; license: {esc(m.license or '-')}")
    stdout.print(f"landmarks68: {' '.join(map(str, m.landmarks68.tolist()))}")
    if m.exp_names:
        stdout.print(f"expressions: {esc(', '.join(m.exp_names))}")
    stdout.print(f"sha256 {m.sha256}")


@model_app.command("convert")
def model_convert(
    src: str = typer.Argument(..., help="Input model (any supported format)."),
    out: Path = typer.Argument(..., help="Output .npz (deocc model format)."),
    landmarks_index: Path = LANDMARKS_INDEX,
) -> None:
    """Convert a model to deocc's .npz format."""
    from deocc_core.morphable.model import load_model

    if out.suffix != ".npz":
        raise typer.BadParameter(f"{out}: output must end in .npz")
    writable_dir(out.parent if str(out.parent) else Path("."))
    m = load_model(src, landmarks_index)
    m.save(out)
    stdout.print(f"wrote {esc(out)} ({m.n_vertices} vertices, {m.n_id} id / {m.n_exp} exp modes)")


@app.command("fit")
def fit(
    images: list[Path] = typer.Argument(..., exists=True, dir_okay=False, help="Photos to fit."),
    landmarks_from: str = typer.Option(
        "detector",
        "--landmarks-from",
        help="Where the 68 landmarks come from: detector (dlib) | pts | mat (the sidecar beside "
        "the image) | auto (the sidecar if any, else the detector).",
    ),
    model: str = typer.Option(
        "starter",
        "--model",
        help="Model file/folder (any supported format), 'starter' or 'deocc-face'.",
    ),
    out: Path = typer.Option(
        Path("fit_out"),
        "--out",
        help="Output folder for <stem>_params.json, _render.png, _overlay.png, .obj.",
    ),
    landmarks_index: Path = LANDMARKS_INDEX,
    strict: bool = STRICT_OPT,
) -> None:
    """Fit the 3DMM to each face: params JSON (angles in degrees), error, render, overlay, OBJ.

    Photos that yield nothing are skipped and listed with the reason.
    """
    from deocc_core.face.fit_photos import fit_photos
    from deocc_core.landmarks.find import LANDMARK_SOURCES
    from deocc_core.morphable.model import load_model

    if landmarks_from not in LANDMARK_SOURCES:
        raise typer.BadParameter(
            f"--landmarks-from must be one of {', '.join(LANDMARK_SOURCES)}, got {landmarks_from!r}"
        )
    writable_dir(out)
    m = load_model(model, landmarks_index)
    with progress_bar("fitting", total=len(images), unit="img") as advance:
        run = fit_photos(images, m, out, landmarks_from, progress=advance)
    for f in run.fits:
        yaw = f.fit.params.pose.degrees()["yaw"]
        stdout.print(
            f"{esc(f.image.name)}: yaw {yaw:+.1f}°, error {f.fit.error_px:.2f} px "
            f"(NME {f.fit.nme:.4f}) → {esc(f.stem)}_*.png/.obj/.json"
        )
    stdout.print(f"{len(run.fits)} face(s) fitted, {len(run.skipped)} photo(s) skipped")
    _skipped_table(run.skipped)
    batch_exit(len(run.fits), len(run.skipped), strict, "photo(s)")


def _skipped_table(skipped: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> None:
    """The inputs a batch command skipped, with the reason (user text escaped)."""
    if not skipped:
        return
    from rich.table import Table

    table = Table(title=f"{len(skipped)} skipped input(s)")
    table.add_column("input")
    table.add_column("reason")
    for path, reason in skipped:
        table.add_row(esc(path), esc(reason))
    stdout.print(table)


# --- landmarks (faces in) --------------------------------------------------------------


@app.command("landmarks")
def landmarks(
    images: list[Path] = typer.Argument(
        ..., exists=True, help="Photos and/or folders of photos (recursive)."
    ),
    backend: str = typer.Option(
        field_default(BuildConfig, "backend"),
        "--backend",
        help=escape(
            "Landmark backend: mediapipe (offline, finds masked faces) | dlib (offline) | fan "
            "(needs deocc[fan] + local weights)."
        ),
    ),
    dlib_detector: str = typer.Option(
        "hog+cnn",
        "--dlib-detector",
        help="dlib's face detector: hog+cnn (HOG, mirrored HOG, then the CNN), hog or cnn.",
    ),
    upsample: int = typer.Option(
        1, "--upsample", min=0, help="dlib HOG upsampling steps (finds smaller faces, slower)."
    ),
    fan_weights: Path = typer.Option(
        None,
        "--fan-weights",
        help="Folder with FAN checkpoints.",
        show_default="the torch hub cache: $TORCH_HOME/hub/checkpoints",
    ),
    out: Path = typer.Option(
        Path("landmarks_out"),
        "--out",
        help="Output folder: <name>_<k>.pts (k = face index left to right, 0-based) + "
        "<name>_landmarks.png; <name> keeps the image's path below its folder.",
    ),
    strict: bool = STRICT_OPT,
) -> None:
    """Detect faces and 68 landmarks; write one .pts per face and an overlay PNG per image."""
    from deocc_core.landmarks.batch import detect_to_files, expand_inputs
    from deocc_core.landmarks.detect import make_detector

    writable_dir(out)
    det = (
        make_detector("dlib", detector=dlib_detector, upsample=upsample)
        if backend == "dlib"
        else make_detector(backend, weights_dir=fan_weights)
        if backend == "fan"
        else make_detector(backend)
    )
    with progress_bar("landmarks", total=len(expand_inputs(images)), unit="img") as advance:
        run = detect_to_files(images, out, det, progress=advance)
    stdout.print(f"{run.n_images} image(s) read, {run.n_faces} face(s) written to {esc(out)}")
    _skipped_table(run.skipped)
    batch_exit(run.n_faces, len(run.skipped), strict)


# --- preview, build, splits (shards) ----------------------------------------------------

OCCLUDERS_OPT = typer.Option(
    "all",
    "--occluders",
    help="'all' or comma-separated: " + ",".join(m.name.lower() for m in OccluderClass) + ".",
)


def _check_source(values: dict[str, Any]) -> None:
    from deocc_core.synth.sources import SOURCES

    source, root = values["source"], values["root"]
    if source not in SOURCES:
        raise typer.BadParameter(f"--source {source}: unknown (choose from {', '.join(SOURCES)})")
    if source != "synthetic" and root is None:
        raise typer.BadParameter(f"--source {source} needs --root DIR")


@app.command("preview")
@with_options(
    config_params(
        BuildConfig,
        only=(
            "source",
            "root",
            "model",
            "occluder_assets",
            "occluder_mode",
            "region_mix",
            "size",
            "seed",
            "per_face",
            "max_padding",
        ),
        defaults={"size": 128},
    )
)
def preview(
    occluders: str = OCCLUDERS_OPT,
    n: int = typer.Option(24, "--n", min=1, help="Samples in the sheet."),
    yaw: str = typer.Option(
        None,
        "--yaw",
        help="Only faces whose fitted |yaw| is in LO:HI (degrees), e.g. 15:40.",
        show_default="all",
    ),
    pitch: str = typer.Option(
        None,
        "--pitch",
        help="Only faces whose fitted pitch is in LO:HI (degrees; negative: looking up).",
        show_default="all",
    ),
    compact: bool = typer.Option(
        False,
        "--compact",
        help="Occluded images only, one face per row (--per-face copies).",
        show_default="off",
    ),
    out: Path = typer.Option(Path("preview.png"), "--out", help="Contact sheet PNG."),
    **values: Any,
) -> None:
    """Contact sheet of samples, labelled class / region and the fitted yaw / pitch.

    Columns: occluded | render | face mask | object mask | changed mask | gt.
    """
    from deocc_core.imageio import write_image
    from deocc_core.occluders.classes import Region
    from deocc_core.synth.pipeline import parse_classes, preview_samples
    from deocc_core.viz import image_grid

    _check_source(values)
    image_out(out, "--out")
    cfg = build_config(
        BuildConfig,
        values,
        out=str(out.parent),
        occluders=parse_classes(occluders),
        n_synthetic=n,
    )
    want = n * (cfg.per_face if compact else 1)
    with progress_bar("preview", total=want, unit="sample") as advance:
        samples = preview_samples(
            cfg, want, progress=advance, yaw=_range(yaw, "--yaw"), pitch=_range(pitch, "--pitch")
        )
    if not samples:
        raise DeoccError(f"{values['root'] or values['source']}: no usable faces for a preview")

    def label(s) -> str:
        p_deg, y_deg = np.degrees(s.params[-5:-3])
        cls = OccluderClass(s.occluder_class).name.lower()
        return f"{cls} / {Region(s.region).name.lower()}  yaw {y_deg:.0f} pitch {p_deg:.0f}"

    if compact:
        k = cfg.per_face
        groups = [samples[i : i + k] for i in range(0, len(samples), k)]
        rows = [[s.occluded for s in g] for g in groups]
        labels = [f"{g[0].source_key}: " + " | ".join(label(s) for s in g) for g in groups]
    else:
        rows = [
            [s.occluded, s.render, s.face_mask, s.occ_mask, s.changed_mask, s.gt] for s in samples
        ]
        labels = [label(s) for s in samples]
    write_image(out, image_grid(rows, labels))
    stdout.print(f"wrote {esc(out)} ({len(samples)} samples)")


def _range(spec: str | None, name: str) -> tuple[float, float] | None:
    """'LO:HI' degrees -> (lo, hi); None for no filter."""
    if not spec:
        return None
    try:
        lo, hi = (float(v) for v in spec.split(":"))
    except ValueError:
        raise typer.BadParameter(f"{name} wants LO:HI in degrees, got {spec!r}") from None
    return lo, hi


def _env_int(*names: str) -> int | None:
    for n in names:
        if os.environ.get(n, "").isdigit():
            return int(os.environ[n])
    return None


@app.command("build")
@with_options(
    config_params(
        BuildConfig,
        exclude=("occluders",),
        defaults={"workers": max(1, os.cpu_count() or 1), "rank": None, "world_size": None},
        show_defaults={
            "workers": "the CPU count",
            "rank": "$SLURM_PROCID, $RANK or 0",
            "world_size": "$SLURM_NTASKS, $WORLD_SIZE or 1",
        },
    )
)
def build_cmd(
    occluders: str = OCCLUDERS_OPT,
    strict: bool = STRICT_OPT,
    **values: Any,
) -> None:
    """Synthesize occluded-face tuples into sharded HDF5 (resumable, deterministic, multi-rank)."""
    from deocc_core.synth.pipeline import COPY_REASONS, FACE_LOST, build, parse_classes

    _check_source(values)
    writable_dir(values["out"])
    rank, world = values["rank"], values["world_size"]
    cfg = build_config(
        BuildConfig,
        values,
        occluders=parse_classes(occluders),
        rank=rank if rank is not None else (_env_int("SLURM_PROCID", "RANK") or 0),
        world_size=world if world is not None else (_env_int("SLURM_NTASKS", "WORLD_SIZE") or 1),
    )
    with progress_bar("synth-occ build", unit="face") as advance:
        r = build(cfg, progress=advance)
    _report_build(r, Path(cfg.out))
    if r.written or r.skipped_existing:  # a rank with no shard of its own has nothing to make
        # a resumed build whose shards were all done already: not a failure
        made = sum(r.samples.values()) + len(r.skipped_existing)
        copies = any(k in r.skipped_inputs for k in COPY_REASONS)
        what = "input(s) or occluded copies" if copies else "input(s)"
        # a face that lost every copy is in its copies' counts already
        skipped = sum(r.skipped_inputs.values()) - r.skipped_inputs.get(FACE_LOST, 0)
        batch_exit(made, skipped, strict, what)


def _report_build(r: Any, out: Path) -> None:
    stdout.print(
        f"shards: {len(r.written)} written, {len(r.skipped_existing)} already done "
        f"(of {r.planned} planned) in {r.seconds:.1f} s"
    )
    for split, n in sorted(r.samples.items()):
        stdout.print(f"  {split}: {n} samples")
    if r.skipped_inputs:
        skipped = ", ".join(f"{k} ×{v}" for k, v in r.skipped_inputs.most_common())
        stdout.print("skipped inputs: " + esc(skipped))
    if r.manifest is not None:
        pending = "" if r.manifest["complete"] else " (other ranks still to finish: then merge)"
        stdout.print(f"manifest: {esc(out / 'manifest.json')}{pending}")


@app.command("splits")
@with_options(config_params(BuildConfig, only=("source", "root", "test_fraction", "n_synthetic")))
def splits(
    out: Path = typer.Option(
        ..., "--out", help="Prefix of the lists, e.g. data_manifests/aflw2000-3d."
    ),
    **values: Any,
) -> None:
    """Write the identity-disjoint split lists of a source (key, identity per line + checksum)."""
    from deocc_core.synth.pipeline import write_source_splits

    _check_source(values)
    writable_dir(out.parent if str(out.parent) else Path("."))
    paths = write_source_splits(build_config(BuildConfig, values, out="."), out)
    for split, p in paths.items():
        stdout.print(f"{split}: {esc(p)}")


@app.command("verify")
def verify(
    folder: Path = typer.Argument(..., exists=True, file_okay=False, help="Shard folder."),
    no_checksums: bool = typer.Option(
        False, "--no-checksums", help="Skip the sha256 check (faster).", show_default="off"
    ),
    deep: bool = typer.Option(
        False,
        "--deep",
        help="Also read every sample: occluded == gt wherever changed_mask is 0, value ranges, "
        "content hashes (slow: decompresses the whole dataset).",
        show_default="off",
    ),
) -> None:
    """Check checksums, schema, value ranges and split disjointness; exit 1 listing problems."""
    from deocc_core.synth.verify import verify_shards

    with progress_bar("verify", unit="sample" if deep else "shard") as advance:
        problems = verify_shards(folder, checksums=not no_checksums, deep=deep, progress=advance)
    for p in problems:
        stdout.print(f"[red]{esc(p)}[/red]", highlight=False, soft_wrap=True)
    if problems:
        raise DeoccError(f"{folder}: {len(problems)} problem(s) found (listed above)")
    stdout.print(f"{esc(folder)}: OK" + (" (every sample read)" if deep else ""))


@app.command("inspect")
def inspect(
    folder: Path = typer.Argument(..., exists=True, file_okay=False, help="Shard folder."),
    split: str = typer.Option(None, "--split", help="train | test.", show_default="all splits"),
    grid: Path = typer.Option(
        None, "--grid", help="Write a sample grid PNG here.", show_default="none"
    ),
    export_occluded: Path = typer.Option(
        None,
        "--export-occluded",
        help="Write occluded crops (+ .pts, *_gt.png) here.",
        show_default="none",
    ),
    n: int = typer.Option(8, "--n", min=1, help="Samples for --grid / --export-occluded."),
) -> None:
    """Counts per split, occluder class and region; optional sample grid and exported test crops."""
    from deocc_core.synth.verify import export_samples, sample_grid, summary

    if grid:
        image_out(grid, "--grid")
    if export_occluded:
        writable_dir(export_occluded)
    s = summary(folder)
    incomplete = "" if s["complete"] else " (incomplete)"
    model = esc(s["model"].get("name", "?"))
    stdout.print(f"{esc(folder)}: {s['resolution']} px, model {model}{incomplete}")
    for name, sp in s["splits"].items():
        stdout.print(
            f"  {name}: {sp['samples']} samples in {sp['shards']} shards, "
            f"{sp['identities']} identities"
        )
        stdout.print(f"    classes: {esc(sp['classes'])}")
        stdout.print(f"    regions: {esc(sp['regions'])}")
    if grid:
        stdout.print(f"grid: {esc(sample_grid(folder, grid, split, n))}")
    if export_occluded:
        paths = export_samples(folder, export_occluded, split or "test", n)
        stdout.print(f"exported {len(paths)} occluded crops to {esc(export_occluded)}")


@app.command("merge")
def merge(
    folders: list[Path] = typer.Argument(
        ..., exists=True, file_okay=False, help="Shard folders of several ranks."
    ),
    out: Path = typer.Option(None, "--out", help="Merged folder.", show_default="the first folder"),
) -> None:
    """Merge shard folders / rank outputs into one manifest."""
    from deocc_core.synth.manifest import merge_folders

    target = out or folders[0]
    writable_dir(target)
    m = merge_folders(list(folders), target)
    stdout.print(
        f"{esc(target)}/manifest.json: {len(m['shards'])} shards"
        + ("" if m["complete"] else f" of {m['planned_shards']} planned")
    )


def main() -> None:
    """Console script ``synth-occ``."""
    run_app(app, "synth-occ")


if __name__ == "__main__":
    main()
