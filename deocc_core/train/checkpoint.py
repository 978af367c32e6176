"""Checkpoints: one file per save, written atomically; loading checks every part."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deocc_core import __version__
from deocc_core.errors import FormatError, InputError

__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "rng_state",
    "set_rng_state",
    "CKPT_VERSION",
    "REQUIRED",
]

CKPT_VERSION = 1
REQUIRED = ("ckpt_version", "config", "G", "step", "epoch", "stage")


def rng_state() -> dict[str, Any]:
    s = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        s["cuda"] = torch.cuda.get_rng_state_all()
    return s


def set_rng_state(s: dict[str, Any]) -> None:
    random.setstate(s["python"])
    np.random.set_state(s["numpy"])
    torch.set_rng_state(s["torch"])
    if "cuda" in s and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` via a temp file + fsync + rename (never a half file)."""
    state = {"ckpt_version": CKPT_VERSION, "package_version": __version__, **state}
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and check a checkpoint.

    Raises:
        InputError: missing file. FormatError: unreadable / truncated file, wrong version or missing parts.

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "bad.pt"; _ = p.write_bytes(b"not a checkpoint")
        >>> try:
        ...     load_checkpoint(p)
        ... except FormatError as e:
        ...     "not a readable checkpoint" in str(e)
        True
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # torch raises several types for truncated / foreign files
        raise FormatError(
            f"{path}: not a readable checkpoint ({type(e).__name__}: {str(e)[:80]})"
        ) from None
    if not isinstance(state, dict):
        raise FormatError(f"{path}: not a deocc checkpoint")
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise FormatError(f"{path}: checkpoint lacks {', '.join(missing)}")
    if state["ckpt_version"] != CKPT_VERSION:
        raise FormatError(
            f"{path}: checkpoint version {state['ckpt_version']}, this deocc reads {CKPT_VERSION}"
        )
    return state
