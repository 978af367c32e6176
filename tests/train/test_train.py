"""Trainer on tiny real shards: loader partitioning, losses, stages, exact resume, DDP."""

from __future__ import annotations

import json
import os
import socket

import pytest
import torch
from _train_config import tiny_train_config
from torch.utils.data import DataLoader

from deocc_core.data.dataset import ShardDataset
from deocc_core.errors import ConfigError, FormatError
from deocc_core.nets import Discriminator, UnetGenerator, define_generator, load_generator
from deocc_core.nets.checkpoint import load_checkpoint
from deocc_core.nets.io import generator_input
from deocc_core.nets.networks import blend_output
from deocc_core.train import train
from deocc_core.train.losses import MaskLoss, TVLoss
from deocc_core.train.parallel import unwrap, wrap


def _cfg(shards, out, **kw):
    return tiny_train_config(shards, out, **{**dict(log_every=1, deterministic=True, seed=1), **kw})


def test_two_workers_yield_every_sample_once_per_epoch(tiny_shards):
    ds = ShardDataset(tiny_shards, "train", augment=None)
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        seen = [tuple(b["item"][0].tolist()) for b in DataLoader(ds, batch_size=1, num_workers=2)]
        assert len(seen) == len(ds) == len(set(seen))
    ds.set_epoch(0)
    order0 = [tuple(b["item"][0].tolist()) for b in DataLoader(ds, batch_size=1)]
    ds.set_epoch(1)
    assert order0 != [tuple(b["item"][0].tolist()) for b in DataLoader(ds, batch_size=1)]


def test_nets_shapes_and_tv_gradcheck():
    assert define_generator(128, ngf=8)(torch.zeros(1, 6, 128, 128)).shape == (1, 3, 128, 128)
    masked = define_generator(128, ngf=8, blend="mask")(torch.zeros(1, 6, 128, 128))
    assert masked.shape == (1, 4, 128, 128) and masked[:, :3].abs().max() <= 1
    assert UnetGenerator(3, 3, num_downs=8, ngf=4)(torch.zeros(1, 3, 256, 256)).shape == (
        1,
        3,
        256,
        256,
    )
    for s in (128, 256):
        d = Discriminator(3, size=s, ndf=8)
        assert d(torch.zeros(2, 3, s, s)).shape == (2, 1)
        assert sum(isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2) for m in d.modules()) == (
            7 if s == 256 else 6
        )
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(TVLoss(), (x,))


def _held_out_losses(G, shards):
    """L1 of G's (blended) output and m̂'s mask loss on 10 held-out samples."""
    ds = ShardDataset(shards, "train", subset="val", val_fraction=0.2, augment=None, shuffle=False)
    b = next(iter(DataLoader(ds, batch_size=10)))
    G.train()
    torch.manual_seed(0)
    with torch.no_grad():
        gen = blend_output(G(generator_input(b, False)), b["occluded"])
        l1 = float((gen.output - b["gt"]).abs().mean())
        mask = float(MaskLoss()(gen.mask_logit, b["occ_mask"])) if gen.mask_logit is not None else 0
    return l1, mask


@pytest.mark.parametrize("blend", ["mask", "none"])
def test_training_lowers_l1_and_switches_stage(tiny_shards, tmp_path, blend):
    r = train(
        _cfg(
            tiny_shards,
            tmp_path / "run",
            max_steps=16,
            stage2_steps=4,
            lr_stage1=1e-3,
            blend=blend,
        )
    )
    lines = [
        json.loads(x)
        for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()
        if "loss_l1" in x
    ]
    # on held-out samples, the trained G beats its own initialisation (the same seed draws
    # the same init as the trainer; both scored in train mode with the same dropout draws)
    torch.manual_seed(1)
    G0 = define_generator(64, ngf=8, blend=blend)
    G1 = load_generator(r.latest)[0]
    l1_0, mask_0 = _held_out_losses(G0, tiny_shards)
    l1_1, mask_1 = _held_out_losses(G1, tiny_shards)
    assert l1_1 < l1_0, (l1_0, l1_1)  # measured (none): 0.404 -> 0.385 in 16 steps
    if blend == "mask":  # m̂ learns the occluder
        assert mask_1 < mask_0, (mask_0, mask_1)
    s1 = [ln for ln in lines if ln["stage"] == 1]
    s2 = [ln for ln in lines if ln["stage"] == 2]
    assert len(s2) == 4 and all(
        ln["lr"] == 1e-3 and "loss_tv" in ln and "loss_G_adv_l" not in ln for ln in s1
    )
    assert all(ln["lr"] == 5e-5 and "loss_tv" not in ln and "loss_G_adv_l" in ln for ln in s2)
    assert all(("loss_mask" in ln) == (blend == "mask") for ln in lines)
    assert r.latest.is_file() and (tmp_path / "run" / "samples").is_dir()
    # validation: whole-crop and in-mask PSNR on the whole held-out split, score = their mean
    v = r.val
    assert v["val_score"] == pytest.approx(0.5 * (v["val_psnr"] + v["val_psnr_occ"]))
    assert ("val_mask_iou" in v) == (blend == "mask")


@pytest.mark.parametrize("blend", ["mask", "none"])
def test_resume_is_bit_exact(tiny_shards, tmp_path, blend, same_state):
    straight = train(_cfg(tiny_shards, tmp_path / "a", max_steps=9, stage2_steps=3, blend=blend))
    train(_cfg(tiny_shards, tmp_path / "b", max_steps=6, stage2_steps=0, blend=blend))
    resumed = train(
        _cfg(tiny_shards, tmp_path / "b", max_steps=9, stage2_steps=3, blend=blend), resume=True
    )
    assert resumed.steps == 9 and resumed.weights_sha256 == straight.weights_sha256
    # Adam moments, BatchNorm buffers and the torch RNG stream match too, not only the weights
    a, b = (load_checkpoint(tmp_path / r / "checkpoints" / "latest.pt") for r in ("a", "b"))
    assert a["stage"] == b["stage"] == 2 and a["shard_format_version"] >= 1 and a["package_version"]
    same_state(a, b)


def test_run_folder_and_checkpoint_guards(tiny_shards, tiny_run, tmp_path):
    with pytest.raises(ConfigError, match="already holds a run"):
        train(_cfg(tiny_shards, tiny_run, max_steps=2))
    with pytest.raises(ConfigError, match="different ngf"):
        train(_cfg(tiny_shards, tiny_run, max_steps=8, ngf=16), resume=True)
    with pytest.raises(ConfigError, match="64 px but --size is 128"):
        train(_cfg(tiny_shards, tmp_path / "x", size=128, max_steps=2))
    bad = tmp_path / "bad.pt"
    good = (tiny_run / "checkpoints" / "latest.pt").read_bytes()
    bad.write_bytes(good[: len(good) // 2])
    with pytest.raises(FormatError, match="bad.pt"):
        load_checkpoint(bad)
    G, cfg, info = load_generator(tiny_run)
    assert cfg.size == 64 and info["data_model"]["name"] == "deocc-starter" and not G.training
    assert cfg.blend == "mask"  # the default G is mask-aware


def _ddp_worker(rank, world, port, shards, out, q):
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    # validation every step: each rank scores its half of the held-out split
    r = train(_cfg(shards, out, max_steps=3, stage2_steps=1, device="cpu", val_every=1))
    # DDP then compile, unwrapped for saving (compile is lazy: nothing is compiled here)
    net = torch.nn.Linear(2, 1)
    wrapped = wrap(net, torch.device("cpu"), world, compile=True)
    keys = list(wrapped.state_dict())
    q.put((rank, r.weights_sha256, r.val, r.best_step, keys, unwrap(wrapped) is net))
    torch.distributed.destroy_process_group()


def test_ddp_two_ranks_on_cpu_agree(tiny_shards, tmp_path):
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [
        ctx.Process(target=_ddp_worker, args=(r, 2, port, tiny_shards, tmp_path / "ddp", q))
        for r in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(180)
    assert all(p.exitcode == 0 for p in procs)
    got = {r[0]: r[1:] for r in (q.get() for _ in range(2))}
    assert got[0][0] == got[1][0]  # same weights
    assert got[0][1] == got[1][1] and got[0][1]["val_score"] > 0  # same validation numbers
    assert got[0][2] == got[1][2] is not None  # same best.pt decision
    assert got[0][3] == ["_orig_mod.module.weight", "_orig_mod.module.bias"] and got[0][4]
    ckpt = load_checkpoint(tmp_path / "ddp" / "checkpoints" / "latest.pt")
    for net in ("G", "Dg", "Dl"):
        assert not any(k.startswith(("module.", "_orig_mod.")) for k in ckpt[net]), net
    assert set(ckpt["rng"]) == {"0", "1"}
    G, spec, _ = load_generator(tmp_path / "ddp")  # loads without any key surgery
    assert spec.blend == "mask"
