"""Generate ``assets/starter_model.npz``: the embedded demo morphable model.

A smooth front-of-head mesh on a regular (x, y) grid inside an egg-shaped outline, with
depth built from Gaussian features (brows, eye sockets, eyeballs, nose, lips, chin,
cheeks), 68 iBUG landmark vertices at designed anatomical positions, identity and
expression modes as smooth displacement fields, and a per-vertex albedo with a few modes.
Millimetres, y up, z toward the viewer. Deterministic to the byte: pure numpy, fixed zip
timestamps. Demo quality: real work wants a real model (Surrey, BFM).

    python tools/make_starter_model.py [--out assets/starter_model.npz]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from deocc_core.morphable.model import save_npz_deterministic  # noqa: E402

STEP = 2.5  # grid spacing, mm
HALF_WIDTH, TOP, BOTTOM = 74.0, 100.0, -112.0
MOUTH_Y = -42.0  # the mouth line: a grid row (BOTTOM + STEP + 27 STEP), dark mouth interior


def _gauss(x, y, cx, cy, sx, sy):
    return np.exp(-0.5 * (((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))


def _sig(t):
    return 1.0 / (1.0 + np.exp(-t))


def _half_width(y):
    """Outline half-width at height y: an egg, narrower at the chin."""
    yc, h = (TOP + BOTTOM) / 2, (TOP - BOTTOM) / 2
    t = np.clip((y - yc) / h, -1, 1)
    taper = 1.0 - 0.28 * np.clip(-(y - 10) / (10 - BOTTOM), 0, 1) ** 1.5
    return HALF_WIDTH * np.sqrt(np.clip(1 - t**2, 0, 1)) ** 0.8 * taper


def _grid():
    """Rows of constant y; each row spans the outline with the same number of columns."""
    n = int(HALF_WIDTH // STEP)
    u = np.arange(-n, n + 1) / n  # symmetric about x = 0
    ys = np.arange(BOTTOM + STEP, TOP - STEP + 1e-6, STEP)
    gy = np.repeat(ys[:, None], u.size, 1)
    gx = u[None, :] * _half_width(ys)[:, None]
    ids = np.arange(gx.size).reshape(gx.shape)
    # two counter-clockwise triangles (seen from +z, y up) per cell
    a, b, c, d = ids[:-1, :-1], ids[:-1, 1:], ids[1:, 1:], ids[1:, :-1]
    tris = np.concatenate(
        [np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)]
    )
    return gx.reshape(-1), gy.reshape(-1), tris.astype(np.int32)


def _depth(x, y):
    # depth falls toward the outline across each row; the narrow rows near the pointed chin
    # and crown fall as if ~35-40 mm wide, so their ends are not far behind their middle
    # (otherwise a tilted face shows a notch where the chin's middle sticks out) and the
    # outline's depth rises smoothly toward the chin
    hw = _half_width(y)
    w = np.maximum(hw + 40.0 * np.exp(-((hw / 20.0) ** 2)), 1.0)
    r = np.clip(np.abs(x) / w, 0, 1)
    # a head's side recedes to the silhouette (depth 0 at the outline): with the outline only
    # ~27 mm behind the face, as before, the jaw contour sat too far forward and a fit
    # overestimated yaw by ~35 % (|error| median 7 deg on the AFLW2000-3D faces; now 2.1)
    z = 70.0 * np.sqrt(np.clip(1 - r**2, 0, 1)) + 18.0 * _gauss(x, y, 0, 5, 200, 60)
    z -= 9.0 * _gauss(np.abs(x), y, 32, 30, 13, 9)  # eye sockets
    z += 6.0 * _gauss(np.abs(x), y, 32, 30, 7, 5)  # eyeballs
    z += 5.0 * _gauss(np.abs(x), y, 33, 47, 20, 5)  # brow ridges
    ridge = np.clip((32 - y) / 36, 0, 1) * _sig((y + 6) / 2.5)
    z += 24.0 * ridge**1.3 * _gauss(x, 0, 0, 0, 6 + 4 * ridge, 1)  # nose
    z += 6.0 * _gauss(np.abs(x), y, 11, -8, 5, 4)  # nostril wings
    z += 5.0 * _gauss(x, y, 0, -37, 16, 4.5) + 4.5 * _gauss(x, y, 0, -48, 14, 4)  # lips
    z -= 2.5 * _gauss(x, y, 0, -42.5, 20, 1.3)  # mouth line
    z -= 3.0 * _gauss(x, y, 0, -63, 14, 5)  # labiomental fold
    z += 7.0 * _gauss(x, y, 0, -88, 15, 12)  # chin
    z += 4.0 * _gauss(np.abs(x), y, 44, -8, 14, 16)  # cheeks
    return z


# fmt: off
_LANDMARKS_XY = np.array([
    # jaw 0-16 (filled in from the outline below)
    *([[0.0, 0.0]] * 17),
    # brows 17-26 (subject right = -x first)
    [-56, 44], [-47, 50], [-37, 52], [-27, 51], [-17, 48],
    [17, 48], [27, 51], [37, 52], [47, 50], [56, 44],
    # nose bridge 27-30, base 31-35
    [0, 32], [0, 22], [0, 11], [0, 0],
    [-12, -10], [-6, -12], [0, -13], [6, -12], [12, -10],
    # right eye 36-41, left eye 42-47
    [-46, 30], [-38, 34], [-28, 34], [-20, 30], [-28, 27], [-38, 27],
    [20, 30], [28, 34], [38, 34], [46, 30], [38, 27], [28, 27],
    # outer lips 48-59
    [-25, -42], [-16, -36], [-7, -34], [0, -35], [7, -34], [16, -36],
    [25, -42], [16, -50], [7, -53], [0, -54], [-7, -53], [-16, -50],
    # inner lips 60-67
    [-20, -42], [-8, -40], [0, -40], [8, -40], [20, -42], [8, -45], [0, -45], [-8, -45],
], np.float64)
# fmt: on


def _jaw_points():
    """17 points on the outline from subject-right ear level over the chin to the left."""
    ys = np.concatenate([np.linspace(28, BOTTOM + 6, 9)])
    right = [(-_half_width(y) * 0.99, y) for y in ys[:8]]  # on the outline, as the contour
    pts = right + [(0.0, BOTTOM + 2.5)] + [(-px, py) for px, py in right[::-1]]
    return np.array(pts)


def _nearest(x, y, pts):
    d = (x[None] - pts[:, :1]) ** 2 + (y[None] - pts[:, 1:]) ** 2
    return d.argmin(1)


def _contour(x, y, side):
    """Outline vertices of one side from ear level (y=30) down to the chin, top to bottom."""
    ys = np.arange(30.0, BOTTOM, -STEP)
    pts = np.stack([side * _half_width(ys) * 0.99, ys], 1)
    ids = _nearest(x, y, pts)
    _, first = np.unique(ids, return_index=True)
    return ids[np.sort(first)].astype(np.int32)


def _mode(fields):
    """[V,3] displacement for 1 std → (unit column, std)."""
    d = np.asarray(fields, np.float64).reshape(-1)
    n = np.linalg.norm(d)
    return d / n, n


def _modes(x, y, z):
    ax = np.abs(x)
    sx = np.sign(x)
    zero = np.zeros_like(x)
    # fades toward the outline by column only: a factor that also varied with y would move
    # the chin's rows by different amounts near the pointed bottom, fold its triangles
    # backwards and cut a notch in the fitted silhouette
    face = _sig((_half_width(MOUTH_Y) - ax) / 6)
    below_mouth = _sig((MOUTH_Y - 0.5 - y) / 2.0)
    ident = {
        "face_width": (4 * x / HALF_WIDTH, zero, zero),
        "face_length": (zero, 5 * (y + 5) / 106, zero),
        "jaw_width": (4 * x / HALF_WIDTH * _sig((-30 - y) / 12), zero, zero),
        "chin": (  # longer chin: rows below y = -80 move together (monotone: no fold, no notch)
            zero,
            -4 * _sig((-80 - y) / 8) * _gauss(x, 0, 0, 0, 32, 1),
            3 * _gauss(x, y, 0, -90, 28, 16),
        ),
        "nose_length": (zero, -2 * _gauss(x, y, 0, -2, 9, 9), 5 * _gauss(x, y, 0, 5, 7, 16)),
        "nose_width": (3 * np.clip(x / 12, -1.5, 1.5) * _gauss(x, y, 0, -8, 14, 8), zero, zero),
        "nose_bridge": (zero, zero, 3 * _gauss(x, y, 0, 20, 6, 12)),
        "eye_spacing": (3 * sx * _gauss(ax, y, 32, 30, 12, 10), zero, zero),
        "brow_height": (zero, 3 * _gauss(ax, y, 35, 49, 22, 7), zero),
        "cheek_fullness": (
            2 * sx * _gauss(ax, y, 45, -15, 18, 18),
            zero,
            4 * _gauss(ax, y, 45, -15, 18, 18),
        ),
        "forehead": (zero, 3 * _gauss(x, y, 0, 85, 60, 20), 5 * _gauss(x, y, 0, 75, 45, 22)),
        "lip_thickness": (
            zero,
            1.5 * np.tanh((y + 42.5) / 4) * _gauss(x, y, 0, -42, 18, 9),
            3 * _gauss(x, y, 0, -42, 16, 8),
        ),
        "eye_depth": (zero, zero, -3 * _gauss(ax, y, 32, 30, 12, 9)),
    }
    mouth = _gauss(x, y, 0, -44, 24, 14)
    corners = _gauss(ax, y, 24, -41, 7, 6)
    expr = {
        "jaw_open": (zero, -12 * below_mouth * face, -3 * below_mouth * face),
        "smile": (
            4 * sx * corners,
            4 * corners + 1.5 * _gauss(ax, y, 38, -18, 12, 10),
            2 * _gauss(ax, y, 40, -20, 14, 12),
        ),
        "brow_raise": (
            zero,
            5 * _gauss(ax, y, 35, 52, 24, 10) + 2 * _gauss(x, y, 0, 70, 60, 18),
            zero,
        ),
        "frown": (-2 * sx * _gauss(ax, y, 22, 48, 14, 8), -3 * _gauss(ax, y, 28, 48, 18, 8), zero),
        "pucker": (-0.25 * x * mouth, zero, 6 * _gauss(x, y, 0, -42, 14, 8)),
        "eye_close": (zero, -4 * _gauss(ax, y, 33, 34, 11, 3.5), zero),
        "mouth_left": (6 * mouth, zero, zero),
        "jaw_left": (6 * below_mouth * face * _gauss(x, y, 0, -80, 60, 40), zero, zero),
        "cheek_puff": (
            3 * sx * _gauss(ax, y, 38, -32, 12, 12),
            zero,
            6 * _gauss(ax, y, 38, -32, 12, 12),
        ),
        "sneer": (zero, 3 * _gauss(x, y, -12, -30, 9, 8), 1.5 * _gauss(x, y, -14, -20, 8, 8)),
    }
    return ident, expr


def _albedo(x, y):
    ax = np.abs(x)
    skin = np.array([0.86, 0.66, 0.55])
    a = np.broadcast_to(skin, (x.size, 3)).copy()
    a += np.outer(0.04 * _gauss(ax, y, 42, -12, 14, 12), [1.0, -0.2, -0.2])  # cheek blush
    lips = np.clip(_gauss(x, y, 0, -36, 18, 3.5) + _gauss(x, y, 0, -48, 15, 4.0), 0, 1)
    a = a * (1 - lips[:, None]) + np.array([0.72, 0.36, 0.36]) * lips[:, None]
    brows = np.clip(1.6 * _gauss(ax, y, 37, 50 - 0.004 * (ax - 37) ** 2, 12, 2.6), 0, 1)
    a = a * (1 - brows[:, None]) + np.array([0.28, 0.19, 0.14]) * brows[:, None]
    # the mouth line's row is the mouth interior: a thin dark line while closed, a dark
    # opening when jaw_open moves the rows below it down (the triangles stretch)
    interior = (np.abs(y - MOUTH_Y) < 0.5 * STEP) * np.clip(1 - (ax / 21.0) ** 4, 0, 1)
    a = a * (1 - interior[:, None]) + np.array([0.16, 0.06, 0.06]) * interior[:, None]
    eye = ((ax - 33) / 12) ** 2 + ((y - 30.5) / 3.8) ** 2 <= 1
    a[eye] = [0.93, 0.92, 0.9]
    iris = (ax - 33) ** 2 + (y - 30.5) ** 2 <= 3.6**2
    a[iris] = [0.25, 0.17, 0.12]
    albedo_modes = {
        "darker": np.broadcast_to([-0.18, -0.16, -0.13], (x.size, 3)) * (1 - iris[:, None] * 1.0),
        "redness": np.broadcast_to([0.05, -0.03, -0.03], (x.size, 3))
        + np.outer(_gauss(ax, y, 42, -12, 16, 14), [0.04, 0, 0]),
        "brow_darkness": -0.12 * brows[:, None] * np.ones(3),
        "lip_colour": np.outer(lips, [0.08, -0.05, -0.02]),
        "yellow": np.broadcast_to([0.02, 0.02, -0.05], (x.size, 3)).copy(),
    }
    return np.clip(a, 0, 1), albedo_modes


def make_starter_model() -> dict[str, np.ndarray]:
    """All arrays of the starter model, keyed as in the .npz format."""
    x, y, tris = _grid()
    z = _depth(x, y)
    lm_xy = _LANDMARKS_XY.copy()
    lm_xy[:17] = _jaw_points()
    landmarks = _nearest(x, y, lm_xy).astype(np.int32)
    ident, expr = _modes(x, y, z)
    centre = np.array([0.0, 0.0, z.max() - 95.0])  # origin ~ the middle of the head
    mean = np.stack([x, y, z], 1) - centre

    def stack(modes):
        cols, stds = zip(*(_mode(np.stack(f, 1)) for f in modes.values()), strict=True)
        return (
            np.stack(cols, 1).astype(np.float32),
            np.array(stds, np.float32),
            np.array(list(modes), dtype="U"),
        )

    id_basis, id_std, id_names = stack(ident)
    exp_basis, exp_std, exp_names = stack(expr)
    albedo_mean, amodes = _albedo(x, y)
    acols, astd = zip(*(_mode(m) for m in amodes.values()), strict=True)
    return {
        "format_version": np.array(1, np.int32),
        "mean": mean.astype(np.float32),
        "id_basis": id_basis,
        "id_std": id_std,
        "id_names": id_names,
        "exp_basis": exp_basis,
        "exp_std": exp_std,
        "exp_names": exp_names,
        "triangles": tris,
        "landmarks68": landmarks,
        "contour_right": _contour(x, y, -1),
        "contour_left": _contour(x, y, +1),
        "albedo_mean": albedo_mean.astype(np.float32),
        "albedo_basis": np.stack(acols, 1).astype(np.float32),
        "albedo_std": np.array(astd, np.float32),
        "name": np.array("deocc-starter"),
        "source": np.array("generated by tools/make_starter_model.py"),
        "license": np.array("MIT, generated"),
        "units": np.array("mm"),
    }


def main() -> None:
    """Write the starter model."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "assets" / "starter_model.npz",
        help="output .npz path (default: assets/starter_model.npz in the repo; "
        "byte-identical on every run)",
    )
    args = parser.parse_args()
    arrays = make_starter_model()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_npz_deterministic(args.out, arrays)
    print(
        f"wrote {args.out}: {len(arrays['mean'])} vertices, {len(arrays['triangles'])} triangles, "
        f"{arrays['id_basis'].shape[1]} identity / {arrays['exp_basis'].shape[1]} expression modes"
    )


if __name__ == "__main__":
    main()
