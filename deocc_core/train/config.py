"""All training options in one place (saved as JSON in the run folder and every checkpoint)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from deocc_core.data.augment import AugmentConfig
from deocc_core.device import DEVICES
from deocc_core.errors import ConfigError
from deocc_core.nets.networks import BLENDS
from deocc_core.options import option

__all__ = ["TrainConfig", "ARCH_FIELDS"]

# fields a checkpoint's network depends on: --resume refuses to change them
ARCH_FIELDS = ("size", "ngf", "ndf", "no_render", "no_dg", "no_dl", "blend")


@dataclass(frozen=True)
class TrainConfig:
    """Two-stage training of the paper (stage 1: G + D_g + TV; stage 2: adds D_l, drops TV).

    Each field's help, units and bounds are its :func:`deocc_core.options.option` metadata
    (what ``deocc-train --help`` shows). Saved as ``config.json`` in the run folder and in
    every checkpoint.
    """

    shards: str = option(help="Shard folder from synth-occ build (with manifest.json).", path="dir")
    out: str = option(
        "runs/deocc", "Run folder: checkpoints/, samples/, tb/, log.jsonl, config.json.", path="out"
    )
    size: int = option(256, "Crop side; must equal the shards' resolution.", units="px", min=32)
    ngf: int = option(64, "Generator base width.", units="channels", min=4)
    ndf: int = option(64, "Discriminator base width.", units="channels", min=4)
    l1: float = option(10.0, "Weight of the L1 reconstruction loss (whole crop).")
    l1_hole: float = option(
        0.0,
        "Weight of an extra L1 inside the given mask (--blend given, where the whole-crop "
        "L1 is diluted by the unchanged pixels; v2 recipe: 10). 0: off, as before.",
        min=0.0,
    )
    tv: float = option(1e-5, "Weight of the total-variation loss (stage 1).")
    adv_g: float = option(1.0, "Weight of D_g's adversarial term in G's loss.")
    adv_l: float = option(1.0, "Weight of D_l's adversarial term in G's loss (stage 2).")
    d_g: float = option(1.0, "Weight of D_g's own BCE loss.")
    d_l: float = option(1.0, "Weight of D_l's own BCE loss.")
    lr_stage1: float = option(2e-4, "Adam learning rate, stage 1.")
    lr_stage2: float = option(5e-5, "Adam learning rate, stage 2.")
    beta1: float = option(0.5, "Adam beta1 (first-moment decay).", min=0.0, max=1.0)
    beta2: float = option(0.999, "Adam beta2 (second-moment decay).", min=0.0, max=1.0)
    epochs_stage1: int = option(100, "Epochs of stage 1 (G + D_g + TV).", min=0)
    epochs_stage2: int = option(10, "Epochs of stage 2 (adds D_l, drops TV).", min=0)
    max_steps: int | None = option(
        None,
        "Train this many optimizer steps instead of the epochs.",
        units="steps",
        min=1,
        default_help="off: the epochs decide",
    )
    stage2_steps: int | None = option(
        None,
        "With --max-steps: the last N steps are stage 2.",
        units="steps",
        min=0,
        default_help="10 % of --max-steps",
    )
    batch_size: int = option(5, "Images per step per GPU (the paper: 5).", min=1)
    workers: int = option(2, "Data-loader processes per GPU.", min=0)
    no_render: bool = option(False, "Ablation: no 3DMM render channel (3-channel input).")
    no_dg: bool = option(False, "Ablation: no global discriminator.")
    no_dl: bool = option(False, "Ablation: no local (face-region) discriminator.")
    blend: str = option(
        "mask",
        "mask: G also predicts the occlusion mask m̂ and outputs m̂·G + (1−m̂)·input (the "
        "losses and both Ds judge that); none: the paper's G, which redraws every pixel; "
        "given: G refines the render-filled prefill inside a given mask (occ_mask jittered "
        "like the segmenter's m̂), output mask·(prefill + G) + (1−mask)·input",
        choices=BLENDS,
    )
    init: str | None = option(
        None,
        "Start from these weights (a run folder or .pt checkpoint: G, D_g, D_l; a "
        ".safetensors model: G), where names and shapes match; new optimizers, step 0.",
        path="any",
        default_help="off: random init",
    )
    mask_bce: float = option(
        1.0, "Weight of m̂'s BCE loss against the shard's occ_mask (--blend mask).", min=0.0
    )
    mask_dice: float = option(
        1.0, "Weight of m̂'s Dice loss against the shard's occ_mask (--blend mask).", min=0.0
    )
    amp: bool = option(
        True,
        "Mixed precision on CUDA (bf16 where the GPU has it natively, else fp16 + GradScaler).",
    )
    channels_last: bool = option(True, "channels_last memory format on CUDA.")
    compile: bool = option(False, "torch.compile the generator (CUDA).")
    seed: int = option(0, "Seed for init, data order and augmentation.")
    checkpoint_every: int = option(1000, "Steps between checkpoints.", min=1)
    keep_last: int = option(3, "Step checkpoints kept (plus latest.pt and best.pt).", min=1)
    sample_every: int = option(
        500,
        "Steps between PNG grids of the training batch (samples/train_step_*.png).",
        min=1,
    )
    log_every: int = option(50, "Steps between TensorBoard / log.jsonl scalars.", min=1)
    val_every: int = option(1000, "Steps between validations (+ sample grid PNG).", min=1)
    val_fraction: float = option(
        0.05, "Train identities held out for validation and best.pt.", min=0.0, max=0.5
    )
    val_samples: int | None = option(
        None,
        "Cap on held-out samples per validation.",
        units="images",
        min=1,
        default_help="the whole validation split",
    )
    device: str = option("auto", "Where to train.", choices=DEVICES)
    deterministic: bool = option(False, "Deterministic algorithms (exact resume; slower on GPU).")
    skip_bad: bool = option(
        False, "Skip corrupt shard samples (each logged, all counted) instead of stopping."
    )
    augment: AugmentConfig = AugmentConfig()

    def __post_init__(self) -> None:
        if self.size < 32 or self.size & (self.size - 1):
            raise ConfigError(f"--size must be a power of two >= 32, got {self.size}")
        if self.batch_size < 1:
            raise ConfigError("--batch-size must be >= 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError("--max-steps must be >= 1")
        if self.blend not in BLENDS:
            raise ConfigError(f"--blend must be one of {', '.join(BLENDS)}, got {self.blend!r}")

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-able data (``augment`` nested)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """The config saved by :meth:`to_dict` (unknown keys ignored, missing ones default).

        Configs saved before ``blend`` existed trained the paper's G: they read as ``"none"``.
        """
        d = {"blend": "none", **d}
        known = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        if isinstance(kw.get("augment"), dict):
            kw["augment"] = AugmentConfig(**kw["augment"])
        return cls(**kw)
