"""Run-level guards: one trainer per run folder, and SIGINT / SIGTERM as a stop request.

The trainer honours a stop request at the next step boundary, so the checkpoint it saves
resumes exactly.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import IO, Any

from deocc_core.errors import ConfigError

__all__ = ["RunLock", "StopSignals", "LOCK_NAME"]

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"


class RunLock:
    """An exclusive ``flock`` on ``<run>/.lock`` while a trainer writes the run folder.

    The kernel releases it when the process ends (even killed), so no stale lock survives a
    crash. A second trainer into the same folder gets a :class:`ConfigError` naming the
    folder and the pid that holds it.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> with RunLock(d):
        ...     try:
        ...         RunLock(d).acquire()
        ...     except ConfigError as e:
        ...         "another deocc-train" in str(e)
        True
    """

    def __init__(self, run_dir: str | Path, enabled: bool = True) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self.enabled = enabled
        self._f: IO[str] | None = None

    def acquire(self) -> RunLock:
        """Take the lock (creating the run folder), or raise ConfigError if it is held."""
        if not self.enabled:
            return self
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            log.warning("%s: file locks unavailable here; not locking the run", self.path)
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "?"
            f.close()
            raise ConfigError(
                f"{self.path.parent}: another deocc-train (pid {holder}) is using this run "
                "folder; wait for it or use another --out"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        self._f = f
        return self

    def release(self) -> None:
        """Drop the lock (the file stays; it is only a name to lock)."""
        if self._f is not None:
            self._f.close()
            self._f = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


class StopSignals:
    """While active, SIGINT and SIGTERM set :attr:`signum` instead of stopping the process.

    The trainer checks :attr:`requested` between steps, saves an exact checkpoint and
    returns. A second SIGINT raises KeyboardInterrupt at once (nothing more is saved).
    Handlers are only installed from the main thread; the previous ones come back on exit.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        """A stop signal arrived."""
        return self.signum is not None

    @property
    def name(self) -> str:
        """``"SIGINT"`` / ``"SIGTERM"`` (empty when none arrived)."""
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum
        log.warning("%s: stopping after this step", signal.Signals(signum).name)

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)
        self._old.clear()
