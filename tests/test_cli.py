"""The four console scripts: help, version, and the error contract (one line, no traceback)."""

from __future__ import annotations

import pytest
from _inproc import run_main

from deocc_core import __version__

SCRIPTS = ["synth_occ", "deocc_train", "deocc_infer", "deocc_eval"]
# in this process: a child per call only added start-up (~8 s a test on the shared 2 cores);
# the scripts run as child processes in test_end_to_end and tests/reliability
_run = run_main


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


def test_batch_exit_rule(capsys) -> None:
    """Nothing made exits 1 (after the table); a partial success exits 0 and says so."""
    from deocc_core.errors import DeoccError
    from tools._cli import batch_exit

    with pytest.raises(DeoccError, match="nothing written: all 3 photo"):
        batch_exit(0, 3, False, "photo(s)")
    with pytest.raises(DeoccError, match="nothing written"):
        batch_exit(0, 0, False)
    batch_exit(2, 1, False)  # partial: returns (exit 0) and prints the count
    assert "partial: 1 input(s) skipped" in capsys.readouterr().out
    with pytest.raises(DeoccError, match=r"1 input\(s\) skipped \(--strict\)"):
        batch_exit(2, 1, True)
    batch_exit(2, 0, True)  # nothing skipped: exit 0, nothing printed
    assert capsys.readouterr().out == ""
