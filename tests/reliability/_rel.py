"""Reliability suite helpers: run a CLI as a user would, on real files, and judge it.

Every case runs the console script in a child process (``python -m tools.<script>``) and
checks the error contract: the exit code, no traceback, and one line naming the file and
the problem. Disk-full cases run the child on a tiny tmpfs (a private mount namespace via
``unshare``) or, where that is not allowed, under ``RLIMIT_FSIZE``; permission cases run it
as an unprivileged user when the suite runs as root (root ignores file modes).
"""

from __future__ import annotations

import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 180  # a hang fails the test instead of the suite


# log lines of native libraries (absl / glog format, TFLite's INFO lines), not the CLI's
_NATIVE_LOG = re.compile(
    r"^([IWEF]\d{4} \d\d:\d\d:\d\d|INFO: |WARNING: All log messages before absl)"
)


@dataclass
class Result:
    """What a CLI run did."""

    code: int
    stdout: str
    stderr: str
    args: list[str]

    @property
    def lines(self) -> list[str]:
        """Non-empty stderr lines, less native libraries' log lines (MediaPipe / TFLite's
        absl logging: ``W0000 00:00:...``, ``INFO: Created TensorFlow Lite ...``).
        """
        return [ln for ln in self.stderr.splitlines() if ln.strip() and not _NATIVE_LOG.match(ln)]

    def one_line(self, code: int, *needles: str) -> str:
        """Assert: exit ``code``, no traceback, one stderr line holding every needle."""
        assert self.code == code, f"exit {self.code}, wanted {code}\n{self}"
        assert "Traceback" not in self.stderr + self.stdout, str(self)
        errors = [ln for ln in self.lines if ":" in ln and not ln.startswith("[")]
        assert len(errors) >= 1, str(self)
        line = errors[-1]
        for n in needles:
            assert n.lower() in line.lower(), f"{n!r} not in {line!r}\n{self}"
        return line

    def __str__(self) -> str:
        return (
            f"$ {shlex.join(self.args)}\nexit {self.code}\n"
            f"--- stdout\n{self.stdout[-3000:]}\n--- stderr\n{self.stderr[-3000:]}"
        )


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="250", PYTHONFAULTHANDLER="1")
    env.update(extra or {})
    return env


def cli(script: str, *args: object, prefix: list[str] | None = None, **kw) -> Result:
    """Run ``tools.<script>`` with ``args`` in a child process (``prefix``: e.g. unshare)."""
    argv = [*(prefix or []), sys.executable, "-m", f"tools.{script}", *map(str, args)]
    env = _env(kw.pop("env", None))
    r = subprocess.run(
        argv, capture_output=True, text=True, timeout=TIMEOUT, cwd=REPO, env=env, **kw
    )
    return Result(r.returncode, r.stdout, r.stderr, argv)


def synth(*args: object, **kw) -> Result:
    """``synth-occ ARGS``."""
    return cli("synth_occ", *args, **kw)


# --- real files ---------------------------------------------------------------------------


def write_png(path: Path, h: int, w: int, value: int = 128) -> Path:
    """A real PNG of ``h x w`` pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((h, w, 3), value, np.uint8))
    return path


def flip_bytes(path: Path, at: float = 0.5, n: int = 2000) -> None:
    """Invert ``n`` bytes of a file in the middle (``at`` = fraction of the size)."""
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.seek(int(size * at))
        b = f.read(n)
        f.seek(int(size * at))
        f.write(bytes(x ^ 0xFF for x in b))


def flip_chunk(path: Path, key: str = "occluded", index: int = 1, n: int = 64) -> None:
    """Invert ``n`` bytes in the middle of sample ``index``'s compressed chunk of ``key``."""
    import h5py

    with h5py.File(path, "r") as f:
        info = f[key].id.get_chunk_info(index)
    start = info.byte_offset + info.size // 2 - n // 2
    with open(path, "r+b") as f:
        f.seek(start)
        b = f.read(n)
        f.seek(start)
        f.write(bytes(x ^ 0xFF for x in b))


def partial_files(folder: Path) -> list[str]:
    """Temp files deocc leaves only when something went wrong."""
    return sorted(p.name for p in Path(folder).rglob("*.partial"))


# --- disk full / permission denied --------------------------------------------------------


def _can_unshare(*flags: str) -> bool:
    if shutil.which("unshare") is None:
        return False
    try:
        r = subprocess.run(["unshare", *flags, "true"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


@dataclass
class FullDisk:
    """CLI runs whose output folder first had only a few KiB free."""

    results: list[Result]  # the run on the small disk, then the reruns on a large one
    files: dict[str, int]  # what the first run left on the small disk: relative path -> size
    reason: str  # the reason the OS gives ("no space left on device" or "file too large")

    @property
    def result(self) -> Result:
        """The run on the small disk."""
        return self.results[0]


def run_on_full_disk(
    tmpfs: bool, mount: Path, kb: int, *commands: list[object], setup: str = ""
) -> FullDisk:
    """Run CLI ``commands`` (``[script, *args]``) with ``mount`` a folder of ``kb`` KiB.

    The first command runs on the small disk; the others after the disk was made large
    (the rerun once space is freed). With a tmpfs (``tmpfs``) the folder is a private
    mount: writes fail with ENOSPC. Otherwise the first command runs under
    ``RLIMIT_FSIZE`` = ``kb`` KiB: a write past it fails with EFBIG (Python ignores
    SIGXFSZ). ``setup`` is shell run first (e.g. copying inputs into the mount).
    """
    mount.mkdir(parents=True, exist_ok=True)
    logs = Path(tempfile.mkdtemp(prefix="deocc-disk-"))
    argvs = [[sys.executable, "-m", f"tools.{c[0]}", *map(str, c[1:])] for c in commands]
    if tmpfs:
        lines = [f"mount -t tmpfs -o size={kb}k none {shlex.quote(str(mount))} || exit 99"]
        lines += [setup] if setup else []
        for i, argv in enumerate(argvs):
            if i == 1:
                lines.append(f"mount -o remount,size=64m {shlex.quote(str(mount))}")
            lines.append(
                f"{shlex.join(argv)} >{logs}/{i}.out 2>{logs}/{i}.err; echo $? >{logs}/{i}.rc"
            )
            if i == 0:
                lines.append(
                    f"find {shlex.quote(str(mount))} -type f -printf '%s %P\\n' >{logs}/files"
                )
        p = subprocess.run(
            ["unshare", "-Urm", "sh", "-c", "\n".join(lines)],
            capture_output=True, text=True, timeout=TIMEOUT * len(argvs), cwd=REPO, env=_env(),
        )  # fmt: skip
        assert p.returncode != 99, f"tmpfs mount failed: {p.stderr}"
        results = [
            Result(
                int((logs / f"{i}.rc").read_text()),
                (logs / f"{i}.out").read_text(),
                (logs / f"{i}.err").read_text(),
                argv,
            )
            for i, argv in enumerate(argvs)
        ]
        files = {}
        for ln in (logs / "files").read_text().splitlines():
            size, name = ln.split(" ", 1)
            files[name] = int(size)
        shutil.rmtree(logs, ignore_errors=True)
        return FullDisk(results, files, "no space left on device")
    if setup:
        subprocess.run(["sh", "-c", setup], check=True, cwd=REPO)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (kb * 1024, resource.RLIM_INFINITY))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    results = [cli(str(commands[0][0]), *commands[0][1:], preexec_fn=limit)]
    files = {str(p.relative_to(mount)): p.stat().st_size for p in mount.rglob("*") if p.is_file()}
    results += [cli(str(c[0]), *c[1:]) for c in commands[1:]]
    shutil.rmtree(logs, ignore_errors=True)
    return FullDisk(results, files, "file too large")


def disk_full_reason(line: str, full: FullDisk) -> None:
    """The line names the disk's reason (tmpfs: no space left; RLIMIT_FSIZE: file too large)."""
    assert re.search(full.reason, line, re.I), f"{full.reason!r} not in {line!r}"


# --- a small real dataset ----------------------------------------------------------------


BUILD_ARGS = (
    "--source",
    "synthetic",
    "--size",
    "32",
    "--n-synthetic",
    "8",
    "--per-shard",
    "2",
    "--test-count",
    "2",
    "--seed",
    "3",
)
