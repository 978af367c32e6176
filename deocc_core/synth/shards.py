"""Sharded HDF5 tuples: the one on-disk format between synthesis and training.

The keys, shapes and dtypes are :mod:`deocc_core.synth.schema`; this module writes and reads
them. One file per shard, chunk = one sample (random access for shuffling readers). A shard
is written to ``<name>.partial`` and renamed only when complete.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import fields
from pathlib import Path
from typing import Any, BinaryIO

import h5py
import numpy as np

from deocc_core import __version__
from deocc_core.errors import BadSample, FormatError, InputError
from deocc_core.fileio import PARTIAL, write_error
from deocc_core.occluders.classes import OccluderClass, Region, enum_names
from deocc_core.synth.schema import (
    ENUMS,
    FIELDS,
    FORMAT_VERSION,
    IMAGE_KEYS,
    KEYS,
    MASK_KEYS,
    STR_KEYS,
    Sample,
    field_shape,
)

__all__ = [
    "ShardWriter",
    "ShardReader",
    "BadSample",
    "sample_problem",
    "READ_ERRORS",
    "file_sha256",
    "content_sha256",
    "COMPRESSION",
]

COMPRESSION: dict[str, Any] = {"compression": "lzf"}  # chosen by tools/bench/bench_synth.py
WRITE_BATCH = 16  # samples ShardWriter buffers before writing them (one slice per dataset)

# what h5py and its filters raise for damaged data (flipped bytes, truncated files)
READ_ERRORS = (OSError, ValueError, KeyError, RuntimeError, TypeError, IndexError)


def _short(e: BaseException) -> str:
    """One line of an exception: its first 100 characters."""
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    return msg[:100]


def sample_problem(arrays: dict[str, Any], n_enum: dict[str, int] | None = None) -> str | None:
    """What is wrong with one stored sample, or None: the invariants every shard keeps.

    Checks (on the keys present): ``occluded`` equals ``gt`` exactly where ``changed_mask``
    is 0 and differs wherever it is not; the object mask lies inside ``changed_mask``;
    ``face_mask`` is 0 / 255; landmarks and params are finite; enums are known values.

    Args:
        arrays: one sample's arrays keyed like the datasets (no N axis).
        n_enum: number of values of each enum key (default: the schema's enums).

    Example:
        >>> z = np.zeros((4, 4, 3), np.uint8)
        >>> sample_problem({"occluded": z + 1, "gt": z, "changed_mask": z[..., 0]})
        'occluded differs from gt outside changed_mask (16 px)'
    """
    a = arrays
    if "changed_mask" in a and "occluded" in a and "gt" in a:
        diff = (a["occluded"] != a["gt"]).any(-1)
        changed = a["changed_mask"] > 0
        if (n := int((diff & ~changed).sum())) > 0:
            return f"occluded differs from gt outside changed_mask ({n} px)"
        if (n := int((changed & ~diff).sum())) > 0:
            return f"changed_mask marks {n} px where occluded equals gt"
        if "occ_mask" in a and (n := int(((a["occ_mask"] > 0) & ~changed).sum())) > 0:
            return f"occ_mask covers {n} px outside changed_mask"
    if "face_mask" in a and not np.isin(a["face_mask"], (0, 255)).all():
        return "face_mask is not binary 0/255"
    for k in ("landmarks", "params"):
        if k in a and not np.isfinite(a[k]).all():
            return f"non-finite {k}"
    n_enum = n_enum or {k: len(e) for k, e in ENUMS.items()}
    for k, n in n_enum.items():
        if k in a and not 0 <= int(a[k]) < n:
            return f"unknown {k} value {int(a[k])}"
    return None


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes (streamed)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def content_sha256(path: str | Path) -> str:
    """sha256 of a shard's datasets and attributes.

    Not of its file bytes: HDF5 may lay out identical content differently. Equal content
    hashes = bit-identical samples.

    Raises:
        FormatError: the shard cannot be read (damaged data), naming it.
    """
    h = hashlib.sha256()
    try:
        with h5py.File(path, "r") as f:
            for k in KEYS:
                a = f[k][:]
                h.update(k.encode())
                h.update(
                    b"\0".join(x if isinstance(x, bytes) else str(x).encode() for x in a)
                    if k in STR_KEYS
                    else np.ascontiguousarray(a).tobytes()
                )
            for k in sorted(f.attrs):
                if k != "package_version":
                    h.update(f"{k}={f.attrs[k]}".encode())
    except READ_ERRORS as e:
        raise FormatError(f"{path}: unreadable ({_short(e)})") from None
    return h.hexdigest()


class ShardWriter:
    """Write one shard atomically.

    Args:
        path: final ``.h5`` path. size: image side. n_params: P. capacity: max samples.
        attrs: extra attributes (config, split, seed, ...).

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "train-00000.h5"
        >>> with ShardWriter(p, 8, 5, 4) as w:
        ...     images = [np.zeros((8, 8, 3), np.uint8)] * 3
        ...     masks = [np.zeros((8, 8), np.uint8)] * 3
        ...     lm, params = np.zeros((68, 2), np.float32), np.zeros(5, np.float32)
        ...     w.add(Sample(*images, *masks, lm, params, 1, 0, "id", "k"))
        >>> with ShardReader(p) as r:
        ...     len(r), r.sample(0).identity
        (1, 'id')
    """

    def __init__(
        self,
        path: str | Path,
        size: int,
        n_params: int,
        capacity: int,
        attrs: dict[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.tmp = self.path.with_name(self.path.name + PARTIAL)
        self.size, self.n_params, self.capacity = size, n_params, capacity
        self.attrs = attrs or {}
        self.count = 0
        self._f: h5py.File | None = None
        self._io: _GuardedFile | None = None
        self._ds: dict[str, h5py.Dataset] = {}
        self._buf: dict[str, list] = {k: [] for k in KEYS}

    def __enter__(self) -> ShardWriter:
        try:
            self.tmp.unlink(missing_ok=True)
            self._io = _GuardedFile(open(self.tmp, "w+b"))  # noqa: SIM115 (closed in __exit__)
        except OSError as e:
            raise write_error(self.tmp, e) from None
        try:
            f = self._f = h5py.File(self._io, "w", track_order=True)
            n = self.capacity
            # resizable: unwritten chunks cost nothing, and close() shrinks to the real count;
            # images and masks: compressed, one chunk per sample; the rest: small, auto-chunked
            for fl in FIELDS:
                shape = field_shape(fl, self.size, self.n_params)
                dtype = h5py.string_dtype() if fl.dtype == "str" else np.dtype(fl.dtype)
                big = fl.key in IMAGE_KEYS + MASK_KEYS
                kw = dict(COMPRESSION, chunks=(1, *shape)) if big else {"chunks": True}
                self._ds[fl.key] = f.create_dataset(
                    fl.key, (n, *shape), dtype, maxshape=(None, *shape), track_times=False, **kw
                )
        except BaseException:
            self._discard()
            raise
        self._raise_if_failed()
        return self

    def add(self, sample: Sample) -> None:
        """Append one sample (shapes checked against the shard).

        Raises:
            FormatError: the shard is full, or a field has the wrong shape.
            InputError: the disk refused a write (full, read-only, over quota): the path
                and the reason.
        """
        if self.count >= self.capacity:
            raise FormatError(f"{self.path}: shard full ({self.capacity} samples)")
        values = []
        for fl in fields(Sample):
            v = getattr(sample, fl.name)
            want = self._ds[fl.name].shape[1:]
            if fl.name not in STR_KEYS and np.shape(v) != want:
                raise FormatError(
                    f"{self.path}: sample field {fl.name} has shape {np.shape(v)}, "
                    f"shard expects {want}"
                )
            values.append((fl.name, v))
        for k, v in values:
            self._buf[k].append(v)
        self.count += 1
        if len(self._buf[KEYS[0]]) >= WRITE_BATCH:
            self._flush()

    def _flush(self) -> None:
        """Write the buffered samples: one slice per dataset (still one chunk per sample).

        Fewer, larger writes cost less in h5py per sample; the file's content is the same.
        """
        n = len(self._buf[KEYS[0]])
        if n:
            start = self.count - n
            for k, vals in self._buf.items():
                data = np.array(vals, dtype=object) if k in STR_KEYS else np.stack(vals)
                self._ds[k][start : self.count] = data
                vals.clear()
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._io is not None and self._io.error is not None:
            raise write_error(self.path, self._io.error)

    def _discard(self) -> None:
        """Close without keeping anything: the temp file is removed."""
        try:
            if self._f is not None:
                self._f.close()
        except Exception:  # noqa: BLE001 - the file is thrown away; its close may fail
            pass
        finally:
            self._f = None
            if self._io is not None:
                self._io.close()
            try:
                self.tmp.unlink(missing_ok=True)
            except OSError:
                pass

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._discard()
            return
        f = self._f
        try:
            self._flush()
            for k in KEYS:
                f[k].resize(self.count, axis=0)
            attrs = {
                "format_version": FORMAT_VERSION,
                "package_version": __version__,
                "resolution": self.size,
                "count": self.count,
                "occluder_classes": json.dumps(enum_names(OccluderClass)),
                "regions": json.dumps(enum_names(Region)),
                **self.attrs,
            }
            for k, v in attrs.items():
                f.attrs[k] = v
            f.close()
            self._f = None
            self._io.sync()
            self._raise_if_failed()
        except BaseException:
            self._discard()
            raise
        self._io.close()
        os.replace(self.tmp, self.path)
        try:  # make the rename itself durable (POSIX; not possible on Windows)
            dfd = os.open(self.path.parent, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(dfd)
        except OSError:
            pass
        finally:
            os.close(dfd)


class _GuardedFile:
    """The file HDF5 writes a shard through (h5py's ``fileobj`` driver).

    libhdf5 crashes (segfault) when the disk refuses a write and the file is then closed.
    Here a failed write is recorded instead of reported: HDF5 goes on (the rest of the
    writes are dropped), closes normally, and :class:`ShardWriter` raises the recorded
    error and removes the temp file.
    """

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.error: OSError | None = None

    def _guard(self, fn, *args, default=None):
        if self.error is not None:
            return default
        try:
            return fn(*args)
        except OSError as e:
            self.error = e
            return default

    def write(self, b) -> int:
        n = len(memoryview(b).cast("B"))
        return self._guard(self.f.write, b, default=n)

    def truncate(self, size: int | None = None) -> int:
        return self._guard(self.f.truncate, size, default=size or 0)

    def flush(self) -> None:
        self._guard(self.f.flush)

    def sync(self) -> None:
        """Flush and fsync (errors recorded like a write's)."""
        self.flush()
        self._guard(os.fsync, self.f.fileno())

    # After a failed write the buffered file still holds the bytes it could not flush, and
    # its seek retries the flush (ENOSPC again, raised into HDF5); from then on seeks and
    # reads go to the raw file (writes are dropped anyway: the file is thrown away).
    def _io(self):
        return self.f if self.error is None else self.f.raw

    def read(self, n: int = -1) -> bytes:
        return self._io().read(n)

    def readinto(self, b) -> int:
        return self._io().readinto(b)

    def seek(self, offset: int, whence: int = 0) -> int:
        try:
            return self._io().seek(offset, whence)
        except OSError as e:  # the buffered flush failed: record it, move the raw file
            self.error = self.error or e
            return self.f.raw.seek(offset, whence)

    def tell(self) -> int:
        return self._io().tell()

    def close(self) -> None:
        self._guard(self.f.close)
        if not self.f.closed:  # close failed (its flush did): release the descriptor
            # through the raw file, which then counts as closed: an os.close of the number
            # left the buffered file open, and at garbage collection it flushed its stale
            # bytes into, and closed, whatever file had reused that number since
            try:
                self.f.raw.close()
            except OSError:
                pass


class ShardReader:
    """Read a shard; validates the format version and the datasets on open.

    Raises:
        InputError: missing file.
        FormatError: not a deocc shard / wrong version / missing keys.

    Example:
        >>> ShardReader("/nonexistent/train-00000.h5")
        Traceback (most recent call last):
        ...
        deocc_core.errors.InputError: /nonexistent/train-00000.h5: shard not found
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: shard not found")
        try:
            self._f = h5py.File(self.path, "r")
        except READ_ERRORS as e:
            raise FormatError(f"{self.path}: not a readable HDF5 shard ({_short(e)})") from None
        try:
            version = self._f.attrs.get("format_version")
            missing = [k for k in KEYS if k not in self._f]
            if not missing:
                _ = self._f["occluded"].shape
        except READ_ERRORS as e:
            self._f.close()
            raise FormatError(f"{self.path}: damaged shard header ({_short(e)})") from None
        if version != FORMAT_VERSION:
            self._f.close()
            raise FormatError(
                f"{self.path}: shard format version {version}, this deocc reads {FORMAT_VERSION}"
            )
        if missing:
            self._f.close()
            raise FormatError(f"{self.path}: shard lacks datasets {', '.join(missing)}")

    def __enter__(self) -> ShardReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the HDF5 file."""
        self._f.close()

    def __len__(self) -> int:
        return int(self._f["occluded"].shape[0])

    @property
    def attrs(self) -> dict[str, Any]:
        """The shard's attributes (``schema.ATTRS``), numpy scalars as Python values."""
        return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in self._f.attrs.items()}

    @property
    def config(self) -> dict[str, Any]:
        """The build config the shard was written with."""
        try:
            return json.loads(self._f.attrs.get("config", "{}"))
        except (*READ_ERRORS, json.JSONDecodeError) as e:
            raise FormatError(
                f"{self.path}: build config attribute unreadable ({_short(e)})"
            ) from None

    @property
    def resolution(self) -> int:
        """Crop side, pixels."""
        try:
            return int(self._f.attrs["resolution"])
        except READ_ERRORS as e:
            raise FormatError(
                f"{self.path}: resolution attribute unreadable ({_short(e)})"
            ) from None

    def dataset(self, key: str) -> h5py.Dataset:
        """The open HDF5 dataset ``key`` (a schema key), for sliced reads."""
        return self._f[key]

    def sample(self, i: int, *, check: bool = False) -> Sample:
        """Read sample ``i``.

        Args:
            i: the index, ``0 <= i < len(self)``.
            check: also check the sample's invariants (:func:`sample_problem`).

        Raises:
            BadSample: the sample cannot be read (damaged data) or, with ``check``, breaks
                an invariant; the message names the shard and the index.
            IndexError: ``i`` out of range.
        """
        if not 0 <= i < len(self):
            raise IndexError(f"{self.path}: sample {i} out of range (0..{len(self) - 1})")
        f = self._f
        vals = {}
        try:
            for fl in fields(Sample):
                v = f[fl.name][i]
                if fl.name in STR_KEYS:
                    v = v.decode() if isinstance(v, bytes) else str(v)
                elif fl.name in ENUMS:
                    v = int(v)
                vals[fl.name] = v
        except READ_ERRORS as e:
            raise BadSample(f"{self.path}: sample {i}: unreadable ({_short(e)})") from None
        if check and (problem := sample_problem(vals)):
            raise BadSample(f"{self.path}: sample {i}: {problem}")
        return Sample(**vals)

    def batch(self, start: int, stop: int) -> dict[str, np.ndarray]:
        """Samples ``start:stop`` as arrays keyed like the datasets (one contiguous read each).

        Returns:
            dict: image keys [n, H, W, 3] uint8, mask keys [n, H, W] uint8, ``landmarks``
            [n, 68, 2] float32, ``params`` [n, P] float32, enums [n] uint8, string keys [n] object.

        Example:
            >>> import tempfile
            >>> p = Path(tempfile.mkdtemp()) / "train-00000.h5"
            >>> z = lambda *s: np.zeros(s, np.uint8)
            >>> with ShardWriter(p, 4, 3, 2) as w:
            ...     for i in range(2):
            ...         lm, params = np.zeros((68, 2), np.float32), np.zeros(3, np.float32)
            ...         w.add(Sample(z(4, 4, 3), z(4, 4, 3), z(4, 4, 3), z(4, 4), z(4, 4), z(4, 4),
            ...                      lm, params, 1, 2, f"id{i}", "k"))
            >>> with ShardReader(p) as r:
            ...     b = r.batch(0, 2)
            >>> b["gt"].shape, list(b["identity"])
            ((2, 4, 4, 3), ['id0', 'id1'])
        """
        f = self._f
        out = {}
        try:
            for k in KEYS:
                a = f[k][start:stop]
                out[k] = (
                    np.array([x.decode() if isinstance(x, bytes) else x for x in a], dtype=object)
                    if k in STR_KEYS
                    else a
                )
        except READ_ERRORS as e:
            raise BadSample(
                f"{self.path}: samples {start}..{stop - 1}: unreadable ({_short(e)})"
            ) from None
        return out

    def arrays(self, key: str) -> np.ndarray:
        """A whole dataset as an array (strings decoded).

        Raises:
            FormatError: the dataset cannot be read (damaged data), naming shard and key.
        """
        try:
            a = self._f[key][:]
        except READ_ERRORS as e:
            raise FormatError(f"{self.path}: {key} unreadable ({_short(e)})") from None
        return (
            np.array([x.decode() if isinstance(x, bytes) else x for x in a], dtype=object)
            if key in STR_KEYS
            else a
        )
