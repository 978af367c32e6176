"""deocc-train: Train the 3DMM-conditioned de-occlusion GAN from shards (two stages; CUDA with AMP/DDP when present, CPU otherwise)."""
from __future__ import annotations

import typer

from deocc_core.errors import DeoccError
from tools._cli import VERBOSE_OPTION, VERSION_OPTION, make_app, run_app, setup_logging

app = make_app("deocc-train", "Train the 3DMM-conditioned de-occlusion GAN from shards (two stages; CUDA with AMP/DDP when present, CPU otherwise).", group=False)


@app.command()
def run(
    version: bool = VERSION_OPTION,
    verbose: bool = VERBOSE_OPTION,
) -> None:
    """Train the 3DMM-conditioned de-occlusion GAN from shards (two stages; CUDA with AMP/DDP when present, CPU otherwise)."""
    setup_logging(verbose)
    raise DeoccError("deocc-train is not built yet")


def main() -> None:
    run_app(app, "deocc-train")


if __name__ == "__main__":
    main()
