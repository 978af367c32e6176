"""The four console scripts chained as a user runs them, and their one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from _inproc import run_main

ROOT = Path(__file__).resolve().parents[1]


def run(tool: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", f"tools.{tool}", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_build_train_eval_infer(tmp_path):
    shards, run_dir, ev, inf, photos = (
        tmp_path / n for n in ("shards", "run", "eval", "infer", "photos")
    )
    r = run(
        "synth_occ",
        "build",
        "--source",
        "synthetic",
        "--out",
        str(shards),
        "--size",
        "64",
        "--n-synthetic",
        "40",
        "--per-shard",
        "16",
        "--workers",
        "1",
        "--test-fraction",
        "0.3",
    )
    assert r.returncode == 0, r.stderr
    assert run("synth_occ", "verify", str(shards)).returncode == 0
    r = run(
        "deocc_train",
        "--shards",
        str(shards),
        "--out",
        str(run_dir),
        "--max-steps",
        "4",
        "--ngf",
        "8",
        "--ndf",
        "8",
        "--workers",
        "0",
        "--val-fraction",
        "0.2",
    )
    assert r.returncode == 0, r.stderr
    r = run(
        "deocc_eval",
        "--shards",
        str(shards),
        "--ckpt",
        str(run_dir),
        "--out",
        str(ev),
        "--baselines",
        "input,telea,ns",
    )
    assert r.returncode == 0, r.stderr
    assert (ev / "report.html").is_file() and "telea" in (ev / "results.md").read_text()
    assert (
        run(
            "synth_occ", "inspect", str(shards), "--export-occluded", str(photos), "--n", "2"
        ).returncode
        == 0
    )
    r = run(
        "deocc_infer",
        str(photos),
        "--ckpt",
        str(run_dir),
        "--out",
        str(inf),
        "--landmarks-from",
        "pts",
        "--mesh",
        "--side-by-side",
    )
    assert r.returncode == 0, r.stderr
    assert len(list(inf.glob("*_deoccluded.png"))) == 2 and len(list(inf.glob("*.obj"))) == 2


def test_user_mistakes_are_one_line_errors(tmp_path):
    # in this process (_inproc.py): four child processes only added start-up here
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run_main("deocc_train", "--shards", str(empty), "--out", str(tmp_path / "run"))
    assert r.returncode == 1 and "manifest.json" in r.stderr and "Traceback" not in r.stderr
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    img = tmp_path / "x.png"
    img.write_bytes(b"")
    r = run_main("deocc_infer", str(img), "--ckpt", str(bad), "--out", str(tmp_path / "o"))
    assert r.returncode == 1 and "bad.pt" in r.stderr and "Traceback" not in r.stderr
    r = run_main("synth_occ", "build", "--source", "folder", "--out", str(tmp_path / "s"))
    assert r.returncode == 2 and "--root" in r.stderr
    r = run_main("synth_occ", "model", "info", str(tmp_path / "missing.npz"))
    assert r.returncode == 1 and "missing.npz" in r.stderr
