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
        help="Checkpoint file or run folder; repeat for ablations.",
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
    names = name or [(c.name if c.is_dir() else c.parent.parent.name or c.stem) for c in ckpt]
    writable_dir(values["out"])
    base = (
        ()
        if baselines.strip() == "none"
        else tuple(b.strip() for b in baselines.split(",") if b.strip())
    )
    checkpoints = tuple(zip(names, map(str, ckpt), strict=True))
    cfg = build_config(EvalConfig, values, checkpoints=checkpoints, baselines=base)
    with progress_bar("deocc-eval", unit="sample") as advance:
        r = evaluate(cfg, progress=advance)
    stdout.print(f"{r.n_samples} samples")
    for m, groups in r.table.items():
        a = groups["all"]
        stdout.print(
            f"  {m:>12}: PSNR {a['psnr']:.2f} dB, SSIM {a['ssim']:.4f}; "
            f"in occluder PSNR {a['psnr_mask']:.2f}, SSIM {a['ssim_mask']:.4f}"
        )
    out = Path(cfg.out)
    stdout.print(f"report: {out / 'report.html'}, {out / 'results.md'}, {out / 'results.json'}")


def main() -> None:
    """Console script ``deocc-eval``."""
    run_app(app, "deocc-eval")


if __name__ == "__main__":
    main()
