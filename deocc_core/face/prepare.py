"""Photo + landmarks → the generator's conditioning: the one path training data and inference share.

:func:`prepare_face` crops the face (:func:`deocc_core.face.align.align_face`), fits the 3DMM
to the crop's landmarks and renders it: the crop, the render and the face region M are
exactly what ``synth-occ build`` stores in a shard and what ``deocc-infer`` feeds G, so a
change here changes both.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from deocc_core.face.align import align_face
from deocc_core.morphable.fit import FitConfig, FitResult, fit_landmarks
from deocc_core.morphable.model import MorphableModel
from deocc_core.morphable.params import FitParams
from deocc_core.render.face import RenderResult, render_face

__all__ = ["FaceInputConfig", "FaceInput", "prepare_face", "rerender_face"]


@dataclass(frozen=True)
class FaceInputConfig:
    """How a face becomes G's input.

    Attributes:
        size: crop side, pixels (the shards' resolution; G's input size).
        fit: the landmark-fitting options (a build records them in its config; a run keeps
            its shards' config, so inference fits the same way).
    """

    size: int = 256
    fit: FitConfig = field(default_factory=FitConfig)


@dataclass(frozen=True)
class FaceInput:
    """One face, cropped, fitted and rendered.

    Attributes:
        crop: ``[S, S, 3]`` uint8 RGB aligned crop (a shard's ``gt`` before occlusion).
        landmarks: ``[68, 2]`` float32 landmarks in crop pixels.
        matrix: ``[2, 3]`` float64 photo → crop. inverse: ``[2, 3]`` float64 crop → photo.
        fit: the 3DMM fit to ``landmarks`` (``fit.params`` are the rendered parameters).
        render: ``[S, S, 3]`` uint8 RGB 3DMM render (G's second input).
        face_mask: ``[S, S]`` uint8 0/255, the render's silhouette M.
        render_result: the full render (depth, triangle ids, projected and visible vertices).
    """

    crop: npt.NDArray[np.uint8]
    landmarks: npt.NDArray[np.float32]
    matrix: npt.NDArray[np.float64]
    inverse: npt.NDArray[np.float64]
    fit: FitResult
    render: npt.NDArray[np.uint8]
    face_mask: npt.NDArray[np.uint8]
    render_result: RenderResult


def prepare_face(
    image: npt.NDArray[np.uint8],
    landmarks: npt.NDArray[np.floating],
    model: MorphableModel,
    config: FaceInputConfig,
) -> FaceInput:
    """Crop, fit and render one face of a photo.

    Args:
        image: ``[H, W, 3]`` uint8 RGB photo.
        landmarks: ``[68, 2]`` iBUG landmarks in photo pixels.
        model: the 3DMM to fit and render.
        config: crop size and fit options.

    Returns:
        :class:`FaceInput`.

    Example:
        >>> from deocc_core.morphable.model import load_model
        >>> m = load_model("starter")
        >>> landmarks = m.mean[m.landmarks68, :2] * [1, -1] + 150  # a frontal face, y down
        >>> photo = np.full((300, 300, 3), 90, np.uint8)
        >>> f = prepare_face(photo, landmarks, m, FaceInputConfig(size=64))
        >>> f.crop.shape, f.render.shape, f.face_mask.shape, int(f.face_mask.max())
        ((64, 64, 3), (64, 64, 3), (64, 64), 255)
    """
    aligned = align_face(image, landmarks, config.size)
    fit = fit_landmarks(model, aligned.landmarks, config=config.fit)
    rr = render_face(model, fit.params, config.size, config.size)
    return FaceInput(
        aligned.image,
        aligned.landmarks,
        aligned.matrix,
        aligned.inverse,
        fit,
        rr.image,
        rr.mask,
        rr,
    )


def rerender_face(
    face: FaceInput, model: MorphableModel, params: FitParams, config: FaceInputConfig
) -> FaceInput:
    """The same crop with the 3DMM rendered at other parameters (e.g. an expression edit).

    Args:
        face: a prepared face.
        model: its 3DMM.
        params: the parameters to render.
        config: the config ``face`` was prepared with.

    Returns:
        ``face`` with ``fit.params``, ``render``, ``face_mask`` and ``render_result`` replaced.
    """
    rr = render_face(model, params, config.size, config.size)
    return replace(
        face,
        fit=replace(face.fit, params=params),
        render=rr.image,
        face_mask=rr.mask,
        render_result=rr,
    )
