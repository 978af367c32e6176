"""deocc-infer: photos in, de-occluded photos out (plus crops, meshes and expression edits)."""

from __future__ import annotations

from pathlib import Path

import typer

from tools._cli import (
    VERBOSE_OPTION,
    VERSION_OPTION,
    make_app,
    progress_bar,
    run_app,
    setup_logging,
    stdout,
    writable_dir,
)

app = make_app(
    "deocc-infer",
    "De-occlude faces in photos with a trained checkpoint (detect, fit the 3DMM, render, run G, paste back).",
    group=False,
)


@app.command()
def run(
    inputs: list[Path] = typer.Argument(
        ...,
        exists=True,
        help="Images and/or folders of images (searched recursively; *_gt images skipped).",
    ),
    ckpt: Path = typer.Option(
        ..., "--ckpt", exists=True, help="Checkpoint file or run folder (best.pt, else latest.pt)."
    ),
    out: Path = typer.Option(
        Path("infer_out"), "--out", help="Output folder [default: infer_out]."
    ),
    model: str = typer.Option(
        None,
        "--model",
        help="3DMM the shards were built with: starter | PATH [default: the checkpoint's, starter].",
    ),
    landmarks_from: str = typer.Option(
        "detector",
        "--landmarks-from",
        help="detector | pts | mat (sidecar file beside each image) [default: detector].",
    ),
    backend: str = typer.Option(
        "dlib",
        "--backend",
        help="Landmark detector: dlib (offline) | fan (deocc[fan] + local weights) [default: dlib].",
    ),
    mesh: bool = typer.Option(
        False,
        "--mesh",
        help="Also write each fitted mesh coloured by the de-occluded face (OBJ, per-vertex colour) [default: off].",
    ),
    expression: str = typer.Option(
        "keep",
        "--expression",
        help="keep | neutral | smile | open | surprise | FILE.json ({mode: std units} or a list of n_exp std units) [default: keep].",
    ),
    side_by_side: bool = typer.Option(
        False, "--side-by-side", help="Also write input | output side by side [default: off]."
    ),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda [default: auto]."),
    version: bool = VERSION_OPTION,
    verbose: bool = VERBOSE_OPTION,
) -> None:
    """De-occlude every face in the given photos."""
    setup_logging(verbose)
    from deocc_core.infer.run import LANDMARK_SOURCES, InferConfig, run_inference

    if landmarks_from not in LANDMARK_SOURCES:
        raise typer.BadParameter(
            f"--landmarks-from must be detector, pts or mat, got {landmarks_from!r}"
        )
    writable_dir(out)
    cfg = InferConfig(
        inputs=tuple(map(str, inputs)),
        ckpt=str(ckpt),
        out=str(out),
        model=model,
        landmarks_from=landmarks_from,
        backend=backend,
        mesh=mesh,
        expression=expression,
        side_by_side=side_by_side,
        device=device,
    )
    with progress_bar("deocc-infer", unit="img") as advance:
        r = run_inference(cfg, progress=advance)
    stdout.print(f"{r.n_faces} face(s) in {r.n_images} image(s) → {out}")
    for p in r.problems:
        stdout.print(f"[yellow]skipped: {p}[/yellow]", highlight=False)


def main() -> None:
    run_app(app, "deocc-infer")


if __name__ == "__main__":
    main()
