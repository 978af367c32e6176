"""Per-stage CPU time of the sample path: where a build's time goes.

The per-sample code marks its stages (``with stage("fit"): ...``); time is charged to the
innermost open stage only (a nested stage pauses its parent), so the stages of a process
add up to the time spent inside any of them. Times are the process's CPU seconds
(``time.process_time``, so the helper threads of a library, e.g. MediaPipe's graph, count
with the stage that called it): other processes on a loaded machine barely change them,
unlike wall time. Each mark costs about a microsecond; the build always records them and reports
the sum over its workers (``BuildResult.stage_seconds``, ``tools/bench/bench_synth.py``).

Example:
    >>> with collect() as t:
    ...     with stage("outer"):
    ...         with stage("inner"):
    ...             _ = sum(range(1000))
    >>> sorted(t)
    ['inner', 'outer']
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["stage", "collect", "StageTimer"]

_clock = time.process_time


class StageTimer:
    """Exclusive CPU seconds per stage name (``seconds``) and the calls (``calls``)."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self._stack: list[str] = []
        self._t = 0.0

    def enter(self, name: str) -> None:
        """Open stage ``name`` (the open one, if any, stops being charged)."""
        now = _clock()
        if self._stack:
            self.seconds[self._stack[-1]] += now - self._t
        self._stack.append(name)
        self.calls[name] += 1
        self._t = now

    def exit(self) -> None:
        """Close the innermost stage (its parent is charged again)."""
        now = _clock()
        self.seconds[self._stack.pop()] += now - self._t
        self._t = now


_TIMERS: list[StageTimer] = []


class stage:  # noqa: N801 - used like a function: ``with stage("fit"):``
    """Charge the enclosed block's CPU time to stage ``name`` (no-op outside :func:`collect`)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> None:
        if _TIMERS:
            _TIMERS[-1].enter(self.name)

    def __exit__(self, *exc: object) -> None:
        if _TIMERS:
            _TIMERS[-1].exit()


@contextmanager
def collect() -> Iterator[Counter[str]]:
    """Record the stages run inside the block; yields stage name → CPU seconds.

    The yielded counter is filled in as stages close (complete when the block ends).
    """
    timer = StageTimer()
    _TIMERS.append(timer)
    try:
        yield timer.seconds
    finally:
        _TIMERS.remove(timer)
