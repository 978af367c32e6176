"""Photo + landmarks → the generator's conditioning: the one path training data and inference share.

:func:`prepare_face` crops the face (:func:`deocc_core.face.align.align_face`), fits the 3DMM
to the crop's landmarks and renders it: the crop, the render and the face region M are
exactly what ``synth-occ build`` stores in a shard and what ``deocc-infer`` feeds G, so a
change here changes both.

The render carries the photo's colour and light (``FaceInputConfig.colour``): the face's
skin colour and second-order SH light are estimated robustly from the crop
(:func:`deocc_core.render.light.estimate_face_light`, which ignores occluders, hair and
background) and the model's albedo (or, for shape-only models, the per-vertex skin field of
:func:`deocc_core.render.skin.skin_field`) is shaded with them. :func:`relight_face`
re-estimates them from another image of the same crop: the synthetic pipeline prepares
the clean face (the occluder's placement needs its fit), composites the occluder, then
relights from the composite, so G's render never sees the skin the occluder hides (at
inference the photo is the composite).

A fit whose landmark residual exceeds ``FaceInputConfig.max_fit_nme`` is refused with
:class:`~deocc_core.errors.SkipInput` ("implausible landmarks"): a landmark set no face of
the model can produce (a failed detection) must not be de-occluded with a wrong render.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from deocc_core.errors import InputError, SkipInput
from deocc_core.face.align import align_face
from deocc_core.morphable.camera import project, rotation_angles, rotation_matrix
from deocc_core.morphable.fit import FitConfig, FitResult, fit_landmarks, landmark_nme
from deocc_core.morphable.model import MorphableModel
from deocc_core.morphable.params import FitParams, Pose
from deocc_core.render.complete import CompletedTexture, complete_texture, render_textured
from deocc_core.render.face import RenderResult, covered_to_uint8, render_face
from deocc_core.render.light import (
    FaceSamples,
    LightConfig,
    LightEstimate,
    estimate_face_light,
    estimate_light,
)
from deocc_core.render.raster import interpolate
from deocc_core.render.shading import shade_sh, vertex_normals
from deocc_core.render.skin import skin_field
from deocc_core.timing import stage

__all__ = [
    "FaceInputConfig",
    "FaceInput",
    "prepare_face",
    "rerender_face",
    "relight_face",
    "refit_face",
    "colour_render",
    "MAX_FIT_NME",
    "params_to_crop",
]

log = logging.getLogger(__name__)

#: fits with a larger landmark residual (``FitResult.nme``: mean error / sqrt of the landmark
#: box area) are refused; see ``FaceInputConfig.max_fit_nme`` for the measurements
MAX_FIT_NME = 0.08


@dataclass(frozen=True)
class FaceInputConfig:
    """How a face becomes G's input.

    Attributes:
        size: crop side, pixels (the shards' resolution; G's input size).
        fit: the landmark-fitting options (a build records them in its config; a run keeps
            its shards' config, so inference fits the same way).
        colour: render with the photo's skin colour and SH light (estimated robustly from
            the crop); False: the model's albedo (or a constant skin tone) under a fixed light.
        light: the light estimator's options.
        max_fit_nme: refuse faces whose 3DMM fit leaves a larger landmark residual
            (``FitResult.nme``, face sizes). Measured on the 15 labelled shared faces (256 px
            crops, starter model): the labels fit to 0.014-0.045 (median 0.028; Surrey
            0.019-0.027), MediaPipe's landmarks on the occluded copies to a median 0.023; the
            labels plus 5 % (of the face size) noise to at most 0.065, plus 10 % noise to a
            median 0.085, with eyes and mouth swapped to 0.096-0.156, shuffled to >= 0.24.
    """

    size: int = 256
    fit: FitConfig = field(default_factory=FitConfig)
    colour: bool = True
    light: LightConfig = field(default_factory=LightConfig)
    max_fit_nme: float = MAX_FIT_NME


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
        light: the estimated light and skin colour, or None (``colour`` off, or too little
            visible skin to estimate: then the model's albedo under the default light).
        light_samples: the face samples ``light`` was estimated from (its ``weights`` line
            up with them), or None; the occluder scene takes the skin colour from them
            instead of estimating the same light again.
        texture: for a model with a texture model (deocc-face), the completed albedo the
            render was shaded with (:func:`deocc_core.render.complete.complete_texture`:
            fitted to the visible skin only, mirrored, completed by the model), else None.
    """

    crop: npt.NDArray[np.uint8]
    landmarks: npt.NDArray[np.float32]
    matrix: npt.NDArray[np.float64]
    inverse: npt.NDArray[np.float64]
    fit: FitResult
    render: npt.NDArray[np.uint8]
    face_mask: npt.NDArray[np.uint8]
    render_result: RenderResult
    light: LightEstimate | None = None
    light_samples: FaceSamples | None = None
    texture: CompletedTexture | None = None


def prepare_face(
    image: npt.NDArray[np.uint8],
    landmarks: npt.NDArray[np.floating],
    model: MorphableModel,
    config: FaceInputConfig,
    *,
    params: FitParams | None = None,
) -> FaceInput:
    """Crop, fit and render one face of a photo.

    Args:
        image: ``[H, W, 3]`` uint8 RGB photo.
        landmarks: ``[68, 2]`` iBUG landmarks in photo pixels.
        model: the 3DMM to fit and render.
        config: crop size and fit options.
        params: the face's 3DMM parameters in photo pixels when known (a dataset's own fit,
            e.g. 300W-LP's): moved into the crop (:func:`params_to_crop`) and rendered
            instead of fitting; ``fit`` then reports their landmark residual (0 iterations)
            and is not refused as implausible.

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
    with stage("align"):
        aligned = align_face(image, landmarks, config.size)
    with stage("fit"):
        if params is None:
            fit = fit_landmarks(model, aligned.landmarks, config=config.fit)
        else:
            fit = _given_fit(model, params_to_crop(params, aligned.matrix), aligned.landmarks)
    if params is None and not fit.nme <= config.max_fit_nme:
        raise SkipInput(
            "implausible landmarks",
            f"3DMM fit residual {fit.nme:.3f} > {config.max_fit_nme} (face sizes)",
        )
    rr, light, samples, tex = _colour_render(model, fit.params, aligned.image, config)
    return FaceInput(
        aligned.image,
        aligned.landmarks,
        aligned.matrix,
        aligned.inverse,
        fit,
        rr.image,
        rr.mask,
        rr,
        light,
        samples,
        tex,
    )


def colour_render(
    model: MorphableModel,
    params: FitParams,
    image: npt.NDArray[np.uint8],
    config: FaceInputConfig,
    light: LightEstimate | None = None,
) -> tuple[RenderResult, LightEstimate | None]:
    """Render the model with the skin colour and light of ``image`` (a crop of the face).

    Args:
        model: the 3DMM.
        params: the fitted parameters (crop pixels).
        image: ``[H, W, 3]`` uint8 RGB the light is estimated from (the crop, or a whole
            photo); the render has its size.
        config: ``colour`` and ``light`` options.
        light: use this estimate instead of estimating one (e.g. an expression edit keeps
            the photo's light).

    Returns:
        ``(render, light)``; ``light`` is None when ``config.colour`` is off or the crop shows
        too little skin (then the render is the plain one of :func:`render_face`).

    Example:
        >>> from deocc_core.morphable.model import load_model
        >>> from deocc_core.morphable.params import Pose
        >>> m = load_model("starter")
        >>> p = FitParams(np.zeros(m.n_id), np.zeros(m.n_exp), Pose(0.25, 0, 0, 0, 32, 32))
        >>> crop = np.full((64, 64, 3), 150, np.uint8)
        >>> rr, est = colour_render(m, p, crop, FaceInputConfig(size=64))
        >>> rr.image.shape, est.sh.shape
        ((64, 64, 3), (9, 3))
    """
    rr, light, _, _ = _colour_render(model, params, image, config, light)
    return rr, light


def _colour_render(
    model: MorphableModel,
    params: FitParams,
    image: npt.NDArray[np.uint8],
    config: FaceInputConfig,
    light: LightEstimate | None = None,
    *,
    render: RenderResult | None = None,
    samples: FaceSamples | None = None,
    texture: CompletedTexture | None = None,
) -> tuple[RenderResult, LightEstimate | None, FaceSamples | None, CompletedTexture | None]:
    """:func:`colour_render`, the new light estimate's samples and the completed texture.

    The samples are None when no new estimate was made; the texture is None for models
    without a texture model.

    ``texture``: shade this completed albedo instead of completing one from ``image`` (an
    expression edit keeps the face's texture).
    ``render``: the render of these ``params`` at this size, already made (not redone);
    ``samples``: the face samples of that render's raster for another image of the same
    crop: only their colours are taken anew from ``image`` (the normals, albedo and prior
    weights interpolated over the raster are the same), so the estimate equals
    :func:`~deocc_core.render.light.estimate_face_light` on ``image``.
    """
    h, w = image.shape[:2]
    if render is None:
        with stage("render"):
            rr = render_face(model, params, h, w)
    else:
        rr = render
    if not config.colour:
        return rr, None, None, None
    field = skin_field(model)
    verts = model.vertices(params.id_coef, params.exp_coef)
    rot = rotation_matrix(params.pose.pitch, params.pose.yaw, params.pose.roll)
    normals = vertex_normals(verts, model.triangles)  # model space, outward
    basis = model.albedo_basis if model.albedo_basis is not None and model.has_albedo else None
    if model.texture_mean is not None:
        # the completion fits the albedo itself (robustly, per texel): the light estimate
        # needs only the mean albedo (and is 2x faster without the 40 modes)
        basis = None
    if light is None:
        try:
            with stage("light"):
                if samples is not None:
                    rows, cols = samples.pixels[:, 0], samples.pixels[:, 1]
                    samples = replace(samples, colors=image[rows, cols].astype(np.float32) / 255.0)
                    light = estimate_light(
                        samples.colors,
                        samples.normals,
                        samples.albedo,
                        samples.weights,
                        prior=samples.prior,
                        albedo_basis=samples.albedo_basis,
                        albedo_std=model.albedo_std if basis is not None else None,
                        config=config.light,
                        basis=samples.sh_basis,
                    )
                else:
                    light, samples = estimate_face_light(
                        image,
                        rr.raster,
                        normals @ rot.T.astype(np.float32),
                        field.albedo,
                        field.weights,
                        vertex_prior=field.prior,
                        albedo_basis=basis,
                        albedo_std=model.albedo_std if basis is not None else None,
                        config=config.light,
                    )
        except InputError as e:  # a face mostly outside the crop: keep the plain render
            log.debug("no light estimate (%s): default render", e)
            return rr, None, None, None
    if model.texture_mean is not None and model.uv is not None:
        # the person's own face: albedo fitted to the visible skin, completed where hidden
        cam_normals = normals @ rot.T.astype(np.float32)
        with stage("texture"):
            if texture is None:
                texture = complete_texture(
                    image, model, rr.raster, rr.projected, cam_normals, light
                )
            out = render_textured(rr.raster, model.uv, texture.albedo, cam_normals, light)
        return replace(rr, image=out), light, samples, texture
    albedo = field.albedo
    if light.albedo_coef is not None and basis is not None:
        albedo = np.clip(albedo + (basis @ light.albedo_coef).reshape(-1, 3), 0.0, 1.0)
    colours = shade_sh(albedo * light.gain[None, :], normals, light.sh, rotation=rot)
    out = np.zeros((h, w, 3), np.uint8)
    covered_to_uint8(interpolate(rr.raster, colours), rr.raster.tri_id, out)
    return replace(rr, image=out), light, samples, None


def params_to_crop(params: FitParams, matrix: npt.ArrayLike) -> FitParams:
    """Photo-pixel parameters → the parameters of the same face in a crop.

    ``matrix`` is a similarity ``[2, 3]`` photo → crop (:func:`~deocc_core.face.align.
    crop_matrix`: ``k Q`` with a rotation ``Q`` by θ in image coordinates, y down). The crop
    projection ``k Q (s F (R v)_xy + t) + m_t`` (F flips y) equals a camera of scale ``k s``,
    rotation ``Rz(-θ) R`` (θ seen in model space, y up) and shift ``matrix @ [t, 1]``;
    depth scales with ``k``.

    Example:
        >>> p = FitParams(np.zeros(1), np.zeros(0), Pose(2.0, 0.1, 0.2, 0.3, 50.0, 60.0))
        >>> m = np.array([[0.0, -0.5, 100.0], [0.5, 0.0, 10.0]])  # x 0.5, 90 degrees
        >>> q = params_to_crop(p, m).pose
        >>> round(q.scale, 3), round(q.tx, 3), round(q.ty, 3)
        (1.0, 70.0, 35.0)
    """
    m = np.asarray(matrix, np.float64)
    k = float(np.hypot(m[0, 0], m[1, 0]))
    theta = float(np.arctan2(m[1, 0], m[0, 0]))
    p = params.pose
    r = rotation_matrix(0.0, 0.0, -theta) @ rotation_matrix(p.pitch, p.yaw, p.roll)
    pitch, yaw, roll = rotation_angles(r)
    tx, ty = m[:, :2] @ [p.tx, p.ty] + m[:, 2]
    pose = Pose(k * p.scale, pitch, yaw, roll, float(tx), float(ty))
    return FitParams(params.id_coef, params.exp_coef, pose)


def _given_fit(
    model: MorphableModel, params: FitParams, landmarks: npt.NDArray[np.float32]
) -> FitResult:
    """A :class:`FitResult` for known parameters: their landmark residual, no iterations."""
    verts = model.vertices(params.id_coef, params.exp_coef)
    ids = np.asarray(model.landmarks68, np.int32)
    projected = project(verts[ids], params.pose)[:, :2]
    residual = np.linalg.norm(projected - landmarks, axis=1).astype(np.float32)
    return FitResult(
        params,
        projected.astype(np.float32),
        ids,
        float(residual.mean()),
        residual,
        landmark_nme(projected, landmarks),
        0,
        True,
    )


def refit_face(
    face: FaceInput,
    landmarks: npt.NDArray[np.floating],
    image: npt.NDArray[np.uint8],
    model: MorphableModel,
    config: FaceInputConfig,
) -> FaceInput:
    """The same crop fitted to other landmarks (crop pixels) and rendered with ``image``'s light.

    The synthetic pipeline's "train like you test" option: the render is fitted to the
    landmarks a detector finds on the occluded composite ``image``, as at inference.

    Args:
        face: a prepared face (its crop and crop transform are kept).
        landmarks: ``[68, 2]`` landmarks in crop pixels.
        image: ``[S, S, 3]`` uint8 RGB the light is estimated from (the composite).
        model: the 3DMM.
        config: the config ``face`` was prepared with.

    Returns:
        ``face`` with ``landmarks``, ``fit``, ``render``, ``face_mask``, ``render_result``
        and ``light`` replaced.

    Raises:
        SkipInput: the fit's residual exceeds ``config.max_fit_nme``.
    """
    lm = np.asarray(landmarks, np.float32)
    fit = fit_landmarks(model, lm, config=config.fit)
    if not fit.nme <= config.max_fit_nme:
        raise SkipInput(
            "implausible landmarks",
            f"3DMM fit residual {fit.nme:.3f} > {config.max_fit_nme} (face sizes)",
        )
    rr, light, samples, tex = _colour_render(model, fit.params, image, config)
    return replace(
        face,
        landmarks=lm,
        fit=fit,
        render=rr.image,
        face_mask=rr.mask,
        render_result=rr,
        light=light,
        light_samples=samples,
        texture=tex,
    )


def relight_face(
    face: FaceInput, image: npt.NDArray[np.uint8], model: MorphableModel, config: FaceInputConfig
) -> FaceInput:
    """The same face and fit, its render's colour and light re-estimated from ``image``.

    Args:
        face: a prepared face.
        image: ``[S, S, 3]`` uint8 RGB, another image of the same crop (the occluded
            composite: what G will see).
        model: its 3DMM.
        config: the config ``face`` was prepared with.

    Returns:
        ``face`` with ``render``, ``render_result`` and ``light`` replaced.
    """
    rr, light, samples, tex = _colour_render(
        model,
        face.fit.params,
        image,
        config,
        render=face.render_result if image.shape == face.crop.shape else None,
        samples=face.light_samples if image.shape == face.crop.shape else None,
    )
    return replace(
        face, render=rr.image, render_result=rr, light=light, light_samples=samples, texture=tex
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
        ``face`` with ``fit.params``, ``render``, ``face_mask`` and ``render_result`` replaced
        (the render keeps the face's estimated light and skin colour).
    """
    rr, light, _, tex = _colour_render(
        model, params, face.crop, config, light=face.light, texture=face.texture
    )
    return replace(
        face,
        fit=replace(face.fit, params=params),
        render=rr.image,
        face_mask=rr.mask,
        render_result=rr,
        light=light,
        light_samples=None,  # they belong to the old raster
        texture=tex,
    )
