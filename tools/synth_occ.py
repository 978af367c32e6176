"""synth-occ: build occluded-face training data with a 3DMM prior.

Subcommands: build (sharded HDF5 tuples), model info|convert, fit, landmarks, preview,
verify, inspect, merge. Each parses options, builds a config, calls one deocc_core
function and reports what it wrote.
"""
from __future__ import annotations

from pathlib import Path

import typer

from tools._cli import make_app, run_app

app = make_app(
    "synth-occ",
    "Synthesize occluded faces with a 3D morphable model prior: fit and render the 3DMM, "
    "composite six occluder classes, write sharded HDF5 training tuples.",
)
model_app = typer.Typer(help="Inspect and convert 3D morphable models.", no_args_is_help=True)
app.add_typer(model_app, name="model")

# --- model info / convert, fit (3DMM core) -------------------------------------------

# --- landmarks (faces in) --------------------------------------------------------------

# --- preview (occluders) ---------------------------------------------------------------

# --- build / verify / inspect / merge (shards) -----------------------------------------


def main() -> None:
    run_app(app, "synth-occ")


if __name__ == "__main__":
    main()
