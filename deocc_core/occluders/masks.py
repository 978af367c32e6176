"""Face masks as 3D surfaces on the fitted head: surgical (pleated), cloth, N95 and KN95.

The mask is a grid over the lower face, from the nose bridge to under the chin and out to
the sides of the face mesh, lifted a few millimetres off the skin and pulled taut (it
bridges the hollows beside the nose, under the nose and at the chin instead of following
them). Kinds add their shape: three pleats, a centre seam, a moulded dome (N95) or a
vertical fold (KN95). Ear loops run in 3D from the mask's corners round the back of the
ear (and hide behind it and behind the head); an N95 has two head straps instead.

Sizes: a surgical mask is 175 x 95 mm flat (about 160 x 130 mm on the face when opened),
an N95 about 130 x 115 mm, ear loops ~2.5 mm across.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from deocc_core.landmarks.parts import part, point
from deocc_core.occluders.head import HeadGeometry
from deocc_core.occluders.mesh import Mesh, Texture, grid_mesh, merge, smooth_path, tube
from deocc_core.occluders.textures import nonwoven, pattern_texture, random_fabric_colour, weave

__all__ = ["MaskStyle", "MASK_KINDS", "sample_mask_style", "make_mask"]

MASK_KINDS = ("surgical", "cloth", "n95", "kn95")
ROWS, COLS = 34, 27
_CROSS = np.float32([[0, 0.25, 0], [0.25, 0, 0.25], [0, 0.25, 0]])  # mean of the 4 neighbours

SURGICAL_COLOURS = [
    (0.52, 0.72, 0.86),
    (0.9, 0.91, 0.92),
    (0.55, 0.8, 0.72),
    (0.9, 0.72, 0.78),
    (0.1, 0.1, 0.11),
    (0.35, 0.55, 0.8),
]


@dataclass(frozen=True)
class MaskStyle:
    """One mask design.

    Attributes:
        kind: one of :data:`MASK_KINDS`. colour: ``[3]`` albedo.
        top: where the top edge crosses the nose (0 = nasion, 1 = nose tip).
        drop_mm: how far the bottom edge hangs below the chin.
        offset_mm: gap between skin and mask. texture: fabric texture (or None).
        loop_colour: ``[3]`` albedo of the ear loops / straps. loop_r: their radius, mm.
        bulge_mm: N95 dome height or KN95 fold height.
    """

    kind: str
    colour: tuple[float, float, float]
    top: float
    drop_mm: float
    offset_mm: float
    texture: Texture | None
    loop_colour: tuple[float, float, float]
    loop_r: float
    bulge_mm: float


def sample_mask_style(
    rng: np.random.Generator,
    kind: str | None = None,
    fabric_images: list[npt.NDArray[np.float32]] | None = None,
) -> MaskStyle:
    """Draw a mask design; ``fabric_images`` (e.g. MaskTheFace textures) are used for cloth.

    Example:
        >>> sample_mask_style(np.random.default_rng(0), "n95").kind
        'n95'
    """
    if kind is None:
        kind = str(rng.choice(MASK_KINDS, p=[0.45, 0.25, 0.12, 0.18]))
    texture: Texture | None
    if kind == "surgical":
        colour = np.asarray(SURGICAL_COLOURS[int(rng.integers(len(SURGICAL_COLOURS)))])
        colour = colour * rng.uniform(0.92, 1.05)
        texture = nonwoven(rng, 0.035)
        loop = (0.93, 0.93, 0.92) if rng.random() < 0.8 else tuple(colour)
        loop_r, bulge = rng.uniform(0.9, 1.4), 0.0
    elif kind == "cloth":
        colour = random_fabric_colour(rng)
        if fabric_images and rng.random() < 0.6:
            img = fabric_images[int(rng.integers(len(fabric_images)))]
            texture = Texture(img, float(rng.uniform(0.3, 0.7)))
            colour = np.ones(3)
        elif rng.random() < 0.5:
            texture = pattern_texture(rng, colour)
            colour = np.ones(3)
        else:
            texture = weave(rng)
        loop = (
            tuple(np.clip(colour * rng.uniform(0.6, 1.0), 0, 1))
            if rng.random() < 0.6
            else (
                0.1,
                0.1,
                0.1,
            )
        )
        loop_r, bulge = rng.uniform(1.2, 2.2), 0.0
    elif kind == "n95":
        colour = np.asarray((0.9, 0.9, 0.87)) * rng.uniform(0.9, 1.03)
        texture = nonwoven(rng, 0.05)
        loop = tuple(rng.choice([(0.85, 0.85, 0.82), (0.85, 0.75, 0.35), (0.3, 0.45, 0.75)]))
        loop_r, bulge = rng.uniform(1.2, 1.8), rng.uniform(10, 18)
    else:
        colour = np.asarray(rng.choice([(0.9, 0.9, 0.9), (0.08, 0.08, 0.09), (0.6, 0.62, 0.65)]))
        texture = nonwoven(rng, 0.03)
        loop = tuple(colour * 0.97)
        loop_r, bulge = rng.uniform(0.9, 1.3), rng.uniform(9, 16)
    return MaskStyle(
        kind=kind,
        colour=tuple(float(c) for c in np.clip(colour, 0, 1)),  # type: ignore[arg-type]
        top=float(rng.uniform(0.15, 0.6) if kind != "n95" else rng.uniform(0.0, 0.3)),
        drop_mm=float(rng.uniform(4, 14)),
        offset_mm=float(rng.uniform(1.5, 3.5)),
        texture=texture,
        loop_colour=tuple(float(c) for c in loop),  # type: ignore[arg-type]
        loop_r=float(loop_r),
        bulge_mm=float(bulge),
    )


def _outline(head: HeadGeometry, style: MaskStyle, u: np.ndarray) -> tuple[np.ndarray, ...]:
    """Top and bottom edge heights (y, mm) per column ``u`` in [-1, 1], and the corner height."""
    lm = head.landmarks
    d = head.eye_span
    y_bridge = float(
        lm[point("nose_bridge_1"), 1]
        + (lm[point("nose_tip"), 1] - lm[point("nose_bridge_1"), 1]) * style.top
    )
    y_chin = float(lm[point("chin"), 1]) - style.drop_mm
    y_corner = (
        float(
            lm[point("jaw_03_subject-right"), 1]
            + lm[point("jaw_04_subject-right"), 1]
            + lm[point("jaw_12_subject-left"), 1]
            + lm[point("jaw_13_subject-left"), 1]
        )
        / 4
        - 0.3 * style.drop_mm
    )
    side_top = (
        float(
            lm[point("jaw_01_subject-right"), 1]
            + lm[point("jaw_15_subject-left"), 1]
            + lm[point("nose_bridge_2"), 1]
            + lm[point("nose_tip"), 1]
        )
        / 4
    )
    side_top = min(side_top, y_bridge - 0.05 * d)
    au = np.abs(u)
    if style.kind == "n95":
        cy = (y_bridge + y_chin) / 2
        ry = (y_bridge - y_chin) / 2
        e = np.sqrt(np.clip(1 - au**2.4, 0, 1))
        return cy + ry * (0.15 + 0.85 * e), cy - ry * (0.15 + 0.85 * e), cy
    if style.kind == "kn95":
        top = y_bridge - (y_bridge - side_top) * au**0.8
        bot = y_chin + (y_corner - y_chin) * au**1.2
        return top, np.minimum(bot, top - 10), y_corner
    top = y_bridge - (y_bridge - side_top) * au**1.5
    bot = y_chin + (y_corner - y_chin) * au**2.2
    return top, np.minimum(bot, top - 10), y_corner


def _fill_down(z: np.ndarray) -> np.ndarray:
    """Replace NaNs by the value above them in the same column (then below, for the top)."""
    out = z.copy()
    for i in range(1, len(out)):
        out[i] = np.where(np.isnan(out[i]), out[i - 1], out[i])
    for i in range(len(out) - 2, -1, -1):
        out[i] = np.where(np.isnan(out[i]), out[i + 1], out[i])
    return np.nan_to_num(out, nan=0.0)


def _relax_free(z0: np.ndarray, fixed: np.ndarray, iterations: int = 30) -> np.ndarray:
    """Taut cloth: above ``z0`` where ``fixed`` (resting on the face), hanging elsewhere."""
    z = _fill_down(np.where(fixed, z0, np.nan)).astype(np.float32)
    lo = np.where(fixed, z0, -np.inf).astype(np.float32)
    for _ in range(iterations):
        avg = cv2.filter2D(z, -1, _CROSS, borderType=cv2.BORDER_REPLICATE)
        z = np.maximum(lo, avg)
    return z.astype(np.float64)


def _surface(head: HeadGeometry, style: MaskStyle) -> tuple[np.ndarray, np.ndarray]:
    """``[ROWS, COLS, 3]`` mask grid (model space) and the ``[ROWS, COLS]`` row parameter v."""
    lm = head.landmarks
    u = np.linspace(-1, 1, COLS)
    v = np.linspace(0, 1, ROWS)
    top, bot, y_corner = _outline(head, style, u)
    y = top[None] + (bot - top)[None] * v[:, None]
    cx = float(lm[part("nose_bridge"), 0].mean())
    # lateral extent of the face at each height (held below the jaw corners)
    xl, xr = head.face_span(np.maximum(y, y_corner).reshape(-1))
    xl, xr = xl.reshape(y.shape), xr.reshape(y.shape)
    limit = 0.8 * head.eye_span
    width = 0.8 if style.kind == "n95" else 0.97
    half_r = np.minimum(cx - xl - 1.5, limit) * width
    half_l = np.minimum(xr - cx - 1.5, limit) * width
    x = cx + np.where(u[None] < 0, u[None] * half_r, u[None] * half_l)
    xy = np.stack([x, y], -1)
    r, c = head._hf_index(xy)
    rows, cols = head.hf_face.shape
    on_face = head.hf_face[
        np.clip(np.round(r), 0, rows - 1).astype(int), np.clip(np.round(c), 0, cols - 1).astype(int)
    ]
    z0 = head.surface_z(xy, conservative=True) + style.offset_mm
    z = _relax_free(z0, on_face)
    uu = np.broadcast_to(u[None], z.shape)
    vv = np.broadcast_to(v[:, None], z.shape)
    if style.kind == "surgical":  # three pleats: a ramp and a sharp step each
        ph = (vv * 3.6 - 0.4) % 1.0
        band = (vv > 0.12) & (vv < 0.9)
        z = z + np.where(band, ph * 2.4, 0) * (1 - 0.7 * np.abs(uu) ** 3)
    elif style.kind == "cloth":  # a curved centre seam that stands out a little
        z = z + 3.0 * np.clip(1 - np.abs(uu) / 0.35, 0, 1) ** 2
    elif style.kind == "n95":
        r2 = uu**2 + ((vv - 0.5) * 2) ** 2
        z = z + style.bulge_mm * np.clip(1 - r2, 0, 1) ** 0.8
    else:  # kn95: two flat panels meeting in a vertical ridge
        z = z + style.bulge_mm * np.clip(1 - np.abs(uu), 0, 1) * np.sin(np.pi * vv) ** 0.5
    z[0] += 0.6  # nose wire: the top edge is a little stiffer
    return np.stack([x, y, z], -1), vv


def _albedo(style: MaskStyle, vv: np.ndarray) -> np.ndarray:
    rows, cols = vv.shape
    alb = np.broadcast_to(np.asarray(style.colour, np.float32), (rows, cols, 3)).copy()
    if style.kind in ("surgical", "kn95", "n95"):  # bound / welded edges
        edge = np.zeros((rows, cols), bool)
        edge[:1] = edge[-1:] = True
        edge[:, :1] = edge[:, -1:] = True
        alb[edge] *= 0.9 if style.kind == "surgical" else 0.95
    if style.kind == "cloth":
        alb[:, cols // 2] *= 0.8  # the seam
    return alb


def _loop_paths(head: HeadGeometry, grid: np.ndarray, style: MaskStyle) -> list[np.ndarray]:
    d = head.eye_span
    paths = []
    for side, col in ((-1, 0), (1, -1)):
        ear = head.ears[0 if side < 0 else 1]
        top, bottom = grid[1, col], grid[-2, col]
        if style.kind == "n95":  # two straps round the back of the head, above / below the ear
            sk = head.skull
            for start, y in ((top, ear[1] + 0.42 * d), (bottom, ear[1] - 0.3 * d)):
                q = np.sqrt(max(1 - ((y - sk.center[1]) / sk.axes[1]) ** 2, 0.2))
                th = np.radians([70.0, 100.0, 140.0, 180.0])
                ring = np.stack(
                    [
                        sk.center[0] + side * sk.axes[0] * q * np.sin(th),
                        np.full(len(th), y),
                        sk.center[2] + sk.axes[2] * q * np.cos(th),
                    ],
                    1,
                )
                paths.append(np.concatenate([start[None], ring]))
            continue
        pts = np.array(
            [
                top,
                ear + [side * 0.02 * d, 0.16 * d, 0.08 * d],
                ear + [0.0, 0.2 * d, -0.1 * d],
                ear + [0.0, -0.02 * d, -0.2 * d],
                ear + [0.0, -0.22 * d, -0.1 * d],
                ear + [side * 0.02 * d, -0.22 * d, 0.06 * d],
                bottom,
            ]
        )
        paths.append(pts)
    return paths


def make_mask(head: HeadGeometry, rng: np.random.Generator, style: MaskStyle) -> Mesh:
    """Build a face mask with its ear loops (or straps) on ``head`` (model space, mm).

    Example:
        >>> from deocc_core.morphable.model import load_model
        >>> from deocc_core.morphable.params import FitParams, Pose
        >>> from deocc_core.occluders.head import head_geometry
        >>> m = load_model("starter")
        >>> p = FitParams(np.zeros(m.n_id), np.zeros(m.n_exp), Pose(1, 0, 0, 0, 0, 0))
        >>> h = head_geometry(m, p)
        >>> rng = np.random.default_rng(0)
        >>> mk = make_mask(h, rng, sample_mask_style(rng, "surgical"))
        >>> y, lm = mk.vertices[:, 1], h.landmarks
        >>> bool(y.min() < lm[point("chin"), 1] < lm[point("nose_tip"), 1] < y.max())
        True
    """
    grid, vv = _surface(head, style)
    body = grid_mesh(
        grid,
        albedo=_albedo(style, vv),
        gloss=0.04,
        shininess=6.0,
        texture=style.texture,
    )
    parts = [body]
    for pts in _loop_paths(head, grid, style):
        path = smooth_path(pts, 28)
        path = head.push_out(path, style.loop_r + 0.8)
        side = (
            1.0 if float(path[:, 0].mean()) > float(head.landmarks[point("nose_tip"), 0]) else -1.0
        )
        parts.append(
            tube(
                path,
                style.loop_r,
                up=(side, 0.0, 0.0),
                sides=6,
                flat=0.6 if style.kind != "cloth" else 0.8,
                albedo=style.loop_colour,
                gloss=0.05,
                shininess=8.0,
            )
        )
    return merge(parts)
