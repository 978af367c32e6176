"""The checkpoint file format: one file per save, written atomically; loading checks every part.

The trainer writes checkpoints (``deocc_core.train``); inference and evaluation read the
generator back (:func:`deocc_core.nets.io.load_generator`). Both go through this module, so
the format (its version, required parts and file names) is defined once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from deocc_core import __version__
from deocc_core.errors import FormatError, InputError

__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "find_checkpoint",
    "CKPT_VERSION",
    "REQUIRED",
    "LATEST",
    "BEST",
    "CHECKPOINT_DIR",
]

CKPT_VERSION = 1
REQUIRED = ("ckpt_version", "config", "G", "step", "epoch", "stage")
CHECKPOINT_DIR = "checkpoints"  # inside a run folder
LATEST = "latest.pt"
BEST = "best.pt"


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` via a temp file + fsync + rename (never a half file).

    The format version and the package version are added to ``state``.
    """
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
        InputError: missing file.
        FormatError: unreadable / truncated file, wrong version or missing parts.

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


def find_checkpoint(path: str | Path) -> Path:
    """A checkpoint file as given, or in a run folder ``best.pt``, else ``latest.pt``.

    Looks in ``<run>/checkpoints/`` first, then in the folder itself; when a folder holds
    none, ``<run>/checkpoints/latest.pt`` is returned (loading it names the missing file).

    Example:
        >>> import tempfile
        >>> run = Path(tempfile.mkdtemp())
        >>> find_checkpoint(run) == run / "checkpoints" / "latest.pt"
        True
    """
    p = Path(path)
    if not p.is_dir():
        return p
    candidates = [
        p / CHECKPOINT_DIR / BEST,
        p / CHECKPOINT_DIR / LATEST,
        p / BEST,
        p / LATEST,
    ]
    return next((c for c in candidates if c.is_file()), candidates[1])
