"""Files written so that a failure names its path and reason and leaves nothing half-written.

Every output deocc writes besides images (``imageio.write_image``) and shards (``synth.shards``)
goes through here: text and JSON are written to a temp name beside the target and renamed
when complete; a failed write (disk full, permission denied, read-only file system) removes
the temp file and raises :class:`~deocc_core.errors.InputError` with the path and the
reason in words (``no space left on device``, ``permission denied``).

Names read from data files (a manifest's shard ``file``, a sidecar's ``split``) go through
:func:`inside` / :func:`plain_name` before they touch the file system, so a crafted file
cannot make a tool read or write outside its folder.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from deocc_core.errors import ConfigError, FormatError, InputError

__all__ = [
    "os_reason",
    "write_error",
    "atomic_file",
    "write_bytes_atomic",
    "write_text_atomic",
    "write_json_atomic",
    "link_or_copy_atomic",
    "read_json",
    "write_arrays_atomic",
    "read_arrays",
    "plain_name",
    "inside",
    "output_names",
    "FolderLock",
    "PARTIAL",
]

PARTIAL = ".partial"  # suffix of every temp file deocc writes (cleaned on rerun)

_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def os_reason(e: OSError) -> str:
    """An OS error's reason in lower-case words (``no space left on device``, ...).

    Example:
        >>> os_reason(OSError(28, "No space left on device"))
        'no space left on device'
    """
    if e.errno is not None and e.strerror is None:
        return os.strerror(e.errno).lower()
    return (e.strerror or str(e) or type(e).__name__).lower()


def write_error(path: str | Path, e: OSError, what: str = "write") -> InputError:
    """The one-line error for a failed write: ``<path>: cannot write: <reason>``.

    Example:
        >>> str(write_error("/full/a.json", OSError(errno.ENOSPC, "No space left on device")))
        '/full/a.json: cannot write: no space left on device'
    """
    return InputError(f"{path}: cannot {what}: {os_reason(e)}")


def _temp(path: Path) -> Path:
    # per process: ranks and concurrent commands may share a folder
    return path.with_name(f"{path.name}.{os.getpid()}{PARTIAL}")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_file(path: str | Path, *, durable: bool = False) -> Iterator[BinaryIO]:
    """Open a temp file beside ``path`` for binary writing; rename it to ``path`` on success.

    On any error the temp file is removed and ``path`` is left as it was; an ``OSError``
    becomes :func:`write_error`.

    Args:
        path: the final file.
        durable: fsync the file and its folder (survives a power cut).

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "a.bin"
        >>> with atomic_file(p) as f:
        ...     _ = f.write(b"abc")
        >>> p.read_bytes()
        b'abc'
    """
    path = Path(path)
    tmp = _temp(path)
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        _unlink_quietly(tmp)
        raise write_error(path, e) from None
    except BaseException:
        _unlink_quietly(tmp)
        raise
    if durable:
        _fsync_dir(path.parent)


def _unlink_quietly(p: Path) -> None:
    try:
        p.unlink(missing_ok=True)
    except OSError:
        pass


def write_bytes_atomic(path: str | Path, data: bytes, *, durable: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_file`)."""
    with atomic_file(path, durable=durable) as f:
        f.write(data)
    return Path(path)


def write_text_atomic(path: str | Path, text: str, *, durable: bool = False) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically (see :func:`atomic_file`)."""
    return write_bytes_atomic(path, text.encode(), durable=durable)


def write_json_atomic(path: str | Path, data: Any, *, durable: bool = False) -> Path:
    """Write ``data`` as sorted, indented JSON atomically (see :func:`atomic_file`)."""
    return write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True), durable=durable)


def link_or_copy_atomic(src: str | Path, dst: str | Path) -> Path:
    """Put a copy of ``src`` at ``dst``: a hard link when possible, else a copy, never half.

    The copy goes to a temp name first, so ``dst`` either does not exist or is complete.
    """
    src, dst = Path(src), Path(dst)
    tmp = _temp(dst)
    _unlink_quietly(tmp)
    try:
        try:
            os.link(src, tmp)
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
                raise
            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except OSError as e:
        _unlink_quietly(tmp)
        raise write_error(dst, e) from None
    return dst


def read_json(path: str | Path, what: str = "JSON file", *, hint: str = "") -> Any:
    """Parse a JSON file; a missing, unreadable, empty or malformed one is one line.

    Raises:
        InputError: the file is missing or unreadable.
        FormatError: empty or not valid JSON (``hint`` is appended: how to repair it).

    Example:
        >>> read_json("/nonexistent/manifest.json", "manifest")
        Traceback (most recent call last):
        ...
        deocc_core.errors.InputError: /nonexistent/manifest.json: manifest not found
    """
    path = Path(path)
    tail = f" ({hint})" if hint else ""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: {what} not found") from None
    except UnicodeDecodeError:
        raise FormatError(f"{path}: {what} is not UTF-8 text (damaged?){tail}") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read {what}: {os_reason(e)}") from None
    if not text.strip():
        raise FormatError(f"{path}: {what} is empty{tail}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise FormatError(
            f"{path}: {what} is not valid JSON (line {e.lineno}: {e.msg}){tail}"
        ) from None


def write_arrays_atomic(
    path: str | Path, arrays: dict[str, np.ndarray], *, compressed: bool = False
) -> Path:
    """Write named arrays as one ``.npz`` atomically (see :func:`atomic_file`)."""
    with atomic_file(path) as f:
        (np.savez_compressed if compressed else np.savez)(f, **arrays)
    return Path(path)


def read_arrays(path: str | Path, names: Iterable[str], what: str, hint: str = "") -> dict:
    """The arrays ``names`` of an ``.npz`` file (all read into memory).

    Raises:
        InputError: the file is missing (``hint``: how to make it).
        FormatError: not an ``.npz`` file, damaged, or without one of ``names``.
    """
    path, names = Path(path), list(names)
    tail = f" ({hint})" if hint else ""
    if not path.is_file():
        raise InputError(f"{path}: {what} not found{tail}")
    try:
        with np.load(path) as z:
            missing = [k for k in names if k not in z]
            if missing:
                raise FormatError(f"{path}: not a {what} (missing {', '.join(missing)})")
            return {k: z[k] for k in names}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise FormatError(f"{path}: not a readable {what} ({type(e).__name__})") from None


def plain_name(name: object, what: str, source: str | Path) -> str:
    """Check that a name read from a data file is a plain file name (no folder, no ``..``).

    Args:
        name: the value read.
        what: what it names (for the message), e.g. ``"shard file"``.
        source: the data file it came from.

    Raises:
        FormatError: not a string, or not a plain name (a folder separator, ``..``, an
            absolute path, a leading dot, or characters other than letters, digits, ``.``,
            ``_``, ``-``).

    Example:
        >>> plain_name("train-00000.h5", "shard file", "manifest.json")
        'train-00000.h5'
        >>> plain_name("../../etc/passwd", "shard file", "m.json")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        deocc_core.errors.FormatError: m.json: shard file '../../etc/passwd' is not a plain ...
    """
    if not isinstance(name, str) or not _PLAIN.fullmatch(name) or ".." in name:
        raise FormatError(f"{source}: {what} {name!r} is not a plain file name in the folder")
    return name


def inside(folder: str | Path, name: object, what: str, source: str | Path) -> Path:
    """``folder / name`` for a name read from a data file (see :func:`plain_name`).

    Raises:
        FormatError: ``name`` is not a plain file name.
    """
    return Path(folder) / plain_name(name, what, source)


def output_names(
    inputs: list[str | Path] | tuple[str, ...], keep: Callable[[Path], bool] | None = None
) -> list[tuple[Path, str]]:
    """Each input file with an output name that no other input shares.

    A folder's files (recursive, sorted) are named by their path inside it without the
    suffix, prefixed with the folder's name when several inputs are given; files given
    directly by their path below the folder they share. So ``a/face.jpg`` and
    ``b/face.jpg`` become ``a/face`` and ``b/face`` (outputs never overwrite each other). A
    file listed twice is kept once; names that still collide (``face.jpg`` beside
    ``face.png``) get ``_2``, ``_3``, ...

    Args:
        inputs: files and folders.
        keep: which files found in folders to keep (default: all).

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> for name in ("a/face.jpg", "b/face.jpg", "b/face.png"):
        ...     (d / name).parent.mkdir(exist_ok=True); _ = (d / name).write_bytes(b"")
        >>> [n for _, n in output_names([d / "a/face.jpg", d / "b/face.jpg", d / "b"])]
        ['a/face', 'b/face', 'b/face_2']
    """
    paths = [Path(s) for s in inputs]
    files = [p for p in paths if not p.is_dir()]
    common = Path(os.path.commonpath([str(p.resolve().parent) for p in files])) if files else None
    found: list[tuple[Path, str]] = []
    for p in paths:
        if p.is_dir():
            prefix = f"{p.resolve().name}/" if len(paths) > 1 else ""
            found += [
                (q, prefix + q.relative_to(p).with_suffix("").as_posix())
                for q in sorted(p.rglob("*"))
                if q.is_file() and (keep is None or keep(q))
            ]
        else:
            found.append((p, p.resolve().relative_to(common).with_suffix("").as_posix()))
    seen: set[Path] = set()
    used: set[str] = set()
    plan = []
    for path, base in found:
        real = path.resolve()
        if real in seen:
            continue
        seen.add(real)
        name, k = base, 2
        while name.lower() in used:  # case-insensitive file systems too
            name, k = f"{base}_{k}", k + 1
        used.add(name.lower())
        plan.append((path, name))
    return plan


class FolderLock:
    """An exclusive ``flock`` on ``<folder>/<name>`` while one command writes the folder.

    The kernel releases it when the process ends (even killed), so no stale lock survives a
    crash. A second holder gets a :class:`~deocc_core.errors.ConfigError` naming the folder,
    the command and the pid holding it. Without POSIX file locks, nothing is locked.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> with FolderLock(d, ".lock", "synth-occ build"):
        ...     try:
        ...         FolderLock(d, ".lock", "synth-occ build").acquire()
        ...     except ConfigError as e:
        ...         "another synth-occ build" in str(e)
        True
    """

    def __init__(self, folder: str | Path, name: str, command: str) -> None:
        self.path = Path(folder) / name
        self.command = command
        self._f: BinaryIO | None = None

    def acquire(self) -> FolderLock:
        """Take the lock, or raise ConfigError if another process holds it."""
        try:
            import fcntl
        except ImportError:  # not POSIX
            return self
        try:
            f = open(self.path, "a+b")  # noqa: SIM115 (held until release)
        except OSError as e:
            raise write_error(self.path, e) from None
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().decode(errors="replace").strip() or "?"
            f.close()
            raise ConfigError(
                f"{self.path.parent}: another {self.command} (pid {holder}) is writing here; "
                "wait for it or use another --out"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()).encode())
        f.flush()
        self._f = f
        return self

    def release(self) -> None:
        """Drop the lock (the file stays, emptied: it is only a name to lock)."""
        if self._f is not None:
            try:  # no dead pid left in it
                self._f.truncate(0)
            except OSError:
                pass
            self._f.close()
            self._f = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
