"""deocc-eval: Evaluate de-occlusion (PSNR/SSIM per region and occluder class) against baselines, with a report."""
from __future__ import annotations

import typer

from deocc_core.errors import DeoccError
from tools._cli import VERBOSE_OPTION, VERSION_OPTION, make_app, run_app, setup_logging

app = make_app("deocc-eval", "Evaluate de-occlusion (PSNR/SSIM per region and occluder class) against baselines, with a report.", group=False)


@app.command()
def run(
    version: bool = VERSION_OPTION,
    verbose: bool = VERBOSE_OPTION,
) -> None:
    """Evaluate de-occlusion (PSNR/SSIM per region and occluder class) against baselines, with a report."""
    setup_logging(verbose)
    raise DeoccError("deocc-eval is not built yet")


def main() -> None:
    run_app(app, "deocc-eval")


if __name__ == "__main__":
    main()
