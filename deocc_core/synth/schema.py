"""The shard schema: every HDF5 key with its per-sample shape, dtype and meaning, in one place.

The writer (``shards.py``), ``verify``, the training dataset and evaluation all read their
keys from here. One file per shard, N samples, chunk = one sample:

=================  ===========================  =========================================
dataset            shape / dtype                meaning
=================  ===========================  =========================================
occluded, render,  [N, S, S, 3] uint8 RGB       occluded input, 3DMM render, ground truth
gt
face_mask          [N, S, S] uint8 0/255        3DMM silhouette M
occ_mask           [N, S, S] uint8              the occluder object (its opacity)
changed_mask       [N, S, S] uint8              every pixel the composite changed
landmarks          [N, 68, 2] float32           crop pixels
params             [N, P] float32               packed id | exp | pose (morphable/params.py)
occluder_class,    [N] uint8                    enums; names in attrs (JSON)
region
identity,          [N] str                      identity label, source key
source_key
=================  ===========================  =========================================

Attributes (:data:`ATTRS`): ``format_version``, ``package_version``, ``model_name``,
``model_sha256``, ``resolution``, ``config`` (build config JSON), ``config_hash``, ``seed``,
``split``, ``shard_index``, ``occluder_classes`` / ``regions`` (JSON name → value), ``count``.
Adding a key: a :class:`Field` here and the same-named field on :class:`Sample`; bump
:data:`FORMAT_VERSION` when old shards cannot be read as the new format.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from deocc_core.occluders.classes import OccluderClass, Region

__all__ = [
    "FORMAT_VERSION",
    "Field",
    "FIELDS",
    "KEYS",
    "IMAGE_KEYS",
    "MASK_KEYS",
    "ARRAY_KEYS",
    "ENUMS",
    "STR_KEYS",
    "ATTRS",
    "Sample",
    "field_shape",
]

# 2: occ_mask is the object only; changed_mask added (object + shadow + photo matching)
FORMAT_VERSION = 2


@dataclass(frozen=True)
class Field:
    """One dataset of a shard.

    Attributes:
        key: the HDF5 dataset name (= the :class:`Sample` field).
        shape: per-sample shape; ``"S"`` is the resolution, ``"P"`` the parameter count.
        dtype: numpy dtype name, or ``"str"`` for variable-length strings.
        meaning: what it holds (units, range).
    """

    key: str
    shape: tuple[int | str, ...]
    dtype: str
    meaning: str


FIELDS = (
    Field("occluded", ("S", "S", 3), "uint8", "RGB crop with the occluder(s): G's input"),
    Field("render", ("S", "S", 3), "uint8", "RGB 3DMM render of the fit: G's second input"),
    Field("gt", ("S", "S", 3), "uint8", "RGB crop without occluder: the target"),
    Field("face_mask", ("S", "S"), "uint8", "3DMM silhouette M, 0 / 255"),
    Field("occ_mask", ("S", "S"), "uint8", "the occluder object: its opacity, 0..255"),
    Field(
        "changed_mask",
        ("S", "S"),
        "uint8",
        "every pixel the composite changed (object, shadow, noise, JPEG blocks): 0 exactly "
        "where occluded == gt, else max(object opacity, shadow darkening) x 255, at least 1",
    ),
    Field("landmarks", (68, 2), "float32", "iBUG-68 landmarks, crop pixels (x, y)"),
    Field("params", ("P",), "float32", "packed [id | exp | pose] (morphable/params.py)"),
    Field("occluder_class", (), "uint8", "OccluderClass value (names in attrs)"),
    Field("region", (), "uint8", "Region value: the evaluation group (names in attrs)"),
    Field("identity", (), "str", "identity label (splits are identity-disjoint)"),
    Field("source_key", (), "str", "the source input the sample came from"),
)
KEYS = tuple(f.key for f in FIELDS)
IMAGE_KEYS = tuple(f.key for f in FIELDS if f.shape == ("S", "S", 3))
MASK_KEYS = tuple(f.key for f in FIELDS if f.shape == ("S", "S"))
STR_KEYS = tuple(f.key for f in FIELDS if f.dtype == "str")
ENUMS: dict[str, type[IntEnum]] = {"occluder_class": OccluderClass, "region": Region}
# what a training / evaluation sample reads per item (images, masks and landmarks)
ARRAY_KEYS = IMAGE_KEYS + MASK_KEYS + ("landmarks",)
ATTRS = (
    "format_version",
    "package_version",
    "resolution",
    "count",
    "occluder_classes",
    "regions",
    "config",
    "config_hash",
    "seed",
    "split",
    "shard_index",
    "model_name",
    "model_sha256",
)


def field_shape(f: Field, size: int, n_params: int) -> tuple[int, ...]:
    """The concrete per-sample shape of a field.

    Example:
        >>> field_shape(FIELDS[0], 64, 10), field_shape(FIELDS[7], 64, 10)
        ((64, 64, 3), (10,))
    """
    return tuple(size if d == "S" else n_params if d == "P" else d for d in f.shape)


@dataclass(frozen=True)
class Sample:
    """One training tuple: the :data:`FIELDS` of one sample (shapes without the N axis)."""

    occluded: npt.NDArray[np.uint8]
    render: npt.NDArray[np.uint8]
    gt: npt.NDArray[np.uint8]
    face_mask: npt.NDArray[np.uint8]
    occ_mask: npt.NDArray[np.uint8]
    changed_mask: npt.NDArray[np.uint8]
    landmarks: npt.NDArray[np.float32]
    params: npt.NDArray[np.float32]
    occluder_class: int
    region: int
    identity: str
    source_key: str
