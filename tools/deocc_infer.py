"""deocc-infer: De-occlude faces in photos: detect, align, fit and render the 3DMM, run the generator, paste back."""
from __future__ import annotations

import typer

from deocc_core.errors import DeoccError
from tools._cli import VERBOSE_OPTION, VERSION_OPTION, make_app, run_app, setup_logging

app = make_app("deocc-infer", "De-occlude faces in photos: detect, align, fit and render the 3DMM, run the generator, paste back.", group=False)


@app.command()
def run(
    version: bool = VERSION_OPTION,
    verbose: bool = VERBOSE_OPTION,
) -> None:
    """De-occlude faces in photos: detect, align, fit and render the 3DMM, run the generator, paste back."""
    setup_logging(verbose)
    raise DeoccError("deocc-infer is not built yet")


def main() -> None:
    run_app(app, "deocc-infer")


if __name__ == "__main__":
    main()
