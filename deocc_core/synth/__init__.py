"""Synthesis: face sources, the sample pipeline, the shard format, manifests and splits.

This package re-exports only the shard format (schema, reader / writer, manifest, splits,
verify), which training and evaluation read; importing it does not load the synthesis
pipeline. The pipeline: ``from deocc_core.synth.pipeline import BuildConfig, build``;
sources: ``deocc_core.synth.sources``.
"""

from deocc_core.synth.manifest import MANIFEST, collect_manifest, merge_folders, read_manifest
from deocc_core.synth.schema import FIELDS, FORMAT_VERSION, KEYS, Field, Sample
from deocc_core.synth.shards import ShardReader, ShardWriter, content_sha256
from deocc_core.synth.splits import SPLITS, assign_split, read_split_list, write_split_lists
from deocc_core.synth.verify import export_samples, sample_grid, shard_paths, verify_shards

__all__ = [
    "FORMAT_VERSION",
    "Field",
    "FIELDS",
    "KEYS",
    "Sample",
    "ShardReader",
    "ShardWriter",
    "content_sha256",
    "MANIFEST",
    "collect_manifest",
    "read_manifest",
    "merge_folders",
    "SPLITS",
    "assign_split",
    "write_split_lists",
    "read_split_list",
    "shard_paths",
    "verify_shards",
    "sample_grid",
    "export_samples",
]
