"""The trainer under interrupts, concurrent runs, damaged and hostile files (real runs, real
child processes, real signals, real shards with flipped bytes)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from _train_config import tiny_train_config

from deocc_core.data.dataset import BadSample, ShardDataset
from deocc_core.errors import ConfigError, FormatError
from deocc_core.nets.checkpoint import load_checkpoint, save_checkpoint
from deocc_core.train import train
from deocc_core.train.guards import RunLock

ROOT = Path(__file__).resolve().parents[2]
STOP_AT = 3  # odd: with 2 loader workers the resumed loader must start at worker 1's batch
# the signal runs: 6 steps of 2 samples stay inside the first epoch (20 batches) as 6 of 5
# did (8 batches), for a third of the compute; the loader workers alternate by batch
SIGNAL_BATCH = 2

CHILD = """
import json, os, signal, sys, time
from pathlib import Path
import torch
torch.set_num_threads(int(sys.argv[2]))
from deocc_core.train import TrainConfig, train
cfg = TrainConfig.from_dict(json.loads(sys.argv[1]))
ready, sent = Path(cfg.out) / "ready", Path(cfg.out) / "sent"
done = [0]
def progress(n=1, total=None):
    if total is not None:
        return
    done[0] += n
    if done[0] == int(sys.argv[3]):  # hold this step until the parent has signalled us
        ready.write_text("1")
        t = time.time()
        while not sent.exists() and time.time() - t < 60:
            time.sleep(0.02)
r = train(cfg, progress=progress)
print(json.dumps({"steps": r.steps, "interrupted": r.interrupted}))
"""


def _cfg(shards, out, **kw):
    extra = dict(
        log_every=1, sample_every=1000, deterministic=True, seed=3, max_steps=6, stage2_steps=2
    )
    return tiny_train_config(shards, out, **{**extra, **kw})


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def straight_runs(tiny_shards, tmp_path_factory):
    """Uninterrupted reference runs with 0 and 2 loader workers."""
    out = {}
    for w in (0, 2):
        d = tmp_path_factory.mktemp(f"straight{w}")
        out[w] = (train(_cfg(tiny_shards, d, workers=w, batch_size=SIGNAL_BATCH)), d)
    return out


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_saves_at_a_step_boundary_and_resume_is_bit_exact(
    tiny_shards, tmp_path, straight_runs, sig, workers, same_state
):
    cfg = _cfg(tiny_shards, tmp_path / "run", workers=workers, batch_size=SIGNAL_BATCH)
    (tmp_path / "run").mkdir()
    args = [json.dumps(cfg.to_dict()), str(torch.get_num_threads()), str(STOP_AT)]
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, *args], env=_env(), stdout=subprocess.PIPE, text=True
    )
    t = time.time()
    while not (tmp_path / "run" / "ready").exists():
        assert child.poll() is None and time.time() - t < 120, "child died before the step"
        time.sleep(0.02)
    child.send_signal(sig)  # arrives while the child is inside step STOP_AT
    (tmp_path / "run" / "sent").write_text("1")
    stdout, _ = child.communicate(timeout=120)
    assert child.returncode == 0
    got = json.loads(stdout.strip().splitlines()[-1])
    assert got == {"steps": STOP_AT, "interrupted": signal.Signals(sig).name}
    ck = load_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt")
    assert ck["step"] == STOP_AT and ck["batches_in_epoch"] == STOP_AT  # mid-epoch
    resumed = train(cfg, resume=True)
    straight, straight_dir = straight_runs[workers]
    assert resumed.steps == straight.steps == 6 and not resumed.interrupted
    assert resumed.weights_sha256 == straight.weights_sha256
    a, b = (load_checkpoint(Path(d) / "checkpoints" / "latest.pt") for d in (straight_dir, cfg.out))
    same_state(a, b)
    assert b["best"] == a["best"] and b["best_step"] == a["best_step"]


def test_a_second_trainer_on_the_same_run_folder_fails_with_one_line(tiny_shards, tmp_path):
    out = tmp_path / "run"
    with RunLock(out):  # as a running deocc-train holds it
        with pytest.raises(ConfigError, match="another deocc-train"):
            train(_cfg(tiny_shards, out))
        cmd = [sys.executable, "-m", "tools.deocc_train", "--shards", str(tiny_shards)]
        p = subprocess.run(
            [*cmd, "--out", str(out), "--max-steps", "2", "--device", "cpu"],
            env=_env(),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert p.returncode == 1, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "another deocc-train" in lines[0] and str(out) in lines[0]
    assert not (out / "checkpoints").exists()  # nothing was written into the held folder


def _run_with_checkpoint(tiny_shards, tmp_path):
    out = tmp_path / "run"
    train(_cfg(tiny_shards, out, max_steps=2, stage2_steps=0, checkpoint_every=1, keep_last=1))
    return out / "checkpoints"


def test_checkpoints_are_written_once_and_linked(tiny_shards, tmp_path):
    ck = _run_with_checkpoint(tiny_shards, tmp_path)
    latest, step2 = ck / "latest.pt", ck / "step_0000002.pt"
    assert latest.stat().st_ino == step2.stat().st_ino  # a hard link, not a copy
    assert (ck / "best.pt").stat().st_ino == step2.stat().st_ino
    assert not (ck / "step_0000001.pt").exists()  # pruned (keep_last=1)
    assert not list(ck.glob("*.partial"))
    step2.unlink()  # pruning a step file never breaks latest.pt / best.pt
    assert load_checkpoint(ck / "best.pt")["step"] == 2
    state = load_checkpoint(latest)
    assert {"opt_G", "opt_Dg", "opt_Dl", "scaler", "rng"} <= set(state)
    # plain torch.load with weights_only=True reads it as well (the footer is ignored)
    assert torch.load(latest, weights_only=True)["step"] == 2


def test_a_flipped_bit_is_refused_with_one_line(tiny_shards, tmp_path):
    ck = _run_with_checkpoint(tiny_shards, tmp_path)
    bad = tmp_path / "flipped.pt"
    data = bytearray((ck / "latest.pt").read_bytes())
    data[len(data) // 2] ^= 0x10
    bad.write_bytes(bytes(data))
    with pytest.raises(FormatError) as e:
        load_checkpoint(bad)
    assert str(e.value) == f"{bad}: checksum mismatch, the file is damaged (sha256 footer)"


class _Evil:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (exec, (f"open({str(self.target)!r}, 'w').write('ran')",))


def test_a_pickle_that_would_run_code_is_refused_without_running(tmp_path):
    target = tmp_path / "pwned.txt"
    path = tmp_path / "downloaded.pt"
    state = {"config": {"size": 64, "ngf": 8, "no_render": False}, "G": {}, "step": 0,
             "epoch": 0, "stage": 1, "payload": _Evil(target)}  # fmt: skip
    save_checkpoint(path, state)  # a valid footer: the checksum does not save us here
    with pytest.raises(FormatError, match="refused") as e:
        load_checkpoint(path)
    assert "\n" not in str(e.value) and str(path) in str(e.value)
    assert not target.exists()
    with open(path, "rb") as f:  # the payload is real: an unsafe load runs it
        torch.load(f, weights_only=False)
    assert target.read_text() == "ran"


def _corrupt_copy(tiny_shards, tmp_path):
    """A copy of the shards with bytes flipped in the middle of one training sample."""
    shards = tmp_path / "shards"
    shutil.copytree(tiny_shards, shards)
    ds = ShardDataset(shards, "train", subset="train", val_fraction=0.2, augment=None)
    si, i = (int(v) for v in ds.items[len(ds.items) // 2])
    path = ds.paths[si]
    with h5py.File(path, "r") as f:
        info = f["occluded"].id.get_chunk_info_by_coord((i, 0, 0, 0))
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 2)
        chunk = bytearray(fh.read(64))
        fh.seek(info.byte_offset + info.size // 2)
        fh.write(bytes(b ^ 0xA5 for b in chunk))
    return shards, path, i


@pytest.mark.parametrize("workers", [0, 2])
def test_a_corrupt_sample_is_named_and_skip_bad_counts_it(tiny_shards, tmp_path, workers):
    shards, path, i = _corrupt_copy(tiny_shards, tmp_path)
    with pytest.raises(BadSample) as e:
        train(_cfg(shards, tmp_path / "a", workers=workers, max_steps=6))
    msg = str(e.value)
    assert msg.startswith(f"{path}: sample {i}: ") and "\n" not in msg
    r = train(_cfg(shards, tmp_path / "b", workers=workers, max_steps=6, skip_bad=True))
    assert r.steps == 6 and r.bad_samples >= 1
    logged = [json.loads(x) for x in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert max(ln.get("bad_samples", 0) for ln in logged) == r.bad_samples


def test_corrupt_sample_detection_on_the_dataset(tiny_shards, tmp_path):
    shards, path, i = _corrupt_copy(tiny_shards, tmp_path)
    ds = ShardDataset(shards, "train", augment=None)
    si = ds.paths.index(path)
    with pytest.raises(BadSample, match=f"sample {i}: "):
        ds.read(si, i, None)
    ok = ds.read(si, (i + 1) % 12, None)  # its neighbours read fine
    assert ok["gt"].shape == (3, 64, 64)
    assert np.isfinite(ok["gt"].numpy()).all()
