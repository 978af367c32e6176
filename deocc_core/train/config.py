"""All training options in one place (saved as JSON in the run folder and every checkpoint)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from deocc_core.data.augment import AugmentConfig
from deocc_core.errors import ConfigError

__all__ = ["TrainConfig", "ARCH_FIELDS"]

# fields a checkpoint's network depends on: --resume refuses to change them
ARCH_FIELDS = ("size", "ngf", "ndf", "no_render", "no_dg", "no_dl")


@dataclass(frozen=True)
class TrainConfig:
    """Two-stage training of the paper (stage 1: G + D_g + TV; stage 2: adds D_l, drops TV).

    Attributes:
        shards, out: shard folder and run folder.
        size: crop side (must match the shards). ngf, ndf: network widths.
        l1, tv, adv_g, adv_l: loss weights (reconstruction, total variation, global and
            local adversarial terms in G's loss). d_g, d_l: weights of D_g's and D_l's losses.
        lr_stage1, lr_stage2: Adam learning rates; beta1, beta2: Adam betas.
        epochs_stage1, epochs_stage2: epochs per stage (the paper: 100 + 10).
        max_steps: if set, total optimizer steps instead of epochs; stage2_steps: the
            last steps of such a run spent in stage 2 (default 10 %).
        batch_size: the paper's 5. workers: loader processes per rank.
        no_render, no_dg, no_dl: ablations (3-channel input; no global / local D).
        amp: mixed precision on CUDA. channels_last, compile: CUDA speed-ups.
        seed: seeds model init, data order and augmentation.
        checkpoint_every, keep_last: checkpoints (steps, how many kept besides latest/best).
        sample_every, log_every, val_every: PNG grid of the current training batch
            (occluded | render | output | gt), scalars, validation + its grid (steps).
        val_fraction: identities of the train split held out for validation / best.pt.
        val_samples: validation samples per evaluation. device: auto | cpu | cuda.
        deterministic: torch deterministic algorithms (exact resume on CPU; slower on GPU).
    """

    shards: str
    out: str
    size: int = 256
    ngf: int = 64
    ndf: int = 64
    l1: float = 10.0
    tv: float = 1e-5
    adv_g: float = 1.0
    adv_l: float = 1.0
    d_g: float = 1.0
    d_l: float = 1.0
    lr_stage1: float = 2e-4
    lr_stage2: float = 5e-5
    beta1: float = 0.5
    beta2: float = 0.999
    epochs_stage1: int = 100
    epochs_stage2: int = 10
    max_steps: int | None = None
    stage2_steps: int | None = None
    batch_size: int = 5
    workers: int = 2
    no_render: bool = False
    no_dg: bool = False
    no_dl: bool = False
    amp: bool = True
    channels_last: bool = True
    compile: bool = False
    seed: int = 0
    checkpoint_every: int = 1000
    keep_last: int = 3
    sample_every: int = 500
    log_every: int = 50
    val_every: int = 1000
    val_fraction: float = 0.05
    val_samples: int = 64
    device: str = "auto"
    deterministic: bool = False
    augment: AugmentConfig = AugmentConfig()

    def __post_init__(self) -> None:
        if self.size < 32 or self.size & (self.size - 1):
            raise ConfigError(f"--size must be a power of two >= 32, got {self.size}")
        if self.batch_size < 1:
            raise ConfigError("--batch-size must be >= 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError("--max-steps must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        if isinstance(kw.get("augment"), dict):
            kw["augment"] = AugmentConfig(**kw["augment"])
        return cls(**kw)
