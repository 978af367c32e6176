"""``manifest.json``: what a shard folder holds, rebuilt from per-shard sidecars.

Each finished shard ``<split>-NNNNN.h5`` has a sidecar ``<split>-NNNNN.json`` (sha256,
count, class / region histograms, identities) written atomically after it. The manifest is
the union of the sidecars, so several ranks (or machines) can build into one folder (or
folders that are later merged) without coordinating.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from deocc_core.errors import ConfigError, InputError

__all__ = [
    "write_json_atomic",
    "sidecar_path",
    "collect_manifest",
    "read_manifest",
    "merge_folders",
    "MANIFEST",
]

MANIFEST = "manifest.json"


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as sorted, indented JSON via a per-process temp file and a rename."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.partial")  # ranks may share a folder
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def sidecar_path(shard: Path) -> Path:
    """The ``.json`` sidecar of a shard file."""
    return shard.with_suffix(".json")


def collect_manifest(
    folder: Path, expected: int | None = None, mixed: bool = False
) -> dict[str, Any]:
    """Build and write ``manifest.json`` from the sidecars in ``folder``.

    Args:
        folder: the shard folder.
        expected: total shard count the build planned (recorded; ``complete`` tells
            whether every planned shard is present).
        mixed: allow shards of several build configs (a merged multi-source dataset);
            they must share resolution and model.
    """
    entries = []
    for side in sorted(folder.glob("*-*.json")):
        shard = side.with_suffix(".h5")
        if shard.is_file():
            entries.append(json.loads(side.read_text()))
    if not entries:
        raise InputError(
            f"{folder}: no finished shards (no <split>-NNNNN.h5 with its .json sidecar)"
        )
    configs = {e["config_hash"] for e in entries}
    for key in ("resolution", "model"):
        if len({json.dumps(e[key], sort_keys=True) for e in entries}) > 1:
            raise ConfigError(f"{folder}: shards differ in {key}; a dataset needs one {key}")
    if len(configs) > 1 and not mixed:
        raise ConfigError(
            f"{folder}: shards from {len(configs)} different build configs; rebuild or keep "
            "them in separate folders"
        )
    splits = _split_summary(entries)
    manifest = {
        "format_version": entries[0]["format_version"],
        "config": entries[0]["config"]
        if len(configs) == 1
        else [e["config"] for e in {e["config_hash"]: e for e in entries}.values()],
        "config_hash": entries[0]["config_hash"] if len(configs) == 1 else "mixed",
        "model": entries[0]["model"],
        "resolution": entries[0]["resolution"],
        "planned_shards": expected,
        "complete": expected is None or len(entries) == expected,
        "splits": splits,
        "shards": [
            {k: e[k] for k in ("file", "split", "index", "count", "sha256", "content_sha256")}
            for e in entries
        ],
    }
    write_json_atomic(folder / MANIFEST, manifest)
    return manifest


def _split_summary(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per split: samples, shards, identities, class and region histograms (sorted)."""
    splits: dict[str, dict[str, Any]] = {}
    for e in entries:
        s = splits.setdefault(
            e["split"],
            {
                "samples": 0,
                "shards": 0,
                "classes": Counter(),
                "regions": Counter(),
                "identities": set(),
            },
        )
        s["samples"] += e["count"]
        s["shards"] += 1
        s["classes"].update(e["classes"])
        s["regions"].update(e["regions"])
        s["identities"].update(e["identities"])
    return {
        k: {
            "samples": v["samples"],
            "shards": v["shards"],
            "identities": len(v["identities"]),
            "classes": dict(sorted(v["classes"].items())),
            "regions": dict(sorted(v["regions"].items())),
        }
        for k, v in sorted(splits.items())
    }


def read_manifest(folder: Path) -> dict[str, Any]:
    """Read ``folder/manifest.json`` (InputError naming the folder if absent)."""
    p = Path(folder) / MANIFEST
    if not p.is_file():
        raise InputError(
            f"{folder}: no {MANIFEST} (not a shard folder, or the build did not finish: rerun "
            "synth-occ build or synth-occ merge)"
        )
    return json.loads(p.read_text())


def merge_folders(sources: list[Path], out: Path) -> dict[str, Any]:
    """Gather shards + sidecars of several folders into ``out`` (hard links when possible).

    Rank folders of one build merge into a plain manifest; folders of different builds
    (sources) into a mixed one, their shards renamed ``<split>-<config hash>-NNNNN`` when
    names collide.
    """
    out.mkdir(parents=True, exist_ok=True)
    for folder in sources:
        if folder.resolve() == out.resolve():
            continue
        for side in sorted(folder.glob("*-*.json")):
            shard = side.with_suffix(".h5")
            if not shard.is_file():
                continue
            info = json.loads(side.read_text())
            name = shard.stem
            existing = out / f"{name}.json"
            if (
                existing.is_file()
                and json.loads(existing.read_text()).get("sha256") != info["sha256"]
            ):
                name = f"{info['split']}-{info['config_hash'][:8]}-{info['index']:05d}"
            if (out / f"{name}.h5").exists():
                continue
            info["file"] = f"{name}.h5"
            try:
                os.link(shard, out / f"{name}.h5")
            except OSError:
                shutil.copy2(shard, out / f"{name}.h5")
            write_json_atomic(out / f"{name}.json", info)
    planned = (
        set()
    )  # ranks of one build: keep the planned shard count so "complete" stays meaningful
    for folder in [*sources, out]:
        mf = Path(folder) / MANIFEST
        if mf.is_file():
            m = json.loads(mf.read_text())
            planned.add((m.get("config_hash"), m.get("planned_shards")))
    expected = next(iter(planned))[1] if len(planned) == 1 else None
    return collect_manifest(out, expected=expected, mixed=True)
