"""Scarves: a knitted or woven band wrapped round the neck and pulled up over the chin.

The band is a closed surface round a vertical axis through the neck. At every height its
radius in every direction is the support function of the head's cross-section there (the
face mesh's row, the neck and skull proxies) plus the scarf's thickness, so it encloses the
chin and jaw on any head and follows it at any yaw and pitch (it is built in model space).
The radius never shrinks going down (the scarf does not tuck under the chin), grows with
the wrapped layers, and carries the rolls of 2-3 turns and a few vertical folds. The top
edge is highest in front (between the nose tip and the chin) and drops toward the nape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deocc_core.landmarks.parts import point
from deocc_core.occluders.head import HeadGeometry
from deocc_core.occluders.mesh import Mesh, Texture, grid_mesh
from deocc_core.occluders.textures import knit, pattern_texture, random_fabric_colour, weave

__all__ = ["ScarfStyle", "sample_scarf_style", "make_scarf"]

ROWS, COLS = 22, 48


@dataclass(frozen=True)
class ScarfStyle:
    """One scarf.

    Attributes:
        colour: ``[3]`` albedo (1 when the texture carries the colours).
        texture: knit / weave / printed pattern.
        top: front top edge between the mouth corners' height (0) and the nose tip (1);
            negative values stay under the mouth.
        thickness_mm: bulk over the skin. turns: visible wrapped rolls (2-3).
        roll_mm: depth of the creases between rolls. back_drop_mm: how much lower the top
            edge is at the nape. tilt: slope of the rolls across the front.
    """

    colour: tuple[float, float, float]
    texture: Texture | None
    top: float
    thickness_mm: float
    turns: int
    roll_mm: float
    back_drop_mm: float
    tilt: float


def sample_scarf_style(rng: np.random.Generator) -> ScarfStyle:
    """Draw a scarf.

    Example:
        >>> 2 <= sample_scarf_style(np.random.default_rng(0)).turns <= 3
        True
    """
    colour = random_fabric_colour(rng)
    kind = rng.random()
    if kind < 0.45:
        texture: Texture | None = knit(rng)
    elif kind < 0.8:
        texture = pattern_texture(rng, colour)
        colour = np.ones(3, np.float32)
    else:
        texture = weave(rng, 0.08, 0.5)
    return ScarfStyle(
        colour=tuple(float(c) for c in colour),  # type: ignore[arg-type]
        texture=texture,
        top=float(rng.uniform(-0.6, 1.0)),
        thickness_mm=float(rng.uniform(6, 18)),
        turns=int(rng.integers(2, 4)),
        roll_mm=float(rng.uniform(3, 9)),
        back_drop_mm=float(rng.uniform(25, 60)),
        tilt=float(rng.uniform(-0.12, 0.12)),
    )


def _face_support(head: HeadGeometry, theta: np.ndarray, cx: float, cz: float) -> np.ndarray:
    """``[rows, K]`` support function of each height-field row of the face mesh.

    In the directions ``theta`` (x, z plane, about the axis at (cx, cz)); -inf on empty rows.
    Cached on the head: every scarf of the face reuses it.
    """
    key = ("scarf_support", len(theta), round(cx, 3), round(cz, 3))
    if key in head.cache:
        return head.cache[key]
    xs = head.hf_origin[0] + np.arange(head.hf_face.shape[1], dtype=np.float32) * head.hf_step
    dx = (xs - cx)[None, :, None] * np.sin(theta)[None, None, :]
    dz = (head.hf_z - cz)[:, :, None] * np.cos(theta)[None, None, :]
    sup = np.where(head.hf_face[:, :, None], dx + dz, -np.inf).max(1).astype(np.float32)
    head.cache[key] = sup
    return sup


def _support(
    head: HeadGeometry, ys: np.ndarray, theta: np.ndarray, cx: float, cz: float
) -> np.ndarray:
    """Support function of the head's cross-section at ``ys[i, k]`` toward ``theta[k]``.

    The face mesh row there, the neck and the skull (ellipse sections).
    """
    rows = head.hf_face.shape[0]
    r = np.clip(np.round((head.hf_origin[1] - ys) / head.hf_step), 0, rows - 1).astype(np.int64)
    sup = _face_support(head, theta, cx, cz)[r, np.arange(len(theta))[None, :]]
    s, c = np.sin(theta)[None], np.cos(theta)[None]
    for e in (head.neck, head.skull):
        q = 1 - ((ys - e.center[1]) / e.axes[1]) ** 2
        k = np.sqrt(np.maximum(q, 0))
        h = (e.center[0] - cx) * s + (e.center[2] - cz) * c
        h = h + k * np.sqrt((e.axes[0] * s) ** 2 + (e.axes[2] * c) ** 2)
        sup = np.maximum(sup, np.where(q > 0, h, -np.inf))
    return sup


def make_scarf(head: HeadGeometry, rng: np.random.Generator, style: ScarfStyle) -> Mesh:
    """Build a scarf round the neck of ``head`` (model space, mm).

    Example:
        >>> from deocc_core.morphable.model import load_model
        >>> from deocc_core.morphable.params import FitParams, Pose
        >>> from deocc_core.occluders.head import head_geometry
        >>> m = load_model("starter")
        >>> p = FitParams(np.zeros(m.n_id), np.zeros(m.n_exp), Pose(1, 0, 0, 0, 0, 0))
        >>> h = head_geometry(m, p)
        >>> rng = np.random.default_rng(0)
        >>> s = make_scarf(h, rng, sample_scarf_style(rng))
        >>> bool(s.vertices[:, 2].max() > h.landmarks[point("chin"), 2])  # in front of the chin
        True
    """
    lm = head.landmarks
    d = head.eye_span
    cx, cz = float(head.neck.center[0]), float(head.neck.center[2])
    mouth_y = float(lm[point("mouth_right"), 1] + lm[point("mouth_left"), 1]) / 2
    y_top = mouth_y + (float(lm[point("nose_tip"), 1]) - mouth_y) * style.top
    y_bottom = float(head.neck.center[1] - 1.3 * head.neck.axes[1])
    theta = np.linspace(0, 2 * np.pi, COLS, endpoint=False)  # 0 = front (+z), pi/2 = +x
    u = np.stack([np.sin(theta), np.cos(theta)], 1)  # direction in (x, z)
    # the top edge: highest in front, lower at the nape, a little wavy
    front = 0.5 * (1 + np.cos(theta))
    side = np.abs(np.sin(theta))
    edge = (
        y_top
        - 0.22 * d * side**1.5 * front  # down toward the ears
        - style.back_drop_mm * (1 - front) ** 1.3
        + rng.uniform(-2, 2, COLS)
    )
    edge = np.convolve(np.r_[edge[-2:], edge, edge[:2]], np.ones(5) / 5, "valid")
    v = np.linspace(0, 1, ROWS)
    ys = edge[None] + (y_bottom - edge[None]) * (v[:, None] ** 1.3)
    radius = _support(head, ys, theta, cx, cz)
    # the cloth does not tuck in under the chin: it narrows only gently going down
    step = np.abs(np.diff(ys, axis=0))
    for i in range(1, ROWS):
        radius[i] = np.maximum(radius[i], radius[i - 1] - 0.45 * step[i - 1])
    radius = np.where(np.isfinite(radius), radius, 0.5 * d)
    layers = 1 + 0.5 * v[:, None]  # more wrapped layers lower down
    t = np.clip(v[:, None] * style.turns + style.tilt * np.sin(theta)[None] * style.turns, 0, None)
    rolls = style.roll_mm * np.abs(np.sin(np.pi * t)) ** 0.6
    folds = 0.25 * style.roll_mm * np.sin(theta[None] * rng.integers(5, 9) + 3 * v[:, None])
    radius = radius + style.thickness_mm * layers + rolls + folds
    radius[0] -= 0.4 * style.thickness_mm  # the top edge thins out
    grid = np.stack([cx + radius * u[None, :, 0], ys, cz + radius * u[None, :, 1]], -1).astype(
        np.float32
    )
    uv = np.stack(
        np.broadcast_arrays(
            (theta / (2 * np.pi) * 2 * np.pi * 0.75 * d)[None], (ys[0:1] - ys) + 0 * theta[None]
        ),
        -1,
    )
    return grid_mesh(
        grid,
        wrap_cols=True,
        uv=uv,
        albedo=np.asarray(style.colour, np.float32),
        gloss=0.03,
        shininess=5.0,
        texture=style.texture,
    )
