"""synth-occ: build occluded-face training data with a 3DMM prior.

Subcommands: build (sharded HDF5 tuples), model info|convert, fit, landmarks, preview,
verify, inspect, merge. Each parses options, builds a config, calls one deocc_core
function and reports what it wrote.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import typer

from deocc_core.errors import DeoccError, InputError
from tools._cli import make_app, progress_bar, run_app, stdout, writable_dir

app = make_app(
    "synth-occ",
    "Synthesize occluded faces with a 3D morphable model prior: fit and render the 3DMM, "
    "composite six occluder classes, write sharded HDF5 training tuples.",
)
model_app = typer.Typer(help="Inspect and convert 3D morphable models.", no_args_is_help=True)
app.add_typer(model_app, name="model")

# --- model info / convert, fit (3DMM core) -------------------------------------------

LANDMARKS_INDEX = typer.Option(
    None,
    "--landmarks-index",
    help="Text file of 68 vertex ids (0-based, iBUG order, one per line, '#' comments) for models without them. Default: none (use the model's own).",
)


@model_app.command("info")
def model_info(
    path: str = typer.Argument(
        ..., help="Model file/folder (.npz, SFM .bin, BFM .mat, 3DDFA .pkl or folder) or 'starter'."
    ),
    landmarks_index: Path = LANDMARKS_INDEX,
) -> None:
    """Print vertices, triangles, modes, landmark ids and whether the model has albedo."""
    from deocc_core.morphable.model import load_model

    m = load_model(path, landmarks_index)
    stdout.print(f"[bold]{m.name}[/bold]  ({m.source or path})")
    stdout.print(
        f"vertices {m.n_vertices}, triangles {len(m.triangles)}, identity modes {m.n_id}, expression modes {m.n_exp}"
    )
    stdout.print(
        f"albedo: {'yes (%d modes)' % len(m.albedo_std) if m.has_albedo else 'no'}; units {m.units}; license: {m.license or '-'}"
    )
    stdout.print(f"landmarks68: {' '.join(map(str, m.landmarks68.tolist()))}")
    if m.exp_names:
        stdout.print(f"expressions: {', '.join(m.exp_names)}")
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
    stdout.print(f"wrote {out} ({m.n_vertices} vertices, {m.n_id} id / {m.n_exp} exp modes)")


@app.command("fit")
def fit(
    images: list[Path] = typer.Argument(..., exists=True, dir_okay=False, help="Photos to fit."),
    landmarks_from: str = typer.Option(
        "detector",
        "--landmarks-from",
        help="Where the 68 landmarks come from: pts | mat (sidecar file beside the image) | detector (dlib). Default: detector.",
    ),
    model: str = typer.Option(
        "starter",
        "--model",
        help="Model file/folder (any supported format) or 'starter'. Default: starter.",
    ),
    out: Path = typer.Option(
        Path("fit_out"),
        "--out",
        help="Output folder for <stem>_params.json, _render.png, _overlay.png, .obj. Default: fit_out.",
    ),
    landmarks_index: Path = LANDMARKS_INDEX,
) -> None:
    """Fit the 3DMM to each face: params JSON (angles in degrees), error, render, overlay PNG, OBJ mesh."""
    import cv2

    from deocc_core.errors import SkipInput
    from deocc_core.imageio import read_image
    from deocc_core.landmarks.find import LANDMARK_SOURCES, LazyDetector, landmarks_for
    from deocc_core.morphable.fit import fit_landmarks
    from deocc_core.morphable.model import load_model
    from deocc_core.render import render_face, write_obj

    if landmarks_from not in LANDMARK_SOURCES:
        raise typer.BadParameter(
            f"--landmarks-from must be one of {', '.join(LANDMARK_SOURCES)}, got {landmarks_from!r}"
        )
    writable_dir(out)
    m = load_model(model, landmarks_index)
    detector = LazyDetector("dlib")
    with progress_bar("fitting", total=len(images), unit="img") as advance:
        for path in images:
            try:
                img = read_image(path)
            except SkipInput:
                raise InputError(f"{path}: cannot read image") from None
            for k, found in enumerate(landmarks_for(path, img, landmarks_from, detector)):
                lm = found.landmarks
                r = fit_landmarks(m, lm)
                rend = render_face(m, r.params, img.shape[0], img.shape[1])
                stem = out / (path.stem + (f"_{k}" if k else ""))
                overlay = img.copy()
                blend = rend.mask > 0
                overlay[blend] = (0.5 * img[blend] + 0.5 * rend.image[blend]).astype(np.uint8)
                for x, y in lm.astype(int):
                    cv2.circle(overlay, (int(x), int(y)), 2, (0, 255, 0), -1)
                cv2.imwrite(f"{stem}_render.png", rend.image[:, :, ::-1])
                cv2.imwrite(f"{stem}_overlay.png", overlay[:, :, ::-1])
                v = m.vertices(r.params.id_coef, r.params.exp_coef)
                write_obj(f"{stem}.obj", v, m.triangles, m.albedo())
                pose = r.params.pose
                Path(f"{stem}_params.json").write_text(
                    json.dumps(
                        {
                            "image": str(path),
                            "model": m.name,
                            "angles_deg": pose.degrees(),
                            "scale": pose.scale,
                            "translation": [pose.tx, pose.ty],
                            "id_coef": r.params.id_coef.tolist(),
                            "exp_coef": r.params.exp_coef.tolist(),
                            "landmark_error_px": r.error_px,
                            "nme": r.nme,
                            "landmark_residual_px": np.round(r.residual_px, 3).tolist(),
                            "iterations": r.iterations,
                            "converged": r.converged,
                            "vertex_ids": r.vertex_ids.tolist(),
                        },
                        indent=1,
                    )
                )
                stdout.print(
                    f"{path.name}: yaw {pose.degrees()['yaw']:+.1f}°, error {r.error_px:.2f} px (NME {r.nme:.4f}) → {stem}_*.png/.obj/.json"
                )
            advance()


# --- landmarks (faces in) --------------------------------------------------------------


@app.command("landmarks")
def landmarks(
    images: list[Path] = typer.Argument(
        ..., exists=True, help="Photos and/or folders of photos (recursive)."
    ),
    backend: str = typer.Option(
        "dlib",
        "--backend",
        help="dlib (offline) or fan (needs deocc[fan] + local weights). Default: dlib.",
    ),
    detector: str = typer.Option(
        "hog+cnn",
        "--detector",
        help="dlib face detector: hog+cnn (HOG, mirrored HOG, then CNN fallback), hog or cnn. Default: hog+cnn.",
    ),
    upsample: int = typer.Option(
        1,
        "--upsample",
        min=0,
        help="dlib HOG upsampling steps (finds smaller faces, slower). Default: 1.",
    ),
    fan_weights: Path = typer.Option(
        None,
        "--fan-weights",
        help="Folder with FAN checkpoints. Default: the torch hub cache ($TORCH_HOME/hub/checkpoints).",
    ),
    out: Path = typer.Option(
        Path("landmarks_out"),
        "--out",
        help="Output folder: <stem>_<k>.pts (k = face index left to right, 0-based) + <stem>_landmarks.png. Default: landmarks_out.",
    ),
) -> None:
    """Detect faces and 68 landmarks; write one .pts per face and an overlay PNG per image."""
    from rich.table import Table

    from deocc_core.landmarks.batch import detect_to_files, expand_inputs
    from deocc_core.landmarks.detect import make_detector

    writable_dir(out)
    det = (
        make_detector("dlib", detector=detector, upsample=upsample)
        if backend == "dlib"
        else make_detector(backend, weights_dir=fan_weights)
    )
    with progress_bar("landmarks", total=len(expand_inputs(images)), unit="img") as advance:
        run = detect_to_files(images, out, det, progress=advance)
    stdout.print(f"{run.n_images} image(s) read, {run.n_faces} face(s) written to {out}")
    if run.skipped:
        table = Table(title=f"{len(run.skipped)} skipped input(s)")
        table.add_column("input")
        table.add_column("reason")
        for path, reason in run.skipped:
            table.add_row(path, reason)
        stdout.print(table)


# --- preview (occluders) ---------------------------------------------------------------

SOURCE_OPT = typer.Option(..., "--source", help="synthetic | folder | aflw2000-3d | 300w3d.")
ROOT_OPT = typer.Option(None, "--root", help="Source folder (not for synthetic).")
MODEL_OPT = typer.Option(
    "starter", "--model", help="Morphable model path or 'starter' (embedded demo model)."
)
OCC_OPT = typer.Option(
    "all",
    "--occluders",
    help="'all' or comma-separated: mask,eyeglasses,sunglasses,cup,scarf,hand.",
)
ASSETS_OPT = typer.Option(
    None,
    "--occluder-assets",
    help="Folder of real occluder images (MaskTheFace masks.cfg, RGBA PNGs); default procedural only.",
)


@app.command("preview")
def preview(
    source: str = SOURCE_OPT,
    root: Path = ROOT_OPT,
    model: str = MODEL_OPT,
    occluders: str = OCC_OPT,
    occluder_assets: Path = ASSETS_OPT,
    n: int = typer.Option(24, "--n", min=1, help="Samples in the sheet."),
    size: int = typer.Option(128, "--size", min=32, help="Crop side, pixels."),
    seed: int = typer.Option(0, "--seed"),
    out: Path = typer.Option(Path("preview.png"), "--out", help="Contact sheet PNG."),
) -> None:
    """Contact sheet of generated samples (occluded | render | masks | gt), labelled with class and region."""
    import cv2

    from deocc_core.errors import SkipInput
    from deocc_core.morphable.model import load_model
    from deocc_core.occluders.classes import OccluderClass, Region
    from deocc_core.synth.pipeline import BuildConfig, _open_source, make_samples, parse_classes
    from deocc_core.viz import image_grid

    writable_dir(out.parent if str(out.parent) else Path("."))
    cfg = BuildConfig(
        source=source,
        out=str(out.parent),
        root=str(root) if root else None,
        model=model,
        size=size,
        occluders=parse_classes(occluders),
        seed=seed,
        n_synthetic=n,
        occluder_assets=str(occluder_assets) if occluder_assets else None,
    )
    m = load_model(model)
    src = _open_source(cfg, m)
    packs = None
    if occluder_assets:
        from deocc_core.occluders.assets import load_asset_packs

        packs = load_asset_packs(occluder_assets)
    rows, labels = [], []
    rng = np.random.default_rng(seed)
    with progress_bar("preview", total=n, unit="sample") as advance:
        for key in src.keys():
            if len(rows) >= n:
                break
            try:
                for rec in src.load(key):
                    for s in make_samples(rec, cfg, m, rng, packs):
                        rows.append([s.occluded, s.render, s.face_mask, s.occ_mask, s.gt])
                        labels.append(
                            f"{OccluderClass(s.occluder_class).name.lower()} / {Region(s.region).name.lower()}"
                        )
                        advance()
            except SkipInput:
                continue
    if not rows:
        raise DeoccError(f"{root or source}: no usable faces for a preview")
    cv2.imwrite(str(out), image_grid(rows[:n], labels[:n])[:, :, ::-1])
    stdout.print(f"wrote {out} ({len(rows[:n])} samples)")


# --- build / verify / inspect / merge (shards) -----------------------------------------


def _env_int(*names: str) -> int | None:
    for n in names:
        if os.environ.get(n, "").isdigit():
            return int(os.environ[n])
    return None


@app.command("build")
def build_cmd(
    source: str = SOURCE_OPT,
    root: Path = ROOT_OPT,
    model: str = MODEL_OPT,
    out: Path = typer.Option(..., "--out", help="Shard folder (created)."),
    size: int = typer.Option(256, "--size", min=32, help="Crop side in pixels (the paper: 256)."),
    per_shard: int = typer.Option(1024, "--per-shard", min=1, help="Samples per HDF5 shard."),
    occluders: str = OCC_OPT,
    per_face: int = typer.Option(1, "--per-face", min=1, help="Occluded copies per face."),
    occluders_per_sample: int = typer.Option(
        1,
        "--occluders-per-sample",
        min=1,
        help="Occluders drawn on each sample (>1: overlapping occluders).",
    ),
    n_synthetic: int = typer.Option(
        1000, "--n-synthetic", min=1, help="Faces from the synthetic source."
    ),
    workers: int = typer.Option(
        max(1, (os.cpu_count() or 1)),
        "--workers",
        min=1,
        help="Worker processes (default: CPU count).",
    ),
    seed: int = typer.Option(
        0, "--seed", help="Base seed: same seed + config = bit-identical shards."
    ),
    test_fraction: float = typer.Option(
        0.1,
        "--test-fraction",
        min=0.0,
        max=1.0,
        help="Share of identities held out as the test split.",
    ),
    test_count: int = typer.Option(
        None,
        "--test-count",
        min=1,
        help="Hold out whole identities until the test split has at least N samples (overrides --test-fraction; default: off).",
    ),
    max_yaw: float = typer.Option(
        60.0, "--max-yaw", help="Skip faces turned beyond this (degrees)."
    ),
    limit: int = typer.Option(None, "--limit", min=1, help="Use only the first N inputs."),
    detector: str = typer.Option(
        "dlib",
        "--detector",
        help="Landmark backend for folder photos without sidecars: dlib | fan.",
    ),
    occluder_assets: Path = ASSETS_OPT,
    rank: int = typer.Option(
        None, "--rank", min=0, help="This machine's rank (default $SLURM_PROCID / $RANK / 0)."
    ),
    world_size: int = typer.Option(
        None,
        "--world-size",
        min=1,
        help="Number of ranks (default $SLURM_NTASKS / $WORLD_SIZE / 1).",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace shards of a different config in --out."
    ),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 if any input was skipped."),
) -> None:
    """Synthesize occluded-face tuples into sharded HDF5 (resumable, deterministic, multi-machine)."""
    from deocc_core.synth.pipeline import BuildConfig, build, parse_classes
    from deocc_core.synth.sources import SOURCES

    if source not in SOURCES:
        raise typer.BadParameter(f"--source {source}: unknown (choose from {', '.join(SOURCES)})")
    if source != "synthetic" and root is None:
        raise typer.BadParameter(f"--source {source} needs --root DIR")
    if root is not None and not root.is_dir():
        raise typer.BadParameter(f"--root {root}: folder not found")
    writable_dir(out)
    cfg = BuildConfig(
        source=source,
        out=str(out),
        root=str(root) if root else None,
        model=model,
        size=size,
        per_shard=per_shard,
        occluders=parse_classes(occluders),
        per_face=per_face,
        occluders_per_sample=occluders_per_sample,
        n_synthetic=n_synthetic,
        seed=seed,
        test_fraction=test_fraction,
        test_count=test_count,
        max_yaw=max_yaw,
        limit=limit,
        detector=detector,
        occluder_assets=str(occluder_assets) if occluder_assets else None,
        workers=workers,
        rank=rank if rank is not None else (_env_int("SLURM_PROCID", "RANK") or 0),
        world_size=world_size
        if world_size is not None
        else (_env_int("SLURM_NTASKS", "WORLD_SIZE") or 1),
        overwrite=overwrite,
    )
    with progress_bar("synth-occ build", unit="face") as advance:
        r = build(cfg, progress=advance)
    stdout.print(
        f"shards: {len(r.written)} written, {len(r.skipped_existing)} already done (of {r.planned} planned) in {r.seconds:.1f} s"
    )
    for split, n in sorted(r.samples.items()):
        stdout.print(f"  {split}: {n} samples")
    if r.skipped_inputs:
        stdout.print(
            "skipped inputs: " + ", ".join(f"{k} ×{v}" for k, v in r.skipped_inputs.most_common())
        )
    if r.manifest is not None:
        stdout.print(
            f"manifest: {out / 'manifest.json'}"
            + (
                ""
                if r.manifest["complete"]
                else " (other ranks still to finish: then synth-occ merge)"
            )
        )
    if strict and r.skipped_inputs:
        raise DeoccError(f"{sum(r.skipped_inputs.values())} inputs skipped (--strict)")


@app.command("splits")
def splits(
    source: str = SOURCE_OPT,
    root: Path = ROOT_OPT,
    out: Path = typer.Option(
        ..., "--out", help="Prefix of the lists, e.g. data_manifests/aflw2000-3d."
    ),
    test_fraction: float = typer.Option(
        0.1, "--test-fraction", min=0.0, max=1.0, help="Share of identities in the test split."
    ),
    n_synthetic: int = typer.Option(
        1000, "--n-synthetic", min=1, help="Faces of the synthetic source."
    ),
) -> None:
    """Write the identity-disjoint split lists of a source (key, identity per line + checksum)."""
    from deocc_core.morphable.model import load_model
    from deocc_core.synth.pipeline import BuildConfig, _identity, _open_source
    from deocc_core.synth.splits import write_split_lists

    writable_dir(out.parent if str(out.parent) else Path("."))
    cfg = BuildConfig(
        source=source, out=".", root=str(root) if root else None, n_synthetic=n_synthetic
    )
    src = _open_source(cfg, load_model("starter"))
    paths = write_split_lists(
        out, ((k, _identity(src, k)) for k in src.keys()), test_fraction=test_fraction
    )
    for split, p in paths.items():
        stdout.print(f"{split}: {p}")


@app.command("verify")
def verify(
    folder: Path = typer.Argument(..., exists=True, file_okay=False, help="Shard folder."),
    no_checksums: bool = typer.Option(
        False, "--no-checksums", help="Skip the sha256 check (faster)."
    ),
) -> None:
    """Check checksums, shapes, dtypes, value ranges and split disjointness; exit 1 listing each problem."""
    from deocc_core.synth.verify import verify_shards

    problems = verify_shards(folder, checksums=not no_checksums)
    for p in problems:
        stdout.print(f"[red]{p}[/red]", highlight=False)
    if problems:
        raise typer.Exit(1)
    stdout.print(f"{folder}: OK")


@app.command("inspect")
def inspect(
    folder: Path = typer.Argument(..., exists=True, file_okay=False, help="Shard folder."),
    split: str = typer.Option(None, "--split", help="train | test (default: all)."),
    grid: Path = typer.Option(None, "--grid", help="Write a sample grid PNG here."),
    export_occluded: Path = typer.Option(
        None, "--export-occluded", help="Write occluded crops (+ .pts, *_gt.png) here."
    ),
    n: int = typer.Option(8, "--n", min=1, help="Samples for --grid / --export-occluded."),
) -> None:
    """Counts per split, occluder class and region; optional sample grid and exported test crops."""
    from deocc_core.synth.verify import export_samples, sample_grid, summary

    s = summary(folder)
    stdout.print(
        f"{folder}: {s['resolution']} px, model {s['model']['name']}{'' if s['complete'] else ' (incomplete)'}"
    )
    for name, sp in s["splits"].items():
        stdout.print(
            f"  {name}: {sp['samples']} samples in {sp['shards']} shards, {sp['identities']} identities"
        )
        stdout.print(f"    classes: {sp['classes']}")
        stdout.print(f"    regions: {sp['regions']}")
    if grid:
        stdout.print(f"grid: {sample_grid(folder, grid, split, n)}")
    if export_occluded:
        paths = export_samples(folder, export_occluded, split or "test", n)
        stdout.print(f"exported {len(paths)} occluded crops to {export_occluded}")


@app.command("merge")
def merge(
    folders: list[Path] = typer.Argument(
        ..., exists=True, file_okay=False, help="Shard folders of several ranks."
    ),
    out: Path = typer.Option(None, "--out", help="Merged folder (default: the first folder)."),
) -> None:
    """Merge shard folders / rank outputs into one manifest."""
    from deocc_core.synth.manifest import merge_folders

    target = out or folders[0]
    writable_dir(target)
    m = merge_folders(list(folders), target)
    stdout.print(
        f"{target}/manifest.json: {len(m['shards'])} shards"
        + ("" if m["complete"] else f" of {m['planned_shards']} planned")
    )


def main() -> None:
    run_app(app, "synth-occ")


if __name__ == "__main__":
    main()
