"""Run-level guards: one trainer per run folder, and SIGINT / SIGTERM as a stop request.

The trainer honours a stop request at the next step boundary, so the checkpoint it saves
resumes exactly.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from deocc_core.fileio import FolderLock

__all__ = ["RunLock", "StopSignals", "LOCK_NAME"]

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"


class RunLock(FolderLock):
    """The :class:`~deocc_core.fileio.FolderLock` on ``<run>/.lock`` while a trainer writes.

    The run folder is created if needed; ``enabled=False`` (DDP ranks > 0) locks nothing.

    Example:
        >>> import tempfile
        >>> from deocc_core.errors import ConfigError
        >>> d = Path(tempfile.mkdtemp())
        >>> with RunLock(d):
        ...     try:
        ...         RunLock(d).acquire()
        ...     except ConfigError as e:
        ...         "another deocc-train" in str(e)
        True
    """

    def __init__(self, run_dir: str | Path, enabled: bool = True) -> None:
        super().__init__(run_dir, LOCK_NAME, "deocc-train")
        self.enabled = enabled

    def acquire(self) -> RunLock:
        """Take the lock (creating the run folder), or raise ConfigError if it is held."""
        if self.enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            super().acquire()
        return self


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
