"""Resume restores optimizer and RNG state exactly; a checkpoint missing a part is refused
and the run's good checkpoint is left untouched."""
from __future__ import annotations

import cv2
import pytest
import torch

from deocc_core.errors import FormatError
from deocc_core.train import TrainConfig, train
from deocc_core.train.checkpoint import load_checkpoint


def _cfg(shards, out, **kw):
    return TrainConfig(shards=str(shards), out=str(out), size=64, ngf=8, ndf=8, workers=0, val_every=1000, checkpoint_every=1000,
                       log_every=1000, val_fraction=0.2, deterministic=True, seed=7, **kw)


def test_resume_restores_optimizers_and_rng_bit_exact(tiny_shards, tmp_path):
    train(_cfg(tiny_shards, tmp_path / "a", max_steps=4, stage2_steps=1))
    train(_cfg(tiny_shards, tmp_path / "b", max_steps=2, stage2_steps=0))
    train(_cfg(tiny_shards, tmp_path / "b", max_steps=4, stage2_steps=1), resume=True)
    a, b = (load_checkpoint(tmp_path / r / "checkpoints" / "latest.pt") for r in ("a", "b"))
    assert a["shard_format_version"] >= 1 and a["package_version"]
    assert a["step"] == b["step"] == 4 and a["stage"] == b["stage"] == 2
    for net in ("G", "Dg", "Dl"):
        for k, v in a[net].items():
            assert torch.equal(v, b[net][k]), f"{net}.{k}"
        sa, sb = a[f"opt_{net}"]["state"], b[f"opt_{net}"]["state"]
        assert sa.keys() == sb.keys()
        for i in sa:
            for k in ("exp_avg", "exp_avg_sq", "step"):
                assert torch.equal(sa[i][k], sb[i][k]), f"opt_{net}[{i}].{k}"
    assert torch.equal(a["rng"]["0"]["torch"], b["rng"]["0"]["torch"])


def test_resume_from_checkpoint_missing_a_part_is_refused(tiny_shards, tmp_path):
    out = tmp_path / "run"
    train(_cfg(tiny_shards, out, max_steps=2, stage2_steps=0, sample_every=2))
    grid = cv2.imread(str(out / "samples" / "train_step_0000002.png"))
    assert grid is not None and grid.shape[1] >= 4 * 64  # occluded | render | output | gt
    latest = out / "checkpoints" / "latest.pt"
    state = torch.load(latest, weights_only=False)
    del state["opt_Dg"]
    torch.save(state, latest)
    before = latest.read_bytes()
    with pytest.raises(FormatError, match="lacks opt_Dg"):
        train(_cfg(tiny_shards, out, max_steps=4, stage2_steps=1), resume=True)
    assert latest.read_bytes() == before
