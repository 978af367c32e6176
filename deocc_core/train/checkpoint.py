"""The trainer's side of a checkpoint: the per-rank RNG states (python, numpy, torch, cuda).

The file format itself (atomic save, checked load, version) is
:mod:`deocc_core.nets.checkpoint`, shared with inference.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

__all__ = ["rng_state", "set_rng_state"]


def rng_state() -> dict[str, Any]:
    """Every global RNG state this process draws from (saved per rank for an exact resume)."""
    s = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        s["cuda"] = torch.cuda.get_rng_state_all()
    return s


def set_rng_state(s: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved (CUDA states only when a GPU is present)."""
    random.setstate(s["python"])
    np.random.set_state(s["numpy"])
    torch.set_rng_state(s["torch"])
    if "cuda" in s and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])
