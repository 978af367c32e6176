"""Batch inference over photos and folders: the library side of ``deocc-infer``.

Reads each image, finds its faces (detector or ``.pts`` / ``.mat`` sidecar), de-occludes
them (:func:`deocc_core.infer.pipeline.deocclude`) and writes, per image, the de-occluded
photo and optionally a side-by-side, and per face the aligned crop, its render, the output
crop and optionally the coloured mesh. Faces too small or not found, unreadable images and
missing sidecars are reported in :class:`InferResult`, never fatal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deocc_core.device import DEVICES, resolve_device
from deocc_core.errors import ConfigError, InputError, SkipInput
from deocc_core.face.prepare import FaceInputConfig
from deocc_core.imageio import IMAGE_SUFFIXES, read_image, write_image
from deocc_core.infer.pipeline import (
    FaceOutput,
    deocclude,
    expression_coefficients,
)
from deocc_core.landmarks.detect import DEFAULT_BACKEND, DETECTORS, LandmarkDetector
from deocc_core.landmarks.find import LANDMARK_SOURCES, LazyDetector, landmarks_for
from deocc_core.morphable.fit import FitConfig
from deocc_core.morphable.model import MorphableModel, load_model
from deocc_core.nets.io import GeneratorSpec, load_generator, prepare_generator
from deocc_core.options import option
from deocc_core.recon.export import MeshConfig, write_face_meshes

__all__ = ["InferConfig", "InferResult", "list_images", "run_inference", "LANDMARK_SOURCES"]

log = logging.getLogger(__name__)
_MESH = {f.name: f for f in fields(MeshConfig)}  # mesh options, declared once in recon


@dataclass(frozen=True)
class InferConfig:
    """What ``deocc-infer`` runs (each field's help is its ``option`` metadata)."""

    inputs: tuple[str, ...] = option(
        help="Images and/or folders of images (searched recursively; *_gt images skipped)."
    )
    ckpt: str = option(help="Checkpoint file or run folder (best.pt, else latest.pt).", path="any")
    out: str = option("infer_out", "Output folder.", path="out")
    model: str | None = option(
        None,
        "3DMM the shards were built with: starter or a model path.",
        default_help="the checkpoint's model: starter",
    )
    landmarks_from: str = option(
        "detector",
        "Where the landmarks come from (pts / mat: the sidecar beside each image; auto: the "
        "sidecar if any, else the detector).",
        choices=LANDMARK_SOURCES,
    )
    backend: str = option(
        DEFAULT_BACKEND,
        "Landmark backend (fan needs deocc[fan] + local weights).",
        choices=tuple(DETECTORS),
    )
    mesh: bool = option(
        False,
        "Also write each fitted mesh textured by the de-occluded face (OBJ, + MTL and PNG "
        "texture for models with texture coordinates) and its picture (*_view.png).",
    )
    detail: bool = field(default=False, metadata=_MESH["detail"].metadata)
    compare_occluded: bool = field(default=False, metadata=_MESH["compare_occluded"].metadata)
    uv: str | None = field(default=None, metadata=_MESH["uv"].metadata)
    expression: str = option(
        "keep",
        "Expression edit: keep | neutral | smile | open | surprise | FILE.json ({mode: std "
        "units} or a list of n_exp std units).",
    )
    side_by_side: bool = option(False, "Also write input | output side by side.")
    device: str = option("auto", "Where G runs.", choices=DEVICES)


@dataclass(frozen=True)
class InferResult:
    """What a run did.

    Attributes:
        n_images: images processed (readable or not).
        n_faces: faces de-occluded.
        problems: one line per skipped image or face.
        outputs: the de-occluded photos written.
    """

    n_images: int
    n_faces: int
    problems: tuple[str, ...]
    outputs: tuple[Path, ...]


def list_images(inputs: tuple[str, ...] | list[str]) -> list[Path]:
    """Image files named in ``inputs`` plus those found (recursively, sorted) in its folders.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> for name in ("a.png", "a_gt.png", "notes.txt"):
        ...     _ = (d / name).write_bytes(b"")
        >>> [p.name for p in list_images([str(d)])]
        ['a.png']
    """
    images: list[Path] = []
    for s in inputs:
        p = Path(s)
        if p.is_dir():
            images += sorted(
                q
                for q in p.rglob("*")
                if q.suffix.lower() in IMAGE_SUFFIXES and not q.stem.endswith("_gt")
            )
        elif p.is_file():
            images.append(p)
        else:
            raise InputError(f"{p}: no such image or folder")
    return images


def run_inference(config: InferConfig, progress: Callable[..., None] | None = None) -> InferResult:
    """De-occlude every face in ``config.inputs`` and write the results to ``config.out``.

    Args:
        config: what to run.
        progress: called ``progress(0, total=n_images)`` then ``progress(1)`` per image.

    Raises:
        InputError: no images found. ConfigError: unknown landmark source, expression preset
            the model lacks, or a checkpoint trained with a non-starter model but no ``model``.
        FormatError: unreadable checkpoint (from load_generator).
    """
    if config.landmarks_from not in LANDMARK_SOURCES:
        raise ConfigError(
            f"landmarks_from must be one of {', '.join(LANDMARK_SOURCES)}, "
            f"got {config.landmarks_from!r}"
        )
    images = list_images(config.inputs)
    if not images:
        raise InputError(f"{', '.join(config.inputs)}: no images found")
    run = _load(config)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    if progress:
        progress(0, total=len(images))
    n_faces, problems, outputs = 0, [], []
    for path in images:
        try:
            n, skipped, dst = _process_image(path, run, config, out)
            n_faces += n
            problems += skipped
            outputs.append(dst)
        except SkipInput as e:  # unreadable image, missing or broken sidecar
            problems.append(str(e) if str(path) in str(e) else f"{path}: {e}")
        if progress:
            progress(1)
    log.info("%d face(s) in %d image(s), %d problem(s)", n_faces, len(images), len(problems))
    return InferResult(len(images), n_faces, tuple(problems), tuple(outputs))


@dataclass(frozen=True)
class _Loaded:
    """What every image of a run needs.

    G and its spec, the 3DMM, the face preparation the shards used, the detector (or None) and the
    device.
    """

    G: nn.Module
    spec: GeneratorSpec
    model: MorphableModel
    face_config: FaceInputConfig
    detector: LandmarkDetector | None
    device: torch.device


def _load(config: InferConfig) -> _Loaded:
    """Load the generator, the model its shards used, and the landmark detector."""
    device = resolve_device(config.device)
    G, spec, info = load_generator(config.ckpt, device)
    model = _load_model(config, info.get("data_model") or {})
    expression_coefficients(model, config.expression)  # fail early on a bad preset / file
    detector = None if config.landmarks_from in ("pts", "mat") else LazyDetector(config.backend)
    face_config = _face_config(spec, info.get("data_config") or {})
    return _Loaded(prepare_generator(G), spec, model, face_config, detector, device)


def _load_model(config: InferConfig, data_model: dict[str, Any]) -> MorphableModel:
    """``config.model``, else the checkpoint's (the starter model only: others are the user's)."""
    spec = config.model
    if spec is None:
        if data_model.get("name") not in (None, "deocc-starter"):
            raise ConfigError(
                f"{config.ckpt}: trained on shards built with model {data_model['name']!r}: "
                "pass the model path"
            )
        spec = "starter"
    model = load_model(spec)
    if data_model.get("sha256") and data_model["sha256"] != model.sha256:
        log.warning(
            "%s differs from the model the training shards used (%s): renders will not match",
            spec,
            data_model.get("name"),
        )
    return model


def _face_config(spec: GeneratorSpec, data_config: dict[str, Any]) -> FaceInputConfig:
    """The training shards' face preparation (their build config's fit options) at G's size."""
    build = data_config.get("config")
    fit = build.get("fit") if isinstance(build, dict) else None
    # shards built before the colour render (no render_version) hold grey renders: match them
    colour = isinstance(build, dict) and int(build.get("render_version", 1)) >= 2
    return FaceInputConfig(
        size=spec.size, fit=FitConfig(**fit) if fit else FitConfig(), colour=colour
    )


def _process_image(
    path: Path, run: _Loaded, config: InferConfig, out: Path
) -> tuple[int, list[str], Path]:
    """De-occlude one photo and write its outputs.

    Returns:
        ``(faces processed, problem lines, the de-occluded photo written)``.

    Raises:
        SkipInput: unreadable image, or no sidecar for ``pts`` / ``mat``.
    """
    photo = read_image(path)
    found = landmarks_for(path, photo, config.landmarks_from, run.detector)
    r = deocclude(
        photo,
        run.G,
        run.spec,
        run.model,
        None,
        run.device,
        landmarks=[f.landmarks for f in found],
        expression=config.expression,
        config=run.face_config,
    )
    problems = [] if r.faces or r.skipped else [f"{path}: no face found"]
    problems += [f"{path} {s}" for s in r.skipped]
    for k, fo in enumerate(r.faces):
        _write_face(out / f"{path.stem}_face{k}", fo, run.model, config)
    dst = write_image(out / f"{path.stem}_deoccluded.png", r.image)
    if config.side_by_side:
        write_image(out / f"{path.stem}_side_by_side.png", np.concatenate([photo, r.image], 1))
    return len(r.faces), problems, dst


def _write_face(stem: Path, fo: FaceOutput, model: MorphableModel, config: InferConfig) -> None:
    """``<stem>_crop.png``, ``_render.png``, ``_output.png``, and the meshes when asked.

    ``--mesh``, ``--detail``, ``--compare-occluded``: :func:`deocc_core.recon.write_face_meshes`.
    """
    write_image(f"{stem}_crop.png", fo.face.crop)
    write_image(f"{stem}_render.png", fo.face.render)
    write_image(f"{stem}_output.png", fo.output)
    if config.mesh or config.detail or config.compare_occluded:
        mesh = MeshConfig(
            detail=config.detail, compare_occluded=config.compare_occluded, uv=config.uv
        )
        write_face_meshes(stem, fo.face, fo.output, model, mesh)
