"""Eyeglasses and sunglasses as 3D frames on the fitted head.

A frame is designed in its own plane (mm): two lens outlines from a family of shapes
(oval, round, rectangle, wayfarer, aviator, cat-eye), a rim of some width and depth swept
around each, a bridge, end pieces and two temples. The plane sits in front of the eyes
(vertex distance 12-20 mm, resting on the nose bridge), tilted (pantoscopic tilt) and
bent around the face (wrap). Temples run straight back from the hinges to the tops of the
ears and bend down behind them, so the depth test hides the far one on a turned head.

Sizes (ISO 8624 box system, adult frames): lens width A 46-56 mm (sunglasses 52-64), lens
height B 28-44 mm (sunglasses 40-56), bridge DBL 14-22 mm; total frame width ~ 125-150 mm.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from deocc_core.landmarks.parts import part, point
from deocc_core.occluders.head import HeadGeometry
from deocc_core.occluders.mesh import Mesh, cross3, make_mesh, merge, sweep

__all__ = [
    "GlassesStyle",
    "sample_glasses_style",
    "make_glasses",
    "lens_outline",
    "temple_path",
    "hinge_points",
    "fitted_style",
]

SHAPES = ("oval", "round", "rectangle", "wayfarer", "aviator", "cateye")
ADULT_FACE_WIDTH = 145.0  # mm, tragion to tragion: frames in SHAPES' size ranges fit it
K_OUTLINE = 48

FRAME_COLOURS = {  # albedo, gloss, shininess, reflectance (F0)
    "black": ((0.025, 0.025, 0.028), 0.5, 40.0, 0.04),
    "brown": ((0.12, 0.07, 0.04), 0.5, 40.0, 0.04),
    "tortoise": ((0.22, 0.12, 0.05), 0.5, 40.0, 0.04),
    "navy": ((0.05, 0.07, 0.16), 0.5, 40.0, 0.04),
    "red": ((0.35, 0.04, 0.04), 0.5, 40.0, 0.04),
    "clear": ((0.45, 0.43, 0.42), 0.6, 60.0, 0.05),
    "gunmetal": ((0.07, 0.07, 0.08), 0.6, 60.0, 0.2),
    "silver": ((0.16, 0.16, 0.17), 0.7, 80.0, 0.3),
    "gold": ((0.3, 0.22, 0.08), 0.7, 80.0, 0.25),
}
SUN_TINTS = {  # transmission per channel at the darkest
    "grey": (0.16, 0.16, 0.16),
    "brown": (0.26, 0.17, 0.09),
    "green": (0.14, 0.19, 0.12),
    "blue": (0.09, 0.12, 0.2),
    "black": (0.06, 0.06, 0.06),
}


@dataclass(frozen=True)
class GlassesStyle:
    """One frame design.

    Attributes:
        sun: sunglasses (dark tinted lenses covering eyes to brows).
        shape: one of :data:`SHAPES`. lens_w, lens_h, bridge: A, B, DBL in mm.
        rim_w, rim_d: rim width (in the plane) and depth, mm. temple_w, temple_h: mm.
        metal: thin metal frame (nose pads, thin temples) or acetate.
        colour: key of :data:`FRAME_COLOURS`.
        lens_trans: ``[3]`` lens transmission (top of a gradient lens).
        gradient: transmission gain toward the bottom (0: uniform).
        reflect: lens mirror reflectance at normal incidence (0.01 coated .. 0.6 mirrored).
        tilt_deg, wrap_mm: pantoscopic tilt; how far the frame ends bend back.
        drop_mm: frame height above/below the pupils (+ = higher); vertex_mm: eye to lens.
    """

    sun: bool
    shape: str
    lens_w: float
    lens_h: float
    bridge: float
    rim_w: float
    rim_d: float
    temple_w: float
    temple_h: float
    metal: bool
    colour: str
    lens_trans: tuple[float, float, float]
    gradient: float
    reflect: float
    tilt_deg: float
    wrap_mm: float
    drop_mm: float
    vertex_mm: float


def sample_glasses_style(rng: np.random.Generator, sun: bool) -> GlassesStyle:
    """Draw a plausible adult frame (eyeglasses or sunglasses).

    Example:
        >>> s = sample_glasses_style(np.random.default_rng(0), sun=True)
        >>> 52 <= s.lens_w <= 64 and s.sun
        True
    """
    if sun:
        shape = str(rng.choice(SHAPES, p=[0.2, 0.1, 0.15, 0.25, 0.2, 0.1]))
        lens_w = rng.uniform(52, 64)
        lens_h = rng.uniform(40, 56) * (0.9 if shape == "rectangle" else 1.0)
        metal = shape == "aviator" and rng.random() < 0.8 or rng.random() < 0.15
    else:
        shape = str(rng.choice(SHAPES, p=[0.25, 0.15, 0.3, 0.15, 0.05, 0.1]))
        lens_w = rng.uniform(46, 56)
        lens_h = rng.uniform(28, 44)
        metal = rng.random() < 0.4
    if shape == "round":
        lens_h = max(lens_h, 0.85 * lens_w)
        lens_w = min(lens_w, 52.0)
        lens_h = min(lens_h, lens_w)
    colour = str(
        rng.choice(["gunmetal", "silver", "gold", "black"])
        if metal
        else rng.choice(
            ["black", "brown", "tortoise", "navy", "red", "clear"],
            p=[0.42, 0.15, 0.22, 0.08, 0.05, 0.08],
        )
    )
    if sun:
        tint = np.asarray(SUN_TINTS[str(rng.choice(list(SUN_TINTS)))]) * rng.uniform(0.6, 1.5)
        trans = tuple(float(v) for v in np.clip(tint, 0.03, 0.45))
        gradient = float(rng.uniform(0.2, 0.6)) if rng.random() < 0.3 else 0.0
        reflect = float(rng.uniform(0.3, 0.6) if rng.random() < 0.25 else rng.uniform(0.04, 0.1))
    else:
        t = rng.uniform(0.9, 0.97)
        trans = (float(t), float(t), float(t * rng.uniform(0.97, 1.0)))
        gradient = 0.0
        reflect = float(rng.uniform(0.008, 0.06))
    return GlassesStyle(
        sun=sun,
        shape=shape,
        lens_w=float(lens_w),
        lens_h=float(lens_h),
        bridge=float(rng.uniform(14, 21)),
        rim_w=float(rng.uniform(1.0, 1.8) if metal else rng.uniform(2.5, 5.5)),
        rim_d=float(rng.uniform(1.2, 2.0) if metal else rng.uniform(3.5, 5.5)),
        temple_w=float(rng.uniform(1.2, 1.8) if metal else rng.uniform(2.5, 4.0)),
        temple_h=float(rng.uniform(1.8, 3.0) if metal else rng.uniform(4.0, 9.0)),
        metal=bool(metal),
        colour=colour,
        lens_trans=trans,  # type: ignore[arg-type]
        gradient=gradient,
        reflect=reflect,
        tilt_deg=float(rng.uniform(4, 12)),
        wrap_mm=float(rng.uniform(8, 18) if sun else rng.uniform(3, 9)),
        drop_mm=float(rng.uniform(2, 7) if sun else rng.uniform(-2, 4)),
        vertex_mm=float(rng.uniform(11, 15)),
    )


def lens_outline(style: GlassesStyle, n: int = K_OUTLINE) -> npt.NDArray[np.float64]:
    """``[n, 2]`` lens outline (counter-clockwise) around the lens centre, mm.

    The outer side of the lens (toward the temple) is +x: mirror x for the right lens.

    Example:
        >>> s = sample_glasses_style(np.random.default_rng(1), sun=False)
        >>> o = lens_outline(s)
        >>> o.shape, bool(abs(np.ptp(o[:, 0]) - s.lens_w) < 1.5)
        ((48, 2), True)
    """
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    expo = {"oval": 2.0, "round": 2.0, "rectangle": 4.5, "wayfarer": 3.5, "aviator": 2.3}.get(
        style.shape, 2.6
    )

    def sp(w: np.ndarray) -> np.ndarray:
        return np.sign(w) * np.abs(w) ** (2.0 / expo)

    x = sp(c) * style.lens_w / 2
    y = sp(s) * style.lens_h / 2
    if style.shape == "wayfarer":  # wider on top
        x *= 1 + 0.12 * s
    elif style.shape == "aviator":  # teardrop: the lower part drops toward the nose
        inner = np.clip(-c, 0, 1)
        y -= style.lens_h * 0.22 * np.clip(-s, 0, 1) ** 1.5 * (0.4 + 0.6 * inner)
        x -= style.lens_w * 0.06 * np.clip(-s, 0, 1) * inner
    elif style.shape == "cateye":  # the upper outer corner rises
        y += style.lens_h * 0.28 * np.clip(s, 0, 1) * np.clip(c, 0, 1) ** 2
        y -= style.lens_h * 0.08 * np.clip(-s, 0, 1) * np.clip(-c, 0, 1)
    pts = np.stack([x, y], 1)
    return pts - [0.0, (pts[:, 1].max() + pts[:, 1].min()) / 2]


def _outward_normals(poly: np.ndarray) -> np.ndarray:
    tan = np.roll(poly, -1, 0) - np.roll(poly, 1, 0)
    nrm = np.stack([tan[:, 1], -tan[:, 0]], 1)  # right of a ccw tangent: outward
    return nrm / np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-9)


class _FramePlane:
    """Maps frame-plane points (X right, Y up, mm; origin at the bridge centre) to model space."""

    def __init__(self, head: HeadGeometry, style: GlassesStyle, half_width: float) -> None:
        lm = head.landmarks
        eye_r, eye_l = lm[part("eye_right")].mean(0), lm[part("eye_left")].mean(0)
        centre = (eye_r + eye_l) / 2
        y = float(centre[1]) + style.drop_mm
        x = float(lm[point("nose_top"), 0] + lm[point("nose_bridge_1"), 0]) / 2
        z_eye = float(max(eye_r[2], eye_l[2]))
        nose_z = float(head.surface_z(np.array([x, y - 0.2 * style.lens_h])))
        z = max(z_eye + style.vertex_mm, nose_z + style.rim_d / 2 + 2.5)
        self.origin = np.array([x, y, z])
        tau = np.radians(style.tilt_deg)
        self.ex = np.array([1.0, 0.0, 0.0])
        self.ey = np.array([0.0, np.cos(tau), np.sin(tau)])  # top leans forward
        self.ez = cross3(self.ex, self.ey)
        self.wrap = style.wrap_mm / max(half_width, 1.0) ** 2

    def __call__(self, xy: np.ndarray, dz: np.ndarray | float = 0.0) -> np.ndarray:
        xy = np.asarray(xy, np.float64)
        z = -self.wrap * xy[..., 0:1] ** 2 + np.asarray(dz)[..., None]
        return self.origin + xy[..., 0:1] * self.ex + xy[..., 1:2] * self.ey + z * self.ez


def _lens_mesh(
    outline: np.ndarray, centre: np.ndarray, plane: _FramePlane, style: GlassesStyle
) -> Mesh:
    rings = np.array([1.0, 0.8, 0.6, 0.4, 0.2, 0.0])
    pts = centre + outline[None] * rings[:, None, None]  # [R, K, 2]
    bulge = 1.5 * (1 - rings**2)[:, None] * np.ones(outline.shape[0])[None]
    verts = plane(pts.reshape(-1, 2), bulge.reshape(-1) - 0.3)
    k = outline.shape[0]
    rr, cc = np.meshgrid(np.arange(len(rings) - 1), np.arange(k), indexing="ij")
    a = rr * k + cc
    b = rr * k + (cc + 1) % k
    c = (rr + 1) * k + cc
    d = (rr + 1) * k + (cc + 1) % k
    tris = np.concatenate(
        [np.stack([a, c, b], -1).reshape(-1, 3), np.stack([b, c, d], -1).reshape(-1, 3)]
    )
    y_rel = (pts[..., 1] - centre[1]) / (style.lens_h / 2)  # -1 bottom .. 1 top
    t0 = np.asarray(style.lens_trans)
    gain = 1 + style.gradient * np.clip((0.6 - y_rel) / 1.6, 0, 1) * 3
    trans = np.clip(t0[None, None] * gain[..., None], 0, 0.98).reshape(-1, 3)
    return make_mesh(
        verts,
        tris,
        albedo=(0.01, 0.01, 0.012),
        gloss=1.0,
        shininess=300.0,
        reflectance=style.reflect,
        transmission=trans,
    )


def _rim_mesh(
    outline: np.ndarray, centre: np.ndarray, plane: _FramePlane, style: GlassesStyle, **mat
) -> Mesh:
    out = _outward_normals(outline)
    # the browline look: acetate rims are thicker along the top
    top = np.clip(outline[:, 1] / (style.lens_h / 2), 0, 1)
    width = style.rim_w * (1 + (0.0 if style.metal else 0.6) * top**2)
    path2 = centre + outline + out * (width / 2)[:, None]
    path = plane(path2)
    prof = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]]) * [
        style.rim_d,
        1.0,
    ]
    scale = np.stack([np.ones(len(outline)), width], 1)
    return sweep(path, prof, closed_path=True, scale=scale, up=plane.ez, **mat)


def temple_path(
    head: HeadGeometry, hinge: np.ndarray, side: int, style: GlassesStyle
) -> np.ndarray:
    """A temple's centre line: hinge → top of the ear (straight) → down behind the ear.

    Args:
        head: the fitted head.
        hinge: ``[3]`` hinge point, mm.
        side: -1 the subject's right, +1 the left.
        style: the frame (temple size).

    Returns:
        ``[12, 3]`` points, model space mm (9 straight, 3 behind the ear).
    """
    ear = head.ears[0 if side < 0 else 1]
    d = head.eye_span
    top_y = min(float(hinge[1]) - 2.0, float(ear[1]) + 0.32 * d)
    top = np.array([0.0, top_y, float(ear[2]) + 0.02 * d])
    # just outside the skull at that height and depth
    sk = head.skull
    q = (
        1
        - ((top[1] - sk.center[1]) / sk.axes[1]) ** 2
        - ((top[2] - sk.center[2]) / sk.axes[2]) ** 2
    )
    half = float(sk.axes[0] * np.sqrt(max(q, 0.05)))
    top[0] = sk.center[0] + side * (half + 1.5 + style.temple_w / 2)
    n = 9
    t = np.linspace(0, 1, n)[:, None]
    straight = hinge + (top - hinge) * t
    straight = head.push_out(straight, 1.0 + style.temple_w / 2)
    behind = top + np.array(
        [
            [0, -0.06 * d, -0.10 * d],
            [0, -0.16 * d, -0.16 * d],
            [0, -0.26 * d, -0.15 * d],
        ]
    )
    behind[:, 0] = top[0] - side * np.array([0.5, 1.5, 3.0])
    return np.concatenate([straight, behind])


def _hinge(
    plane: _FramePlane, centre: np.ndarray, side: int, style: GlassesStyle
) -> tuple[np.ndarray, np.ndarray]:
    """The rim's outer end (frame plane, mm) and the hinge behind it (model space)."""
    outer = centre + [side * (style.lens_w / 2 + style.rim_w * 0.5), style.lens_h * 0.22]
    return outer, plane(outer, -style.rim_d * 0.5 - 1.0)


def fitted_style(head: HeadGeometry, style: GlassesStyle) -> GlassesStyle:
    """The frame sized to the head.

    People wear frames that fit, so lens and bridge sizes scale with the face width
    (tragion to tragion) around an adult 145 mm (x 0.85 .. 1.1).
    """
    k = float(np.clip(head.face_width / ADULT_FACE_WIDTH, 0.85, 1.1))
    return replace(style, lens_w=style.lens_w * k, lens_h=style.lens_h * k, bridge=style.bridge * k)


def hinge_points(head: HeadGeometry, style: GlassesStyle) -> np.ndarray:
    """``[2, 3]`` hinge points (the subject's right, then left) of ``style`` on ``head``, mm."""
    style = fitted_style(head, style)
    cx = style.bridge / 2 + style.lens_w / 2
    plane = _FramePlane(head, style, cx + style.lens_w / 2 + style.rim_w)
    return np.stack([_hinge(plane, np.array([s * cx, 0.0]), s, style)[1] for s in (-1, 1)])


def make_glasses(head: HeadGeometry, rng: np.random.Generator, style: GlassesStyle) -> Mesh:
    """Build a pair of glasses on ``head`` (model space, mm).

    Args:
        head: the fitted head.
        rng: randomness (the frame colour's variation).
        style: the design (:func:`sample_glasses_style`).

    Returns:
        The merged frame + lenses + temples mesh.

    Example:
        >>> from deocc_core.morphable.model import load_model
        >>> from deocc_core.morphable.params import FitParams, Pose
        >>> from deocc_core.occluders.head import head_geometry
        >>> m = load_model("starter")
        >>> p = FitParams(np.zeros(m.n_id), np.zeros(m.n_exp), Pose(1, 0, 0, 0, 0, 0))
        >>> h = head_geometry(m, p)
        >>> rng = np.random.default_rng(0)
        >>> g = make_glasses(h, rng, sample_glasses_style(rng, False))
        >>> 120 < float(np.ptp(g.vertices[:, 0])) < 175
        True
    """
    style = fitted_style(head, style)
    outline_l = lens_outline(style)
    outline_r = outline_l * [-1, 1]
    cx = style.bridge / 2 + style.lens_w / 2
    half_width = cx + style.lens_w / 2 + style.rim_w
    plane = _FramePlane(head, style, half_width)
    alb, gloss, shin, f0 = FRAME_COLOURS[style.colour]
    albedo = np.asarray(alb) * rng.uniform(0.85, 1.15)
    mat = dict(albedo=np.clip(albedo, 0, 1), gloss=gloss, shininess=shin, reflectance=f0)
    parts: list[Mesh] = []
    for side, outline in ((-1, outline_r), (1, outline_l)):
        centre = np.array([side * cx, 0.0])
        ol = outline[::-1] if side < 0 else outline  # keep counter-clockwise after the mirror
        parts.append(_lens_mesh(ol, centre, plane, style))
        parts.append(_rim_mesh(ol, centre, plane, style, **mat))
        outer, hinge = _hinge(plane, centre, side, style)
        end_piece = np.stack([plane(outer, 0.0), hinge])
        parts.append(
            sweep(
                end_piece,
                np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]]),
                scale=[[style.temple_h, style.rim_d], [style.temple_h, style.rim_d]],
                up=(0.0, 1.0, 0.0),
                **mat,
            )
        )
        path = temple_path(head, hinge, side, style)
        taper = np.linspace(1.0, 0.7, len(path))
        parts.append(
            sweep(
                path,
                np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]]),
                scale=np.stack([style.temple_h * taper, np.full(len(path), style.temple_w)], 1),
                up=(0.0, 1.0, 0.0),
                **mat,
            )
        )
    # bridge: an arch over the nose between the inner rims, at the upper part of the lenses
    by = style.lens_h * (0.18 if style.metal else 0.28)
    inner = cx - style.lens_w / 2 - 0.5
    arch = np.stack([np.linspace(-inner, inner, 7), by + 2.5 * np.sin(np.linspace(0, np.pi, 7))], 1)
    bw = style.rim_w * (0.9 if style.metal else 1.1)
    parts.append(
        sweep(
            plane(arch),
            np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]]),
            scale=np.tile([[style.rim_d, bw]], (7, 1)),
            up=plane.ez,
            **mat,
        )
    )
    return merge(parts)
