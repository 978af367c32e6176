"""The trainer's side of a checkpoint: the per-rank RNG states (python, numpy, torch, cuda).

States are stored as tensors and plain values only, so a checkpoint loads with
``torch.load(weights_only=True)``. The file format itself (atomic save, checksum, checked
load, version) is :mod:`deocc_core.nets.checkpoint`, shared with inference.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

__all__ = ["rng_state", "set_rng_state"]


def rng_state() -> dict[str, Any]:
    """Every global RNG state this process draws from (saved per rank for an exact resume).

    Example:
        >>> s = rng_state(); a = random.random(), np.random.rand(), torch.rand(1)
        >>> set_rng_state(s); b = random.random(), np.random.rand(), torch.rand(1)
        >>> a[:2] == b[:2] and torch.equal(a[2], b[2])
        True
    """
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    s: dict[str, Any] = {
        "python": {
            "version": version,
            "state": torch.tensor(mt, dtype=torch.int64),
            "gauss": gauss,
        },  # fmt: skip
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        s["cuda"] = torch.cuda.get_rng_state_all()
    return s


def set_rng_state(s: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved (CUDA states only when a GPU is present)."""
    py = s["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    n = s["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(s["torch"])
    if "cuda" in s and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])
