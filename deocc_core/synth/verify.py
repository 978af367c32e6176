"""Check and look at a shard folder: verify, summarise, sample grids, export test crops."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from deocc_core.errors import BadSample, DeoccError, FormatError, InputError
from deocc_core.fileio import PARTIAL
from deocc_core.imageio import write_image
from deocc_core.landmarks.readers import write_pts
from deocc_core.occluders.classes import OccluderClass, Region
from deocc_core.synth.manifest import MANIFEST, finished_shards, read_manifest, read_plan
from deocc_core.synth.schema import ENUMS, FIELDS, field_shape
from deocc_core.synth.shards import (
    ShardReader,
    content_sha256,
    file_sha256,
    sample_problem,
)
from deocc_core.viz import image_grid

__all__ = [
    "verify_shards",
    "sample_grid",
    "export_samples",
    "shard_paths",
    "checked_shard_paths",
    "build_progress",
    "summary",
    "RESUME_HINT",
]

RESUME_HINT = "rerun the same synth-occ build command to resume"
DEEP_BATCH = 32  # samples read at once by verify --deep
MAX_SAMPLE_LINES = 5  # per shard; the rest are counted


def shard_paths(folder: Path, split: str | None = None) -> list[Path]:
    """Shard files listed in the manifest (optionally one split), in manifest order.

    The names come from the checked manifest: plain file names inside ``folder``.
    """
    m = read_manifest(folder)
    return [Path(folder) / s["file"] for s in m["shards"] if split is None or s["split"] == split]


def checked_shard_paths(folder: Path, split: str | None = None) -> list[Path]:
    """:func:`shard_paths` after checking each file's sha256 against the manifest.

    What scores a model (``deocc-eval``) never reads a shard that changed since it was
    built.

    Raises:
        InputError: a listed shard is missing.
        FormatError: a shard's bytes do not match the manifest's sha256 (one line naming it).
    """
    m = read_manifest(folder)
    paths = []
    for s in m["shards"]:
        if split is not None and s["split"] != split:
            continue
        p = Path(folder) / s["file"]
        if not p.is_file():
            raise InputError(f"{p}: shard listed in the manifest is missing")
        if s.get("sha256") and file_sha256(p) != s["sha256"]:
            raise FormatError(
                f"{p}: sha256 mismatch (corrupted or modified since the build); "
                "synth-occ verify --deep names the damaged samples"
            )
        paths.append(p)
    return paths


def build_progress(folder: Path) -> str:
    """One line on an unfinished build: shards complete (of the plan), partial files, what to do.

    Example:
        >>> import tempfile
        >>> build_progress(Path(tempfile.mkdtemp()))  # doctest: +ELLIPSIS
        '...: no manifest.json and no finished shards: not a shard folder, or the build ...'
    """
    folder = Path(folder)
    done, damaged = finished_shards(folder)
    partial = sorted(p.name for p in folder.glob(f"*{PARTIAL}"))
    planned = read_plan(folder)
    if not done and not partial and planned is None:
        return (
            f"{folder}: no {MANIFEST} and no finished shards: not a shard folder, or the "
            "build has not written a shard yet"
        )
    per_split = Counter(info["split"] for _, info in done)
    of = f" of {planned} planned" if planned is not None else ""
    splits = ", ".join(f"{k} {v}" for k, v in sorted(per_split.items()))
    extra = f"; {len(partial)} partial file(s) (removed on resume)" if partial else ""
    extra += f"; {len(damaged)} damaged sidecar(s)" if damaged else ""
    return (
        f"{folder}: build unfinished (no {MANIFEST}): {len(done)} shard(s) complete{of}"
        f"{' (' + splits + ')' if splits else ''}{extra}; {RESUME_HINT}"
    )


def verify_shards(
    folder: Path,
    *,
    checksums: bool = True,
    deep: bool = False,
    progress: Callable[..., None] | None = None,
) -> list[str]:
    """Every problem found, one line each (empty list = healthy).

    Checks: manifest present and complete, files present with matching sha256, every
    schema key with its shape and dtype (:mod:`deocc_core.synth.schema`), finite landmarks
    and params, known enum values, a binary face mask, no identity in more than one split,
    no shard files the manifest does not list and no partial files. ``deep`` also reads
    every sample and checks its invariants (:func:`~deocc_core.synth.shards.sample_problem`:
    ``occluded == gt`` wherever ``changed_mask`` is 0, value ranges) and each shard's
    content hash.

    Args:
        folder: the shard folder.
        checksums: compare each file's sha256 with the manifest.
        deep: read every sample (slow: the whole dataset is decompressed).
        progress: called as ``progress(n, total=None)`` per sample checked (deep) or shard.

    Raises:
        InputError: no manifest: the message says how far an unfinished build got.
    """
    folder = Path(folder)
    if not (folder / MANIFEST).is_file():
        raise InputError(build_progress(folder))
    m = read_manifest(folder)
    problems: list[str] = []
    if not m.get("complete", True):
        problems.append(
            f"{folder}: manifest lists {len(m['shards'])} of {m['planned_shards']} planned "
            f"shards (build unfinished: {RESUME_HINT}, or merge the other ranks)"
        )
    problems += _stray_files(folder, m)
    if progress:
        total = sum(e["count"] for e in m["shards"]) if deep else len(m["shards"])
        progress(0, total=total)
    ident_split: dict[str, str] = {}
    for entry in m["shards"]:
        p = folder / entry["file"]
        problems += _verify_one(p, entry, ident_split, checksums=checksums, deep=deep)
        if progress:
            progress(entry["count"] if deep else 1)
    return problems


def _stray_files(folder: Path, m: dict[str, Any]) -> list[str]:
    """Shard files the manifest does not list, and leftover partial files."""
    listed = {e["file"] for e in m["shards"]}
    out = [
        f"{p}: shard file not in the manifest (incomplete copy or merge? rerun synth-occ merge)"
        for p in sorted(folder.glob("*.h5"))
        if p.name not in listed
    ]
    out += [
        f"{p}: partial file left by an interrupted build or merge ({RESUME_HINT})"
        for p in sorted(folder.glob(f"*{PARTIAL}"))
    ]
    return out


def _verify_one(
    p: Path, entry: dict[str, Any], ident_split: dict[str, str], *, checksums: bool, deep: bool
) -> list[str]:
    """Problems of one shard listed in the manifest."""
    if not p.is_file():
        return [f"{p}: missing"]
    problems: list[str] = []
    if checksums and file_sha256(p) != entry["sha256"]:
        problems.append(f"{p}: sha256 mismatch (corrupted or modified)")
        if not deep:  # --deep goes on to name the damaged samples
            return problems
    try:
        with ShardReader(p) as r:
            problems += _check_shard(p, r, entry["count"])
            for ident in set(r.arrays("identity")):
                prev = ident_split.setdefault(ident, entry["split"])
                if prev != entry["split"]:
                    problems.append(
                        f"{p}: identity {ident!r} is in both {prev} and {entry['split']}"
                    )
            bad_samples = _deep_check(p, r) if deep else []
        problems += bad_samples
        # samples that read fine but differ from what was built (edited consistently)
        if deep and not bad_samples and entry.get("content_sha256"):
            if content_sha256(p) != entry["content_sha256"]:
                problems.append(f"{p}: content hash differs from the manifest (samples changed)")
    except (DeoccError, OSError) as e:
        problems.append(str(e))
    return problems


def _deep_check(p: Path, r: ShardReader) -> list[str]:
    """Read every sample of an open shard and check its invariants; one line per bad sample."""
    bad: list[str] = []
    n = len(r)
    for start in range(0, n, DEEP_BATCH):
        stop = min(n, start + DEEP_BATCH)
        try:
            b = r.batch(start, stop)
        except BadSample:  # find which samples of the batch are damaged
            for i in range(start, stop):
                try:
                    r.sample(i, check=True)
                except BadSample as e:
                    bad.append(str(e))
            continue
        for i in range(stop - start):
            problem = sample_problem({k: v[i] for k, v in b.items()})
            if problem:
                bad.append(f"{p}: sample {start + i}: {problem}")
    if len(bad) > MAX_SAMPLE_LINES:
        bad = bad[:MAX_SAMPLE_LINES] + [
            f"{p}: ... and {len(bad) - MAX_SAMPLE_LINES} more bad samples"
        ]
    return bad


def _check_shard(p: Path, r: ShardReader, count: int) -> list[str]:
    """Problems of one open shard: count, schema shapes and dtypes, value ranges."""
    problems = []
    n, s = len(r), r.resolution
    if n != count:
        problems.append(f"{p}: {n} samples, manifest says {count}")
    n_params = r.dataset("params").shape[1]
    for f in FIELDS:
        ds = r.dataset(f.key)
        shape = (n, *field_shape(f, s, n_params))
        if ds.shape != shape:
            problems.append(f"{p}: {f.key} has shape {ds.shape}, expected {shape}")
        if f.dtype != "str" and ds.dtype != np.dtype(f.dtype):
            problems.append(f"{p}: {f.key} has dtype {ds.dtype}, expected {np.dtype(f.dtype)}")
    if not np.isfinite(r.arrays("landmarks")).all():
        problems.append(f"{p}: non-finite landmarks")
    if not np.isfinite(r.arrays("params")).all():
        problems.append(f"{p}: non-finite params")
    if any(r.arrays(k).max(initial=0) >= len(enum) for k, enum in ENUMS.items()):
        problems.append(f"{p}: unknown occluder class or region values")
    if not np.isin(np.unique(r.arrays("face_mask")), [0, 255]).all():
        problems.append(f"{p}: face_mask is not binary 0/255")
    return problems


def _read_some(folder: Path, split: str | None, n: int) -> list:
    out = []
    for p in shard_paths(folder, split):
        with ShardReader(p) as r:
            for i in range(len(r)):
                out.append(r.sample(i, check=True))
                if len(out) >= n:
                    return out
    return out


def sample_grid(folder: Path, out_png: Path, split: str | None = None, n: int = 8) -> Path:
    """PNG grid, one row per sample: occluded | render | face mask | occluder mask | gt."""
    samples = _read_some(folder, split, n)
    if not samples:
        raise DeoccError(f"{folder}: no samples{' in split ' + split if split else ''}")
    rows = [[s.occluded, s.render, s.face_mask, s.occ_mask, s.gt] for s in samples]
    labels = [
        f"{OccluderClass(s.occluder_class).name.lower()} / {Region(s.region).name.lower()}"
        for s in samples
    ]
    grid = image_grid(rows, labels=labels)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    write_image(out_png, grid)
    return out_png


def export_samples(folder: Path, out_dir: Path, split: str = "test", n: int = 8) -> list[Path]:
    """Write occluded crops as PNG with ``.pts`` landmarks, the ground truth as ``*_gt.png``.

    These are inputs for ``deocc-infer``: photos whose truth we know.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, s in enumerate(_read_some(folder, split, n)):
        p = out_dir / f"{split}_{i:04d}.png"
        write_image(p, s.occluded)
        write_image(out_dir / f"{split}_{i:04d}_gt.png", s.gt)
        write_pts(p.with_suffix(".pts"), s.landmarks)
        paths.append(p)
    return paths


def summary(folder: Path) -> dict[str, Any]:
    """Counts per split, classes and regions (from the manifest).

    Raises:
        InputError: no manifest: the message says how far an unfinished build got.
    """
    if not (Path(folder) / MANIFEST).is_file():
        raise InputError(build_progress(folder))
    m = read_manifest(folder)
    return {
        "resolution": m["resolution"],
        "model": m["model"],
        "complete": m["complete"],
        "splits": m["splits"],
    }
