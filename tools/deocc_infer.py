"""deocc-infer: photos in, de-occluded photos out (plus masks, crops, meshes, expression edits)."""

from __future__ import annotations

import os

# G's OpenMP threads sleep between layers instead of spinning (set before torch loads): on
# 2 cores shared with MediaPipe's threads or another job, spinning threads take the cores
# from each other (G 514 → 77 ms a face at load 13, measured); a user's value wins
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import typer  # noqa: E402

from deocc_core.errors import DeoccError  # noqa: E402
from deocc_core.infer.run import InferConfig  # noqa: E402
from tools._cli import (  # noqa: E402
    VERBOSE_OPTION,
    VERSION_OPTION,
    batch_exit,
    esc,
    make_app,
    progress_bar,
    run_app,
    setup_logging,
    stdout,
    writable_dir,
)
from tools._options import build_config, config_params, field_help, with_options  # noqa: E402

app = make_app(
    "deocc-infer",
    "De-occlude faces in photos (detect, fit the 3DMM, render, run G, paste back where G's "
    "occlusion mask says) with the shipped default model or a trained checkpoint.",
    group=False,
)


@app.command()
@with_options(config_params(InferConfig, exclude=("inputs",)))
def run(
    inputs: list[Path] = typer.Argument(..., exists=True, help=field_help(InferConfig, "inputs")),
    version: bool = VERSION_OPTION,
    verbose: bool = VERBOSE_OPTION,
    **values: Any,
) -> None:
    """De-occlude every face in the given photos.

    Writes per photo NAME_deoccluded.png and NAME_mask.png (how much of each pixel the model
    replaced), per face NAME_face<k>_{crop,render,output,mask}.png (mask: the model's occlusion
    mask); NAME keeps the photo's path inside the folder given.
    """
    setup_logging(verbose)
    from deocc_core.infer.run import LANDMARK_SOURCES, run_inference

    if values["landmarks_from"] not in LANDMARK_SOURCES:
        raise typer.BadParameter(
            f"--landmarks-from must be one of {', '.join(LANDMARK_SOURCES)}, "
            f"got {values['landmarks_from']!r}"
        )
    _check_segmenter(values)
    writable_dir(values["out"])
    cfg = build_config(InferConfig, values, inputs=tuple(map(str, inputs)))
    with progress_bar("deocc-infer", unit="img") as advance:
        r = run_inference(cfg, progress=advance)
    stdout.print(f"model: {esc(r.model)}", highlight=False)
    for p in r.problems:
        stdout.print(f"[yellow]skipped: {esc(p)}[/yellow]", highlight=False)
    stdout.print(
        f"{r.n_faces} face(s) de-occluded in {r.n_written} of {r.n_images} image(s) → "
        f"{esc(cfg.out)}" + (f"; sample grid {esc(r.grid)}" if r.grid else ""),
        highlight=False,
    )
    if r.error:
        raise DeoccError(f"stopped: {r.error}")
    batch_exit(r.n_written, len(r.problems), cfg.strict, "image(s) or face(s)")


def _check_segmenter(values: dict[str, Any]) -> None:
    """``--segmenter none`` with a given-mask G and no ``--mask``: a usage error (exit 2).

    Such a G has no mask channel: nothing would say where to fill. G is loaded here only
    for this combination (to read its blend); the run itself loads it again.
    """
    if values["segmenter"] != "none" or values["mask"]:
        return
    from deocc_core.nets.packaged import resolve_generator

    _, spec, info = resolve_generator(values["ckpt"])
    if spec.blend == "given":
        raise typer.BadParameter(
            f"--segmenter none: {info['label']} is a given-mask generator (blend given) and "
            "needs the occluded pixels: use --segmenter default (or a file) or --mask"
        )


def main() -> None:
    """Console script ``deocc-infer``."""
    run_app(app, "deocc-infer")


if __name__ == "__main__":
    main()
