"""Run a console script's ``main()`` inside the test process: exit code, stdout, stderr.

For tests of a script's own contract (help, version, usage errors, one-line errors). A
child process adds only interpreter and torch start-up there (seconds each on 2 cores);
the entry points themselves (``python -m tools.<script>``) run as child processes in the
end-to-end and reliability suites.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import signal
import subprocess
import sys


def run_main(module: str, *args: object) -> subprocess.CompletedProcess[str]:
    """``tools.<module>.main()`` with ``args`` as its command line (``COLUMNS=200``).

    Restores what ``run_app`` changes in the process (argv, the SIGINT / SIGTERM handlers).
    An exception other than ``SystemExit`` propagates: the test fails with its traceback,
    as a traceback on the script's stderr would fail it.
    """
    main = importlib.import_module(f"tools.{module}").main
    argv = [module, *map(str, args)]
    out, err = io.StringIO(), io.StringIO()
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    old_argv, old_columns = sys.argv, os.environ.get("COLUMNS")
    sys.argv, os.environ["COLUMNS"] = argv, "200"
    code: int = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as e:  # run_app always ends with sys.exit
        code = e.code if isinstance(e.code, int) else int(e.code is not None)
    finally:
        sys.argv = old_argv
        if old_columns is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old_columns
        for s, h in handlers.items():
            signal.signal(s, h)
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())
