"""Procedural occluders for the six classes, drawn from the face's landmarks.

Each maker returns an RGBA layer ``[H, W, 4]`` float32 in [0, 1] (straight alpha) in the
image's pixel frame, anchored to landmarks so it follows scale, roll and yaw: masks and
scarves follow the jaw line, glasses sit on the eye corners, cups and hands are placed
at sampled face parts. OpenCV polygons with anti-aliased edges and simple shading; no
per-pixel Python loops.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import numpy.typing as npt

from deocc_core.occluders.classes import OccluderClass

__all__ = ["MAKERS", "make_layer", "procedural_texture"]

Layer = npt.NDArray[np.float32]


def _poly_alpha(h: int, w: int, polys: list[np.ndarray], soft: float = 0.8) -> np.ndarray:
    a = np.zeros((h, w), np.uint8)
    for p in polys:
        cv2.fillPoly(a, [np.round(p * 4).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=2)
    a = a.astype(np.float32) / 255.0
    return cv2.GaussianBlur(a, (0, 0), soft) if soft > 0 else a


def procedural_texture(
    h: int, w: int, rng: np.random.Generator, base: npt.ArrayLike | None = None
) -> np.ndarray:
    """A ``[H, W, 3]`` float32 fabric-like texture: solid, stripes, checks or speckles."""
    base = np.asarray(base if base is not None else rng.uniform(0.05, 0.95, 3), np.float32)
    kind = rng.integers(4)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    period = rng.uniform(4, 14)
    theta = rng.uniform(0, np.pi)
    u = xx * np.cos(theta) + yy * np.sin(theta)
    if kind == 0:
        pattern = np.zeros_like(u)
    elif kind == 1:
        pattern = (np.sin(u * 2 * np.pi / period) > 0).astype(np.float32)
    elif kind == 2:
        v = -xx * np.sin(theta) + yy * np.cos(theta)
        pattern = ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)
    else:
        pattern = (
            cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 1.0) > 0.55
        ).astype(np.float32)
    second = np.asarray(rng.uniform(0.05, 0.95, 3), np.float32)
    tex = (
        base[None, None] * (1 - pattern[..., None] * 0.7)
        + second[None, None] * pattern[..., None] * 0.7
    )
    return np.clip(tex + rng.normal(0, 0.015, (h, w, 1)).astype(np.float32), 0, 1)


def _texture_under(
    alpha: np.ndarray, rng: np.random.Generator, base: npt.ArrayLike | None = None
) -> np.ndarray:
    """:func:`procedural_texture` over ``alpha``'s bounding box only (0 elsewhere), for speed."""
    h, w = alpha.shape
    tex = np.zeros((h, w, 3), np.float32)
    ys, xs = np.nonzero(alpha > 0)
    if ys.size == 0:
        return tex
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    tex[y0:y1, x0:x1] = procedural_texture(int(y1 - y0), int(x1 - x0), rng, base)
    return tex


def _shade(tex: np.ndarray, alpha: np.ndarray, strength: float = 0.25) -> np.ndarray:
    """Darken toward the silhouette: a cheap rounded look."""
    inner = cv2.GaussianBlur(alpha, (0, 0), max(2.0, np.sqrt(alpha.sum() + 1) / 10))
    return np.clip(
        tex * (1 - strength + strength * np.clip(inner / max(inner.max(), 1e-6), 0, 1))[..., None],
        0,
        1,
    )


def _rgba(color: np.ndarray, alpha: np.ndarray) -> Layer:
    return np.concatenate([color, alpha[..., None]], 2).astype(np.float32)


def _face_scale(lm: np.ndarray) -> float:
    return float(np.linalg.norm(lm[16] - lm[0]) + np.linalg.norm(lm[8] - lm[27])) / 2


def _far_side(lm: np.ndarray) -> int | None:
    """Which face side is turned away: 0 (contour point 0's side), 1 (16's), None (frontal).

    The nose tip's distance to each end of the jaw contour: a ratio below 0.45 (about 35
    degrees of yaw) means that side's ear and temple are hidden behind the head.
    """
    d0, d1 = np.linalg.norm(lm[30] - lm[0]), np.linalg.norm(lm[30] - lm[16])
    ratio = min(d0, d1) / max(d0, d1, 1e-6)
    if ratio >= 0.45:
        return None
    return 0 if d0 < d1 else 1


def _mask(h, w, lm, rng, yaw):
    """Surgical / cloth mask: jaw line up to the nose bridge, ear loops."""
    top_y = lm[28] + (lm[29] - lm[28]) * rng.uniform(0, 0.8)
    jaw = lm[2:15].copy()
    chin_drop = (lm[8] - lm[57]) * rng.uniform(0.05, 0.25)
    jaw[4:9] += chin_drop
    outline = np.concatenate(
        [[lm[1] + (top_y - lm[1]) * 0.7], jaw, [lm[15] + (top_y - lm[15]) * 0.7], [top_y]], 0
    )
    # the hull with nose and mouth: on turned faces the far jaw points lie behind the mouth
    lower = np.concatenate([outline, lm[31:36], lm[48:60] + (lm[48:60] - lm[48:60].mean(0)) * 0.3])
    alpha = _poly_alpha(h, w, [cv2.convexHull(lower.astype(np.float32))[:, 0].astype(np.float64)])
    base = (
        rng.choice([[0.55, 0.75, 0.9], [0.95, 0.95, 0.95], [0.1, 0.1, 0.12], [0.4, 0.7, 0.6]])
        if rng.random() < 0.6
        else None
    )
    tex = _texture_under(alpha, rng, base)
    yy = np.mgrid[0:h, 0:w][0].astype(np.float32)
    pleats = 1 - 0.08 * (np.sin((yy - top_y[1]) / max(_face_scale(lm) / 18, 1) * np.pi) > 0.6)
    color = _shade(tex * pleats[..., None], alpha)
    loops = np.zeros((h, w), np.float32)
    t = max(1, int(round(_face_scale(lm) / 80)))
    far = _far_side(lm)
    for side, (a, b) in enumerate(
        ((lm[1] + (top_y - lm[1]) * 0.7, lm[0]), (lm[15] + (top_y - lm[15]) * 0.7, lm[16]))
    ):
        if side == far:  # the loop to the hidden ear would cross the visible cheek
            continue
        cv2.line(
            loops,
            tuple(np.round(a).astype(int)),
            tuple(np.round(b).astype(int)),
            1.0,
            t,
            cv2.LINE_AA,
        )
    alpha = np.maximum(alpha, loops * 0.9)
    color = (
        np.where(loops[..., None] > alpha[..., None] - 1e-6, 0.92, color) if loops.any() else color
    )
    return _rgba(color, alpha)


def _glasses(h, w, lm, rng, yaw, sun: bool):
    scale = _face_scale(lm)
    frame = np.zeros((h, w), np.float32)
    lens = np.zeros((h, w), np.float32)
    thick = max(1, int(round(scale * rng.uniform(0.008, 0.02))))
    shape = rng.integers(3)  # round, rectangular, aviator
    centres = []
    for eye in (lm[36:42], lm[42:48]):
        c = eye.mean(0)
        ew = np.linalg.norm(eye[3] - eye[0])
        angle = np.degrees(np.arctan2(eye[3, 1] - eye[0, 1], eye[3, 0] - eye[0, 0]))
        axes = (
            max(2, int(ew * rng.uniform(0.85, 1.05))),
            max(2, int(ew * (0.6 if shape == 1 else rng.uniform(0.6, 0.8)))),
        )
        centre = tuple(int(v) for v in np.round(c + [0, ew * 0.1]))
        centres.append(np.array(centre, np.float32))
        if shape == 1:
            box = cv2.boxPoints(
                ((float(centre[0]), float(centre[1])), (2.0 * axes[0], 2.0 * axes[1]), float(angle))
            )
            cv2.fillPoly(lens, [np.round(box).astype(np.int32)], 1.0, cv2.LINE_AA)
            cv2.polylines(frame, [np.round(box).astype(np.int32)], True, 1.0, thick, cv2.LINE_AA)
        else:
            cv2.ellipse(lens, centre, axes, angle, 0, 360, 1.0, -1, cv2.LINE_AA)
            cv2.ellipse(frame, centre, axes, angle, 0, 360, 1.0, thick, cv2.LINE_AA)
    cv2.line(
        frame,
        tuple(np.round(centres[0] + (centres[1] - centres[0]) * 0.3).astype(int)),
        tuple(np.round(centres[0] + (centres[1] - centres[0]) * 0.7).astype(int)),
        1.0,
        thick,
        cv2.LINE_AA,
    )
    far = _far_side(lm)
    for side, (eye_outer, ear) in enumerate(((lm[36], lm[0]), (lm[45], lm[16]))):  # temples
        if side == far:  # hidden behind the head on a turned face
            continue
        cv2.line(
            frame,
            tuple(np.round(eye_outer).astype(int)),
            tuple(np.round(ear).astype(int)),
            1.0,
            thick,
            cv2.LINE_AA,
        )
    frame_color = np.asarray(
        rng.choice([[0.05, 0.05, 0.05], [0.35, 0.2, 0.1], [0.7, 0.6, 0.3], [0.5, 0.5, 0.55]]),
        np.float32,
    )
    if sun:
        tint = np.asarray(rng.uniform(0.0, 0.25, 3), np.float32)
        lens_alpha = rng.uniform(0.8, 0.95)
    else:
        tint = np.asarray([0.85, 0.9, 0.95], np.float32)
        lens_alpha = rng.uniform(0.08, 0.2)
    yy = np.mgrid[0:h, 0:w][0].astype(np.float32)
    if sun and rng.random() < 0.5:  # gradient lenses: dark on top, lighter toward the cheeks
        eye_y, eye_w = lm[36:48, 1].mean(), np.linalg.norm(lm[39] - lm[36])
        grad = np.clip((yy - (eye_y - eye_w * 0.6)) / max(eye_w * 1.3, 1.0), 0, 1)
        lens_alpha = lens_alpha * (1 - rng.uniform(0.25, 0.5) * grad)
    alpha = np.maximum(frame, lens * lens_alpha)
    glare = 1 + 0.25 * np.exp(
        -(((yy - (lm[37:39, 1].mean() - 2)) / max(scale / 40, 1)) ** 2)
    )  # a highlight band
    color = np.where(
        frame[..., None] >= (lens * lens_alpha)[..., None],
        frame_color,
        np.clip(tint * glare[..., None], 0, 1),
    )
    return _rgba(color.astype(np.float32), cv2.GaussianBlur(alpha, (0, 0), 0.5))


def _cup(h, w, lm, rng, yaw):
    scale = _face_scale(lm)
    side = rng.choice([-1, 1])
    cw = scale * rng.uniform(0.28, 0.4)
    ch = cw * rng.uniform(1.1, 1.5)
    anchor = lm[57] * 0.5 + lm[48 if side < 0 else 54] * 0.5
    cx = anchor[0] + side * cw * rng.uniform(0.1, 0.5)
    top = anchor[1] - ch * rng.uniform(0.15, 0.45)
    tilt = np.radians(rng.uniform(-20, 20))
    rect = np.array([[-cw / 2, 0], [cw / 2, 0], [cw * 0.42, ch], [-cw * 0.42, ch]])
    rot = np.array([[np.cos(tilt), -np.sin(tilt)], [np.sin(tilt), np.cos(tilt)]])
    body = rect @ rot.T + [cx, top]
    alpha = _poly_alpha(h, w, [body])
    handle = np.zeros((h, w), np.float32)
    hc = tuple(
        np.round(
            body[1 if side > 0 else 0] * 0.5
            + body[2 if side > 0 else 3] * 0.5
            + [side * cw * 0.15, 0]
        ).astype(int)
    )
    cv2.ellipse(
        handle,
        hc,
        (max(2, int(cw * 0.2)), max(2, int(ch * 0.25))),
        np.degrees(tilt),
        0,
        360,
        1.0,
        max(2, int(cw * 0.08)),
        cv2.LINE_AA,
    )
    alpha = np.maximum(alpha, handle)
    xx = np.mgrid[0:h, 0:w][1].astype(np.float32)
    base = np.asarray(rng.uniform(0.1, 0.95, 3), np.float32)
    # cylinder shading across the cup's width
    u = np.clip((xx - (cx - cw / 2)) / cw, 0, 1)
    color = base[None, None] * (0.55 + 0.45 * np.sin(np.pi * u))[..., None]
    if rng.random() < 0.5:
        color = color * (0.6 + 0.4 * _texture_under(alpha, rng))
    # rim: the opening's ellipse at the top, dark inside with a light lip
    top_c = (body[0] + body[1]) / 2
    rim_axes = (max(2, int(cw / 2)), max(1, int(cw * rng.uniform(0.08, 0.16))))
    rim_c = tuple(int(v) for v in np.round(top_c))
    inner = np.zeros((h, w), np.float32)
    cv2.ellipse(inner, rim_c, rim_axes, np.degrees(tilt), 0, 360, 1.0, -1, cv2.LINE_AA)
    lip = np.zeros((h, w), np.float32)
    cv2.ellipse(
        lip, rim_c, rim_axes, np.degrees(tilt), 0, 360, 1.0, max(1, int(cw * 0.04)), cv2.LINE_AA
    )
    alpha = np.maximum(alpha, inner)
    color = color * (1 - inner[..., None]) + (base * 0.3)[None, None] * inner[..., None]
    color = (
        color * (1 - lip[..., None]) + np.minimum(base * 1.2 + 0.1, 1)[None, None] * lip[..., None]
    )
    if rng.random() < 0.4:  # fingers wrapped round the cup from the handle side
        t = rng.random()
        skin = (np.array([0.96, 0.8, 0.7]) * (1 - t) + np.array([0.36, 0.22, 0.15]) * t).astype(
            np.float32
        )
        fingers = np.zeros((h, w), np.float32)
        fw = max(1, int(round(ch * 0.07)))
        for k in range(int(rng.integers(3, 5))):
            y = ch * (0.35 + 0.15 * k)
            a = np.array([side * cw * 0.55, y]) @ rot.T + [cx, top]
            b = np.array([-side * cw * rng.uniform(0.05, 0.3), y]) @ rot.T + [cx, top]
            cv2.line(
                fingers,
                tuple(np.round(a * 4).astype(int)),
                tuple(np.round(b * 4).astype(int)),
                1.0,
                fw,
                cv2.LINE_AA,
                shift=2,
            )
        fingers = cv2.GaussianBlur(fingers, (0, 0), 0.6)
        edge = 0.6 + 0.4 * fingers  # darker finger borders: separation shading
        color = (
            color * (1 - fingers[..., None])
            + skin[None, None] * edge[..., None] * fingers[..., None]
        )
        alpha = np.maximum(alpha, fingers)
    return _rgba(np.clip(color, 0, 1).astype(np.float32), alpha)


def _scarf(h, w, lm, rng, yaw):
    scale = _face_scale(lm)
    top_y = lm[30, 1] + (lm[57, 1] - lm[30, 1]) * rng.uniform(0.1, 0.9)
    xs_all = np.concatenate([lm[0:17, 0], lm[31:36, 0], lm[48:68, 0]])
    left = np.array([xs_all.min() - scale * 0.15, 0])
    right = np.array([xs_all.max() + scale * 0.15, 0])
    wave = scale * 0.04
    xs = np.linspace(left[0], right[0], 12)
    centre_x, half = (left[0] + right[0]) / 2, max((right[0] - left[0]) / 2, 1.0)
    wrap = (
        scale * rng.uniform(0.05, 0.15) * ((xs - centre_x) / half) ** 2
    )  # the sides sag around the jaw
    upper = np.stack(
        [
            xs,
            top_y
            + wrap
            + wave * np.sin(np.linspace(0, np.pi * rng.uniform(1, 3), 12))
            + (xs - xs.mean()) * np.tan(np.radians(rng.uniform(-8, 8))),
        ],
        1,
    )
    outline = np.concatenate(
        [upper, [[right[0] + scale * 0.1, h + 5], [left[0] - scale * 0.1, h + 5]]], 0
    )
    alpha = _poly_alpha(h, w, [outline], soft=1.2)
    tex = _texture_under(alpha, rng)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # folds: a few soft sinusoidal ridges at random near-horizontal orientations
    folds = np.ones((h, w), np.float32)
    for _ in range(3):
        th = rng.uniform(-0.5, 0.5) + np.pi / 2
        period = scale * rng.uniform(0.12, 0.3)
        u = (xx * np.cos(th) + yy * np.sin(th)) / period * 2 * np.pi + rng.uniform(0, 2 * np.pi)
        folds *= 1 - 0.1 * (0.5 + 0.5 * np.sin(u + 0.6 * np.sin(xx / period)))
    # rolled upper edge: a band below the top outline, lighter on top, shadowed under it
    edge_y = np.interp(xx, xs, upper[:, 1])
    d = (yy - edge_y) / max(scale * 0.08, 1.0)
    roll = np.where(d < 1, 1.08, 1.0) * np.where((d >= 1) & (d < 1.6), 0.82, 1.0)
    # wrapping round the head: darker toward the sides
    side = np.clip(np.cos(np.clip((xx - centre_x) / half, -1, 1) * 1.2), 0.35, 1) ** 0.5
    shade = (folds * roll * side).astype(np.float32)
    return _rgba(np.clip(_shade(tex * shade[..., None], alpha, 0.2), 0, 1), alpha)


def _hand(h, w, lm, rng, yaw):
    scale = _face_scale(lm)
    mode = rng.choice(["mouth", "eye", "cheek", "half", "large"], p=[0.3, 0.2, 0.15, 0.2, 0.15])
    if mode == "mouth":
        centre, size = lm[62], scale * rng.uniform(0.45, 0.6)
    elif mode == "eye":
        centre, size = (
            lm[[36, 45][rng.integers(2)]] * 0.7 + lm[27] * 0.3,
            scale * rng.uniform(0.45, 0.6),
        )
    elif mode == "cheek":
        centre, size = (
            lm[[3, 13][rng.integers(2)]] * 0.6 + lm[30] * 0.4,
            scale * rng.uniform(0.4, 0.55),
        )
    elif mode == "half":
        centre, size = (
            lm[[2, 14][rng.integers(2)]] * 0.5 + lm[30] * 0.5,
            scale * rng.uniform(1.0, 1.2),
        )
    else:
        centre, size = lm[30] * 0.8 + lm[8] * 0.2, scale * rng.uniform(0.95, 1.15)
    # fingers point roughly up (local -y), the wrist runs down out of the face (local +y)
    angle = rng.uniform(-1.1, 1.1)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    polys = []
    palm = cv2.ellipse2Poly((0, 0), (int(size * 0.34), int(size * 0.38)), 0, 0, 360, 10).astype(
        np.float64
    )
    polys.append(palm)
    wrist = np.array(
        [
            [-size * 0.26, 0.1 * size],
            [size * 0.26, 0.1 * size],
            [size * 0.24, 1.6 * size],
            [-size * 0.24, 1.6 * size],
        ]
    )
    polys.append(wrist)
    offs = np.linspace(-0.25, 0.25, 4)
    width = size * 0.075
    lengths = np.array((0.42, 0.5, 0.48, 0.38)) * rng.uniform(0.9, 1.1)
    for off, length in zip(offs, lengths, strict=True):
        x0 = off * size
        tip = (
            cv2.ellipse2Poly(
                (int(round(x0 * 8)), int(round(-size * (0.2 + length) * 8))),
                (int(width * 0.9 * 8), int(width * 8)),
                0,
                180,
                360,
                20,
            ).astype(np.float64)
            / 8
        )
        finger = np.concatenate([[[x0 - width, -size * 0.1], [x0 + width, -size * 0.1]], tip[::-1]])
        polys.append(finger)
    thumb = np.array(
        [
            [size * 0.22, 0.1 * size],
            [size * 0.34, -0.1 * size],
            [size * 0.6, -0.3 * size],
            [size * 0.52, -0.4 * size],
            [size * 0.2, -0.15 * size],
        ]
    )
    if rng.random() < 0.5:  # left or right hand
        thumb[:, 0] *= -1
    polys.append(thumb)
    polys = [p @ rot.T + centre for p in polys]
    alpha = _poly_alpha(h, w, polys, soft=0.8)
    # skin tone on a light-to-dark line (no green or blue skins), mild per-channel jitter
    t = rng.random()
    skin = (np.array([0.96, 0.8, 0.7]) * (1 - t) + np.array([0.36, 0.22, 0.15]) * t) * rng.uniform(
        0.95, 1.05, 3
    )
    tex = np.clip(
        skin.astype(np.float32)[None, None] + rng.normal(0, 0.01, (h, w, 1)).astype(np.float32),
        0,
        1,
    )
    # finger separation: dark creases between adjacent fingers, fading into the palm
    crease = np.zeros((h, w), np.float32)
    for a, b in zip(offs[:-1], offs[1:], strict=True):
        gx = (a + b) / 2 * size
        seg = np.array([[gx, -size * 0.12], [gx, -size * 0.62]]) @ rot.T + centre
        cv2.line(
            crease,
            tuple(np.round(seg[0] * 4).astype(int)),
            tuple(np.round(seg[1] * 4).astype(int)),
            1.0,
            max(1, int(size * 0.02)),
            cv2.LINE_AA,
            shift=2,
        )
    crease = cv2.GaussianBlur(crease, (0, 0), max(0.6, size * 0.012))
    tex = tex * (1 - 0.45 * np.clip(crease, 0, 1))[..., None]
    return _rgba(_shade(tex, alpha, 0.3), alpha)


MAKERS: dict[OccluderClass, Callable[..., Layer]] = {
    OccluderClass.MASK: _mask,
    OccluderClass.EYEGLASSES: lambda h, w, lm, rng, yaw: _glasses(h, w, lm, rng, yaw, sun=False),
    OccluderClass.SUNGLASSES: lambda h, w, lm, rng, yaw: _glasses(h, w, lm, rng, yaw, sun=True),
    OccluderClass.CUP: _cup,
    OccluderClass.SCARF: _scarf,
    OccluderClass.HAND: _hand,
}


def make_layer(
    cls: OccluderClass,
    shape: tuple[int, int],
    landmarks: npt.NDArray[np.floating],
    rng: np.random.Generator,
    yaw_deg: float | None = None,
) -> Layer:
    """Draw one procedural occluder of class ``cls``.

    Args:
        cls: occluder class.
        shape: ``(H, W)``.
        landmarks: ``[68, 2]`` pixels.
        rng: randomness source.
        yaw_deg: head yaw if known (unused by most makers).

    Returns:
        ``[H, W, 4]`` float32 RGBA in [0, 1].

    Example:
        >>> from deocc_core.morphable.model import load_model
        >>> m = load_model("starter")
        >>> lm = m.mean[m.landmarks68, :2] * [0.4, -0.4] + 64
        >>> layer = make_layer(OccluderClass.SUNGLASSES, (128, 128), lm, np.random.default_rng(0))
        >>> eye, lip = np.round(lm[37]).astype(int), np.round(lm[57]).astype(int)
        >>> bool(layer[eye[1], eye[0], 3] > 0.5), bool(layer[lip[1], lip[0], 3] == 0)
        (True, True)
    """
    return MAKERS[OccluderClass(cls)](
        shape[0], shape[1], np.asarray(landmarks, np.float64), rng, yaw_deg
    )
