"""The tiny trainer configuration the tests share (imported as a module, not a fixture)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deocc_core.train import TrainConfig


def tiny_train_config(shards: Path | str, out: Path | str, **kw: Any) -> TrainConfig:
    """A 64 px run with ngf / ndf 8, no loader workers and no validation or checkpoint but
    what ``kw`` asks for (``kw`` overrides any field, these included)."""
    base: dict[str, Any] = dict(
        shards=str(shards),
        out=str(out),
        size=64,
        ngf=8,
        ndf=8,
        workers=0,
        val_every=1000,
        checkpoint_every=1000,
        val_fraction=0.2,
    )
    return TrainConfig(**{**base, **kw})
