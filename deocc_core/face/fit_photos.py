"""Fit the 3DMM to the faces of photos and write what a user inspects (``synth-occ fit``).

Per face: ``<stem>_params.json`` (angles in degrees, coefficients, landmark error),
``<stem>_render.png`` (the fit rendered over black at the photo's size, with the photo's skin
colour and light, as ``deocc-infer`` renders it),
``<stem>_overlay.png`` (render blended on the photo, landmarks in green) and ``<stem>.obj``
(the fitted mesh with the model's albedo). ``<stem>`` is the photo's path below the folder
the photos share, without suffix (usually its stem), ``_k`` added for the k-th face (k > 0).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from deocc_core.errors import InputError, SkipInput
from deocc_core.face.prepare import FaceInputConfig, colour_render
from deocc_core.fileio import output_names, write_error, write_text_atomic
from deocc_core.imageio import read_image, write_image
from deocc_core.landmarks.detect import DEFAULT_BACKEND
from deocc_core.landmarks.find import LazyDetector, landmarks_for
from deocc_core.morphable.fit import FitConfig, FitResult, fit_landmarks
from deocc_core.morphable.model import MorphableModel
from deocc_core.render.obj import write_obj

__all__ = ["PhotoFit", "FitRun", "fit_photos", "fit_record"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PhotoFit:
    """One fitted face: the photo, the output stem and the fit."""

    image: Path
    stem: Path
    fit: FitResult


def fit_record(image: Path, model: MorphableModel, fit: FitResult) -> dict[str, Any]:
    """The ``_params.json`` content of one fit (angles in degrees, pixels)."""
    p, pose = fit.params, fit.params.pose
    return {
        "image": str(image),
        "model": model.name,
        "angles_deg": pose.degrees(),
        "scale": pose.scale,
        "translation": [pose.tx, pose.ty],
        "id_coef": p.id_coef.tolist(),
        "exp_coef": p.exp_coef.tolist(),
        "landmark_error_px": fit.error_px,
        "nme": fit.nme,
        "landmark_residual_px": np.round(fit.residual_px, 3).tolist(),
        "iterations": fit.iterations,
        "converged": fit.converged,
        "vertex_ids": fit.vertex_ids.tolist(),
    }


def _overlay(
    image: npt.NDArray[np.uint8], render: npt.NDArray[np.uint8], mask: npt.NDArray[np.uint8], lm
) -> npt.NDArray[np.uint8]:
    out = image.copy()
    blend = mask > 0
    out[blend] = (0.5 * image[blend] + 0.5 * render[blend]).astype(np.uint8)
    for x, y in lm.astype(int):
        cv2.circle(out, (int(x), int(y)), 2, (0, 255, 0), -1)
    return out


@dataclass(frozen=True)
class FitRun:
    """What :func:`fit_photos` did: the fitted faces and the photos skipped, with the reason."""

    fits: list[PhotoFit]
    skipped: list[tuple[str, str]]


def fit_photos(
    images: Iterable[Path],
    model: MorphableModel,
    out: Path,
    landmarks_from: str = "detector",
    config: FitConfig | None = None,
    progress: Callable[..., None] | None = None,
) -> FitRun:
    """Fit every face of every photo and write the files listed in the module docstring.

    A photo that yields nothing (unreadable, too small, no face, a missing or broken
    sidecar) is skipped with its reason. Output names keep each photo's path below the
    folder the photos share (:func:`deocc_core.fileio.output_names`), so ``a/face.jpg``
    and ``b/face.jpg`` do not overwrite each other.

    Args:
        images: photo files.
        model: the 3DMM.
        out: output folder (must exist).
        landmarks_from: see :func:`deocc_core.landmarks.find.landmarks_for` (the detector
            is the default backend's, built on first use).
        config: fit options (default: the defaults).
        progress: called with 1 per photo.

    Raises:
        InputError: an output cannot be written (disk full, permission denied): the path
            and the reason; that face's files are removed.
    """
    config = config or FitConfig()
    detector = LazyDetector(DEFAULT_BACKEND)
    fits, skipped = [], []
    for path, name in output_names(list(images)):
        try:
            img = read_image(path)
            found = landmarks_for(path, img, landmarks_from, detector)
            if not found:
                raise SkipInput("no face found", str(path))
            results = [
                (f.landmarks, fit_landmarks(model, f.landmarks, config=config)) for f in found
            ]
        except SkipInput as e:
            skipped.append((str(path), e.reason))
            log.debug("skipped %s: %s", path, e)
        except InputError as e:  # landmarks the fit cannot use (e.g. all in one point)
            skipped.append((str(path), "fit failed"))
            log.debug("skipped %s: %s", path, e)
        else:
            for k, (lm, r) in enumerate(results):
                stem = out / (name + (f"_{k}" if k else ""))
                _write_fit(stem, path, img, lm, r, model)
                fits.append(PhotoFit(path, stem, r))
        if progress:
            progress(1)
    return FitRun(fits, skipped)


def _write_fit(
    stem: Path, path: Path, img: npt.NDArray[np.uint8], lm, r: FitResult, model: MorphableModel
) -> None:
    """The four files of one fitted face; all or none of them."""
    written: list[Path] = []
    try:
        try:
            stem.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise write_error(stem.parent, e, "create folder") from None
        # the render inference makes: the photo's skin colour and light (robust estimate)
        rend, _ = colour_render(model, r.params, img, FaceInputConfig())
        written.append(write_image(f"{stem}_render.png", rend.image))
        written.append(write_image(f"{stem}_overlay.png", _overlay(img, rend.image, rend.mask, lm)))
        v = model.vertices(r.params.id_coef, r.params.exp_coef)
        obj = Path(f"{stem}.obj")
        written.append(obj)
        try:
            write_obj(obj, v, model.triangles, model.albedo())
        except OSError as e:
            raise write_error(obj, e) from None
        written.append(
            write_text_atomic(
                f"{stem}_params.json", json.dumps(fit_record(path, model, r), indent=1)
            )
        )
    except InputError:
        for p in written:
            p.unlink(missing_ok=True)
        raise
