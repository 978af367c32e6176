"""A per-vertex skin-colour field for any morphable model, from its 68 landmark vertices.

Shape-only models (Surrey, BFM shape bases) carry no colour, and the starter's albedo has
no notion of "which vertices are skin". :func:`skin_field` derives both from the model's
mean shape seen from the front and the 68 iBUG landmark vertices on it:

- ``albedo``: the model's own albedo when it has one; else a reference skin colour with
  darker brows, white eyes with a dark iris, red lips and a dark mouth interior, each
  region bounded by its landmark polygon (soft edges 1.5 mm wide), so a render shows the
  face's parts in the photo's colours once :mod:`deocc_core.render.light` scales it;
- ``weights``: trust of each vertex as *skin* in [0, 1] for light estimation (0 on eyes,
  brows, lips and mouth: their colour varies from face to face far more than skin's);
- ``prior``: where skin is most likely visible in an occluded photo, in [0, 1]: 1 on the
  forehead above the brows and on the nasal bridge between the eyes, ``low`` elsewhere.
  Masks, scarves, cups and hands cover the lower face or one side, glasses the eye band;
  the forehead and upper nose stay visible under all of them (hair and caps aside), so
  the light estimator looks for the skin's colour there first.

Convention:
    iBUG 68 order, 0-based (jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, outer lips
    48-59, inner lips 60-67). Model space: x toward the subject's left, y up, the frontal
    view drops z. Colours in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from deocc_core.morphable.model import MorphableModel

__all__ = ["SkinField", "skin_field", "REFERENCE_SKIN"]

#: reference skin albedo (a light-medium tone; the light estimator's gain moves it per face)
REFERENCE_SKIN = np.array([0.78, 0.62, 0.54], np.float32)
_BROW = np.array([0.30, 0.22, 0.17])
_SCLERA = np.array([0.86, 0.82, 0.78])
_IRIS = np.array([0.22, 0.15, 0.11])
_LIPS = np.array([0.70, 0.40, 0.38])
_MOUTH = np.array([0.18, 0.07, 0.07])

_EYES = (np.arange(36, 42), np.arange(42, 48))
_BROWS = (np.arange(17, 22), np.arange(22, 27))
_LIPS_OUTER, _LIPS_INNER = np.arange(48, 60), np.arange(60, 68)


@dataclass(frozen=True)
class SkinField:
    """Per-vertex colour and trust of a model (see module docstring).

    Attributes:
        albedo: ``[V, 3]`` float32 reference albedo in [0, 1].
        weights: ``[V]`` float32 skin trust in [0, 1].
        prior: ``[V]`` float32 likely-visible-skin preference in [0, 1].
    """

    albedo: npt.NDArray[np.float32]
    weights: npt.NDArray[np.float32]
    prior: npt.NDArray[np.float32]


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance ``[N, E]`` of points ``[N, 2]`` to segments ``a[E, 2] → b[E, 2]``."""
    ab = b - a
    t = ((p[:, None] - a[None]) * ab[None]).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12)
    q = a[None] + np.clip(t, 0, 1)[..., None] * ab[None]
    return np.linalg.norm(p[:, None] - q, axis=-1)


def _signed_distance(p: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Signed distance ``[N]`` of points to a closed polygon ``[E, 2]`` (negative inside)."""
    a, b = poly, np.roll(poly, -1, 0)
    d = _segment_distance(p, a, b).min(1)
    # even-odd crossing test of a ray toward +x
    ya, yb = a[None, :, 1], b[None, :, 1]
    py = p[:, 1:2]
    crosses = (ya > py) != (yb > py)
    x_at = a[None, :, 0] + (py - ya) / np.where(yb == ya, 1e-12, yb - ya) * (b - a)[None, :, 0]
    inside = (crosses & (p[:, :1] < x_at)).sum(1) % 2 == 1
    return np.where(inside, -d, d)


def _inside(sd: np.ndarray, soft: float) -> np.ndarray:
    """Soft membership in [0, 1] from a signed distance (1 deep inside, 0 outside)."""
    return np.clip(0.5 - sd / soft, 0.0, 1.0)


def skin_field(model: MorphableModel, *, soft_mm: float = 1.5, low: float = 0.15) -> SkinField:
    """The per-vertex skin-colour field of a model (cached on the model).

    Args:
        model: any mesh model with 68 landmark vertices.
        soft_mm: width of the soft region edges, model units (mm).
        low: ``prior`` outside the forehead and nasal bridge.

    Returns:
        :class:`SkinField`.

    Example:
        >>> from deocc_core.morphable.model import load_model
        >>> m = load_model("starter")
        >>> f = skin_field(m)
        >>> f.albedo.shape == (m.n_vertices, 3), float(f.weights.max()), float(f.prior.max())
        (True, 1.0, 1.0)
    """
    key = ("_skin_field", float(soft_mm), float(low))
    cached = model.__dict__.get("_skin_field_cache", {}).get(key)
    if cached is not None:
        return cached
    xy = model.mean[:, :2].astype(np.float64)
    lm = xy[model.landmarks68]
    eye_w = float(np.linalg.norm(lm[45] - lm[36]))  # outer eye corners, ~90 mm on an adult
    s = max(soft_mm, 1e-3) * eye_w / 90.0

    eyes = np.zeros(len(xy))
    iris = np.zeros(len(xy))
    for ids in _EYES:
        eyes = np.maximum(eyes, _inside(_signed_distance(xy, lm[ids]), s))
        centre = lm[ids].mean(0)
        radius = 0.28 * float(np.ptp(lm[ids][:, 0]))
        iris = np.maximum(iris, _inside(np.linalg.norm(xy - centre, axis=1) - radius, s) * eyes)
    brows = np.zeros(len(xy))
    for ids in _BROWS:
        d = _segment_distance(xy, lm[ids][:-1], lm[ids][1:]).min(1)
        brows = np.maximum(brows, _inside(d - 0.045 * eye_w, s))
    lips = _inside(_signed_distance(xy, lm[_LIPS_OUTER]), s)
    mouth = _inside(_signed_distance(xy, lm[_LIPS_INNER]), s)

    if model.albedo_mean is not None:
        albedo = model.albedo_mean.astype(np.float64)
    else:
        albedo = np.broadcast_to(REFERENCE_SKIN.astype(np.float64), (len(xy), 3)).copy()
        for part, colour in ((brows, _BROW), (eyes, _SCLERA), (iris, _IRIS), (lips, _LIPS)):
            albedo += part[:, None] * (colour - albedo)
        albedo += mouth[:, None] * (_MOUTH - albedo)
    weights = 1.0 - np.clip(np.maximum.reduce([eyes, brows, lips]), 0, 1)

    brow_y = float(lm[17:27, 1].max())
    forehead = np.clip((xy[:, 1] - brow_y) / (4 * s) + 0.5, 0, 1) * (1 - brows)
    half = 0.5 * float(np.linalg.norm(lm[42] - lm[39]))  # half the inner-canthal distance
    bridge = _inside(np.abs(xy[:, 0] - lm[27:31, 0].mean()) - half, s)
    bridge *= np.clip((xy[:, 1] - lm[30, 1]) / (4 * s), 0, 1) * (xy[:, 1] < brow_y)
    prior = low + (1 - low) * np.clip(np.maximum(forehead, bridge) * (1 - eyes), 0, 1)

    out = SkinField(
        np.clip(albedo, 0, 1).astype(np.float32),
        weights.astype(np.float32),
        prior.astype(np.float32),
    )
    model.__dict__.setdefault("_skin_field_cache", {})[key] = out  # frozen dataclass cache
    return out
