"""``manifest.json``: what a shard folder holds, rebuilt from per-shard sidecars.

Each finished shard ``<split>-NNNNN.h5`` has a sidecar ``<split>-NNNNN.json`` (sha256,
count, class / region histograms, identities) written atomically after it. The manifest is
the union of the sidecars, so several ranks (or machines) can build into one folder (or
folders that are later merged) without coordinating.

Both files are data a user may have damaged or crafted: :func:`read_manifest` and
:func:`read_sidecar` check them and raise one line naming the file; names they hold (a
shard's ``file``, a ``split``) are plain names inside the folder, never paths.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from pathlib import Path
from typing import Any

from deocc_core.errors import ConfigError, DeoccError, FormatError, InputError
from deocc_core.fileio import link_or_copy_atomic, plain_name, read_json, write_json_atomic
from deocc_core.synth.shards import file_sha256
from deocc_core.synth.splits import SPLITS

__all__ = [
    "build_configs",
    "write_json_atomic",
    "sidecar_path",
    "read_sidecar",
    "finished_shards",
    "collect_manifest",
    "read_manifest",
    "merge_folders",
    "MANIFEST",
    "PLAN",
    "write_plan",
    "read_plan",
    "REBUILD_HINT",
]

MANIFEST = "manifest.json"
PLAN = "plan.json"  # written by a build before its first shard: how many shards it plans
REBUILD_HINT = "rerun the synth-occ build command, or synth-occ merge FOLDER, to rebuild it"
_HEX = re.compile(r"[0-9a-f]+")

log = logging.getLogger(__name__)


def write_plan(folder: Path, planned: int, config_hash: str) -> None:
    """Record how many shards a build plans (so an unfinished build can say how far it got)."""
    write_json_atomic(Path(folder) / PLAN, {"planned_shards": planned, "config_hash": config_hash})


def read_plan(folder: Path) -> int | None:
    """The planned shard count of the build in ``folder``, or None (no plan, or damaged)."""
    p = Path(folder) / PLAN
    if not p.is_file():
        return None
    try:
        n = read_json(p, "build plan")["planned_shards"]
    except (DeoccError, KeyError, TypeError):
        return None
    return n if isinstance(n, int) and not isinstance(n, bool) else None


def sidecar_path(shard: Path) -> Path:
    """The ``.json`` sidecar of a shard file."""
    return shard.with_suffix(".json")


def _need(cond: bool, path: Path, what: str) -> None:
    if not cond:
        raise FormatError(f"{path}: {what}")


def _check_entry(e: Any, path: Path, where: str) -> None:
    """The fields of a shard entry (sidecar or manifest row) that tools rely on."""
    _need(isinstance(e, dict), path, f"{where} is not a JSON object")
    for k in ("split", "index", "count", "sha256"):
        _need(k in e, path, f"{where} lacks {k!r}")
    _need(e["split"] in SPLITS, path, f"{where}: unknown split {e['split']!r}")
    for k in ("index", "count"):
        ok = isinstance(e[k], int) and not isinstance(e[k], bool) and e[k] >= 0
        _need(ok, path, f"{where}: {k} must be a count, got {e[k]!r}")
    _need(
        isinstance(e["sha256"], str) and len(e["sha256"]) == 64 and _HEX.fullmatch(e["sha256"]),
        path,
        f"{where}: sha256 is not 64 hex digits",
    )


def read_sidecar(path: Path) -> dict[str, Any]:
    """A shard's sidecar, checked (FormatError naming it when damaged).

    Raises:
        InputError: missing or unreadable.
        FormatError: empty, not JSON, or a field of the wrong type (a ``split`` that is not
            a split name, a negative count, ...).
    """
    info = read_json(path, "shard sidecar", hint="delete it and its .h5 and rerun the build")
    _check_entry(info, path, "sidecar")
    for k in ("config_hash", "resolution", "model", "classes", "regions", "identities"):
        _need(k in info, path, f"sidecar lacks {k!r}")
    _need(
        isinstance(info["config_hash"], str) and bool(_HEX.fullmatch(info["config_hash"])),
        path,
        "sidecar: config_hash is not hex digits",
    )
    _need(isinstance(info["resolution"], int), path, "sidecar: resolution is not an integer")
    for k in ("classes", "regions"):
        _need(isinstance(info[k], dict), path, f"sidecar: {k} is not an object")
    _need(isinstance(info["identities"], list), path, "sidecar: identities is not a list")
    return info


def finished_shards(folder: Path) -> tuple[list[tuple[Path, dict[str, Any]]], list[str]]:
    """Shards of ``folder`` with a readable sidecar, and one line per damaged sidecar.

    A shard counts as finished when ``<name>.h5`` and its sidecar both exist (the sidecar
    is written after the shard is complete).
    """
    done, problems = [], []
    for side in sorted(Path(folder).glob("*-*.json")):
        shard = side.with_suffix(".h5")
        if not shard.is_file():
            continue
        try:
            info = read_sidecar(side)
        except DeoccError as e:
            problems.append(str(e))
            continue
        info["file"] = shard.name  # the file beside it, never a name from the data
        done.append((shard, info))
    return done, problems


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

    Raises:
        FormatError: a damaged sidecar (its shard cannot be listed).
        InputError: no finished shards.
        ConfigError: shards of different resolutions / models (or configs, unless ``mixed``).
    """
    done, problems = finished_shards(folder)
    if problems:
        raise FormatError(problems[0])
    entries = [info for _, info in done]
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
        "format_version": entries[0].get("format_version"),
        "config": entries[0].get("config")
        if len(configs) == 1
        else [e.get("config") for e in {e["config_hash"]: e for e in entries}.values()],
        "config_hash": entries[0]["config_hash"] if len(configs) == 1 else "mixed",
        "model": entries[0]["model"],
        "resolution": entries[0]["resolution"],
        "planned_shards": expected,
        "complete": expected is None or len(entries) == expected,
        "splits": splits,
        "shards": [
            {k: e.get(k) for k in ("file", "split", "index", "count", "sha256", "content_sha256")}
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
        s["identities"].update(map(str, e["identities"]))
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


def build_configs(config: dict[str, Any] | list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """A manifest's ``config`` as a list: one build's config, or each of a merged folder's.

    Example:
        >>> [c["source"] for c in build_configs([{"source": "folder"}, {"source": "synthetic"}])]
        ['folder', 'synthetic']
        >>> build_configs({"source": "folder"}), build_configs(None)
        ([{'source': 'folder'}], [])
    """
    if isinstance(config, dict):
        return [config]
    return [c for c in config or [] if isinstance(c, dict)]


def read_manifest(folder: Path) -> dict[str, Any]:
    """Read and check ``folder/manifest.json``.

    Every shard ``file`` is a plain file name inside ``folder`` (never ``../`` or an absolute
    path), every split a known split; what training, evaluation and ``verify`` read has
    the right type.

    Raises:
        InputError: no manifest (not a shard folder, or the build did not finish).
        FormatError: empty, not JSON, or damaged fields; the message says how to rebuild it.
    """
    p = Path(folder) / MANIFEST
    if not p.is_file():
        raise InputError(
            f"{folder}: no {MANIFEST} (not a shard folder, or the build did not finish: rerun "
            "synth-occ build or synth-occ merge)"
        )
    m = read_json(p, "manifest", hint=REBUILD_HINT)

    def need(cond: bool, what: str) -> None:
        _need(cond, p, f"{what} ({REBUILD_HINT})")

    need(isinstance(m, dict), "manifest is not a JSON object")
    for k in ("shards", "splits", "resolution"):
        need(k in m, f"manifest lacks {k!r}")
    need(isinstance(m["shards"], list), "manifest 'shards' is not a list")
    need(isinstance(m["splits"], dict), "manifest 'splits' is not an object")
    need(isinstance(m["resolution"], int), "manifest 'resolution' is not an integer")
    need(
        m.get("planned_shards") is None or isinstance(m["planned_shards"], int),
        "manifest 'planned_shards' is not an integer",
    )
    need(isinstance(m.get("model", {}), dict), "manifest 'model' is not an object")
    m.setdefault("complete", True)
    m.setdefault("model", {})
    for name, sp in m["splits"].items():
        need(name in SPLITS, f"manifest: unknown split {name!r}")
        need(
            isinstance(sp, dict)
            and all(isinstance(sp.get(k), int) for k in ("samples", "shards", "identities"))
            and all(isinstance(sp.get(k), dict) for k in ("classes", "regions")),
            f"manifest: split {name!r} summary is damaged",
        )
    for i, e in enumerate(m["shards"]):
        try:
            _check_entry(e, p, f"shard entry {i}")
        except FormatError as err:
            raise FormatError(f"{err} ({REBUILD_HINT})") from None
        need("file" in e, f"shard entry {i} lacks 'file'")
        plain_name(e["file"], "shard file", p)
    return m


def _planned(folders: list[Path]) -> int | None:
    """The planned shard count when all readable manifests of ``folders`` agree on one build."""
    planned = set()
    for folder in folders:
        if not (Path(folder) / MANIFEST).is_file():
            continue
        try:
            m = read_manifest(folder)
        except DeoccError as e:  # rebuilt from the sidecars below
            log.warning("%s (ignored: the merged manifest is rebuilt from the sidecars)", e)
            continue
        planned.add((m.get("config_hash"), m.get("planned_shards")))
    return next(iter(planned))[1] if len(planned) == 1 else None


def merge_folders(sources: list[Path], out: Path) -> dict[str, Any]:
    """Gather shards + sidecars of several folders into ``out`` (hard links when possible).

    Rank folders of one build merge into a plain manifest; folders of different builds
    (sources) into a mixed one, their shards renamed ``<split>-<config hash>-NNNNN`` when
    names collide. Each shard lands complete or not at all (temp name + rename), and a
    shard already in ``out`` is kept only when its sidecar matches: a merge that failed
    (disk full) is finished by running it again.

    Raises:
        FormatError: a damaged sidecar in a source folder (named).
        InputError: a shard cannot be written (the path and the reason).
    """
    out.mkdir(parents=True, exist_ok=True)
    for folder in sources:
        if folder.resolve() == out.resolve():
            continue
        done, problems = finished_shards(folder)
        if problems:
            raise FormatError(problems[0])
        for shard, info in done:
            _merge_one(shard, info, out)
    return collect_manifest(out, expected=_planned([*sources, out]), mixed=True)


def _merge_one(shard: Path, info: dict[str, Any], out: Path) -> None:
    """Put one shard and its sidecar into ``out`` (see :func:`merge_folders`)."""
    name = shard.stem
    existing = _sidecar_or_none(out / f"{name}.json")
    if existing is not None and existing["sha256"] != info["sha256"]:
        name = f"{info['split']}-{info['config_hash'][:8]}-{info['index']:05d}"
        existing = _sidecar_or_none(out / f"{name}.json")
    target = out / f"{name}.h5"
    if existing is not None and existing["sha256"] == info["sha256"] and target.is_file():
        return  # merged before
    if not (target.is_file() and file_sha256(target) == info["sha256"]):
        link_or_copy_atomic(shard, target)
    write_json_atomic(out / f"{name}.json", {**info, "file": target.name})


def _sidecar_or_none(path: Path) -> dict[str, Any] | None:
    """A sidecar in the merge target, or None if absent or damaged (then it is rewritten)."""
    if not path.is_file():
        return None
    try:
        return read_sidecar(path)
    except DeoccError:
        return None
