"""deocc-eval: PSNR / SSIM per region (the paper's Table 1 groups) and occluder class,
for checkpoints and baselines, on a held-out shard split; results.json, results.md and a
self-contained report.html.
"""

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
    "deocc-eval",
    "PSNR/SSIM per region and occluder class for checkpoints and baselines on a held-out split.",
    group=False,
)


@app.command()
def run(
    shards: Path = typer.Option(
        ...,
        "--shards",
        exists=True,
        file_okay=False,
        help="Shard folder (with manifest.json); required.",
    ),
    split: str = typer.Option(
        "test", "--split", help="Split to evaluate (identity-disjoint from train) [default: test]."
    ),
    ckpt: list[Path] = typer.Option(
        [],
        "--ckpt",
        exists=True,
        help="Checkpoint file or run folder; repeat for ablations [default: none, baselines only].",
    ),
    name: list[str] = typer.Option(
        [], "--name", help="Method name per --ckpt, in order [default: the run folder's name]."
    ),
    baselines: str = typer.Option(
        "input,telea",
        "--baselines",
        help="Comma-separated: input, telea, ns (OpenCV inpainting with the TRUE mask), or 'none' [default: input,telea].",
    ),
    out: Path = typer.Option(Path("eval_out"), "--out", help="Report folder [default: eval_out]."),
    limit: int = typer.Option(
        None, "--limit", min=1, help="Evaluate at most N samples [default: all]."
    ),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda [default: auto]."),
    version: bool = VERSION_OPTION,
    verbose: bool = VERBOSE_OPTION,
) -> None:
    """Evaluate checkpoints and baselines on a shard split."""
    setup_logging(verbose)
    from deocc_core.eval.evaluate import EvalConfig, evaluate

    if name and len(name) != len(ckpt):
        raise typer.BadParameter(f"--name given {len(name)} times for {len(ckpt)} --ckpt")
    names = name or [(c.name if c.is_dir() else c.parent.parent.name or c.stem) for c in ckpt]
    writable_dir(out)
    base = (
        ()
        if baselines.strip() == "none"
        else tuple(b.strip() for b in baselines.split(",") if b.strip())
    )
    cfg = EvalConfig(
        shards=str(shards),
        out=str(out),
        split=split,
        checkpoints=tuple(zip(names, map(str, ckpt))),
        baselines=base,
        limit=limit,
        device=device,
    )
    with progress_bar("deocc-eval", unit="sample") as advance:
        r = evaluate(cfg, progress=advance)
    stdout.print(f"{r.n_samples} samples")
    for m, groups in r.table.items():
        a = groups["all"]
        stdout.print(
            f"  {m:>12}: PSNR {a['psnr']:.2f} dB, SSIM {a['ssim']:.4f}; in occluder PSNR {a['psnr_mask']:.2f}, SSIM {a['ssim_mask']:.4f}"
        )
    stdout.print(f"report: {out / 'report.html'}, {out / 'results.md'}, {out / 'results.json'}")


def main() -> None:
    run_app(app, "deocc-eval")


if __name__ == "__main__":
    main()
