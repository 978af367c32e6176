"""The four console scripts: help, version, and the error contract (one line, no traceback)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from deocc_core import __version__

SCRIPTS = ["synth_occ", "deocc_train", "deocc_infer", "deocc_eval"]


def _run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", f"tools.{module}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, COLUMNS="200"),
    )


@pytest.mark.parametrize("module", SCRIPTS)
def test_help_and_version(module: str) -> None:
    r = _run(module, "--help")
    assert r.returncode == 0, r.stderr
    assert "Usage" in r.stdout and "--version" in r.stdout
    r = _run(module, "--version")
    assert r.returncode == 0 and r.stdout.strip() == f"deocc {__version__}"


@pytest.mark.parametrize("module", SCRIPTS)
def test_unknown_option_is_one_line_exit_2(module: str) -> None:
    r = _run(module, "--no-such-option")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--no-such-option" in lines[0], r.stderr
