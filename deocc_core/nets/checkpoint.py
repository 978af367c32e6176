r"""The checkpoint file format: one file per save, written once and atomically; loading checks it.

The trainer writes checkpoints (``deocc_core.train``); inference and evaluation read the
generator back (:func:`deocc_core.nets.io.load_generator`). Both go through this module, so
the format (its version, required parts, checksum and file names) is defined once.

A file is ``torch.save``'s zip archive followed by an 80-byte footer,
``b"\n#deocc-sha256:" + sha256(archive).hex() + b"\n"``. The hash is computed while
``torch.save`` streams the archive to disk (no second copy of the state in memory) and
checked on load before anything is unpickled. ``torch.load`` ignores the footer, so a
checkpoint still opens with plain ``torch.load(path, weights_only=True)``. Loading uses
``weights_only=True``: a file that holds anything but tensors and plain Python values (a
crafted pickle that would run code) is refused, never executed.

Version 1 files (no footer) still load; their bytes are unchecked.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import re
import shutil
from pathlib import Path
from typing import IO, Any

import torch

from deocc_core import __version__
from deocc_core.errors import FormatError, InputError
from deocc_core.fileio import write_error

__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "find_checkpoint",
    "link_checkpoint",
    "verify_checkpoint",
    "CKPT_VERSION",
    "REQUIRED",
    "LATEST",
    "BEST",
    "CHECKPOINT_DIR",
]

log = logging.getLogger(__name__)

CKPT_VERSION = 2  # 2: sha256 footer, weights-only contents (RNG states as tensors)
READABLE_VERSIONS = (1, 2)
REQUIRED = ("ckpt_version", "config", "G", "step", "epoch", "stage")
CHECKPOINT_DIR = "checkpoints"  # inside a run folder
LATEST = "latest.pt"
BEST = "best.pt"
_MAGIC = b"\n#deocc-sha256:"
_FOOTER_LEN = len(_MAGIC) + 64 + 1
_CHUNK = 1 << 22


class _HashingWriter:
    """A write-only file wrapper that hashes what passes through it (torch.save streams here)."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.sha = hashlib.sha256()
        self.error: OSError | None = None  # torch.save reports it as a RuntimeError

    def write(self, b: bytes) -> int:
        self.sha.update(b)
        try:
            return self.f.write(b)
        except OSError as e:
            self.error = e
            raise

    def flush(self) -> None:
        self.f.flush()


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path``: temp file, hash while writing, footer, fsync, rename.

    The format version and the package version are added to ``state``. The state is
    serialised once, straight to the file (tensors on a GPU are copied to the host by
    ``torch.save`` as it writes them); nothing else copies it.
    """
    path = Path(path)
    state = {"ckpt_version": CKPT_VERSION, "package_version": __version__, **state}
    tmp = path.with_name(path.name + ".partial")
    w = None
    try:
        with open(tmp, "wb") as f:
            w = _HashingWriter(f)
            torch.save(state, w)
            f.write(_MAGIC + w.sha.hexdigest().encode() + b"\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        _unlink_quietly(tmp)
        failed = w.error if w is not None and w.error is not None else e
        if isinstance(failed, OSError):  # disk full, ...: one line, not torch's two tracebacks
            raise write_error(path, failed) from None
        raise
    return path


def _unlink_quietly(p: Path) -> None:
    try:
        p.unlink(missing_ok=True)
    except OSError:
        pass


def link_checkpoint(src: Path, dst: Path) -> None:
    """Make ``dst`` name the same file as ``src`` (a hard link, swapped in atomically).

    A hard link costs no bytes and no copy, ``dst`` stays an ordinary file that every tool
    opens, and removing ``src`` later (pruning old steps) leaves ``dst`` intact. Where the
    file system has no hard links, ``dst`` becomes a copy (also swapped in atomically).
    """
    tmp = dst.with_name(dst.name + ".partial")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        log.debug("%s: no hard links here, copying", dst.parent)
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def verify_checkpoint(path: str | Path) -> bool:
    """Check a checkpoint's sha256 footer against its bytes (read in chunks).

    Returns:
        True if the file carries a footer and it matches; False if it has none (version 1).

    Raises:
        FormatError: the bytes do not match the footer (the file was damaged).
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        if size < _FOOTER_LEN:
            return False
        f.seek(size - _FOOTER_LEN)
        footer = f.read(_FOOTER_LEN)
        if not footer.startswith(_MAGIC) or not footer.endswith(b"\n"):
            return False
        want = footer[len(_MAGIC) : -1].decode("ascii", "replace")
        f.seek(0)
        sha, left = hashlib.sha256(), size - _FOOTER_LEN
        while left:
            chunk = f.read(min(_CHUNK, left))
            if not chunk:
                break
            sha.update(chunk)
            left -= len(chunk)
    if sha.hexdigest() != want:
        raise FormatError(f"{path}: checksum mismatch, the file is damaged (sha256 footer)")
    return True


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and check a checkpoint (checksum, then ``torch.load(weights_only=True)``).

    Raises:
        InputError: missing file.
        FormatError: damaged bytes (checksum), unreadable / truncated file, contents other
            than tensors and plain values, wrong version or missing parts.

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
    checked = verify_checkpoint(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises several types for truncated / foreign files
        raise _load_error(path, e) from None
    if not isinstance(state, dict):
        raise FormatError(f"{path}: not a deocc checkpoint")
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise FormatError(f"{path}: checkpoint lacks {', '.join(missing)}")
    if state["ckpt_version"] not in READABLE_VERSIONS:
        raise FormatError(
            f"{path}: checkpoint version {state['ckpt_version']}, this deocc reads "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
        )
    if state["ckpt_version"] >= 2 and not checked:
        raise FormatError(f"{path}: checksum footer missing or damaged")
    return state


def _load_error(path: Path, e: Exception) -> FormatError:
    """One line for what ``torch.load(weights_only=True)`` raised."""
    text = str(e)
    hit = re.search(r"GLOBAL (\S+) was not an allowed global", text)
    if isinstance(e, pickle.UnpicklingError) and hit:
        return FormatError(
            f"{path}: refused, not loaded: it would import {hit.group(1)} (a checkpoint holds "
            "only tensors and plain values; a pickle that imports code can run it)"
        )
    hit = re.search(r"WeightsUnpickler error: \s*(.+)", text)
    msg = hit.group(1) if hit else (text.splitlines()[0] if text else "")
    return FormatError(f"{path}: not a readable checkpoint ({type(e).__name__}: {msg[:80]})")


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
