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
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from deocc_core.device import resolve_device
from deocc_core.errors import ConfigError, InputError
from deocc_core.infer.pipeline import deocclude, expression_coefficients, vertex_colors
from deocc_core.nets.io import load_generator, prepare_generator

__all__ = ["InferConfig", "InferResult", "list_images", "run_inference", "LANDMARK_SOURCES"]

log = logging.getLogger(__name__)
LANDMARK_SOURCES = ("detector", "pts", "mat")


@dataclass(frozen=True)
class InferConfig:
    """Attributes:
    inputs: image files and/or folders (searched recursively; ``*_gt`` images skipped).
    ckpt: checkpoint file or run folder. out: output folder.
    model: 3DMM path or "starter"; None = the one recorded in the checkpoint (starter only).
    landmarks_from: detector | pts | mat. backend: detector backend (dlib | fan).
    mesh: also write ``<stem>_face<k>.obj`` coloured by the de-occluded crop.
    expression: keep | neutral | smile | open | surprise | JSON file (see expression_coefficients).
    side_by_side: also write ``<stem>_side_by_side.png`` (input | output).
    device: auto | cpu | cuda.
    """

    inputs: tuple[str, ...]
    ckpt: str
    out: str
    model: str | None = None
    landmarks_from: str = "detector"
    backend: str = "dlib"
    mesh: bool = False
    expression: str = "keep"
    side_by_side: bool = False
    device: str = "auto"


@dataclass(frozen=True)
class InferResult:
    """Attributes:
    n_images: images processed (readable or not). n_faces: faces de-occluded.
    problems: one line per skipped image or face. outputs: the de-occluded photos written.
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
    from deocc_core.imageio import IMAGE_SUFFIXES

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
        config: what to run. progress: called ``progress(0, total=n_images)`` then ``progress(1)`` per image.

    Raises:
        InputError: no images found. ConfigError: unknown landmark source, expression preset
            the model lacks, or a checkpoint trained with a non-starter model but no ``model``.
        FormatError: unreadable checkpoint (from load_generator).
    """
    from deocc_core.errors import SkipInput
    from deocc_core.imageio import read_image
    from deocc_core.landmarks.readers import find_annotation, read_annotation
    from deocc_core.morphable.model import load_model
    from deocc_core.render import write_obj

    if config.landmarks_from not in LANDMARK_SOURCES:
        raise ConfigError(
            f"landmarks_from must be one of {', '.join(LANDMARK_SOURCES)}, got {config.landmarks_from!r}"
        )
    images = list_images(config.inputs)
    if not images:
        raise InputError(f"{', '.join(config.inputs)}: no images found")
    dev = resolve_device(config.device)
    G, spec, info = load_generator(config.ckpt, dev)
    G = prepare_generator(G)
    data_model = info.get("data_model", {}) or {}
    model_spec = config.model
    if model_spec is None:
        if data_model.get("name") not in (None, "deocc-starter"):
            raise ConfigError(
                f"{config.ckpt}: trained on shards built with model {data_model['name']!r}: pass the model path"
            )
        model_spec = "starter"
    model = load_model(model_spec)
    if data_model.get("sha256") and data_model["sha256"] != model.sha256:
        log.warning(
            "%s differs from the model the training shards used (%s): renders will not match training",
            model_spec,
            data_model.get("name"),
        )
    expression_coefficients(model, config.expression)  # fail early on a bad preset / file
    detector = None
    if config.landmarks_from == "detector":
        from deocc_core.landmarks.detect import make_detector

        detector = make_detector(config.backend)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    if progress:
        progress(0, total=len(images))
    n_faces, problems, outputs = 0, [], []
    for path in images:
        try:
            photo = read_image(path)
        except SkipInput as e:
            problems.append(f"{path}: unreadable image ({e})")
            if progress:
                progress(1)
            continue
        landmarks = None
        if detector is None:
            ann = path.with_suffix("." + config.landmarks_from)
            ann = ann if ann.is_file() else find_annotation(path)
            if ann is None:
                problems.append(f"{path}: no .{config.landmarks_from} landmarks beside it")
                if progress:
                    progress(1)
                continue
            landmarks = [read_annotation(ann)]
        r = deocclude(
            photo, G, spec, model, detector, dev, landmarks=landmarks, expression=config.expression
        )
        if not r.faces and not r.skipped:
            problems.append(f"{path}: no face found")
        problems += [f"{path} {s}" for s in r.skipped]
        for k, fo in enumerate(r.faces):
            stem = out / f"{path.stem}_face{k}"
            cv2.imwrite(f"{stem}_crop.png", fo.crop[:, :, ::-1])
            cv2.imwrite(f"{stem}_render.png", fo.render[:, :, ::-1])
            cv2.imwrite(f"{stem}_output.png", fo.output[:, :, ::-1])
            if config.mesh:
                rr = fo.render_result
                cols = vertex_colors(rr.projected, rr.visible, fo.output, model.albedo())
                write_obj(
                    f"{stem}.obj",
                    model.vertices(fo.fit.params.id_coef, fo.fit.params.exp_coef),
                    model.triangles,
                    cols,
                )
        n_faces += len(r.faces)
        dst = out / f"{path.stem}_deoccluded.png"
        cv2.imwrite(str(dst), r.image[:, :, ::-1])
        outputs.append(dst)
        if config.side_by_side:
            cv2.imwrite(
                str(out / f"{path.stem}_side_by_side.png"),
                np.concatenate([photo, r.image], 1)[:, :, ::-1],
            )
        if progress:
            progress(1)
    log.info("%d face(s) in %d image(s), %d problem(s)", n_faces, len(images), len(problems))
    return InferResult(len(images), n_faces, tuple(problems), tuple(outputs))
