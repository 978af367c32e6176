"""deocc-train: train the 3DMM-conditioned de-occlusion GAN from shards.

Two stages (the paper: 100 epochs G + D_g + TV at 2e-4, then 10 epochs adding D_l at
5e-5), or a step budget with --max-steps. CUDA with AMP when present, CPU otherwise;
several GPUs with ``torchrun --nproc_per_node N $(which deocc-train) ...`` (DDP).
"""

from __future__ import annotations

import signal
from typing import Any

import typer

from deocc_core.train.config import TrainConfig
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
from tools._options import build_config, config_params, with_options

app = make_app("deocc-train", __doc__.split("\n\n")[0].split(": ", 1)[1], group=False)


@app.command()
@with_options(
    config_params(
        TrainConfig,
        defaults={"size": None},
        show_defaults={"size": "the shards' resolution"},
    )
)
def run(
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue the run in --out from checkpoints/latest.pt.",
        show_default="off",
    ),
    version: bool = VERSION_OPTION,
    verbose: bool = VERBOSE_OPTION,
    **values: Any,
) -> None:
    """Train the 3DMM-conditioned de-occlusion GAN from shards."""
    setup_logging(verbose)
    from deocc_core.synth.manifest import read_manifest
    from deocc_core.train import train

    manifest = read_manifest(values["shards"])
    writable_dir(values["out"])
    cfg = build_config(TrainConfig, values, size=values["size"] or manifest["resolution"])
    with progress_bar("deocc-train", unit="step") as advance:
        r = train(cfg, progress=advance, resume=resume)
    stdout.print(f"{r.steps} steps in {r.seconds:.0f} s ({r.images_per_second:.1f} img/s)")
    if r.val:
        stdout.print(
            f"validation: PSNR whole crop {r.val['val_psnr']:.2f} dB, in occluder "
            f"{r.val['val_psnr_occ']:.2f} dB, score {r.val['val_score']:.2f}"
            + (f", mask IoU {r.val['val_mask_iou']:.3f}" if "val_mask_iou" in r.val else "")
        )
    if r.bad_samples:
        stdout.print(f"skipped {r.bad_samples} corrupt sample(s) (--skip-bad)")
    best = f", best: {r.best} (step {r.best_step})" if r.best else ""
    stdout.print(f"checkpoints: {r.latest}{best}")
    out = values["out"]
    stdout.print(f"samples: {out / 'samples'}  TensorBoard: tensorboard --logdir {out / 'tb'}")
    if r.interrupted:  # the checkpoint of the step boundary is saved
        stdout.print(f"stopped by {r.interrupted} at step {r.steps}: resume with --resume")
        code = getattr(signal, r.interrupted, None)
        raise typer.Exit(128 + int(code) if code is not None else 1)


def main() -> None:
    """Console script ``deocc-train``."""
    run_app(app, "deocc-train")


if __name__ == "__main__":
    main()
