"""Stop signals: SIGINT / SIGTERM end a command with one line saying what was kept and how
to resume, exit 128 + signal; no worker outlives it, no partial file and no lock stay.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer
from _rel import REPO, _env

from deocc_core.errors import Interrupted
from deocc_core.fileio import FolderLock
from tools import _cli


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (Linux /proc)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_to_a_build_stops_its_workers_and_says_what_was_kept(tmp_path):
    out = tmp_path / "shards"
    args = ["--source", "synthetic", "--size", "32", "--n-synthetic", "40", "--per-shard", "2"]
    argv = [sys.executable, "-m", "tools.synth_occ", "build", *args, "--workers", "2"]
    p = subprocess.Popen(
        [*argv, "--out", str(out), "--seed", "3"],
        cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        workers: list[int] = []
        while len(workers) < 2 or not list(out.glob("*.h5.partial")):  # both at work
            assert p.poll() is None, p.communicate()
            assert time.monotonic() < deadline, "no shard begun after 120 s"
            time.sleep(0.1)
            workers = [k for k in _children(p.pid) if "spawn_main" in _cmdline(k)]
        p.send_signal(signal.SIGTERM)  # the parent only, as `kill PID` does
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    lines = [ln for ln in err.splitlines() if "stopped by" in ln]
    assert p.returncode == 128 + signal.SIGTERM, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert str(out) in lines[0] and "rerun the same command to resume" in lines[0], lines
    time.sleep(0.5)
    assert not [w for w in workers if _alive(w)], "a worker outlived its parent"
    assert not list(out.glob("*.partial")), sorted(out.iterdir())
    for h5 in out.glob("*.h5"):  # every shard left is finished (its sidecar written)
        assert h5.with_suffix(".json").is_file(), h5
    assert (out / ".build-rank0.lock").read_bytes() == b""  # no dead pid named
    FolderLock(out, ".build-rank0.lock", "synth-occ build").acquire().release()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@pytest.fixture()
def stop_handlers():
    """The CLI's SIGINT / SIGTERM handlers in this process (restored after)."""
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in old:
        signal.signal(s, signal.SIG_DFL if s == signal.SIGTERM else signal.default_int_handler)
    _cli._stop_on_signals()
    yield
    for s, h in old.items():
        signal.signal(s, h)


def test_sigterm_while_infer_writes_keeps_whole_images_only(
    stop_handlers, ibug_pts_image, generator_checkpoint, tmp_path, monkeypatch
):
    from deocc_core.infer import run as infer_run

    img, pts = ibug_pts_image
    src = tmp_path / "in"
    for sub in ("a", "b"):
        (src / sub).mkdir(parents=True)
        shutil.copy(img, src / sub / "face.png")
        shutil.copy(pts, src / sub / "face.pts")
    out = tmp_path / "out"
    calls = []
    real = infer_run.write_image

    def write_then_signal(path, image):  # the real write; SIGTERM arrives at the 9th
        calls.append(path)
        if len(calls) == 9:  # one image = 6 files: the second image is half written
            os.kill(os.getpid(), signal.SIGTERM)
        return real(path, image)

    monkeypatch.setattr(infer_run, "write_image", write_then_signal)
    cfg = infer_run.InferConfig(
        inputs=(str(src),),
        ckpt=str(generator_checkpoint("mask")),  # a small G: the writes are under test
        out=str(out),
        landmarks_from="pts",
        device="cpu",
    )
    with pytest.raises(Interrupted) as e:
        infer_run.run_inference(cfg)
    assert e.value.signal_name == "SIGTERM"
    assert "1 of 2 image(s)" in str(e.value) and "rerun the same command" in str(e.value)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert len(files) == 6 and all(f.startswith("a/") for f in files), files
    FolderLock(out, infer_run.LOCK_NAME, "deocc-infer").acquire().release()  # released


def test_the_cli_turns_a_stop_into_one_line_and_128_plus_signal(capsys):
    app = _cli.make_app("x", "x")

    @app.command()
    def term() -> None:
        raise Interrupted("SIGTERM").with_message("out: 3 of 5 kept; rerun to resume")

    @app.command()
    def ctrl_c() -> None:
        raise KeyboardInterrupt  # e.g. a second Ctrl-C inside a library call

    for cmd, code, said in (
        ("term", 143, "stopped by SIGTERM: out: 3 of 5 kept; rerun to resume"),
        ("ctrl-c", 130, "stopped by SIGINT"),
    ):
        with pytest.raises(SystemExit) as e:
            _cli.run_app(app, "x", [cmd])
        err = capsys.readouterr().err
        assert e.value.code == code and said in err, err
        assert len(err.strip().splitlines()) == 1, err


def test_a_wrong_choice_is_a_usage_error():
    from typer.testing import CliRunner

    from tools.deocc_infer import app

    r = CliRunner().invoke(app, [str(REPO / "README.md"), "--device", "tpu"])
    assert r.exit_code == 2 and "--device must be one of auto, cpu, cuda" in r.output, r.output
    assert isinstance(app, typer.Typer)
