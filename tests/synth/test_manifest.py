"""Merging rank folders keeps the planned shard count, so a missing rank shows as incomplete."""

from __future__ import annotations

from deocc_core.synth.manifest import merge_folders, read_manifest
from deocc_core.synth.pipeline import BuildConfig, build

BASE = dict(
    source="synthetic",
    size=64,
    per_shard=12,
    n_synthetic=48,
    test_fraction=0.25,
    seed=0,
    fit_landmarks="annotated",
)


def test_merge_of_one_rank_is_incomplete_then_complete(tmp_path):
    for r in (0, 1):
        build(BuildConfig(**BASE, out=str(tmp_path / f"rank{r}"), rank=r, world_size=2))
    planned = read_manifest(tmp_path / "rank0")["planned_shards"]
    part = merge_folders([tmp_path / "rank0"], tmp_path / "merged")
    assert part["planned_shards"] == planned and not part["complete"]
    full = merge_folders([tmp_path / "rank1"], tmp_path / "merged")
    assert full["complete"] and len(full["shards"]) == planned
    assert sum(s["samples"] for s in full["splits"].values()) == 48
