"""Vertex normals and second-order spherical-harmonics (Lambertian) shading."""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from deocc_core.check import check_array

__all__ = ["vertex_normals", "sh_basis", "shade_sh", "light_sh", "random_light_sh", "DEFAULT_SH"]

# ambient + a soft light from the upper front (camera space, y up, z toward the viewer)
DEFAULT_SH = np.array([0.85, 0.0, 0.25, 0.45, 0.0, 0.0, -0.08, 0.0, 0.0], np.float32)


def vertex_normals(
    vertices: npt.NDArray[np.floating], triangles: npt.NDArray[np.integer]
) -> npt.NDArray[np.float32]:
    """Area-weighted unit vertex normals, oriented outward (away from the mesh centroid).

    Args:
        vertices: ``[V, 3]`` positions.
        triangles: ``[T, 3]`` 0-based vertex ids.

    Returns:
        ``[V, 3]`` float32 unit normals (zero for unused vertices).

    Example:
        >>> n = vertex_normals(np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0.]]), np.array([[0, 1, 2]]))
        >>> np.abs(n[:, 2]).tolist()
        [1.0, 1.0, 1.0]
    """
    v = np.ascontiguousarray(check_array(np.asarray(vertices), "vertices", (None, 3)), np.float32)
    return _normals_kernel(v, np.ascontiguousarray(triangles, np.int32))


@numba.njit(cache=True, nogil=True, fastmath=True)
def _normals_kernel(v, t):  # pragma: no cover - compiled
    """Unit area-weighted vertex normals [V, 3] float32, flipped to point outward."""
    n, sign = _unit_normals(v, t)
    if sign < 0:
        for i in range(n.shape[0]):
            n[i, 0] = -n[i, 0]
            n[i, 1] = -n[i, 1]
            n[i, 2] = -n[i, 2]
    return n


@numba.njit(cache=True, nogil=True, fastmath=True)
def _unit_normals(v, t):  # pragma: no cover - compiled
    """Unit normals as the triangles wind them, and the sign (±1) that makes them outward.

    Outward = away from the vertex centroid on (area-weighted) average: winding-independent.
    """
    n = np.zeros(v.shape, np.float32)
    for f in range(t.shape[0]):
        a, b, c = t[f, 0], t[f, 1], t[f, 2]
        e1x = v[b, 0] - v[a, 0]
        e1y = v[b, 1] - v[a, 1]
        e1z = v[b, 2] - v[a, 2]
        e2x = v[c, 0] - v[a, 0]
        e2y = v[c, 1] - v[a, 1]
        e2z = v[c, 2] - v[a, 2]
        cx = e1y * e2z - e1z * e2y  # |cross| = 2 * area: area weighting for free
        cy = e1z * e2x - e1x * e2z
        cz = e1x * e2y - e1y * e2x
        n[a, 0] += cx
        n[a, 1] += cy
        n[a, 2] += cz
        n[b, 0] += cx
        n[b, 1] += cy
        n[b, 2] += cz
        n[c, 0] += cx
        n[c, 1] += cy
        n[c, 2] += cz
    # flat views: numba vectorises loops over 1-D arrays, not over [V, 3] rows
    vf = v.reshape(-1)
    nf = n.reshape(-1)
    mx = my = mz = 0.0
    for i in range(v.shape[0]):
        mx += vf[3 * i]
        my += vf[3 * i + 1]
        mz += vf[3 * i + 2]
    cnt = max(v.shape[0], 1)
    mx /= cnt
    my /= cnt
    mz /= cnt
    outward = 0.0
    one = np.float32(1.0)
    for i in range(n.shape[0]):  # branch-free, so it vectorises; unused vertices stay zero
        x, y, z = nf[3 * i], nf[3 * i + 1], nf[3 * i + 2]
        norm = np.sqrt(x * x + y * y + z * z)
        used = norm > 1e-30
        inv = one / norm if used else one
        x *= inv
        y *= inv
        z *= inv
        nf[3 * i] = x
        nf[3 * i + 1] = y
        nf[3 * i + 2] = z
        d = x * (vf[3 * i] - mx) + y * (vf[3 * i + 1] - my) + z * (vf[3 * i + 2] - mz)
        outward += d if used else 0.0
    return n, (-1.0 if outward < 0.0 else 1.0)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _shade_kernel(albedo, normals, rot, sh):  # pragma: no cover - compiled
    """Shaded vertex colours [V, 3] float32 in [0, 1].

    albedo [V, 3] (any strides: a broadcast [3] works), normals [V, 3] (model space), rot
    [3, 3] applied to the normals, sh [9, 1] (grey) or [9, 3].
    """
    out = np.empty(normals.shape, np.float32)
    rt, light = _shading_constants(rot, sh)
    for i in range(normals.shape[0]):
        _shade_vertex(albedo, normals, i, rt, light, out)
    return out


@numba.njit(cache=True, nogil=True)
def _shading_constants(rot, sh):  # pragma: no cover - compiled
    """R [3, 3] and the light [9, 1 or 3] as tuples (27 values, grey repeated).

    Loop constants the compiler keeps in registers (array reads would be reloaded after
    every store).
    """
    g = sh.shape[1] == 1
    rt = (rot[0, 0], rot[0, 1], rot[0, 2], rot[1, 0], rot[1, 1], rot[1, 2], rot[2, 0], rot[2, 1])
    rt = rt + (rot[2, 2],)
    c1, c2 = (0, 0) if g else (1, 2)
    light = (
        (sh[0, 0], sh[1, 0], sh[2, 0], sh[3, 0], sh[4, 0], sh[5, 0], sh[6, 0], sh[7, 0], sh[8, 0]),
        (sh[0, c1], sh[1, c1], sh[2, c1], sh[3, c1], sh[4, c1], sh[5, c1], sh[6, c1])
        + (sh[7, c1], sh[8, c1]),
        (sh[0, c2], sh[1, c2], sh[2, c2], sh[3, c2], sh[4, c2], sh[5, c2], sh[6, c2])
        + (sh[7, c2], sh[8, c2]),
    )
    return rt, light


@numba.njit(cache=True, nogil=True, fastmath=True)
def _shade_vertex(albedo, normals, i, rt, light, out):  # pragma: no cover - compiled
    """``out[i] = clip(albedo[i] * (sh_basis(R normals[i]) @ sh), 0, 1)``.

    ``rt``, ``light``: from :func:`_shading_constants`.
    """
    c1 = np.float32(2.0 / 3.0)
    c2 = np.float32(0.25)
    mx, my, mz = normals[i, 0], normals[i, 1], normals[i, 2]
    x = rt[0] * mx + rt[1] * my + rt[2] * mz
    y = rt[3] * mx + rt[4] * my + rt[5] * mz
    z = rt[6] * mx + rt[7] * my + rt[8] * mz
    b1 = c1 * y
    b2 = c1 * z
    b3 = c1 * x
    b4 = c2 * x * y
    b5 = c2 * y * z
    b6 = c2 * np.float32(0.5) * (np.float32(3.0) * z * z - np.float32(1.0))
    b7 = c2 * x * z
    b8 = c2 * np.float32(0.5) * (x * x - y * y)
    for k in range(3):
        s = light[k]
        lk = (
            s[0]
            + b1 * s[1]
            + b2 * s[2]
            + b3 * s[3]
            + b4 * s[4]
            + b5 * s[5]
            + b6 * s[6]
            + b7 * s[7]
            + b8 * s[8]
        )
        out[i, k] = min(max(albedo[i, k] * lk, np.float32(0.0)), np.float32(1.0))


def sh_basis(normals: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    """The 9 real SH basis functions (Lambertian-convolved constants) at unit normals.

    Returns:
        ``[V, 9]`` float32: order 1, y, z, x, xy, yz, 3z²-1, xz, x²-y².
    """
    n = check_array(np.asarray(normals), "normals", (None, 3)).astype(np.float32)
    x, y, z = n[:, 0], n[:, 1], n[:, 2]
    c0, c1, c2 = 1.0, 2.0 / 3.0, 0.25
    return np.stack(
        [
            np.full_like(x, c0),
            c1 * y,
            c1 * z,
            c1 * x,
            c2 * x * y,
            c2 * y * z,
            c2 * 0.5 * (3 * z * z - 1),
            c2 * x * z,
            c2 * 0.5 * (x * x - y * y),
        ],
        1,
    ).astype(np.float32)


def shade_sh(
    albedo: npt.NDArray[np.floating],
    normals: npt.NDArray[np.floating],
    sh: npt.ArrayLike = DEFAULT_SH,
    *,
    rotation: npt.NDArray[np.floating] | None = None,
) -> npt.NDArray[np.float32]:
    """Lambertian SH shading: ``albedo * (sh_basis(R n) @ sh)``, clipped to [0, 1].

    Convention:
        The light (``sh``) lives in camera space (x right, y up, z toward the viewer).
        ``normals`` are camera-space unit normals, or model-space ones with ``rotation`` =
        the pose's R (the rotation is then fused into the per-vertex loop).

    Args:
        albedo: ``[V, 3]`` in [0, 1] (or ``[3]``, broadcast to every vertex).
        normals: ``[V, 3]`` unit normals.
        sh: ``[9]`` (grey light) or ``[9, 3]`` (coloured) coefficients, order of :func:`sh_basis`.
        rotation: ``[3, 3]`` model-to-camera rotation applied to ``normals``; default identity.

    Returns:
        ``[V, 3]`` float32 colours in [0, 1].

    Example:
        >>> shade_sh(np.full((1, 3), 0.5), np.array([[0, 0, 1.]]), np.eye(9)[0]).tolist()
        [[0.5, 0.5, 0.5]]
    """
    n = np.ascontiguousarray(check_array(np.asarray(normals), "normals", (None, 3)), np.float32)
    alb = np.broadcast_to(np.asarray(albedo, np.float32), n.shape)  # a view: [3] is not copied
    light = np.asarray(sh, np.float32)
    light = np.ascontiguousarray(
        light.reshape(9, 1) if light.ndim == 1 else check_array(light, "sh", (9, 3))
    )
    rot = (
        np.eye(3, dtype=np.float32)
        if rotation is None
        else np.ascontiguousarray(rotation, np.float32)
    )
    return _shade_kernel(alb, n, rot, light)


def light_sh(
    direction: npt.ArrayLike, ambient: float = 0.6, strength: float = 0.5
) -> npt.NDArray[np.float32]:
    """SH coefficients ``[9]`` of an ambient term plus one distant light (clamped-cosine lobe).

    Convention:
        ``direction`` points from the face toward the light, in camera space (x right, y up,
        z toward the viewer), as the normals passed to :func:`shade_sh`.

    Args:
        direction: ``[3]`` light direction (normalised here).
        ambient: uniform irradiance (shading of a normal facing away from the light).
        strength: irradiance added at a normal facing the light.

    Returns:
        ``[9]`` float32, for :func:`shade_sh` (whose basis already holds the Lambertian factors).

    Example:
        >>> sh = light_sh([0, 0, 1], 0.5, 0.5)
        >>> n = np.array([[0, 0, 1.], [0, 0, -1.]])
        >>> np.round(shade_sh(np.ones((2, 3)), n, sh)[:, 0], 1).tolist()  # order-2 ringing: 0.53
        [1.0, 0.5]
    """
    d = np.asarray(direction, np.float64).reshape(3)
    d = d / max(float(np.linalg.norm(d)), 1e-12)
    x, y, z = d
    # projection of the clamped cosine max(0, n.d) onto the 9 functions of sh_basis
    # (exact for order <= 2; the band-2 term slightly rings for back-facing normals)
    lobe = np.array(
        [
            0.25,
            0.75 * y,
            0.75 * z,
            0.75 * x,
            3.75 * x * y,
            3.75 * y * z,
            0.625 * (3 * z * z - 1),
            3.75 * x * z,
            1.875 * (x * x - y * y),
        ]
    )
    return (lobe * strength + np.eye(9)[0] * ambient).astype(np.float32)


def random_light_sh(
    rng: np.random.Generator,
    *,
    ambient: tuple[float, float] = (0.45, 0.8),
    strength: tuple[float, float] = (0.2, 0.6),
) -> npt.NDArray[np.float32]:
    """A plausible random light: ambient plus a directional light from the front hemisphere.

    Args:
        rng: the random generator (the only source of randomness).
        ambient: uniform range of the ambient term.
        strength: uniform range of the directional light's strength.

    Returns:
        ``[9]`` float32 SH coefficients (see :func:`light_sh`).

    Example:
        >>> random_light_sh(np.random.default_rng(0)).shape
        (9,)
    """
    d = rng.normal(size=3)
    d[2] = abs(d[2]) + 0.5  # toward the viewer's side
    return light_sh(d, float(rng.uniform(*ambient)), float(rng.uniform(*strength)))
