"""A checkpoint missing a part is refused on --resume and the run's checkpoint is left untouched;
training-batch sample grids are written."""

from __future__ import annotations

import cv2
import pytest
from _train_config import tiny_train_config

from deocc_core.errors import FormatError
from deocc_core.nets.checkpoint import load_checkpoint, save_checkpoint
from deocc_core.train import train


def _cfg(shards, out, **kw):
    return tiny_train_config(
        shards, out, **{**dict(log_every=1000, deterministic=True, seed=7), **kw}
    )


def test_resume_from_checkpoint_missing_a_part_is_refused(tiny_shards, tmp_path):
    out = tmp_path / "run"
    train(_cfg(tiny_shards, out, max_steps=2, stage2_steps=0, sample_every=2))
    grid = cv2.imread(str(out / "samples" / "train_step_0000002.png"))
    assert grid is not None and grid.shape[1] >= 4 * 64  # occluded | render | output | gt
    latest = out / "checkpoints" / "latest.pt"
    state = load_checkpoint(latest)
    del state["opt_Dg"]
    save_checkpoint(latest, state)
    before = latest.read_bytes()
    with pytest.raises(FormatError, match="lacks opt_Dg"):
        train(_cfg(tiny_shards, out, max_steps=4, stage2_steps=1), resume=True)
    assert latest.read_bytes() == before
