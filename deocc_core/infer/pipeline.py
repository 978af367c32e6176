"""Photo in, de-occluded photo out: detect → align → fit the 3DMM → render → G → paste back.

G's occlusion mask m̂ says where the output replaces the photo (:mod:`deocc_core.infer.paste`).
A given-mask G (``blend="given"``) is told the mask instead: the segmenter's m̂ or the
user's; the mask is prefilled with the completed render of the face G was prepared with
(:func:`deocc_core.infer.fill.prefill`) and G refines it.

Also: the fitted mesh coloured by the de-occluded face (OBJ), and expression editing (change
the 3DMM expression, re-render, re-run G: the paper's attribute manipulation).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from deocc_core.check import check_array
from deocc_core.errors import ConfigError, InputError
from deocc_core.face.prepare import FaceInput, FaceInputConfig, prepare_face, rerender_face
from deocc_core.infer.fill import FILLS, prefill, render_fill, segmenter_mask
from deocc_core.infer.paste import (
    PasteConfig,
    paste_given,
    paste_into,
    paste_region,
    paste_weight,
    replaced_pixels,
)
from deocc_core.morphable.model import MorphableModel
from deocc_core.morphable.params import FitParams
from deocc_core.nets.io import GeneratorSpec, run_generator
from deocc_core.nets.segmenter import run_segmenter

__all__ = [
    "FaceOutput",
    "PhotoOutput",
    "check_fill",
    "check_given",
    "deocclude",
    "deocclude_face",
    "expression_coefficients",
    "given_fill",
    "MIN_FACE_PX",
    "segmented_output",
]

log = logging.getLogger(__name__)
MIN_FACE_PX = 24  # landmark boxes smaller than this are reported, not processed
G_BATCH = 8  # faces of one photo per generator call (small layers run better batched)


@dataclass(frozen=True)
class FaceOutput:
    """One processed face.

    Attributes:
        face: G's input: the aligned crop, its inverse transform, the fit, the render, M.
        output: ``[S, S, 3]`` uint8 de-occluded crop: m̂·G + (1−m̂)·crop (a mask-aware or
            given-mask G), else G's output.
        raw: ``[S, S, 3]`` uint8, the fill: G's raw output (equals ``output`` for
            ``blend="none"``), or for ``fill="render"`` deocc-face's completed render
            (colour-matched; G's raw output outside the render's silhouette); for a
            given-mask G its prefill refined by G (``fill="render"``: the prefill).
        mask: ``[S, S]`` uint8 0..255, the region pasted back from: m̂ for a mask-aware G,
            the face silhouette M for ``blend="none"``, the given mask for a given-mask G.
        weight: ``[S, S]`` float32 in [0, 1], the paste-back weight (see
            :func:`deocc_core.infer.paste.paste_weight`).
    """

    face: FaceInput
    output: npt.NDArray[np.uint8]
    raw: npt.NDArray[np.uint8]
    mask: npt.NDArray[np.uint8]
    weight: npt.NDArray[np.float32]


def expression_coefficients(model: MorphableModel, spec: str) -> npt.NDArray[np.float32] | None:
    """Expression coefficients for a preset, a JSON file, or None for ``keep``.

    ``spec``: a preset (``neutral``, ``smile``, ``open``, ``surprise``), or a JSON file
    ``{"mode name": value in std units, ...}``, or a JSON list of ``n_exp`` values in std
    units (for PCA models without mode names).

    Presets use the model's ``exp_names`` (starter: smile / jaw_open / ...; Surrey SFM
    blendshapes: happiness / surprise) at +2 std; a model without a matching name raises.

    Example:
        >>> from deocc_core.morphable.model import load_model
        >>> m = load_model("starter")
        >>> c = expression_coefficients(m, "smile")
        >>> int(np.argmax(c)) == list(m.exp_names).index("smile")
        True
    """
    if spec == "keep":
        return None
    names = [n.lower() for n in model.exp_names]
    presets = {
        "smile": ("smile", "happiness"),
        "open": ("jaw_open", "surprise"),
        "surprise": ("surprise", "jaw_open", "brow_raise"),
    }
    units: dict[str, float] = {}
    if spec == "neutral":
        pass
    elif spec in presets:
        hit = next((n for n in presets[spec] if n in names), None)
        if hit is None:
            modes = ", ".join(model.exp_names) or "none"
            raise ConfigError(
                f"model {model.name} has no expression mode for {spec!r} (modes: {modes})"
            )
        units[hit] = 2.0
    else:
        p = Path(spec)
        if not p.is_file():
            raise InputError(
                f"{spec}: not an expression preset (neutral, smile, open, surprise) nor a JSON file"
            )
        try:
            data = json.loads(p.read_text())
            if isinstance(
                data, list
            ):  # a full vector: works for models without mode names (BFM / 3DDFA PCA)
                vec = np.asarray(data, np.float64)
                if vec.shape != (model.n_exp,):
                    raise InputError(
                        f"{p}: expected {model.n_exp} expression values (std units), got {vec.size}"
                    )
                return (vec * model.exp_std).astype(np.float32)
            units = {k.lower(): float(v) for k, v in data.items()}
        except (ValueError, AttributeError, TypeError) as e:
            raise InputError(
                f"{p}: expected a JSON object {{mode name: value in std units}} or a list of "
                f"{model.n_exp} values ({e})"
            ) from None
        unknown = [k for k in units if k not in names]
        if unknown:
            raise InputError(
                f"{p}: unknown expression modes {', '.join(unknown)} "
                f"(model has {', '.join(model.exp_names)})"
            )
    coef = np.zeros(model.n_exp, np.float32)
    for k, v in units.items():
        i = names.index(k)
        coef[i] = v * model.exp_std[i]
    return coef


def deocclude_face(
    image: npt.NDArray[np.uint8],
    landmarks: npt.NDArray[np.floating],
    G: nn.Module | None,
    spec: GeneratorSpec,
    model: MorphableModel,
    device: torch.device,
    expression: str = "keep",
    *,
    config: FaceInputConfig | None = None,
    paste: PasteConfig | None = None,
    segmenter: nn.Module | None = None,
    fill: str = "g",
    fill_model: MorphableModel | None = None,
) -> FaceOutput:
    """De-occlude one face of a photo (in crop space; :func:`deocclude` pastes it back).

    Args:
        image: ``[H, W, 3]`` uint8 RGB photo.
        landmarks: ``[68, 2]`` photo pixels.
        G: the generator (eval mode); None only for a given-mask G with ``fill="render"``.
        spec: its spec (crop size, render channel or not, blend).
        model: the 3DMM the training shards were built with.
        device: where G runs.
        expression: "keep" or an :func:`expression_coefficients` spec (re-render, re-run G).
        config: how the shards prepared faces (their fit options); default: the defaults at
            ``spec.size``.
        paste: the paste-back region's threshold and feathering.
        segmenter: an occlusion segmenter (:mod:`deocc_core.nets.segmenter`) whose m̂
            replaces G's own mask: output = m̂·G_raw + (1−m̂)·crop, pasted over m̂. A
            given-mask G (``spec.blend == "given"``) needs it: G refines the prefilled m̂.
        fill: what fills m̂: ``"g"`` (G's raw output) or ``"render"`` (the completed render
            of ``fill_model``, :mod:`deocc_core.infer.fill`; for a given-mask G the prefill
            alone, G not run).
        fill_model: the face model whose completed render fills (deocc-face); ``model``
            itself when None.

    Raises:
        InputError: the face is smaller than :data:`MIN_FACE_PX`, or its landmarks are not
            finite (SkipInput: ``fill_model`` cannot fit it).
        ConfigError: ``config.size`` is not G's size; an unknown ``fill``; ``fill="render"``
            with an expression edit or a model without a completed texture; a given-mask G
            with an expression edit or without a segmenter.
    """
    config = config or FaceInputConfig(size=spec.size)
    check_fill(fill, fill_model or model, expression, spec.blend)
    face = _face_input(image, landmarks, spec, model, expression, config)
    if spec.blend == "given":
        return _given_outputs([face], [None], G, spec, device, segmenter, paste, fill)[0]
    filler = _fill_face(image, landmarks, face, model, fill, fill_model, config)
    return _face_outputs([face], [filler], [None], G, spec, device, segmenter, paste)[0]


def check_fill(fill: str, fill_model: MorphableModel, expression: str, blend: str = "mask") -> None:
    """Refuse a fill that cannot be made (before any face is processed).

    For a given-mask G (``blend="given"``) ``"render"`` is its prefill alone, made from the
    render of the face G was prepared with (no second model): only the expression is checked.

    Raises:
        ConfigError: an unknown ``fill``; ``"render"`` with a model without a completed
            texture (not deocc-face) or with an expression edit (not ``"keep"``); a given-mask
            G with an expression edit (:func:`check_given`).

    Example:
        >>> from deocc_core.morphable.model import load_model
        >>> check_fill("render", load_model("deocc-face"), "keep")
    """
    if fill not in FILLS:
        raise ConfigError(f"fill must be one of {', '.join(FILLS)}, got {fill!r}")
    if blend == "given":
        check_given(expression)
        return
    if fill == "render" and fill_model.texture_mean is None:
        raise ConfigError(
            f"fill render needs a face model with a completed texture (deocc-face), "
            f"not {fill_model.name}"
        )
    if fill == "render" and expression != "keep":
        raise ConfigError("fill render shows the face as fitted: use fill g for expression edits")


def check_given(expression: str) -> None:
    """Refuse an expression edit for a given-mask G (before any face is processed).

    Such a G only redraws the masked pixels of the photo as it is: a changed expression
    would show inside the mask and not around it (a smiling mouth under a mask edge, the
    old mouth beside it), so it is refused rather than half made.

    Raises:
        ConfigError: ``expression`` is not ``"keep"``.

    Example:
        >>> check_given("keep")
    """
    if expression != "keep":
        raise ConfigError(
            "a given-mask generator (blend given) redraws only the occluded pixels: expression "
            "edits need a generator that redraws the face (blend mask or none)"
        )


def _fill_face(
    image: npt.NDArray[np.uint8],
    landmarks: npt.NDArray[np.floating],
    face: FaceInput,
    model: MorphableModel,
    fill: str,
    fill_model: MorphableModel | None,
    config: FaceInputConfig,
) -> FaceInput | None:
    """The face prepared with the fill's model (None for ``fill="g"``).

    G's conditioning stays the checkpoint's model; the render for the fill is a second
    preparation with ``fill_model`` unless it is G's model already (then ``face`` itself).
    """
    if fill == "g":
        return None
    if fill_model is None or fill_model.sha256 == model.sha256:
        return face
    other = prepare_face(image, landmarks, fill_model, config)
    # the crop depends on the landmarks only: both preparations see the same pixels
    assert np.allclose(other.matrix, face.matrix)
    return other


def _face_input(
    image: npt.NDArray[np.uint8],
    landmarks: npt.NDArray[np.floating],
    spec: GeneratorSpec,
    model: MorphableModel,
    expression: str,
    config: FaceInputConfig,
) -> FaceInput:
    """G's input for one face (see :func:`deocclude_face` for the checks and errors)."""
    if config.size != spec.size:
        raise ConfigError(f"face crops of {config.size} px for a {spec.size} px generator")
    lm = check_array(np.asarray(landmarks, np.float32), "landmarks", (68, 2))
    if not np.isfinite(lm).all():
        raise InputError("landmarks are not finite numbers")
    side = float(np.ptp(lm, axis=0).max())
    if side < MIN_FACE_PX:  # one decimal: "24 px < 24 px" read as a bug for 23.7
        raise InputError(f"face too small ({side:.1f} px < {MIN_FACE_PX} px)")
    face = prepare_face(image, lm, model, config)
    exp = expression_coefficients(model, expression)
    if exp is not None:
        p = face.fit.params
        face = rerender_face(face, model, FitParams(p.id_coef, exp, p.pose), config)
    return face


def _face_output(
    face: FaceInput,
    output: npt.NDArray[np.uint8],
    raw: npt.NDArray[np.uint8],
    g_mask: npt.NDArray[np.float32],
    spec: GeneratorSpec,
    paste: PasteConfig | None,
    seg_mask: npt.NDArray[np.float32] | None = None,
    filler: FaceInput | None = None,
    given: npt.NDArray[np.bool_] | None = None,
) -> FaceOutput:
    """One face's result from G's ``[S, S, 3]`` output, raw output and ``[S, S]`` mask.

    With a segmenter's ``[S, S]`` m̂ (``seg_mask``), m̂ replaces G's mask: the output is
    m̂·raw + (1−m̂)·crop and the paste-back region is m̂. With ``filler`` (``fill="render"``)
    its completed render replaces ``raw`` (:func:`deocc_core.infer.fill.render_fill`), colour-
    matched around the filled region (``given``: the user's mask in crop space, else m̂).
    """
    if seg_mask is None:
        mask = paste_region(spec.blend, g_mask, face.face_mask)
    else:
        output, mask = segmented_output(face.crop, raw, seg_mask)
    if filler is not None:
        region = given if given is not None else replaced_pixels(mask, paste)
        covered = filler.render_result.raster.covered
        # colour-matched: +1.1..1.7 dB on white masks, -0.4..+0.6 on others (RESULTS)
        raw = render_fill(filler.render, covered, raw, face.crop, region, match=True)
        if seg_mask is not None:
            output, _ = segmented_output(face.crop, raw, seg_mask)
        elif spec.blend == "none":
            output = raw
        else:
            a = g_mask[..., None]
            output = np.round(a * raw + (1 - a) * face.crop).astype(np.uint8)
    return FaceOutput(face, output, raw, mask, paste_weight(mask, paste))


def segmented_output(
    crop: npt.NDArray[np.uint8], raw: npt.NDArray[np.uint8], seg_mask: npt.NDArray[np.float32]
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """G's raw output blended by a segmenter's m̂, and the region it is pasted over.

    Shared by deocc-infer and deocc-eval, so that eval scores what infer delivers.

    Args:
        crop: ``[S, S, 3]`` uint8, G's input crop.
        raw: ``[S, S, 3]`` uint8, G's raw output.
        seg_mask: ``[S, S]`` float32 in [0, 1], the segmenter's m̂.

    Returns:
        ``(m̂·raw + (1−m̂)·crop`` as ``[S, S, 3]`` uint8, m̂ as the ``[S, S]`` uint8 paste
        region of :func:`deocc_core.infer.paste.paste_region`).
    """
    m = seg_mask[..., None]
    output = np.round(m * raw + (1 - m) * crop).astype(np.uint8)
    return output, paste_region("mask", seg_mask, np.zeros(seg_mask.shape, np.uint8))


@dataclass(frozen=True)
class PhotoOutput:
    """One processed photo.

    Attributes:
        image: ``[H, W, 3]`` uint8 RGB photo with every processed face pasted back.
        weight: ``[H, W]`` float32 in [0, 1], how much of each pixel comes from G (the
            largest over the faces); ``image`` equals the photo bit for bit where it is 0.
        faces: the processed faces, in detection order (left to right).
        skipped: one line per face that was found but not processed (e.g. too small).
    """

    image: npt.NDArray[np.uint8]
    weight: npt.NDArray[np.float32]
    faces: tuple[FaceOutput, ...]
    skipped: tuple[str, ...]


def deocclude(
    image: npt.NDArray[np.uint8],
    G: nn.Module | None,
    spec: GeneratorSpec,
    model: MorphableModel,
    detector: object | None,
    device: torch.device,
    *,
    landmarks: list[npt.NDArray[np.floating]] | None = None,
    expression: str = "keep",
    config: FaceInputConfig | None = None,
    paste: PasteConfig | None = None,
    segmenter: nn.Module | None = None,
    mask: npt.NDArray[np.uint8] | None = None,
    fill: str = "g",
    fill_model: MorphableModel | None = None,
) -> PhotoOutput:
    """De-occlude every face of a photo: detect (or take ``landmarks``), process, paste back.

    Args:
        image: ``[H, W, 3]`` uint8 RGB photo.
        G: the generator (eval mode); None only for a given-mask G with ``fill="render"``.
        spec: its spec (from load_generator).
        model: the shards' 3DMM.
        detector: a :func:`deocc_core.landmarks.detect.make_detector` detector; unused when
            ``landmarks`` is given.
        device: where G runs.
        landmarks: the faces' ``[68, 2]`` landmarks in photo pixels (skips the detector).
        expression: see :func:`deocclude_face`.
        config: see :func:`deocclude_face`.
        paste: see :func:`deocclude_face`.
        segmenter: see :func:`deocclude_face`.
        mask: ``[H, W]`` uint8 0..255, the user's occlusion mask: G's raw output fills it
            (:func:`deocc_core.infer.paste.paste_given`) instead of where m̂ says, and every
            pixel outside it stays bit-identical.
        fill: see :func:`deocclude_face` (the render fills the user's ``mask`` too).
        fill_model: see :func:`deocclude_face` (unused for a given-mask G: its own face's
            render fills).

    Returns:
        PhotoOutput; a photo without faces comes back unchanged with no faces (not an error).

    Example:
        >>> from deocc_core.morphable.model import load_model
        >>> from deocc_core.nets.networks import define_generator
        >>> from deocc_core.nets.io import GeneratorSpec
        >>> photo = np.zeros((40, 40, 3), np.uint8)
        >>> r = deocclude(photo, define_generator(64, ngf=8), GeneratorSpec(size=64),
        ...               load_model("starter"), None, torch.device("cpu"), landmarks=[])
        >>> len(r.faces), bool((r.image == photo).all())
        (0, True)
    """
    check_array(image, "image", (None, None, 3), np.uint8)
    if landmarks is None:
        if detector is None:
            raise ConfigError("deocclude: give a detector or the landmarks")
        landmarks = [f.landmarks for f in detector.detect(image)]  # type: ignore[attr-defined]
    config = config or FaceInputConfig(size=spec.size)
    check_fill(fill, fill_model or model, expression, spec.blend)
    given_g = spec.blend == "given"
    inputs, fillers, skipped = [], [], []
    for k, lm in enumerate(landmarks):
        try:
            face = _face_input(image, lm, spec, model, expression, config)
            if not given_g:
                fillers.append(_fill_face(image, lm, face, model, fill, fill_model, config))
            inputs.append(face)
        except InputError as e:
            skipped.append(f"face {k}: {e}")
    # with the user's mask, a segmenter's m̂ is not used
    seg_net = None if mask is not None else segmenter
    if given_g:
        givens = [None if mask is None else _crop_mask(mask, f, 1) for f in inputs]
        faces = _given_outputs(inputs, givens, G, spec, device, seg_net, paste, fill)
    else:
        givens = [
            None if mask is None or fl is None else _crop_mask(mask, f)
            for f, fl in zip(inputs, fillers, strict=True)
        ]
        faces = _face_outputs(inputs, fillers, givens, G, spec, device, seg_net, paste)
    weight = np.zeros(image.shape[:2], np.float32)
    if not faces:
        return PhotoOutput(image, weight, (), tuple(skipped))
    result = image.copy()  # one copy per photo; each face blends in around itself
    for fo in faces:
        if mask is None:
            paste_into(result, weight, fo.output, fo.face.inverse, fo.weight)
        else:  # the user's mask: G's raw fill exactly there, nothing else changes
            result, a = paste_given(result, fo.raw, fo.face.inverse, mask)
            np.maximum(weight, a, out=weight)
    return PhotoOutput(result, weight, tuple(faces), tuple(skipped))


def _face_outputs(
    inputs: list[FaceInput],
    fillers: list[FaceInput | None],
    givens: list[npt.NDArray[np.bool_] | None],
    G: nn.Module,
    spec: GeneratorSpec,
    device: torch.device,
    segmenter: nn.Module | None,
    paste: PasteConfig | None,
) -> list[FaceOutput]:
    """:func:`_face_output` of each prepared face, G and the segmenter run per ``G_BATCH``."""
    faces: list[FaceOutput] = []
    for i in range(0, len(inputs), G_BATCH):  # small layers run better batched
        chunk = inputs[i : i + G_BATCH]
        crops = np.stack([f.crop for f in chunk])
        g = run_generator(G, crops, np.stack([f.render for f in chunk]), spec, device)
        seg = None if segmenter is None else run_segmenter(segmenter, crops, device)
        faces += [
            _face_output(
                f,
                g.output[j],
                g.raw[j],
                g.mask[j],
                spec,
                paste,
                None if seg is None else seg[j],
                fillers[i + j],
                givens[i + j],
            )
            for j, f in enumerate(chunk)
        ]
    return faces


def _given_outputs(
    inputs: list[FaceInput],
    givens: list[npt.NDArray[np.bool_] | None],
    G: nn.Module | None,
    spec: GeneratorSpec,
    device: torch.device,
    segmenter: nn.Module | None,
    paste: PasteConfig | None,
    fill: str,
) -> list[FaceOutput]:
    """A given-mask G's result per prepared face, G and the segmenter run per ``G_BATCH``.

    The mask is the user's (``givens``, crop space) or else the segmenter's m̂ (shaped like
    G's training masks: :func:`deocc_core.infer.fill.segmenter_mask`); the prefill
    fills it with the face's own completed render; G refines it (``fill="render"``: the
    prefill alone). The output is mask·raw + (1 − mask)·crop, pasted over the mask, as the
    segmenter path of the other generators (:func:`segmented_output`).

    Raises:
        ConfigError: no user mask and no segmenter (nothing says where to fill).
    """
    faces: list[FaceOutput] = []
    for i in range(0, len(inputs), G_BATCH):
        chunk = inputs[i : i + G_BATCH]
        crops = np.stack([f.crop for f in chunk])
        masks = _given_masks(crops, givens[i : i + len(chunk)], segmenter, device)
        renders = np.stack([f.render for f in chunk])
        covered = np.stack([f.render_result.raster.covered for f in chunk])
        # fill "render": the completed-render fill alone
        raw = given_fill(crops, renders, covered, masks, G, spec, device, fill != "render")
        for j, f in enumerate(chunk):
            output, region = segmented_output(f.crop, raw[j], masks[j])
            faces.append(FaceOutput(f, output, raw[j], region, paste_weight(region, paste)))
    return faces


def given_fill(
    crops: npt.NDArray[np.uint8],
    renders: npt.NDArray[np.uint8],
    covered: npt.NDArray[np.bool_],
    masks: npt.NDArray[np.floating],
    G: nn.Module | None,
    spec: GeneratorSpec,
    device: torch.device | str,
    refine: bool = True,
) -> npt.NDArray[np.uint8]:
    """A given-mask G's fill of a batch: each crop prefilled in its mask, then refined by G.

    Args:
        crops: ``[B, S, S, 3]`` uint8 RGB occluded crops.
        renders: ``[B, S, S, 3]`` uint8 RGB their completed renders.
        covered: ``[B, S, S]`` bool the renders' silhouettes.
        masks: ``[B, S, S]`` float in [0, 1], what to fill.
        G: the given-mask generator (run by :func:`deocc_core.nets.io.run_generator`;
            None: ``refine`` False).
        spec: its spec.
        device: where it runs.
        refine: False: the prefill alone (``fill="render"``), G is not run.

    Returns:
        ``[B, S, S, 3]`` uint8 RGB, G's raw output (every pixel; the mask decides where it goes).
    """
    pre = np.stack([prefill(*a) for a in zip(crops, renders, covered, masks, strict=True)])
    if not refine:
        return pre
    return run_generator(G, crops, renders, spec, device, prefill=pre, given_mask=masks).raw


def _given_masks(
    crops: npt.NDArray[np.uint8],
    givens: list[npt.NDArray[np.bool_] | None],
    segmenter: nn.Module | None,
    device: torch.device,
) -> npt.NDArray[np.float32]:
    """``[B, S, S]`` float32 masks for a given-mask G: the user's, else the segmenter's m̂.

    The user's is used as given (binary); m̂ is shaped like G's training masks
    (:func:`deocc_core.infer.fill.segmenter_mask`: ≥ 0.5, grown 2 px, ~1 px soft edge).
    """
    if all(m is not None for m in givens):
        return np.stack(givens).astype(np.float32)
    if segmenter is None:
        raise ConfigError(
            "a given-mask generator (blend given) needs the occluded pixels: a segmenter "
            "(--segmenter default or a file) or --mask"
        )
    seg = run_segmenter(segmenter, crops, device)
    return np.stack(
        [
            segmenter_mask(s) if m is None else m.astype(np.float32)
            for s, m in zip(seg, givens, strict=True)
        ]
    )


def _crop_mask(
    mask: npt.NDArray[np.uint8], face: FaceInput, level: int = 128
) -> npt.NDArray[np.bool_]:
    """The user's ``[H, W]`` photo mask in the face's crop, ``[S, S]`` bool (≥ ``level``).

    ``level`` 1 keeps every crop pixel the mask touches (a given-mask G's fill then covers
    all of the photo pixels :func:`deocc_core.infer.paste.paste_given` replaces).
    """
    s = face.crop.shape[0]
    return cv2.warpAffine(mask, face.matrix, (s, s), flags=cv2.INTER_LINEAR) >= level
