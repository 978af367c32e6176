"""Shared helpers for the benchmarks: timing, machine load, paths to the shared data."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("DEOCC_SHARED_DATA", ROOT.parent / "shared" / "data"))


def timeit_ms(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> dict[str, float]:
    """Median / min ms per call over ``repeat`` calls after ``warmup`` (JIT) calls."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1e3)
    ts.sort()
    return {"median_ms": round(ts[len(ts) // 2], 3), "min_ms": round(ts[0], 3)}


def load_average() -> float:
    """1-minute load average of the machine (runnable processes; 2 = both cores busy)."""
    return round(os.getloadavg()[0], 2)
