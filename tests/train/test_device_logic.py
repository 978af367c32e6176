"""GPU-facing trainer logic that a CPU can check: the AMP dtype as a function of device
capabilities, no host syncs in the hot loop, only the step's tensors copied, validation sums."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from deocc_core.nets.networks import blend_output
from deocc_core.train import TrainConfig
from deocc_core.train.amp import DeviceCaps, amp_dtype, device_caps
from deocc_core.train.trainer import STEP_KEYS, VAL_SUMS, _Run, validation_sums

# (device type, bf16 in hardware, bf16 emulated) of real GPUs -> the autocast dtype we want
GPUS = [
    ("H100 / A100 / RTX 30xx-40xx", True, True, torch.bfloat16),
    ("V100 / T4 / 1080 Ti", False, True, torch.float16),  # bf16 only emulated: fp16 + scaler
    ("Kepler / Maxwell", False, False, torch.float16),
]


@pytest.mark.parametrize(("name", "native", "emulated", "want"), GPUS)
def test_amp_dtype_from_fake_cuda_capabilities(monkeypatch, name, native, emulated, want):
    asked = []

    def fake_is_bf16_supported(including_emulation: bool = True) -> bool:
        asked.append(including_emulation)
        return native or (emulated and including_emulation)

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", fake_is_bf16_supported)
    caps = device_caps(torch.device("cuda", 0))
    assert asked == [False]  # the strict question, never the emulation-friendly default
    assert caps == DeviceCaps("cuda", native)
    assert amp_dtype(caps) is want, name
    assert amp_dtype(caps, enabled=False) is None


def test_cpu_trains_in_float32():
    assert amp_dtype(device_caps(torch.device("cpu"))) is None


AREAS = ("train", "nets")  # code whose host syncs are counted
SYNCS = ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__")


def test_no_host_sync_in_the_hot_loop_except_at_log_steps(tiny_shards, tmp_path, monkeypatch):
    cfg = TrainConfig(
        shards=str(tiny_shards),
        out=str(tmp_path / "run"),
        size=64,
        ngf=8,
        ndf=8,
        workers=0,
        batch_size=2,  # syncs do not depend on the batch size; small steps are cheap
        max_steps=8,
        stage2_steps=2,
        log_every=4,
        sample_every=1000,
        val_every=1000,
        checkpoint_every=1000,
        val_fraction=0.2,
    )
    run = _Run(cfg, resume=False)
    run.total = 10**6  # no end-of-run validation / checkpoint inside the counted steps
    calls: list[tuple[int, str]] = []

    def spy(name):
        orig = getattr(torch.Tensor, name)

        def f(self, *a, **k):
            parts = Path(sys._getframe(1).f_code.co_filename).parts
            if "deocc_core" in parts and parts[parts.index("deocc_core") + 1] in AREAS:
                calls.append((run.step, name))
            return orig(self, *a, **k)

        return f

    for name in SYNCS:
        monkeypatch.setattr(torch.Tensor, name, spy(name))
    loader = run._epoch_loader()
    for batch in loader:
        run.last_losses = run.train_step(batch)
        run.step += 1
        run._after_step()
        if run.step == 5:
            break
    monkeypatch.undo()
    assert calls, "the spy saw nothing: it would not catch a sync either"
    assert {s for s, _ in calls} == {4}, calls  # only the log step reads values back
    b = next(iter(run._epoch_loader()))
    assert set(run._to(b)) == set(STEP_KEYS) < set(b)  # landmarks, item, enums stay on the host


def test_validation_sums_whole_crop_and_in_mask():
    gt = torch.zeros(2, 3, 4, 4)
    occ_mask = torch.zeros(2, 1, 4, 4)
    occ_mask[0, :, :2, :2] = 1.0  # sample 1 has no occluder
    out = gt.clone()
    out[0, :, 0, 0] = 1.0  # one wrong pixel (by 127.5 grey levels) inside sample 0's mask
    g = torch.cat([out, (occ_mask * 2 - 1) * 50], 1)  # m̂ = the mask, exactly
    v = validation_sums(blend_output(g, gt), gt, occ_mask).tolist()
    sums = dict(zip(VAL_SUMS, v, strict=True))
    whole = 10 * np.log10(255.0**2 / ((127.0**2) / 16))  # uint8: 128 vs 255 → 127
    in_mask = 10 * np.log10(255.0**2 / ((127.0**2) / 4))
    # sample 0's output is out at the wrong pixel (m̂ = 1 there); sample 1 exact: 100 dB
    assert sums["n"] == 2 and sums["psnr"] == pytest.approx(whole + 100.0, abs=1e-6)
    assert sums["n_occ"] == 1 and sums["psnr_occ"] == pytest.approx(in_mask, abs=1e-6)
    assert sums["n_iou"] == 2 and sums["mask_iou"] == pytest.approx(2.0)
