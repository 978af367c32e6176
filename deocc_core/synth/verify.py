"""Check and look at a shard folder: verify, summarise, sample grids, export test crops."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deocc_core.errors import DeoccError
from deocc_core.imageio import write_image
from deocc_core.landmarks.readers import write_pts
from deocc_core.occluders.classes import OccluderClass, Region
from deocc_core.synth.manifest import read_manifest
from deocc_core.synth.schema import ENUMS, FIELDS, field_shape
from deocc_core.synth.shards import ShardReader, file_sha256
from deocc_core.viz import image_grid

__all__ = ["verify_shards", "sample_grid", "export_samples", "shard_paths"]


def shard_paths(folder: Path, split: str | None = None) -> list[Path]:
    """Shard files listed in the manifest (optionally one split), in manifest order."""
    m = read_manifest(folder)
    return [Path(folder) / s["file"] for s in m["shards"] if split is None or s["split"] == split]


def verify_shards(folder: Path, *, checksums: bool = True) -> list[str]:
    """Every problem found, one line each (empty list = healthy).

    Checks: manifest present and complete, files present with matching sha256, every
    schema key with its shape and dtype (:mod:`deocc_core.synth.schema`), finite landmarks
    and params, known enum values, a binary face mask, and no identity in more than one split.
    """
    problems: list[str] = []
    m = read_manifest(folder)
    if not m.get("complete", True):
        problems.append(
            f"{folder}: manifest lists {len(m['shards'])} of {m['planned_shards']} planned "
            "shards (build unfinished)"
        )
    ident_split: dict[str, str] = {}
    for entry in m["shards"]:
        p = Path(folder) / entry["file"]
        if not p.is_file():
            problems.append(f"{p}: missing")
            continue
        if checksums and file_sha256(p) != entry["sha256"]:
            problems.append(f"{p}: sha256 mismatch (corrupted or modified)")
            continue
        try:
            with ShardReader(p) as r:
                problems += _check_shard(p, r, entry["count"])
                for ident in set(r.arrays("identity")):
                    prev = ident_split.setdefault(ident, entry["split"])
                    if prev != entry["split"]:
                        problems.append(
                            f"{p}: identity {ident!r} is in both {prev} and {entry['split']}"
                        )
        except (DeoccError, OSError) as e:
            problems.append(str(e))
    return problems


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
                out.append(r.sample(i))
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
    """Counts per split, classes and regions (from the manifest)."""
    m = read_manifest(folder)
    return {
        "resolution": m["resolution"],
        "model": m["model"],
        "complete": m["complete"],
        "splits": m["splits"],
    }
