"""Triangle meshes for 3D occluders: one container with materials, and the primitives.

Occluders are built in the morphable model's space (millimetres, y up, z toward the
viewer) from a few parametric primitives: a grid surface, a sweep of a 2D profile along
a 3D path (tubes, frame rims, temples, ear loops), a surface of revolution (cups,
bottles) and a superellipsoid (palms, ear proxies). Every primitive returns a
:class:`Mesh`; :func:`merge` concatenates parts so that one rasterization resolves their
mutual occlusion.

Convention:
    Model space, mm: x to the subject's left (the viewer's right), y up, z toward the
    viewer. Triangles are rendered two-sided, so their winding only decides the initial
    normal direction (normals are flipped toward the camera at shading time). Texture
    coordinates ``uv`` are in millimetres along the surface (so a texture's scale is
    physical); :class:`Texture` maps them to texels with its ``mm_per_texel``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
import numpy.typing as npt

__all__ = [
    "Mesh",
    "cross3",
    "Texture",
    "merge",
    "grid_mesh",
    "sweep",
    "tube",
    "lathe",
    "tubes",
    "superellipsoid",
    "smooth_path",
    "vertex_normals_open",
]

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Texture:
    """A tiling colour texture multiplied into the albedo.

    Attributes:
        image: ``[h, w, 3]`` float32 in [0, 1] (around 1 for pure modulation patterns).
        mm_per_texel: size of one texel on the surface, mm.
    """

    image: F32
    mm_per_texel: float = 0.5


@dataclass(frozen=True)
class Mesh:
    """A triangle mesh with per-vertex material.

    Attributes:
        vertices: ``[V, 3]`` float32, model space, mm.
        triangles: ``[T, 3]`` int32 vertex ids.
        albedo: ``[V, 3]`` float32 diffuse colour in [0, 1].
        gloss: ``[V]`` float32 strength of the highlight toward the light, in [0, 1].
        shininess: ``[V]`` float32 Blinn-Phong exponent (5 = matte sheen, 200 = glass).
        reflectance: ``[V]`` float32 mirror reflectance at normal incidence (F0: 0.04 glass
            and plastics, 0.5-0.9 metals); the environment reflection grows toward grazing
            angles (Schlick).
        transmission: ``[V, 3]`` float32 light let through per channel (0 = opaque; lenses).
        uv: ``[V, 2]`` float32 surface coordinates in mm (for :attr:`textures`).
        tri_texture: ``[T]`` int16, index into :attr:`textures` or -1 (untextured).
        textures: the textures.
        normals: ``[V, 3]`` float32 unit normals (None: computed from the triangles).
    """

    vertices: F32
    triangles: npt.NDArray[np.int32]
    albedo: F32
    gloss: F32
    shininess: F32
    reflectance: F32
    transmission: F32
    uv: F32
    tri_texture: npt.NDArray[np.int16]
    textures: tuple[Texture, ...] = ()
    normals: F32 | None = None

    @property
    def n_vertices(self) -> int:
        """V."""
        return int(self.vertices.shape[0])

    def transformed(self, rotation: npt.ArrayLike, translation: npt.ArrayLike) -> Mesh:
        """The mesh moved rigidly: ``v' = R v + t`` (normals rotated too)."""
        r = np.asarray(rotation, np.float32)
        t = np.asarray(translation, np.float32)
        n = None if self.normals is None else (self.normals @ r.T).astype(np.float32)
        return replace(self, vertices=(self.vertices @ r.T + t).astype(np.float32), normals=n)

    def attributes(self) -> F32:
        """``[V, 15]`` float32 per-vertex shading inputs.

        Normal (3), albedo (3), gloss, shininess, reflectance, transmission (3), uv (2),
        and a spare 0 column.
        """
        m = self.with_normals()
        assert m.normals is not None
        return np.ascontiguousarray(
            np.concatenate(
                [
                    m.normals,
                    m.albedo,
                    m.gloss[:, None],
                    m.shininess[:, None],
                    m.reflectance[:, None],
                    m.transmission,
                    m.uv,
                    np.zeros((m.n_vertices, 1), np.float32),
                ],
                1,
            ),
            np.float32,
        )

    def with_normals(self) -> Mesh:
        """The mesh with :attr:`normals` filled in (area-weighted, from the winding)."""
        if self.normals is not None:
            return self
        return replace(self, normals=vertex_normals_open(self.vertices, self.triangles))


def cross3(a: npt.ArrayLike, b: npt.ArrayLike) -> np.ndarray:
    """``np.cross`` of ``[..., 3]`` vectors, without its axis handling.

    The same products and differences in the same dtype (so the same numbers), in a tenth
    of the time on the small arrays occluders are built from.

    Example:
        >>> cross3([1.0, 0, 0], [0, 1.0, 0]).tolist()
        [0.0, 0.0, 1.0]
    """
    a, b = np.asarray(a), np.asarray(b)
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    return np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], -1)


def _material(
    n: int,
    albedo: npt.ArrayLike,
    gloss: float,
    shininess: float,
    reflectance: npt.ArrayLike,
    transmission: npt.ArrayLike | None,
) -> tuple[F32, F32, F32, F32, F32]:
    alb = np.broadcast_to(np.asarray(albedo, np.float32), (n, 3)).copy()
    g = np.full(n, gloss, np.float32)
    s = np.full(n, shininess, np.float32)
    f0 = np.broadcast_to(np.asarray(reflectance, np.float32), (n,)).copy()
    tr = (
        np.zeros((n, 3), np.float32)
        if transmission is None
        else np.broadcast_to(np.asarray(transmission, np.float32), (n, 3)).copy()
    )
    return alb, g, s, f0, tr


def make_mesh(
    vertices: npt.ArrayLike,
    triangles: npt.ArrayLike,
    *,
    albedo: npt.ArrayLike = (0.5, 0.5, 0.5),
    gloss: float = 0.0,
    shininess: float = 10.0,
    reflectance: npt.ArrayLike = 0.0,
    transmission: npt.ArrayLike | None = None,
    uv: npt.ArrayLike | None = None,
    texture: Texture | None = None,
    normals: npt.ArrayLike | None = None,
) -> Mesh:
    """A :class:`Mesh` with one material (per-vertex arrays broadcast from the arguments).

    Example:
        >>> m = make_mesh(np.eye(3), [[0, 1, 2]], albedo=(1, 0, 0))
        >>> m.albedo.shape, m.tri_texture.tolist()
        ((3, 3), [-1])
    """
    v = np.ascontiguousarray(np.asarray(vertices, np.float32).reshape(-1, 3))
    t = np.ascontiguousarray(np.asarray(triangles, np.int32).reshape(-1, 3))
    alb, g, s, f0, tr = _material(len(v), albedo, gloss, shininess, reflectance, transmission)
    uvs = np.zeros((len(v), 2), np.float32) if uv is None else np.asarray(uv, np.float32)
    tex = (texture,) if texture is not None else ()
    tri_tex = np.full(len(t), 0 if texture is not None else -1, np.int16)
    nrm = None if normals is None else np.asarray(normals, np.float32).reshape(-1, 3)
    return Mesh(v, t, alb, g, s, f0, tr, uvs.reshape(-1, 2), tri_tex, tex, nrm)


def merge(meshes: list[Mesh]) -> Mesh:
    """Concatenate meshes (vertex ids and texture ids renumbered).

    Example:
        >>> a = make_mesh(np.eye(3), [[0, 1, 2]])
        >>> m = merge([a, a])
        >>> m.triangles.tolist()
        [[0, 1, 2], [3, 4, 5]]
    """
    meshes = [m.with_normals() for m in meshes]
    offs = np.cumsum([0] + [m.n_vertices for m in meshes])
    toffs = np.cumsum([0] + [len(m.textures) for m in meshes])
    tri_tex = []
    for m, to in zip(meshes, toffs[:-1], strict=True):
        tri_tex.append(np.where(m.tri_texture >= 0, m.tri_texture + to, -1).astype(np.int16))
    return Mesh(
        np.concatenate([m.vertices for m in meshes]),
        np.concatenate([m.triangles + o for m, o in zip(meshes, offs[:-1], strict=True)]).astype(
            np.int32
        ),
        np.concatenate([m.albedo for m in meshes]),
        np.concatenate([m.gloss for m in meshes]),
        np.concatenate([m.shininess for m in meshes]),
        np.concatenate([m.reflectance for m in meshes]),
        np.concatenate([m.transmission for m in meshes]),
        np.concatenate([m.uv for m in meshes]),
        np.concatenate(tri_tex),
        tuple(t for m in meshes for t in m.textures),
        np.concatenate([m.normals for m in meshes]),
    )


def vertex_normals_open(vertices: F32, triangles: npt.NDArray[np.int32]) -> F32:
    """Area-weighted unit vertex normals following the triangle winding (no outward flip).

    Example:
        >>> v = np.eye(3, dtype=np.float32) * [1, 1, 0]
        >>> vertex_normals_open(v, np.array([[0, 1, 2]]))[0].tolist()
        [0.0, 0.0, 1.0]
    """
    v = np.asarray(vertices, np.float32)
    t = np.asarray(triangles)
    fn = cross3(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])
    n = np.zeros_like(v)
    for k in range(3):
        for j in range(3):
            n[:, j] += np.bincount(t[:, k], fn[:, j], minlength=len(v)).astype(np.float32)
    return (n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)).astype(np.float32)


@lru_cache(maxsize=64)
def _grid_triangles(rows: int, cols: int, wrap_cols: bool = False) -> npt.NDArray[np.int32]:
    c = cols if wrap_cols else cols - 1
    r, k = np.meshgrid(np.arange(rows - 1), np.arange(c), indexing="ij")
    a = r * cols + k
    b = r * cols + (k + 1) % cols
    d = (r + 1) * cols + k
    e = (r + 1) * cols + (k + 1) % cols
    out = np.concatenate(
        [np.stack([a, d, b], -1).reshape(-1, 3), np.stack([b, d, e], -1).reshape(-1, 3)]
    ).astype(np.int32)
    out.flags.writeable = False  # cached: shared by every mesh of this grid size
    return out


def _grid_normals(p: F32, wrap_cols: bool = False) -> F32:
    """Normals of a ``[R, C, 3]`` grid by central differences (:func:`grid_mesh`'s winding)."""
    if wrap_cols:
        du = np.roll(p, -1, 1) - np.roll(p, 1, 1)
    else:
        du = np.gradient(p, axis=1)
    dv = np.gradient(p, axis=0)
    n = cross3(dv, du)
    return (n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-9)).astype(np.float32)


def grid_mesh(
    points: npt.ArrayLike,
    *,
    wrap_cols: bool = False,
    uv: npt.ArrayLike | None = None,
    **material: object,
) -> Mesh:
    """A surface through a ``[R, C, 3]`` grid of points (two triangles per cell).

    Args:
        points: ``[R, C, 3]`` grid, model space mm.
        wrap_cols: join the last column to the first (a closed band).
        uv: ``[R, C, 2]`` surface coordinates (mm); default arc lengths along the grid.
        **material: :func:`make_mesh` material arguments (albedo, gloss, ...); albedo may be
            ``[R, C, 3]``.

    Example:
        >>> g = np.stack(np.meshgrid(np.arange(3.), np.arange(2.)), -1)
        >>> m = grid_mesh(np.concatenate([g, np.zeros((2, 3, 1))], -1))
        >>> m.vertices.shape, m.triangles.shape
        ((6, 3), (4, 3))
    """
    p = np.asarray(points, np.float32)
    rows, cols = p.shape[:2]
    if uv is None:
        su = np.concatenate(
            [np.zeros((rows, 1)), np.cumsum(np.linalg.norm(np.diff(p, axis=1), axis=-1), 1)], 1
        )
        sv = np.concatenate(
            [np.zeros((1, cols)), np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=-1), 0)], 0
        )
        uv = np.stack([su, sv], -1)
    alb = material.pop("albedo", (0.5, 0.5, 0.5))
    alb = np.asarray(alb, np.float32)
    if alb.ndim == 3:
        alb = alb.reshape(-1, 3)
    return make_mesh(
        p.reshape(-1, 3),
        _grid_triangles(rows, cols, wrap_cols),
        albedo=alb,
        uv=np.asarray(uv, np.float32).reshape(-1, 2),
        normals=_grid_normals(p, wrap_cols).reshape(-1, 3),
        **material,  # type: ignore[arg-type]
    )


def smooth_path(points: npt.ArrayLike, n: int, closed: bool = False) -> F32:
    """Catmull-Rom spline through ``[K, 3]`` control points, resampled to ``n`` points.

    Example:
        >>> smooth_path(np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0.]]), 5)[:, 0].tolist()
        [0.0, 0.5, 1.0, 1.5, 2.0]
    """
    p = np.asarray(points, np.float64)
    if closed:
        ext = np.concatenate([p[-1:], p, p[:2]])
    else:
        ext = np.concatenate([2 * p[:1] - p[1:2], p, 2 * p[-1:] - p[-2:-1]])
    segs = len(p) if closed else len(p) - 1
    t = np.linspace(0, segs, n, endpoint=not closed)
    i = np.minimum(t.astype(int), segs - 1)
    s = (t - i)[:, None]
    p0, p1, p2, p3 = ext[i], ext[i + 1], ext[i + 2], ext[i + 3]
    out = 0.5 * (
        2 * p1
        + (-p0 + p2) * s
        + (2 * p0 - 5 * p1 + 4 * p2 - p3) * s**2
        + (-p0 + 3 * p1 - 3 * p2 + p3) * s**3
    )
    return out.astype(np.float32)


def _frames(path: np.ndarray, closed: bool, up: npt.ArrayLike | None) -> tuple[np.ndarray, ...]:
    """Tangents and a normal/binormal along a path.

    The normal is ``up`` made perpendicular to the tangent (no twist for planar or nearly
    horizontal paths); where the tangent runs along ``up`` the frame is parallel-transported.
    """
    if closed:
        tan = np.roll(path, -1, 0) - np.roll(path, 1, 0)
    else:
        tan = np.gradient(path, axis=0)
    tan = tan / np.maximum(np.linalg.norm(tan, axis=1, keepdims=True), 1e-9)
    ref = np.asarray(up if up is not None else (0.0, 0.0, 1.0), np.float64)
    nor = ref[None] - tan * (tan @ ref)[:, None]
    length = np.linalg.norm(nor, axis=1)
    if length.min() > 0.2:
        nor = nor / length[:, None]
    else:  # parallel transport from the best-conditioned point (short loop over the path)
        i0 = int(length.argmax())
        nor[i0] /= max(length[i0], 1e-9)
        for i in list(range(i0 + 1, len(path))) + list(range(i0 - 1, -1, -1)):
            j = i - 1 if i > i0 else i + 1
            v = nor[j] - tan[i] * np.dot(nor[j], tan[i])
            nv = np.linalg.norm(v)
            nor[i] = v / nv if nv > 1e-9 else nor[j]
    return tan, nor, cross3(tan, nor)


def sweep(
    path: npt.ArrayLike,
    profile: npt.ArrayLike,
    *,
    closed_path: bool = False,
    scale: npt.ArrayLike | None = None,
    up: npt.ArrayLike | None = None,
    cap: bool = True,
    **material: object,
) -> Mesh:
    """Sweep a closed 2D profile along a 3D path (tubes, frame rims, temples, loops).

    Args:
        path: ``[N, 3]`` path points, mm.
        profile: ``[K, 2]`` closed cross-section (counter-clockwise), mm; its first axis
            runs along the path's normal (``up`` projected), its second along the binormal.
        closed_path: the path is a loop.
        scale: ``[N]`` or ``[N, 2]`` per-point scale of the profile (tapering).
        up: ``[3]`` preferred normal direction at the path start (default +z).
        cap: close the ends of an open path with fans.
        **material: :func:`make_mesh` material arguments.

    Example:
        >>> square = np.array([[1, 0], [0, 1], [-1, 0], [0, -1.]])
        >>> m = sweep(np.array([[0, 0, 0], [0, 0, 10.]]), square)
        >>> m.vertices.shape[0], m.triangles.shape[0]
        (10, 16)
    """
    p = np.asarray(path, np.float64)
    prof = np.asarray(profile, np.float64)
    tan, nor, bin_ = _frames(p, closed_path, up)
    sc = (
        np.ones((len(p), 2)) if scale is None else np.asarray(scale, np.float64).reshape(len(p), -1)
    )
    sc = np.broadcast_to(sc, (len(p), 2))
    offs = prof[None, :, 0:1] * sc[:, None, 0:1] * nor[:, None] + (
        prof[None, :, 1:2] * sc[:, None, 1:2] * bin_[:, None]
    )
    grid = p[:, None] + offs  # [N, K, 3]
    if closed_path:
        grid = np.concatenate([grid, grid[:1]], 0)
    rows, k = grid.shape[:2]
    verts = grid.reshape(-1, 3)
    tris = _grid_triangles(rows, k, wrap_cols=True)
    normals = (offs / np.maximum(np.linalg.norm(offs, axis=-1, keepdims=True), 1e-9)).reshape(-1, 3)
    if closed_path:
        normals = np.concatenate([normals, normals[:k]])
    arc = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(grid[:, 0], axis=0), axis=1))])
    perim = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(prof, axis=0), axis=1))]) * float(
        sc.mean()
    )
    uv = np.stack(np.broadcast_arrays(perim[None, :], arc[:, None]), -1).reshape(-1, 2)
    if cap and not closed_path:
        ends = [(0, -tan[0]), (rows - 1, tan[-1])]
        extra_v, extra_t, extra_n, extra_uv = [], [], [], []
        base = len(verts)
        for j, (r, d) in enumerate(ends):
            c = base + j
            extra_v.append(grid[r].mean(0))
            extra_n.append(d)
            extra_uv.append([0.0, arc[r]])
            ring = r * k + np.arange(k)
            extra_t.append(np.stack([np.full(k, c), ring, np.roll(ring, -1)], 1))
        verts = np.concatenate([verts, extra_v])
        tris = np.concatenate([tris, *extra_t]).astype(np.int32)
        normals = np.concatenate([normals, extra_n])
        uv = np.concatenate([uv, extra_uv])
    return make_mesh(verts, tris, uv=uv, normals=normals, **material)  # type: ignore[arg-type]


def tube(
    path: npt.ArrayLike,
    radius: npt.ArrayLike,
    *,
    sides: int = 8,
    closed_path: bool = False,
    flat: float = 1.0,
    up: npt.ArrayLike | None = None,
    **material: object,
) -> Mesh:
    """A tube of (per-point) ``radius`` along ``path``.

    ``flat`` < 1 flattens it (a band lying against ``up``, the preferred normal: see
    :func:`sweep`).

    Example:
        >>> tube(np.array([[0, 0, 0], [0, 0, 5.], [0, 0, 10]]), 1.0, sides=6).vertices.shape
        (20, 3)
    """
    a = np.linspace(0, 2 * np.pi, sides, endpoint=False)
    prof = np.stack([np.cos(a), np.sin(a) * flat], 1)
    r = np.broadcast_to(np.asarray(radius, np.float64), (len(np.asarray(path)),))
    return sweep(path, prof, closed_path=closed_path, scale=r, up=up, **material)


def tubes(
    paths: npt.ArrayLike,
    radii: npt.ArrayLike,
    binormals: npt.ArrayLike,
    *,
    sides: int = 10,
    flat: float = 1.0,
    **material: object,
) -> tuple[Mesh, F32]:
    """Several open tubes at once (fingers): ``F`` paths of ``N`` points, no caps.

    Each path bends in the plane normal to its (constant) ``binormal`` (a finger curling
    about its joint axis), so the frame is ``normal = binormal x tangent`` everywhere.

    Args:
        paths: ``[F, N, 3]`` points, mm.
        radii: ``[F, N]`` mm.
        binormals: ``[F, 3]`` each path's bending axis.
        sides: vertices per ring.
        flat: the cross-section's extent along the normal (1: round).
        **material: :func:`make_mesh` material arguments (albedo may be ``[F * N * sides, 3]``).

    Returns:
        ``(mesh, angle_dirs)``: the mesh (vertex ``(f * N + i) * sides + k``) and ``[F*N*sides, 3]``
        unit directions of each vertex from its path point (for per-side colouring).

    Example:
        >>> p = np.zeros((2, 3, 3)); p[:, :, 1] = np.arange(3)
        >>> m, d = tubes(p, np.ones((2, 3)), np.tile([1.0, 0, 0], (2, 1)), sides=4)
        >>> m.vertices.shape, m.triangles.shape
        ((24, 3), (32, 3))
    """
    p = np.asarray(paths, np.float64)
    f, n = p.shape[:2]
    tan = np.gradient(p, axis=1)
    tan /= np.maximum(np.linalg.norm(tan, axis=-1, keepdims=True), 1e-9)
    b = np.asarray(binormals, np.float64)[:, None, :]
    nor = cross3(b, tan)
    nor /= np.maximum(np.linalg.norm(nor, axis=-1, keepdims=True), 1e-9)
    bin_ = cross3(tan, nor)
    a = np.linspace(0, 2 * np.pi, sides, endpoint=False)
    dirs = (
        np.cos(a)[None, None, :, None] * nor[:, :, None]
        + np.sin(a)[None, None, :, None] * bin_[:, :, None]
    )
    shape = (
        np.cos(a)[None, None, :, None] * nor[:, :, None] * flat
        + np.sin(a)[None, None, :, None] * bin_[:, :, None]
    )
    verts = p[:, :, None] + shape * np.asarray(radii, np.float64)[:, :, None, None]
    one = _grid_triangles(n, sides, wrap_cols=True)
    tris = (one[None] + (np.arange(f) * n * sides)[:, None, None]).reshape(-1, 3)
    d = dirs.reshape(-1, 3).astype(np.float32)
    m = make_mesh(verts.reshape(-1, 3), tris, normals=d, **material)  # type: ignore[arg-type]
    return m, d


def lathe(
    profile: npt.ArrayLike,
    *,
    sides: int = 24,
    **material: object,
) -> Mesh:
    """A surface of revolution about the y axis from a ``[N, 2]`` (radius, height) profile.

    Example:
        >>> m = lathe(np.array([[10, 0], [10, 50.]]), sides=8)
        >>> m.vertices.shape, round(float(np.abs(m.vertices[:, 0]).max()), 3)
        ((16, 3), 10.0)
    """
    prof = np.asarray(profile, np.float64)
    a = np.linspace(0, 2 * np.pi, sides, endpoint=False)
    grid = np.stack(
        [
            prof[:, None, 0] * np.sin(a)[None],
            np.broadcast_to(prof[:, None, 1], (len(prof), sides)),
            prof[:, None, 0] * np.cos(a)[None],
        ],
        -1,
    )
    circ = 2 * np.pi * max(float(prof[:, 0].max()), 1e-6)
    arc = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(prof, axis=0), axis=1))])
    uv = np.stack(np.broadcast_arrays((a / (2 * np.pi) * circ)[None], arc[:, None]), -1)
    return grid_mesh(grid, wrap_cols=True, uv=uv, **material)


def superellipsoid(
    axes: npt.ArrayLike,
    *,
    exponent: float = 1.0,
    rows: int = 10,
    cols: int = 16,
    **material: object,
) -> Mesh:
    """A superellipsoid centred at the origin with semi-axes ``(ax, ay, az)``.

    ``exponent`` 1 is an ellipsoid; smaller values are boxier (0.3: a rounded box).

    Example:
        >>> m = superellipsoid((2, 1, 1), rows=7, cols=8)
        >>> round(float(m.vertices[:, 0].max()), 3)
        2.0
    """
    ax = np.asarray(axes, np.float64)
    lat = np.linspace(-np.pi / 2, np.pi / 2, rows)
    lon = np.linspace(0, 2 * np.pi, cols, endpoint=False)
    la, lo = np.meshgrid(lat, lon, indexing="ij")

    def f(w: np.ndarray) -> np.ndarray:
        return np.sign(w) * np.abs(w) ** exponent

    grid = np.stack(
        [
            ax[0] * f(np.cos(la)) * f(np.sin(lo)),
            ax[1] * f(np.sin(la)),
            ax[2] * f(np.cos(la)) * f(np.cos(lo)),
        ],
        -1,
    )
    m = grid_mesh(grid, wrap_cols=True, **material)
    n = grid / np.maximum(ax, 1e-9) ** 2  # ellipsoid gradient: a smooth normal at the poles too
    n = n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-9)
    return replace(m, normals=n.reshape(-1, 3).astype(np.float32))
