"""The fitted head as the occluders see it: landmarks in 3D, a surface to rest on, proxies.

A morphable face mesh ends at the ears and has no skull, neck or ears; occluders need all
of them: temples run back to the ears, ear loops hook behind them, scarves wrap the neck,
and whatever passes behind the head must be hidden. :class:`HeadGeometry` adds, from the
fitted mesh and anthropometric ratios of the outer-eye-corner span, four depth-only
proxies (skull, neck and two ears, as ellipsoids) and a frontal height field of the face
mesh (the surface masks, hands and glasses rest on).

Convention:
    Model space, mm (x to the viewer's right, y up, z toward the viewer). The height field
    samples the face at ``(x, y)`` and returns the front-most surface ``z``; it falls back
    to the skull/neck proxies outside the face mesh. Proxy depths rendered by
    :func:`proxy_depth` use the camera of :mod:`deocc_core.morphable.params` (pixel x right,
    y down, depth larger = closer), so they can be compared with a face render's depth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numba
import numpy as np
import numpy.typing as npt

from deocc_core.landmarks.parts import point
from deocc_core.morphable.camera import project, rotation_matrix
from deocc_core.morphable.model import MorphableModel
from deocc_core.morphable.params import FitParams, Pose
from deocc_core.render.raster import rasterize

__all__ = ["Ellipsoid", "HeadGeometry", "head_geometry", "proxy_depth"]

F32 = npt.NDArray[np.float32]

# Anthropometric ratios to the outer-eye-corner span d (exocanthion to exocanthion, ~90 mm
# in adults): tragion ~0.80 d off the midline and ~0.85 d behind the eye corners, between
# eye and nose-base height; skull breadth ~1.6 d, length ~2.1 d; neck ~1.2 d wide.
EAR_X, EAR_Z, EAR_Y_DROP = 0.80, 0.85, 0.45
HF_STEP_MM = 2.0  # height-field resolution


@dataclass(frozen=True)
class Ellipsoid:
    """An axis-aligned ellipsoid in model space (mm)."""

    center: F32
    axes: F32

    def inside(self, p: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """``[N]`` bool: points ``[N, 3]`` strictly inside."""
        q = (np.asarray(p, np.float32) - self.center) / self.axes
        return (q * q).sum(-1) < 1.0

    def push_out(self, p: npt.ArrayLike, clearance: float) -> F32:
        """Points inside (or within ``clearance`` mm) moved radially onto the grown surface."""
        p = np.asarray(p, np.float32)
        grown = self.axes + clearance
        q = (p - self.center) / grown
        r = np.sqrt((q * q).sum(-1, keepdims=True))
        return np.where(r < 1.0, self.center + q / np.maximum(r, 1e-6) * grown, p).astype(
            np.float32
        )


@dataclass(frozen=True)
class HeadGeometry:
    """The fitted head in model space (mm) with its proxies and height field.

    Attributes:
        vertices: ``[V, 3]`` fitted mesh vertices. landmarks: ``[68, 3]`` fitted landmark
            vertices (iBUG order, the model's fixed ids).
        eye_span: outer eye corner distance d, mm (sizes of the proxies scale with it).
        ears: ``[2, 3]`` tragion estimates, subject's right (x < 0) then left.
        skull, neck: the proxies; ear_proxies: ``(right, left)``.
        hf_origin: (x, y) of the height field's pixel (0, 0), mm; hf_step: mm per sample.
        hf_z: ``[R, C]`` float32 front-most surface z (face, else skull/neck), mm; rows go
            DOWN in y. hf_face: ``[R, C]`` bool, the sample lies on the face mesh.
        pose: the fitted pose. rotation: ``[3, 3]`` its model-to-camera rotation.
        cache: per-face tables the occluders compute once (e.g. the scarf's section
            support function).
    """

    vertices: F32
    landmarks: F32
    eye_span: float
    ears: F32
    skull: Ellipsoid
    neck: Ellipsoid
    ear_proxies: tuple[Ellipsoid, Ellipsoid]
    hf_origin: tuple[float, float]
    hf_step: float
    hf_z: F32
    hf_face: npt.NDArray[np.bool_]
    pose: Pose
    rotation: npt.NDArray[np.float64]
    cache: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def proxies(self) -> tuple[Ellipsoid, ...]:
        """Skull, neck and ears (depth-only occluders)."""
        return (self.skull, self.neck, *self.ear_proxies)

    @property
    def face_width(self) -> float:
        """Face width at the ears (tragion to tragion), mm."""
        return float(np.linalg.norm(self.ears[1] - self.ears[0]))

    def face_span(self, ys: npt.ArrayLike) -> tuple[F32, F32]:
        """Left/right x (mm) of the face mesh at heights ``ys`` (frontal view).

        Example:
            >>> from deocc_core.morphable.model import load_model
            >>> m = load_model("starter")
            >>> p = FitParams(np.zeros(m.n_id), np.zeros(m.n_exp), Pose(1, 0, 0, 0, 0, 0))
            >>> h = head_geometry(m, p)
            >>> xl, xr = h.face_span([h.landmarks[point("nose_tip"), 1]])
            >>> bool(xl[0] < h.landmarks[point("nose_tip"), 0] < xr[0])
            True
        """
        ys = np.atleast_1d(np.asarray(ys, np.float32))
        rows = np.clip(
            np.round((self.hf_origin[1] - ys) / self.hf_step), 0, self.hf_face.shape[0] - 1
        ).astype(np.int32)
        face = self.hf_face[rows]
        cols = np.arange(face.shape[1], dtype=np.float32)
        any_ = face.any(1)
        left = np.where(face, cols, np.inf).min(1)
        right = np.where(face, cols, -np.inf).max(1)
        mid = (self.hf_origin[0] - self.landmarks[point("nose_tip"), 0]) / -self.hf_step
        left = np.where(any_, left, mid)
        right = np.where(any_, right, mid)
        x0 = self.hf_origin[0]
        return (
            (x0 + left * self.hf_step).astype(np.float32),
            (x0 + right * self.hf_step).astype(np.float32),
        )

    def _hf_index(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = (xy[..., 0] - self.hf_origin[0]) / self.hf_step
        r = (self.hf_origin[1] - xy[..., 1]) / self.hf_step
        return r, c

    def surface_z(self, xy: npt.ArrayLike, conservative: bool = False) -> F32:
        """Front-most head surface z at model ``(x, y)`` points ``[..., 2]`` (bilinear).

        ``conservative``: the highest surface within one sample (2 mm): on the steep sides of
        the face the bilinear value can lie millimetres under the mesh; objects that must
        stay in front of it (a mask on the cheek of a turned head) rest on this one.

        Example:
            >>> from deocc_core.morphable.model import load_model
            >>> m = load_model("starter")
            >>> p = FitParams(np.zeros(m.n_id), np.zeros(m.n_exp), Pose(1, 0, 0, 0, 0, 0))
            >>> h = head_geometry(m, p)
            >>> tip = h.landmarks[point("nose_tip")]
            >>> bool(abs(h.surface_z(tip[:2]) - tip[2]) < 3)
            True
        """
        xy = np.asarray(xy, np.float32)
        r, c = self._hf_index(xy)
        rows, cols = self.hf_z.shape
        r = np.clip(r, 0, rows - 1.001)
        c = np.clip(c, 0, cols - 1.001)
        r0, c0 = r.astype(np.int32), c.astype(np.int32)
        fr, fc = r - r0, c - c0
        z = self.hf_z
        if conservative:
            if "hf_max" not in self.cache:
                self.cache["hf_max"] = cv2.dilate(self.hf_z, np.ones((3, 3), np.uint8))
            z = self.cache["hf_max"]
        top = z[r0, c0] * (1 - fc) + z[r0, c0 + 1] * fc
        bot = z[r0 + 1, c0] * (1 - fc) + z[r0 + 1, c0 + 1] * fc
        return (top * (1 - fr) + bot * fr).astype(np.float32)

    def surface_normal(self, xy: npt.ArrayLike) -> F32:
        """Unit outward normal of the height-field surface at ``(x, y)`` points ``[..., 2]``."""
        xy = np.asarray(xy, np.float32)
        e = self.hf_step
        dx = (self.surface_z(xy + [e, 0]) - self.surface_z(xy - [e, 0])) / (2 * e)
        dy = (self.surface_z(xy + [0, e]) - self.surface_z(xy - [0, e])) / (2 * e)
        n = np.stack([-dx, -dy, np.ones_like(dx)], -1)
        return (n / np.linalg.norm(n, axis=-1, keepdims=True)).astype(np.float32)

    def on_surface(self, xy: npt.ArrayLike, offset: float) -> F32:
        """Points on the surface at ``(x, y)``, moved ``offset`` mm along its normal."""
        xy = np.asarray(xy, np.float32)
        p = np.concatenate([xy, self.surface_z(xy)[..., None]], -1)
        return (p + self.surface_normal(xy) * offset).astype(np.float32)

    def push_out(self, points: npt.ArrayLike, clearance: float, ears: bool = False) -> F32:
        """Move points that lie inside the head to ``clearance`` mm outside it.

        Inside means: inside the skull or neck proxy (or an ear proxy with ``ears``), or
        behind the front surface by less than 40 mm within the face height field (the mesh
        has no back, so deeper points are left alone). Without ``ears``, a path can pass
        between an ear and the skull (temples, ear loops) and hide behind the ear.
        """
        p = np.asarray(points, np.float32).copy()
        for e in self.proxies if ears else (self.skull, self.neck):
            p = e.push_out(p, clearance)
        r, c = self._hf_index(p[..., :2])
        rows, cols = self.hf_z.shape
        ri = np.clip(np.round(r), 0, rows - 1).astype(np.int32)
        ci = np.clip(np.round(c), 0, cols - 1).astype(np.int32)
        inside = (r >= 0) & (r <= rows - 1) & (c >= 0) & (c <= cols - 1) & self.hf_face[ri, ci]
        z = self.surface_z(p[..., :2])
        lift = inside & (p[..., 2] < z + clearance) & (p[..., 2] > z - 40)
        p[..., 2] = np.where(lift, z + clearance, p[..., 2])
        return p


def _ellipsoid_front_z(e: Ellipsoid, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    qx = (x - e.center[0]) / e.axes[0]
    qy = (y - e.center[1]) / e.axes[1]
    s = 1 - qx * qx - qy * qy
    return np.where(s > 0, e.center[2] + e.axes[2] * np.sqrt(np.maximum(s, 0)), -np.inf)


def head_geometry(model: MorphableModel, params: FitParams) -> HeadGeometry:
    """Build the occluders' view of a fitted head (once per face; ~1 ms for 10k triangles).

    Args:
        model: the morphable model (mm; y up, z toward the viewer; frontal mean shape).
        params: the fitted coefficients and pose.

    Returns:
        :class:`HeadGeometry`.

    Example:
        >>> from deocc_core.morphable.model import load_model
        >>> m = load_model("starter")
        >>> p = FitParams(np.zeros(m.n_id), np.zeros(m.n_exp), Pose(1, 0, 0, 0, 0, 0))
        >>> h = head_geometry(m, p)
        >>> 130 < h.face_width < 160, h.hf_z.ndim
        (True, 2)
    """
    verts = model.vertices(params.id_coef, params.exp_coef).astype(np.float32)
    lm = verts[model.landmarks68]
    d = float(np.linalg.norm(lm[point("eye_left_outer")] - lm[point("eye_right_outer")]))
    eye_y = float((lm[point("eye_right_outer"), 1] + lm[point("eye_left_outer"), 1]) / 2)
    eye_z = float((lm[point("eye_right_outer"), 2] + lm[point("eye_left_outer"), 2]) / 2)
    mid_x = float((lm[point("nose_top"), 0] + lm[point("nose_tip"), 0] + lm[point("chin"), 0]) / 3)
    ear_y = eye_y - EAR_Y_DROP * (eye_y - float(lm[point("nose_base_center"), 1]))
    ear_z = eye_z - EAR_Z * d
    ears = np.array([[mid_x - EAR_X * d, ear_y, ear_z], [mid_x + EAR_X * d, ear_y, ear_z]])
    skull = Ellipsoid(
        np.array([mid_x, ear_y + 0.30 * d, ear_z - 0.05 * d], np.float32),
        np.array([0.80 * d, 1.15 * d, 1.05 * d], np.float32),
    )
    neck = Ellipsoid(
        np.array([mid_x, ear_y - 0.95 * d, ear_z + 0.05 * d], np.float32),
        np.array([0.60 * d, 1.35 * d, 0.62 * d], np.float32),
    )
    ear_proxies = tuple(
        Ellipsoid(
            np.array([mid_x + s * 0.88 * d, ear_y + 0.06 * d, ear_z - 0.06 * d], np.float32),
            np.array([0.10 * d, 0.34 * d, 0.19 * d], np.float32),
        )
        for s in (-1.0, 1.0)
    )
    # frontal height field of the fitted mesh (orthographic, HF_STEP_MM per sample)
    lo = verts.min(0)
    hi = verts.max(0)
    x0 = min(float(lo[0]), mid_x - 0.95 * d) - 4
    x1 = max(float(hi[0]), mid_x + 0.95 * d) + 4
    y1 = max(float(hi[1]), float(skull.center[1] + skull.axes[1])) + 4
    y0 = min(float(lo[1]), ear_y - 2.3 * d) - 4
    cols = int(np.ceil((x1 - x0) / HF_STEP_MM)) + 1
    rows = int(np.ceil((y1 - y0) / HF_STEP_MM)) + 1
    ortho = Pose(1.0 / HF_STEP_MM, 0.0, 0.0, 0.0, -x0 / HF_STEP_MM, y1 / HF_STEP_MM)
    ras = rasterize(project(verts, ortho), model.triangles, rows, cols)
    face_z = ras.depth * HF_STEP_MM
    xs = x0 + np.arange(cols, dtype=np.float32) * HF_STEP_MM
    ys = y1 - np.arange(rows, dtype=np.float32) * HF_STEP_MM
    gx, gy = np.meshgrid(xs, ys)
    back = np.maximum(_ellipsoid_front_z(skull, gx, gy), _ellipsoid_front_z(neck, gx, gy))
    covered = ras.tri_id >= 0
    hf = np.where(covered, np.maximum(face_z, back), back)
    # below / beside everything: a floor behind the neck so lookups stay finite
    floor = float(neck.center[2] - neck.axes[2])
    hf = np.where(np.isfinite(hf), hf, floor).astype(np.float32)
    return HeadGeometry(
        vertices=verts,
        landmarks=lm.astype(np.float32),
        eye_span=d,
        ears=ears.astype(np.float32),
        skull=skull,
        neck=neck,
        ear_proxies=ear_proxies,  # type: ignore[arg-type]
        hf_origin=(x0, y1),
        hf_step=HF_STEP_MM,
        hf_z=hf,
        hf_face=covered,
        pose=params.pose,
        rotation=rotation_matrix(params.pose.pitch, params.pose.yaw, params.pose.roll),
    )


def proxy_depth(
    proxies: tuple[Ellipsoid, ...],
    pose: Pose,
    xs: npt.NDArray[np.floating],
    ys: npt.NDArray[np.floating],
) -> F32:
    """Depth of the closest proxy surface at image points (analytic ray casts).

    Args:
        proxies: ellipsoids in model space (mm).
        pose: the weak-perspective camera.
        xs: pixel x coordinates (any shape; x right, pixel centres).
        ys: pixel y coordinates (the shape of ``xs``; y down).

    Returns:
        float32 depth (larger = closer, the units of :func:`deocc_core.morphable.camera.project`),
        -inf where no proxy is hit.

    Example:
        >>> e = Ellipsoid(np.zeros(3, np.float32), np.full(3, 10, np.float32))
        >>> d = proxy_depth((e,), Pose(2, 0, 0, 0, 50, 50), np.array([50., 0]), np.array([50., 0]))
        >>> d.tolist()
        [20.0, -inf]
    """
    r = rotation_matrix(pose.pitch, pose.yaw, pose.roll)
    s = pose.scale
    # camera point q = ((x - tx)/s, -(y - ty)/s, t) with t = depth/s; model point v = R^T q
    w0 = np.stack([(xs - pose.tx) / s, -(ys - pose.ty) / s, np.zeros_like(xs)], -1) @ r
    if not proxies:
        return np.full(np.shape(xs), -np.inf, np.float32)
    centers = np.array([np.asarray(e.center, np.float64) for e in proxies])
    inv = 1.0 / np.array([np.asarray(e.axes, np.float64) for e in proxies]) ** 2
    out = _proxy_kernel(w0.reshape(-1, 3), centers, inv, np.ascontiguousarray(r[2]), float(s))
    return out.reshape(np.shape(xs))


@numba.njit(cache=True, nogil=True)
def _proxy_kernel(w0, centers, inv, r3, s):  # pragma: no cover - numba
    """Per point: the nearest ray hit over the ellipsoids, as float32 depth (-inf: none).

    Each operation in the order of the numpy expression it replaced (no fastmath), so the
    depths are bit-identical to it: ``a = sum(r3² inv)``, ``b = sum(u r3 inv)``, ``c =
    sum(u² inv) - 1``, ``t = (-b + sqrt(max(b² - a c, 0))) / a``.
    """
    n, m = w0.shape[0], centers.shape[0]
    out = np.empty(n, np.float32)
    ri = np.empty((m, 3))
    a = np.empty(m)
    for e in range(m):
        for k in range(3):
            ri[e, k] = r3[k] * inv[e, k]
        a[e] = r3[0] * r3[0] * inv[e, 0] + r3[1] * r3[1] * inv[e, 1] + r3[2] * r3[2] * inv[e, 2]
    for i in range(n):
        best = -np.inf
        for e in range(m):
            u0 = w0[i, 0] - centers[e, 0]
            u1 = w0[i, 1] - centers[e, 1]
            u2 = w0[i, 2] - centers[e, 2]
            b = u0 * ri[e, 0] + u1 * ri[e, 1] + u2 * ri[e, 2]
            c = u0 * u0 * inv[e, 0] + u1 * u1 * inv[e, 1] + u2 * u2 * inv[e, 2] - 1.0
            disc = b * b - a[e] * c
            if disc >= 0:
                t = (-b + np.sqrt(max(disc, 0.0))) / a[e] * s
                if t > best:
                    best = t
        out[i] = best
    return out
