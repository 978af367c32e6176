"""Adult hands as 3D meshes, posed on the fitted head, in the photo's own skin tone.

The hand is built in its own frame (mm): palm in the x-y plane, fingers toward +y, back
of the hand toward +z, thumb on the -x side (a right hand; a left hand is its mirror).
Four fingers are tubes through their joints (MCP, PIP, DIP) with tapering radii, knuckle
bulges and rounded tips; the thumb has three segments in opposition; the palm is a rounded
slab; a forearm (bare or sleeved) leaves the frame. Joint angles come from a pose (flat,
relaxed, curled, fist, or a grip round a cylinder for cups).

Sizes: hand length (wrist crease to middle fingertip) 170-200 mm, palm breadth 75-92 mm,
finger diameter ~16-20 mm, forearm ~60 mm wide at the wrist.

:func:`place_hand` puts a hand on the face: at the mouth, chin, cheek, eyes, forehead or
above the forehead (the paper's failure case), palm toward the skin, then lifts it out of
the head if any part would sink in.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from deocc_core.errors import ConfigError
from deocc_core.landmarks.parts import part, point
from deocc_core.occluders.head import HeadGeometry
from deocc_core.occluders.mesh import Mesh, cross3, grid_mesh, merge, smooth_path, tube, tubes
from deocc_core.occluders.textures import random_fabric_colour

__all__ = [
    "HandStyle",
    "HAND_PLACES",
    "sample_hand_style",
    "make_hand",
    "place_hand",
    "finger_curl",
    "make_forearm",
]

# finger: (MCP x, MCP y, length, base radius); right hand, thumb at -x, fingers +y
FINGERS = np.array(
    [
        [-25.5, 46.0, 74.0, 8.9],  # index
        [-8.0, 50.0, 82.0, 9.1],  # middle
        [9.0, 47.0, 77.0, 8.6],  # ring
        [25.0, 40.0, 61.0, 7.6],  # little
    ]
)
PHALANX = np.array([0.46, 0.30, 0.24])
HAND_PLACES = ("mouth", "chin", "cheek", "eyes", "forehead", "above", "half")


@dataclass(frozen=True)
class HandStyle:
    """One hand.

    Attributes:
        size: scale on an average adult hand (1 = 188 mm long, 84 mm broad).
        left: a left hand (mirror image).
        curl: ``[5, 3]`` flexion (radians) of each digit's three joints (thumb first).
        spread: ``[4]`` finger abduction, radians (+ toward the little finger side).
        skin: ``[3]`` albedo. sleeve: ``[3]`` sleeve albedo or None (bare forearm).
        sleeve_at: distance from the wrist where the sleeve starts, mm.
    """

    size: float
    left: bool
    curl: npt.NDArray[np.float64]
    spread: npt.NDArray[np.float64]
    skin: tuple[float, float, float]
    sleeve: tuple[float, float, float] | None
    sleeve_at: float


def finger_curl(kind: str, rng: np.random.Generator, radius: float = 45.0) -> np.ndarray:
    """``[5, 3]`` joint flexion (radians) for a named pose; ``radius``: grip cylinder, mm.

    Example:
        >>> finger_curl("fist", np.random.default_rng(0)).shape
        (5, 3)
    """
    j = rng.uniform(-1, 1, (5, 3))
    if kind == "flat":
        base = np.array([[0.3, 0.15, 0.1]] + [[0.08, 0.12, 0.06]] * 4)
        return base + 0.06 * j
    if kind == "relaxed":
        base = np.array([[0.35, 0.3, 0.2]] + [[0.3, 0.5, 0.3]] * 4)
        return base + 0.12 * j
    if kind == "fist":
        base = np.array([[0.6, 0.6, 0.5]] + [[1.4, 1.6, 0.9]] * 4)
        return base + 0.1 * j
    # grip: each segment turns by its length over the cylinder radius (+ the finger's own)
    lengths = FINGERS[:, 2:3] * PHALANX[None]
    per = lengths / (radius + 9.0)
    grip = np.concatenate([[[0.5, 0.35, 0.3]], per], 0)
    return grip * (1 + 0.08 * j)


def sample_hand_style(
    rng: np.random.Generator, skin: npt.ArrayLike, pose: str = "flat"
) -> HandStyle:
    """Draw a hand with the given skin albedo (varied a little) and pose.

    Example:
        >>> s = sample_hand_style(np.random.default_rng(0), (0.7, 0.5, 0.4))
        >>> 0.85 < s.size < 1.15
        True
    """
    skin = np.asarray(skin, np.float64) * rng.uniform(0.93, 1.05) * rng.uniform(0.97, 1.03, 3)
    sleeve = tuple(float(c) for c in random_fabric_colour(rng)) if rng.random() < 0.55 else None
    spread = {"flat": 0.1, "relaxed": 0.06}.get(pose, 0.02)
    return HandStyle(
        size=float(np.clip(rng.normal(1.0, 0.045), 0.9, 1.08)),
        left=bool(rng.random() < 0.5),
        curl=finger_curl(pose, rng),
        spread=np.linspace(-1.2, 1.6, 4) * spread * rng.uniform(0.5, 1.5),
        skin=tuple(float(c) for c in np.clip(skin, 0.03, 0.95)),  # type: ignore[arg-type]
        sleeve=sleeve,  # type: ignore[arg-type]
        sleeve_at=float(rng.uniform(40, 130)),
    )


def _rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _digit_path(
    base: np.ndarray, direction: np.ndarray, lengths: np.ndarray, flex: np.ndarray, axis: np.ndarray
) -> np.ndarray:
    """Joint positions of a digit: each joint bends the rest about ``axis`` by ``flex``."""
    k = np.asarray(axis, np.float64) / np.linalg.norm(axis)
    d = np.asarray(direction, np.float64) / np.linalg.norm(direction)
    kx, ky, kz = float(k[0]), float(k[1]), float(k[2])
    # Rodrigues rotation matrix about k, built once per angle (3-vectors: plain floats)
    pts = np.empty((len(lengths) + 1, 3))
    pts[0] = base
    for j, (seg, a) in enumerate(zip(lengths, flex, strict=True)):
        c, s_ = np.cos(a), np.sin(a)
        t = 1 - c
        rot = np.array(
            [
                [c + kx * kx * t, kx * ky * t - kz * s_, kx * kz * t + ky * s_],
                [ky * kx * t + kz * s_, c + ky * ky * t, ky * kz * t - kx * s_],
                [kz * kx * t - ky * s_, kz * ky * t + kx * s_, c + kz * kz * t],
            ]
        )
        d = rot @ d
        pts[j + 1] = pts[j] + d * seg
    return pts


def _digits_mesh(
    joints: list[np.ndarray],
    r0: np.ndarray,
    axes: np.ndarray,
    skin: np.ndarray,
    nail: np.ndarray,
) -> Mesh:
    """All five digits as tubes through their joints.

    Tapering, knuckle bulges, rounded tips, nails on the back of the tips, shaded sides
    (the neighbouring fingers' shadow) and redder joints.
    """
    n_body, sides = 16, 10
    cap_t = np.array([0.35, 0.65, 0.85, 0.97])
    n_path = n_body + len(cap_t)
    seg = np.linspace(0, 1, n_body)
    paths, radii = [], []
    for jt, r in zip(joints, r0, strict=True):
        path = smooth_path(jt, n_body)
        radius = r * (1.0 - 0.22 * seg) * (1 + 0.05 * np.cos(seg * 3 * 2 * np.pi) ** 2)
        tip = jt[-1] - jt[-2]
        tip = tip / np.linalg.norm(tip)
        rt = radius[-1]
        paths.append(np.concatenate([path, jt[-1][None] + tip[None] * (cap_t * rt * 0.9)[:, None]]))
        radii.append(np.concatenate([radius, rt * np.sqrt(1 - cap_t**2)]))
    mesh, dirs = tubes(
        np.asarray(paths), np.maximum(np.asarray(radii), 0.3), axes, sides=sides, flat=0.86
    )
    nf = len(joints)
    ring = (np.arange(nf * n_path * sides) // sides) % n_path
    t = ring / (n_body - 1)
    # ring direction 0 is binormal x tangent = the palm side (flexion axis x finger)
    palm_dir = dirs.reshape(nf, n_path, sides, 3)[:, :, :1]
    back = -(dirs.reshape(nf, n_path, sides, 3) * palm_dir).sum(-1).reshape(-1)
    lateral = np.broadcast_to(axes[:, None, None, :], (nf, n_path, sides, 3)).reshape(-1, 3)
    side = np.abs((dirs * lateral).sum(1))
    joint = np.exp(-(((t[:, None] - np.array([0.05, 0.46, 0.76])) / 0.05) ** 2)).sum(1)
    alb = np.broadcast_to(np.asarray(skin, np.float32), (len(t), 3)).copy()
    alb *= (1 - 0.32 * side**2)[:, None]
    alb *= 1 + 0.06 * joint[:, None] * np.array([0.4, -1.0, -0.8], np.float32)
    is_nail = (t >= 0.8) & (t <= 1.02) & (back > 0.55)
    alb[is_nail] = nail
    from dataclasses import replace

    return replace(
        mesh,
        albedo=np.clip(alb, 0, 1).astype(np.float32),
        gloss=np.where(is_nail, 0.35, 0.05).astype(np.float32),
        shininess=np.where(is_nail, 30.0, 8.0).astype(np.float32),
    )


def _palm_mesh(
    f: float, skin: np.ndarray, palm_skin: np.ndarray, knuckle: np.ndarray, rng: np.random.Generator
) -> Mesh:
    """The hand's body: a loft from the wrist (narrow, thick) to the knuckles (broad).

    Its back is convex with the metacarpal knuckles standing out, its palm side flatter and paler.
    """
    rows, cols = 12, 22
    t = np.linspace(0, 1, rows)[:, None]  # wrist -> knuckles
    a = np.linspace(0, 2 * np.pi, cols, endpoint=False)[None]
    y = (-58 + 100 * t) * f
    half_w = (29 + 11 * t**0.8) * f
    half_t = (14.5 - 3.5 * t) * f
    ca, sa = np.cos(a), np.sin(a)
    x = half_w * np.sign(ca) * np.abs(ca) ** 0.7
    z = half_t * np.sign(sa) * np.abs(sa) ** 0.9
    z = np.where(z > 0, z, z * 0.75)  # flatter palm side
    # metacarpal knuckles at the distal end of the back
    knx = FINGERS[:, 0] * f
    bumps = np.exp(-(((x[..., None] - knx) / (6.5 * f)) ** 2)).sum(-1)
    z = z + np.where(z > 0, 2.8 * f * bumps * np.clip((t - 0.7) / 0.3, 0, 1), 0)
    # a gentle arch across the back
    z = z - 0.06 * (x / f) ** 2 / 42 * f * (z > 0)
    grid = np.stack([x, np.broadcast_to(y, x.shape), z], -1)
    palm_side = (z < 0)[..., None]
    alb = np.where(palm_side, palm_skin, skin) * np.ones((rows, cols, 1))
    near_knuckles = (np.clip((t - 0.75) / 0.25, 0, 1) * bumps)[..., None] * (~palm_side)
    alb = alb * (1 - near_knuckles * 0.06) + near_knuckles * 0.06 * knuckle
    return grid_mesh(
        grid, wrap_cols=True, albedo=np.clip(alb, 0, 1), gloss=0.1, shininess=12.0,
        reflectance=0.02,
    )  # fmt: skip


def make_forearm(style: HandStyle, wrist: np.ndarray, direction: np.ndarray) -> Mesh:
    """The forearm (bare or sleeved) from ``wrist`` along ``direction`` (model space, mm)."""
    f = style.size
    d = _unit(direction)
    arm = wrist[None] + d[None] * np.array([0.0, 30, 120, 300])[:, None] * f
    arm_r = np.array([30, 31, 34, 38]) * f
    parts = [tube(arm, arm_r, sides=12, flat=0.72, albedo=style.skin, gloss=0.08, shininess=10.0)]
    if style.sleeve is not None:
        t0 = 20 * f + style.sleeve_at
        cuff = wrist[None] + d[None] * np.array([t0, t0 + 50, 320 * f])[:, None]
        parts.append(
            tube(
                cuff,
                np.array([38, 42, 46]) * f,
                sides=12,
                flat=0.78,
                albedo=style.sleeve,
                gloss=0.03,
                shininess=5.0,
            )
        )
    return merge(parts)


def make_hand(style: HandStyle, rng: np.random.Generator) -> Mesh:
    """Build a hand (up to the wrist) in the hand frame (mm): palm centre at the origin.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> h = make_hand(sample_hand_style(rng, (0.7, 0.5, 0.4)), rng)
        >>> 150 < float(h.vertices[:, 1].max() + 50 * 1.0) < 260
        True
    """
    f = style.size
    skin = np.asarray(style.skin)
    palm_skin = np.clip(skin * 1.08 + 0.03, 0, 1)
    knuckle = np.clip(skin * np.array([1.02, 0.93, 0.92]), 0, 1)
    nail = np.clip(skin * 0.55 + np.array([0.42, 0.34, 0.33]), 0, 1)
    parts: list[Mesh] = []
    parts.append(_palm_mesh(f, skin, palm_skin, knuckle, rng))
    flex_axis = np.array([-1.0, 0.0, 0.0])  # flexion turns the finger toward -z (palm side)
    joints, radii, axes = [], [], []
    for i, (x, y, length, r) in enumerate(FINGERS):
        spread = _rot_z(-style.spread[i])
        axis = spread @ flex_axis
        joints.append(
            _digit_path(
                np.array([x * f, y * f - 14 * f, 1.5 * f]),
                spread @ np.array([0.0, 1.0, 0.0]),
                np.r_[12 * f, PHALANX * length * f],
                np.r_[0, style.curl[i + 1]],
                axis,
            )
        )
        radii.append(r * f)
        axes.append(axis)
    # thumb: from the base of the palm on the -x side, in opposition (toward the palm side)
    t_dir = np.array([-0.55, 0.75, -0.38])
    t_axis = cross3(t_dir, np.array([0.3, 0.0, -1.0]))  # flexion toward the palm
    t_axis /= np.linalg.norm(t_axis)
    joints.append(
        _digit_path(
            np.array([-30 * f, -22 * f, -4 * f]), t_dir, np.array([40, 32, 27]) * f,
            style.curl[0], t_axis,
        )
    )  # fmt: skip
    radii.append(11.0 * f)
    axes.append(t_axis)
    parts.append(_digits_mesh(joints, np.asarray(radii), np.asarray(axes), knuckle, nail))
    hand = merge(parts)
    if style.left:
        mirror = np.diag([-1.0, 1.0, 1.0])
        hand = hand.transformed(mirror, np.zeros(3))
    return hand


@dataclass(frozen=True)
class _Placement:
    anchor: np.ndarray
    normal: np.ndarray  # out of the skin (the back of the hand faces this way)
    fingers: np.ndarray  # direction of the fingers
    gap: float  # palm-centre distance above the skin, mm


def _unit(v: npt.ArrayLike) -> np.ndarray:
    v = np.asarray(v, np.float64)
    return v / max(float(np.linalg.norm(v)), 1e-9)


def _placement(head: HeadGeometry, where: str, side: int, rng: np.random.Generator) -> _Placement:
    """Where the palm goes for a named place; ``side`` -1: the subject's right, +1: left."""
    lm = head.landmarks.astype(np.float64)
    d = head.eye_span
    up = np.array([0.0, 1.0, 0.0])
    fwd = np.array([0.0, 0.0, 1.0])
    across = np.array([-side, 0.0, 0.0])  # from the hand's side toward the other
    if where == "mouth":
        a = lm[point("upper_lip_inner")] + [
            side * rng.uniform(0.15, 0.4) * d,
            rng.uniform(-0.15, 0.02) * d,
            0,
        ]
        fingers = _unit(across + up * rng.uniform(-0.15, 0.35))
        gap = 15.0
    elif where == "chin":
        a = lm[point("chin")] + [
            side * rng.uniform(0.05, 0.25) * d,
            rng.uniform(0.0, 0.12) * d,
            0.05 * d,
        ]
        fingers = _unit(across * rng.uniform(0.4, 1.0) + up)
        return _Placement(a, _unit(fwd * 0.9 - up * 0.5), fingers, 16.0)
    elif where == "cheek":
        a = (
            lm[point("jaw_03_subject-right" if side < 0 else "jaw_13_subject-left")] * 0.75
            + lm[point("nose_base_0" if side < 0 else "nose_base_4")] * 0.25
        )
        a = a + [0, rng.uniform(0.0, 0.2) * d, 0]
        fingers = _unit(up - across * rng.uniform(0.0, 0.3))
        gap = 14.0
    elif where == "half":  # palm over one eye and cheek, fingers up over the brow
        eye = lm[part("eye_right" if side < 0 else "eye_left")].mean(0)
        cheek = lm[point("jaw_03_subject-right" if side < 0 else "jaw_13_subject-left")]
        a = eye * 0.55 + cheek * 0.3 + lm[point("nose_tip")] * 0.15
        a = a + [0, rng.uniform(-0.1, 0.1) * d, 0]
        fingers = _unit(up + across * rng.uniform(-0.1, 0.25))
        gap = 16.0
    elif where == "eyes":
        both = rng.random() < 0.6
        eye = (
            lm[point("nose_top")] * 0.7 + lm[point("nose_tip")] * 0.3
            if both
            else lm[part("eye_right" if side < 0 else "eye_left")].mean(0)
        )
        a = eye + [side * (0.45 * d if both else 0.25 * d), rng.uniform(-0.05, 0.1) * d, 0]
        fingers = _unit(across + up * rng.uniform(-0.1, 0.25))
        gap = 16.0
    elif where == "forehead":
        a = (
            lm[point("nose_top")]
            + up * rng.uniform(0.35, 0.55) * d
            + [side * rng.uniform(0.2, 0.5) * d, 0, 0]
        )
        fingers = _unit(across + up * rng.uniform(-0.1, 0.3))
        gap = 14.0
    else:  # above: shading the eyes / a hand on the hair above the forehead
        a = (
            lm[point("nose_top")]
            + up * rng.uniform(0.3, 0.55) * d
            + fwd * rng.uniform(0.1, 0.3) * d
        )
        a = a + [side * rng.uniform(0, 0.3) * d, 0, 0]
        fingers = _unit(across + fwd * rng.uniform(0.0, 0.4))
        normal = _unit(up * 1.0 + fwd * rng.uniform(0.3, 0.8))
        return _Placement(a, normal, fingers, 20.0)
    z = head.surface_z(a[:2])
    a = np.array([a[0], a[1], max(float(z), a[2])])
    normal = head.surface_normal(a[:2]).astype(np.float64)
    return _Placement(a, normal, fingers, gap)


def _frame(p: _Placement) -> np.ndarray:
    """Rotation hand frame → model space: +z = p.normal (back of hand), +y ≈ p.fingers."""
    z = _unit(p.normal)
    y = _unit(p.fingers - z * np.dot(p.fingers, z))
    x = cross3(y, z)
    return np.stack([x, y, z], 1)


def place_hand(
    head: HeadGeometry,
    rng: np.random.Generator,
    style: HandStyle,
    where: str,
    *,
    side: int | None = None,
) -> Mesh:
    """A hand resting at ``where`` (one of :data:`HAND_PLACES`) on ``head`` (model space).

    The palm faces the skin (a right hand on the subject's right side reaches across to
    the left, and vice versa); the whole hand is then lifted along the skin normal until no
    part of it sinks into the face.

    Example:
        >>> from deocc_core.morphable.model import load_model
        >>> from deocc_core.morphable.params import FitParams, Pose
        >>> from deocc_core.occluders.head import head_geometry
        >>> m = load_model("starter")
        >>> p = FitParams(np.zeros(m.n_id), np.zeros(m.n_exp), Pose(1, 0, 0, 0, 0, 0))
        >>> h = head_geometry(m, p)
        >>> rng = np.random.default_rng(0)
        >>> hand = place_hand(h, rng, sample_hand_style(rng, (0.7, 0.5, 0.4)), "mouth")
        >>> bool(hand.vertices[:, 2].max() > h.landmarks[point("upper_lip_inner"), 2])
        True
    """
    if where not in HAND_PLACES:
        raise ConfigError(f"unknown hand place {where!r} (choose from {', '.join(HAND_PLACES)})")
    if side is None:
        side = 1 if style.left else -1  # a right hand comes from the subject's right
        yaw = float(np.degrees(head.pose.yaw))
        if abs(yaw) > 20 and rng.random() < 0.85:
            # on a turned head, the hand on the far side would hide behind it: near side
            # (positive yaw turns the subject's left, +x, away from the camera)
            side = -1 if yaw > 0 else 1
    if (side > 0) != style.left:
        style = replace(style, left=side > 0)
    p = _placement(head, where, side, rng)
    rot = _frame(p)
    twist = _rot_z(rng.uniform(-0.15, 0.15))
    hand = make_hand(style, rng)
    centre = p.anchor + _unit(p.normal) * (p.gap * style.size)
    placed = hand.transformed(rot @ twist, centre)
    # the forearm leaves downward and outward from the wrist (the wrist bends)
    wrist = centre + (rot @ twist) @ np.array([0.0, -52.0 * style.size, 0.0])
    out = np.array([float(side), 0.0, 0.0])
    down = -(head.rotation.T @ np.array([0.0, 1.0, 0.0]))  # the arm hangs in the world
    fingers = (rot @ twist)[:, 1]
    arm_dir = _unit(-fingers * 0.6 + down * 0.9 + out * 0.3 + _unit(p.normal) * 0.35)
    placed = merge([placed, make_forearm(style, wrist, arm_dir)])
    # lift out of the face where any vertex sinks in
    v = placed.vertices
    inside = head.push_out(v, 1.5)
    lift = float(np.max(inside[:, 2] - v[:, 2])) if len(v) else 0.0
    if lift > 0.1:
        n = _unit(p.normal)
        placed = placed.transformed(np.eye(3), n * lift / max(abs(n[2]), 0.35))
    return placed
