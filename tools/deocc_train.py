"""deocc-train: train the 3DMM-conditioned de-occlusion GAN from shards.

Two stages (the paper: 100 epochs G + D_g + TV at 2e-4, then 10 epochs adding D_l at
5e-5), or a step budget with --max-steps. CUDA with AMP when present, CPU otherwise;
several GPUs with ``torchrun --nproc_per_node N $(which deocc-train) ...`` (DDP).
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

app = make_app("deocc-train", __doc__.split("\n\n")[0].split(": ", 1)[1], group=False)


@app.command()
def run(
    shards: Path = typer.Option(
        ...,
        "--shards",
        exists=True,
        file_okay=False,
        help="Shard folder from synth-occ build (with manifest.json).",
    ),
    out: Path = typer.Option(
        Path("runs/deocc"),
        "--out",
        help="Run folder: checkpoints/, samples/, tb/, log.jsonl, config.json.",
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the run in --out from checkpoints/latest.pt."
    ),
    size: int = typer.Option(
        None,
        "--size",
        help="Crop side in pixels; must equal the shards' resolution (default: the shards' resolution).",
    ),
    batch_size: int = typer.Option(
        5, "--batch-size", min=1, help="Images per step per GPU (the paper: 5)."
    ),
    epochs_stage1: int = typer.Option(
        100, "--epochs-stage1", min=0, help="Stage-1 epochs (G + D_g + TV, lr 2e-4)."
    ),
    epochs_stage2: int = typer.Option(
        10, "--epochs-stage2", min=0, help="Stage-2 epochs (adds D_l, lr 5e-5)."
    ),
    max_steps: int = typer.Option(
        None, "--max-steps", min=1, help="Train this many steps instead of the epochs."
    ),
    stage2_steps: int = typer.Option(
        None,
        "--stage2-steps",
        min=0,
        help="With --max-steps: the last N steps are stage 2 (default: 10 % of --max-steps).",
    ),
    lr_stage1: float = typer.Option(2e-4, "--lr-stage1", help="Adam learning rate, stage 1."),
    lr_stage2: float = typer.Option(5e-5, "--lr-stage2", help="Adam learning rate, stage 2."),
    l1: float = typer.Option(10.0, "--l1", help="Weight of the L1 reconstruction loss."),
    tv: float = typer.Option(1e-5, "--tv", help="Weight of the total-variation loss (stage 1)."),
    adv_g: float = typer.Option(
        1.0, "--adv-g", help="Weight of D_g's adversarial term in G's loss."
    ),
    adv_l: float = typer.Option(
        1.0, "--adv-l", help="Weight of D_l's adversarial term in G's loss (stage 2)."
    ),
    d_g: float = typer.Option(1.0, "--d-g", help="Weight of D_g's own BCE loss."),
    d_l: float = typer.Option(1.0, "--d-l", help="Weight of D_l's own BCE loss."),
    no_render: bool = typer.Option(
        False, "--no-render", help="Ablation: no 3DMM render channel (3-channel input)."
    ),
    no_dg: bool = typer.Option(False, "--no-dg", help="Ablation: no global discriminator."),
    no_dl: bool = typer.Option(
        False, "--no-dl", help="Ablation: no local (face-region) discriminator."
    ),
    ngf: int = typer.Option(64, "--ngf", min=4, help="Generator base width."),
    ndf: int = typer.Option(64, "--ndf", min=4, help="Discriminator base width."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present) | cpu | cuda."),
    amp: bool = typer.Option(
        True,
        "--amp/--no-amp",
        help="Mixed precision on CUDA (bf16 when supported, else fp16 + GradScaler).",
    ),
    channels_last: bool = typer.Option(
        True, "--channels-last/--no-channels-last", help="channels_last memory format on CUDA."
    ),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the generator (CUDA)."),
    workers: int = typer.Option(2, "--workers", min=0, help="Data-loader processes per GPU."),
    seed: int = typer.Option(0, "--seed", help="Seed for init, data order and augmentation."),
    checkpoint_every: int = typer.Option(
        1000, "--checkpoint-every", min=1, help="Steps between checkpoints (optimizer steps)."
    ),
    keep_last: int = typer.Option(
        3, "--keep-last", min=1, help="Step checkpoints kept (plus latest.pt and best.pt)."
    ),
    val_every: int = typer.Option(
        1000, "--val-every", min=1, help="Steps between validations (+ sample grid PNG)."
    ),
    sample_every: int = typer.Option(
        500,
        "--sample-every",
        min=1,
        help="Steps between PNG grids of the training batch (samples/train_step_*.png).",
    ),
    log_every: int = typer.Option(
        50, "--log-every", min=1, help="Steps between TensorBoard / log.jsonl scalars."
    ),
    val_fraction: float = typer.Option(
        0.05, "--val-fraction", min=0.0, max=0.5, help="Train identities held out for validation."
    ),
    val_samples: int = typer.Option(
        64, "--val-samples", min=1, help="Held-out samples per validation (images)."
    ),
    deterministic: bool = typer.Option(
        False, "--deterministic", help="Deterministic algorithms (exact resume; slower on GPU)."
    ),
    version: bool = VERSION_OPTION,
    verbose: bool = VERBOSE_OPTION,
) -> None:
    """Train the 3DMM-conditioned de-occlusion GAN from shards."""
    setup_logging(verbose)
    from deocc_core.synth.manifest import read_manifest
    from deocc_core.train import TrainConfig, train

    manifest = read_manifest(shards)
    writable_dir(out)
    cfg = TrainConfig(
        shards=str(shards),
        out=str(out),
        size=size or manifest["resolution"],
        ngf=ngf,
        ndf=ndf,
        l1=l1,
        tv=tv,
        adv_g=adv_g,
        adv_l=adv_l,
        d_g=d_g,
        d_l=d_l,
        channels_last=channels_last,
        val_samples=val_samples,
        lr_stage1=lr_stage1,
        lr_stage2=lr_stage2,
        epochs_stage1=epochs_stage1,
        epochs_stage2=epochs_stage2,
        max_steps=max_steps,
        stage2_steps=stage2_steps,
        batch_size=batch_size,
        workers=workers,
        no_render=no_render,
        no_dg=no_dg,
        no_dl=no_dl,
        amp=amp,
        compile=compile,
        seed=seed,
        checkpoint_every=checkpoint_every,
        keep_last=keep_last,
        val_every=val_every,
        sample_every=sample_every,
        log_every=log_every,
        val_fraction=val_fraction,
        device=device,
        deterministic=deterministic,
    )
    with progress_bar("deocc-train", unit="step") as advance:
        r = train(cfg, progress=advance, resume=resume)
    stdout.print(f"{r.steps} steps in {r.seconds:.0f} s ({r.images_per_second:.1f} img/s)")
    if r.val:
        stdout.print(
            f"validation: PSNR in occluder {r.val['val_psnr_occ']:.2f} dB, L1 {r.val['val_l1_occ']:.4f}"
        )
    stdout.print(f"checkpoints: {r.latest}" + (f", best: {r.best}" if r.best else ""))
    stdout.print(f"samples: {out / 'samples'}  TensorBoard: tensorboard --logdir {out / 'tb'}")


def main() -> None:
    run_app(app, "deocc-train")


if __name__ == "__main__":
    main()
