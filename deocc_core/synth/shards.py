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
from typing import Any

import h5py
import numpy as np

from deocc_core import __version__
from deocc_core.errors import FormatError, InputError
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
    "file_sha256",
    "content_sha256",
    "COMPRESSION",
]

COMPRESSION: dict[str, Any] = {"compression": "lzf"}  # chosen by tools/bench/bench_synth.py


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
    """
    h = hashlib.sha256()
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
        self.tmp = self.path.with_name(self.path.name + ".partial")
        self.size, self.n_params, self.capacity = size, n_params, capacity
        self.attrs = attrs or {}
        self.count = 0
        self._f: h5py.File | None = None

    def __enter__(self) -> ShardWriter:
        self.tmp.unlink(missing_ok=True)
        f = self._f = h5py.File(self.tmp, "w", track_order=True)
        n = self.capacity
        # resizable: unwritten chunks cost nothing, and close() shrinks to the real count;
        # images and masks: compressed, one chunk per sample; the rest: small, auto-chunked
        for fl in FIELDS:
            shape = field_shape(fl, self.size, self.n_params)
            dtype = h5py.string_dtype() if fl.dtype == "str" else np.dtype(fl.dtype)
            big = fl.key in IMAGE_KEYS + MASK_KEYS
            kw = dict(COMPRESSION, chunks=(1, *shape)) if big else {"chunks": True}
            f.create_dataset(
                fl.key, (n, *shape), dtype, maxshape=(None, *shape), track_times=False, **kw
            )
        return self

    def add(self, sample: Sample) -> None:
        """Append one sample (shapes checked against the shard)."""
        f = self._f
        if self.count >= self.capacity:
            raise FormatError(f"{self.path}: shard full ({self.capacity} samples)")
        i = self.count
        for fl in fields(Sample):
            v = getattr(sample, fl.name)
            ds = f[fl.name]
            if fl.name not in STR_KEYS and np.shape(v) != ds.shape[1:]:
                raise FormatError(
                    f"{self.path}: sample field {fl.name} has shape {np.shape(v)}, "
                    f"shard expects {ds.shape[1:]}"
                )
            ds[i] = v
        self.count += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        f = self._f
        if exc_type is not None:
            f.close()
            self.tmp.unlink(missing_ok=True)
            return
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
        with open(self.tmp, "rb") as fh:
            os.fsync(fh.fileno())
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
        except OSError as e:
            raise FormatError(f"{self.path}: not a readable HDF5 shard ({e})") from None
        version = self._f.attrs.get("format_version")
        if version != FORMAT_VERSION:
            self._f.close()
            raise FormatError(
                f"{self.path}: shard format version {version}, this deocc reads {FORMAT_VERSION}"
            )
        missing = [k for k in KEYS if k not in self._f]
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
        return json.loads(self._f.attrs.get("config", "{}"))

    @property
    def resolution(self) -> int:
        """Crop side, pixels."""
        return int(self._f.attrs["resolution"])

    def dataset(self, key: str) -> h5py.Dataset:
        """The open HDF5 dataset ``key`` (a schema key), for sliced reads."""
        return self._f[key]

    def sample(self, i: int) -> Sample:
        """Read sample ``i``."""
        f = self._f
        vals = {}
        for fl in fields(Sample):
            v = f[fl.name][i]
            if fl.name in STR_KEYS:
                v = v.decode() if isinstance(v, bytes) else str(v)
            elif fl.name in ENUMS:
                v = int(v)
            vals[fl.name] = v
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
        for k in KEYS:
            a = f[k][start:stop]
            out[k] = (
                np.array([x.decode() if isinstance(x, bytes) else x for x in a], dtype=object)
                if k in STR_KEYS
                else a
            )
        return out

    def arrays(self, key: str) -> np.ndarray:
        """A whole dataset as an array (strings decoded)."""
        a = self._f[key][:]
        return (
            np.array([x.decode() if isinstance(x, bytes) else x for x in a], dtype=object)
            if key in STR_KEYS
            else a
        )
