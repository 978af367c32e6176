"""deocc-infer: photos in, de-occluded photos out (plus crops, meshes and expression edits)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from deocc_core.infer.run import InferConfig
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
from tools._options import build_config, config_params, field_help, with_options

app = make_app(
    "deocc-infer",
    "De-occlude faces in photos with a trained checkpoint "
    "(detect, fit the 3DMM, render, run G, paste back).",
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
    """De-occlude every face in the given photos."""
    setup_logging(verbose)
    from deocc_core.infer.run import LANDMARK_SOURCES, run_inference

    if values["landmarks_from"] not in LANDMARK_SOURCES:
        raise typer.BadParameter(
            f"--landmarks-from must be one of {', '.join(LANDMARK_SOURCES)}, "
            f"got {values['landmarks_from']!r}"
        )
    writable_dir(values["out"])
    cfg = build_config(InferConfig, values, inputs=tuple(map(str, inputs)))
    with progress_bar("deocc-infer", unit="img") as advance:
        r = run_inference(cfg, progress=advance)
    stdout.print(f"{r.n_faces} face(s) in {r.n_images} image(s) → {cfg.out}")
    for p in r.problems:
        stdout.print(f"[yellow]skipped: {p}[/yellow]", highlight=False)


def main() -> None:
    """Console script ``deocc-infer``."""
    run_app(app, "deocc-infer")


if __name__ == "__main__":
    main()
