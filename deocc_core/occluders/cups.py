"""Cups, mugs and bottles at real size, held at the mouth by a hand.

Vessels are surfaces of revolution (the profile of a mug, a paper cup with or without a
lid and sleeve, a bottle with shoulder, neck, cap and label), with a mug's handle as a
swept loop and a drink inside the rim. A hand grips the body in a cylinder grip: the palm
on the vessel's side, the fingers wrapped round its front (toward the camera), the thumb
up. The pair is placed either drinking (rim at the lower lip, tilted toward the face) or
held in front of the mouth and chin.

Sizes: mugs 80-90 mm across, 90-105 mm tall; paper cups 78-90 mm at the top, 110-140 mm
tall; bottles 62-72 mm across, 200-240 mm tall.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deocc_core.landmarks.parts import point
from deocc_core.occluders.hands import (
    HandStyle,
    _unit,
    finger_curl,
    make_forearm,
    make_hand,
)
from deocc_core.occluders.head import HeadGeometry
from deocc_core.occluders.mesh import Mesh, cross3, lathe, make_mesh, merge, tube
from deocc_core.occluders.textures import random_fabric_colour

__all__ = ["CupStyle", "CUP_KINDS", "sample_cup_style", "make_cup", "place_cup"]

CUP_KINDS = ("mug", "paper", "bottle")


@dataclass(frozen=True)
class CupStyle:
    """One vessel and how it is held.

    Attributes:
        kind: one of :data:`CUP_KINDS`. radius, height: mm (top radius for a paper cup).
        colour: ``[3]`` body albedo. accent: ``[3]`` lid / sleeve / label / cap albedo.
        lid: a paper cup's lid. drinking: rim at the lip (else held lower, upright).
        tilt_deg: toward the face (drinking) or away.
    """

    kind: str
    radius: float
    height: float
    colour: tuple[float, float, float]
    accent: tuple[float, float, float]
    lid: bool
    drinking: bool
    tilt_deg: float


def sample_cup_style(rng: np.random.Generator, kind: str | None = None) -> CupStyle:
    """Draw a vessel.

    Example:
        >>> s = sample_cup_style(np.random.default_rng(0), "mug")
        >>> 40 <= s.radius <= 45 and 90 <= s.height <= 105
        True
    """
    kind = kind or str(rng.choice(CUP_KINDS, p=[0.5, 0.3, 0.2]))
    if kind == "mug":
        radius, height = rng.uniform(40, 45), rng.uniform(90, 105)
        colour = (
            np.asarray(rng.choice([(0.92, 0.92, 0.9), (0.1, 0.1, 0.11)]))
            if rng.random() < 0.5
            else random_fabric_colour(rng)
        )
    elif kind == "paper":
        radius, height = rng.uniform(39, 45), rng.uniform(110, 140)
        colour = np.asarray((0.93, 0.92, 0.88)) if rng.random() < 0.6 else random_fabric_colour(rng)
    else:
        radius, height = rng.uniform(31, 36), rng.uniform(200, 240)
        colour = np.asarray(rng.choice([(0.75, 0.85, 0.9), (0.3, 0.55, 0.3), (0.55, 0.3, 0.15)]))
    drinking = bool(rng.random() < 0.55)
    return CupStyle(
        kind=kind,
        radius=float(radius),
        height=float(height),
        colour=tuple(float(c) for c in colour),  # type: ignore[arg-type]
        accent=tuple(float(c) for c in random_fabric_colour(rng)),  # type: ignore[arg-type]
        lid=bool(kind == "paper" and rng.random() < 0.5),
        drinking=drinking,
        tilt_deg=float(rng.uniform(15, 45) if drinking else rng.uniform(-10, 10)),
    )


def _profile(style: CupStyle) -> tuple[np.ndarray, np.ndarray]:
    """(radius, height) outer profile bottom → top, and a per-point part id (0 body, 1 accent)."""
    r, h = style.radius, style.height
    if style.kind == "mug":
        pr = np.array([[0, 0], [r - 4, 0], [r - 1, 2], [r, 8], [r, h - 3], [r - 0.5, h]])
        part = np.zeros(len(pr), int)
    elif style.kind == "paper":
        rb = r * 0.7
        ys = np.array([0, 2, 30, 60, h - 4, h])
        rs = rb + (r - rb) * ys / h
        pr = np.stack([np.r_[0, rs[1:]], ys], 1)
        pr[0, 0] = 0
        pr[-1, 0] += 2.5  # rolled rim
        part = np.where((ys > h * 0.3) & (ys < h * 0.62), 1, 0)
    else:  # bottle: body, shoulder, neck, cap
        neck = 13.0
        ys = np.array([0, 3, h * 0.62, h * 0.72, h * 0.8, h * 0.88, h * 0.9, h * 0.97, h])
        rs = np.array([r - 3, r, r, r * 0.9, r * 0.6, neck, neck + 1.5, neck + 1.5, neck + 1.0])
        pr = np.stack([rs, ys], 1)
        pr = np.concatenate([[[0, 0]], pr])
        part = np.zeros(len(pr), int)
        part[(pr[:, 1] > h * 0.25) & (pr[:, 1] < h * 0.55)] = 1  # label
        part[pr[:, 1] >= h * 0.9] = 1  # cap
    return pr.astype(np.float64), part


def make_cup(style: CupStyle) -> Mesh:
    """The vessel in its own frame (mm): axis +y, bottom centre at the origin.

    Example:
        >>> m = make_cup(sample_cup_style(np.random.default_rng(0), "mug"))
        >>> 80 <= float(np.ptp(m.vertices[:, 2])) <= 92
        True
    """
    prof, part = _profile(style)
    # refine the profile so the shading is smooth along the height
    n = 18
    t = np.linspace(0, len(prof) - 1, n)
    i = np.minimum(t.astype(int), len(prof) - 2)
    w = (t - i)[:, None]
    fine = prof[i] * (1 - w) + prof[i + 1] * w
    fine_part = np.where(w[:, 0] < 0.5, part[i], part[i + 1])
    body = np.asarray(style.colour)
    accent = np.asarray(style.accent)
    sides = 32
    ceramic = style.kind == "mug"
    alb = np.where(fine_part[:, None, None] == 1, accent, body) * np.ones((1, sides, 1))
    outer = lathe(
        fine,
        sides=sides,
        albedo=alb,
        gloss=0.5 if ceramic else 0.15,
        shininess=60.0 if ceramic else 15.0,
        reflectance=0.05 if ceramic else 0.02,
    )
    parts = [outer]
    top = float(prof[-1, 1])
    if style.kind == "mug" or (style.kind == "paper" and not style.lid):
        # inner wall and the drink inside
        inner = np.array([[style.radius - 3.5, top - 0.5], [style.radius - 4, top * 0.25]])
        parts.append(lathe(inner, sides=sides, albedo=body * 0.9, gloss=0.3, shininess=30.0))
        a = np.linspace(0, 2 * np.pi, sides, endpoint=False)
        ring = np.stack([np.sin(a), np.full(sides, 0.0), np.cos(a)], 1) * (style.radius - 4)
        ring[:, 1] = top - 14
        drink = np.concatenate([[[0, top - 14, 0]], ring])
        tris = np.stack(
            [np.zeros(sides, int), 1 + np.arange(sides), 1 + (np.arange(sides) + 1) % sides], 1
        )
        colour = (0.16, 0.08, 0.04) if style.kind == "mug" else (0.3, 0.18, 0.1)
        parts.append(
            make_mesh(drink, tris, albedo=colour, gloss=0.6, shininess=80.0, reflectance=0.04)
        )
    if style.kind == "paper" and style.lid:
        r = style.radius
        lid = np.array(
            [[r + 3, top], [r + 2, top + 8], [r - 6, top + 10], [r * 0.6, top + 14], [0, top + 14]]
        )
        parts.append(lathe(lid, sides=sides, albedo=accent * 0.3 + 0.05, gloss=0.35, shininess=40.0,
                           reflectance=0.04))  # fmt: skip
    if style.kind == "mug":  # handle on the far side from the gripping hand (set when placed)
        a = np.linspace(-1.2, 1.2, 12)
        hr = style.height * 0.3
        path = np.stack(
            [
                style.radius - 2 + hr * 0.55 * np.cos(a),
                style.height * 0.5 + hr * np.sin(a),
                np.zeros_like(a),
            ],
            1,
        )  # fmt: skip
        parts.append(
            tube(
                path, 5.0, sides=8, flat=0.55, albedo=body, gloss=0.5, shininess=60.0,
                reflectance=0.05,
            )
        )  # fmt: skip
    return merge(parts)


def _grip_hand(style: CupStyle, hand_side: int, rng: np.random.Generator, skin) -> Mesh:
    """A hand gripping the vessel from side ``hand_side`` (-1 / +1 along x), in the cup frame."""
    left = hand_side > 0
    hs = HandStyle(
        size=float(np.clip(rng.normal(1.0, 0.05), 0.9, 1.1)),
        left=left,
        curl=finger_curl("grip", rng, radius=style.radius),
        spread=np.zeros(4),
        skin=tuple(float(c) for c in np.clip(np.asarray(skin) * rng.uniform(0.95, 1.03), 0, 1)),
        sleeve=tuple(float(c) for c in random_fabric_colour(rng)) if rng.random() < 0.5 else None,
        sleeve_at=float(rng.uniform(40, 120)),
    )
    hand = make_hand(hs, rng)
    grip_y = style.height * (0.42 if style.kind != "bottle" else 0.3)
    z_local = np.array([float(hand_side), 0.0, 0.0])  # back of the hand faces out
    y_local = np.array([0.0, 0.0, 1.0])  # fingers start toward the camera, then wrap
    x_local = cross3(y_local, z_local)
    rot = np.stack([x_local, y_local, z_local], 1)
    centre = np.array([hand_side * (style.radius + 13 * hs.size), grip_y, -22.0 * hs.size])
    placed = hand.transformed(rot, centre)
    wrist = centre + rot @ np.array([0.0, -52 * hs.size, 0.0])
    arm = _unit(np.array([hand_side * 0.35, -0.9, -0.55]))
    return merge([placed, make_forearm(hs, wrist, arm)])


def place_cup(
    head: HeadGeometry,
    rng: np.random.Generator,
    style: CupStyle,
    skin: tuple[float, float, float] | np.ndarray,
) -> Mesh:
    """A vessel held at the mouth by a hand, in model space (mm).

    Example:
        >>> from deocc_core.morphable.model import load_model
        >>> from deocc_core.morphable.params import FitParams, Pose
        >>> from deocc_core.occluders.head import head_geometry
        >>> m = load_model("starter")
        >>> p = FitParams(np.zeros(m.n_id), np.zeros(m.n_exp), Pose(1, 0, 0, 0, 0, 0))
        >>> h = head_geometry(m, p)
        >>> rng = np.random.default_rng(0)
        >>> c = place_cup(h, rng, sample_cup_style(rng), (0.7, 0.5, 0.4))
        >>> bool(c.vertices[:, 2].max() > h.landmarks[point("lower_lip_bottom"), 2])
        True
    """
    lm = head.landmarks.astype(np.float64)
    hand_side = -1 if rng.random() < 0.6 else 1  # the right hand more often
    cup = make_cup(style)
    if style.kind == "mug":  # turn the handle away from the hand (and a bit toward the camera)
        a = np.radians(rng.uniform(-30, 30)) + (np.pi if hand_side > 0 else 0)
        c, s = np.cos(a), np.sin(a)
        turn = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
        cup = cup.transformed(turn, np.zeros(3))
    obj = merge([cup, _grip_hand(style, hand_side, rng, skin)])
    lip = lm[point("lower_lip_bottom")] * 0.7 + lm[point("lower_lip_inner")] * 0.3
    lip = np.array([lip[0], lip[1], float(head.surface_z(lip[:2]))])
    # held in the world: upright along the camera's up, tilted toward the face when drinking
    up = head.rotation.T @ np.array([0.0, 1.0, 0.0])
    fwd = _unit(np.array([0.0, 0.0, 1.0]) - up * up[2])  # the head's forward, levelled
    psi = rng.uniform(-0.25, 0.25)
    fwd = _unit(fwd * np.cos(psi) + cross3(up, fwd) * np.sin(psi))
    tilt = np.radians(style.tilt_deg)
    axis = up * np.cos(tilt) - fwd * np.sin(tilt)
    zc = fwd * np.cos(tilt) + up * np.sin(tilt)
    rot = np.stack([cross3(axis, zc), axis, zc], 1)
    top = style.height + (14 if style.lid else 0)
    if style.drinking:  # the rim's near edge at the lower lip
        anchor = rot @ np.array([0.0, top, -style.radius])
        target = lip + fwd * 3 - up * 2
    else:  # held in front of the mouth and chin
        anchor = rot @ np.array([0.0, top, 0.0])
        drop = rng.uniform(-0.2, 0.25) * style.height
        target = lip + fwd * (style.radius + rng.uniform(15, 45)) - up * drop
        target = target + cross3(up, fwd) * rng.uniform(-0.15, 0.15) * head.eye_span
    placed = obj.transformed(rot, target - anchor)
    v = placed.vertices
    lift = float(np.max(head.push_out(v, 1.0)[:, 2] - v[:, 2]))
    if lift > 0.1:
        placed = placed.transformed(np.eye(3), np.array([0.0, 0.0, lift]))
    return placed
