"""deocc's own face model, learned from real photos (``tools/make_face_model.py``).

The shared real faces (``../shared/data``: CelebAMask-HQ, the RMFD / web photos of
``face_mask_detection/without_mask``, deepface, the labelled faces) are meshed by MediaPipe's
468-point face mesh (:meth:`deocc_core.landmarks.facemesh.FaceMeshDetector.detect_mesh`,
inside the installed wheel: nothing downloads). From those meshes:

1. **Topology**: MediaPipe's triangulation (``FACEMESH_TESSELATION``'s edges; a triangle
   is a 3-clique of the edge graph), oriented counter-clockwise from the front.
2. **Shape**: every mesh is put in model space (y up, z toward the viewer) and aligned to
   the mean by a similarity (Procrustes); the mean is scaled to millimetres (iBUG's outer
   eye corners 90 mm apart, about the adult mean; the Surrey model's are 92 mm).
   **Identity** modes: PCA of the per-identity means (``identities.tsv``; a photo without
   one is its own identity). **Expression**
   modes: PCA of each photo's offset from its identity's mean (identities with several
   photos only), orthogonalised against the identity modes.
3. **Landmarks**: the 68 iBUG points are the mesh vertices nearest to the weighted
   468 → 68 map of :mod:`deocc_core.landmarks.facemesh` on the mean; the jaw contours are
   the mesh's face oval; the **symmetry map** pairs each vertex with the vertex nearest to
   its mirror image (x → -x) on the mean (exact for all but 6 edge midpoints, where
   MediaPipe's triangulation is not mirror-symmetric: their partner is < 2 mm off).
4. **Texture coordinates**: the mean face seen from the front, its x stretched by the
   arc length around a vertical cylinder (cheeks are not squeezed), in [0, 1], v up.
5. **Albedo**: each photo is unwrapped into the UV map (the mesh's own 2D points:
   a texel's photo position is its triangle's barycentric mix of the detected points;
   visible where its triangle faces the camera), the light factored out by a second-order
   SH fit to the skin (the current mean albedo times the shading, two rounds), then a
   per-texel mean and PCA (texels a photo did not see take the mean) at ``texture_size``.
   The per-vertex ``albedo_*`` fields are the UV model sampled at the vertices.

Faces of the identity-disjoint test split (:func:`deocc_core.synth.splits.assign_split`'s
hash, the build's default salt and fractions) are left out, so the model never saw the
faces it is evaluated on. Deterministic: the same photos give the same bytes.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from deocc_core.imageio import read_image
from deocc_core.options import option

__all__ = [
    "FaceModelConfig",
    "FacePhoto",
    "collect_photos",
    "detect_meshes",
    "mesh_triangles",
]

log = logging.getLogger(__name__)
MESH_POINTS = 468


@dataclass(frozen=True)
class FaceModelConfig:
    """How ``tools/make_face_model.py`` learns the model (each field's help is its option)."""

    data: str = option(
        "../shared/data", "The shared real-face folder (faces/ and faces_bulk/).", path="dir"
    )
    n_id: int = option(40, "Identity modes.", min=1, max=200)
    n_exp: int = option(20, "Expression modes.", min=0, max=100)
    n_albedo: int = option(40, "Albedo (UV texture) modes.", min=1, max=200)
    texture_size: int = option(128, "Side of the UV albedo maps.", units="px", min=32, max=512)
    eye_width_mm: float = option(
        90.0, "Distance between the outer eye corners of the mean face.", units="mm"
    )


@dataclass(frozen=True)
class FacePhoto:
    """One photo of the learning set: ``path``, ``identity`` and ``split`` ("train" | "test")."""

    path: Path
    identity: str
    split: str


def _identities(folder: Path) -> dict[str, str]:
    tsv = folder / "identities.tsv"
    if not tsv.is_file():
        return {}
    with open(tsv, newline="") as f:
        return {row["image"]: row["identity"] for row in csv.DictReader(f, delimiter="\t")}


#: (folder under the data root, identity prefix, test share of the identities): the shares
#: of tools/train_default.py's builds, so the default de-occluder's test faces stay unseen
SOURCES = (
    ("faces_bulk/face_mask_detection/without_mask", "rmfd", 0.1),
    ("faces_bulk/deepface", "deepface", 0.15),
    ("faces_bulk/celebamask_hq/images", "celebamask", 0.1),
    ("faces", "labelled", 0.0),
)


def collect_photos(
    data: str | Path, split_of: Callable[[str, float], str] | None = None
) -> list[FacePhoto]:
    """The real photos of the shared data folder with identity and split, in sorted order.

    Args:
        data: the shared data folder (``faces/``, ``faces_bulk/``).
        split_of: ``(identity, test_fraction) -> "train" | "test"`` (the build's
            :func:`deocc_core.synth.splits.assign_split`; ``face`` never imports ``synth``,
            so the caller passes it); None: every photo is "train".

    Returns:
        :class:`FacePhoto` list (sorted by path within each source).
    """
    from deocc_core.imageio import is_image_path

    root = Path(data)
    out = []
    for sub, prefix, test in SOURCES:
        folder = root / sub
        if not folder.is_dir():
            continue
        ids = _identities(folder)
        for p in sorted(folder.rglob("*")):
            if not is_image_path(p) or "visualize" in p.parts:
                continue
            ident = ids.get(p.name, f"{prefix}_{p.relative_to(folder).with_suffix('')}")
            split = split_of(ident, test) if test and split_of is not None else "train"
            out.append(FacePhoto(p, ident, split))
    return out


def detect_meshes(
    photos: list[FacePhoto],
    cache: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, npt.NDArray[np.float32]]:
    """MediaPipe's 468-point mesh of each photo (photos without a face are left out).

    Args:
        photos: the photos.
        cache: a ``.npz`` the meshes are kept in (read first, written at the end): a rerun
            detects only new photos.
        progress: called with 1 per photo.

    Returns:
        ``{str(path): [468, 3] float32}`` (x, y pixels, z in x's units, larger = farther).
    """
    from deocc_core.landmarks.facemesh import FaceMeshDetector

    done: dict[str, np.ndarray] = {}
    missed: set[str] = set()
    cpath = Path(cache) if cache is not None else None
    if cpath is not None and cpath.is_file():
        with np.load(cpath) as z:
            done = {k: z[k] for k in z.files if k != "__missed__"}
            if "__missed__" in z.files:
                missed = set(str(s) for s in z["__missed__"])
    det = None
    for ph in photos:
        key = str(ph.path)
        if key not in done and key not in missed:
            if det is None:
                det = FaceMeshDetector()
            try:
                mesh = det.detect_mesh(read_image(ph.path))
            except Exception as e:  # noqa: BLE001  (an unreadable photo is just left out)
                log.warning("%s: %s", ph.path, e)
                mesh = None
            if mesh is None:
                missed.add(key)
            else:
                done[key] = mesh
        if progress is not None:
            progress(1)
    if cpath is not None:
        arrays = dict(done)
        arrays["__missed__"] = np.array(sorted(missed), dtype="U")
        np.savez(cpath, **arrays)
    return {str(p.path): done[str(p.path)] for p in photos if str(p.path) in done}


def mesh_triangles() -> npt.NDArray[np.int32]:
    """MediaPipe's face-mesh triangles ``[T, 3]`` int32 (the 3-cliques of its edge list).

    Orientation is left to the caller (:func:`orient_triangles`).
    """
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    nbr: dict[int, set[int]] = {}
    for a, b in FACEMESH_TESSELATION:
        nbr.setdefault(a, set()).add(b)
        nbr.setdefault(b, set()).add(a)
    tris = set()
    for a, na in nbr.items():
        for b in na:
            if b <= a:
                continue
            for c in na & nbr[b]:
                if c > b:
                    tris.add((a, b, c))
    return np.array(sorted(tris), np.int32)


def orient_triangles(
    vertices: npt.NDArray[np.floating], triangles: npt.NDArray[np.integer], centre: npt.ArrayLike
) -> npt.NDArray[np.int32]:
    """Triangles wound counter-clockwise seen from outside (away from ``centre``).

    Args:
        vertices: ``[V, 3]`` positions.
        triangles: ``[T, 3]`` vertex ids.
        centre: ``[3]`` a point inside the head.

    Returns:
        ``[T, 3]`` int32.
    """
    v = np.asarray(vertices, np.float64)
    t = np.asarray(triangles, np.int32).copy()
    a, b, c = v[t[:, 0]], v[t[:, 1]], v[t[:, 2]]
    normal = np.cross(b - a, c - a)
    out = ((a + b + c) / 3 - np.asarray(centre, np.float64)) * normal
    flip = out.sum(1) < 0
    t[flip] = t[flip][:, [0, 2, 1]]
    return t


def _to_model_space(mesh: np.ndarray) -> np.ndarray:
    """MediaPipe points (x right, y down, z away) → model space (y up, z toward the viewer)."""
    return np.asarray(mesh, np.float64) * np.array([1.0, -1.0, -1.0])


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """``src`` ``[N, 3]`` moved onto ``dst`` by the least-squares similarity (Umeyama)."""
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    u, sv, vt = np.linalg.svd(b.T @ a)
    d = np.sign(np.linalg.det(u @ vt))
    fix = np.diag([1.0, 1.0, d])
    r = u @ fix @ vt
    scale = (sv * np.diag(fix)).sum() / (a * a).sum()
    return scale * a @ r.T + md


def align_meshes(meshes: np.ndarray, rounds: int = 4) -> np.ndarray:
    """Generalised Procrustes: ``[N, 468, 3]`` model-space meshes aligned to their mean.

    Returns:
        ``[N, 468, 3]`` float64, the mean of unit RMS size, centred.
    """
    ref = meshes[0] - meshes[0].mean(0)
    ref = ref / np.sqrt((ref**2).sum(1).mean())
    out = meshes
    for _ in range(rounds):
        out = np.stack([_similarity(m, ref) for m in meshes])
        ref = out.mean(0)
        ref = (ref - ref.mean(0)) / np.sqrt(((ref - ref.mean(0)) ** 2).sum(1).mean())
    return out


def subdivide(triangles: npt.NDArray[np.integer], n_vertices: int) -> tuple[np.ndarray, np.ndarray]:
    """One midpoint subdivision: each triangle → 4, a new vertex at each edge's midpoint.

    Returns:
        ``(edges [E, 2] int64, triangles [4T, 3] int32)``: new vertex ``n_vertices + e`` is the
        midpoint of ``edges[e]``; the winding is kept.
    """
    t = np.asarray(triangles, np.int64)
    pairs = np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]])
    key = np.sort(pairs, 1)
    edges, inv = np.unique(key, axis=0, return_inverse=True)
    mid = (n_vertices + inv.reshape(3, -1)).T  # [T, 3]: ab, bc, ca
    a, b, c = t[:, 0], t[:, 1], t[:, 2]
    ab, bc, ca = mid[:, 0], mid[:, 1], mid[:, 2]
    new = np.concatenate(
        [np.stack(x, 1) for x in ((a, ab, ca), (ab, b, bc), (ca, bc, c), (ab, bc, ca))]
    )
    return edges, new.astype(np.int32)


def _with_midpoints(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``[V, ...]`` per-vertex values with the edge midpoints' appended ``[V + E, ...]``."""
    return np.concatenate([x, 0.5 * (x[edges[:, 0]] + x[edges[:, 1]])])


def _pca(rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` principal directions ``[D, k]`` (unit columns) and stds ``[k]`` of centred rows."""
    gram = (rows @ rows.T).astype(np.float64)
    val, vec = np.linalg.eigh(gram)
    order = np.argsort(val)[::-1][:k]
    val = np.maximum(val[order], 1e-12)
    basis = (rows.T @ vec[:, order].astype(rows.dtype)).astype(np.float64) / np.sqrt(val)[None]
    # a deterministic sign: the largest entry of each column is positive
    sign = np.sign(basis[np.abs(basis).argmax(0), np.arange(basis.shape[1])])
    std = np.sqrt(val / max(len(rows) - 1, 1))
    return basis * sign[None], std


def _mirror_ids(points: np.ndarray) -> np.ndarray:
    """Each point's partner nearest to its mirror image (x → -x)."""
    from scipy.spatial import cKDTree

    _, idx = cKDTree(points).query(points * np.array([-1.0, 1.0, 1.0]))
    return idx.astype(np.int32)


def _oval_loop() -> list[int]:
    """MediaPipe's face-oval vertex ids as one closed loop."""
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_FACE_OVAL

    nbr: dict[int, list[int]] = {}
    for a, b in FACEMESH_FACE_OVAL:
        nbr.setdefault(a, []).append(b)
        nbr.setdefault(b, []).append(a)
    start = min(nbr)
    loop, prev = [start], None
    while True:
        nxt = [n for n in nbr[loop[-1]] if n != prev][0]
        if nxt == start:
            return loop
        prev = loop[-1]
        loop.append(nxt)


@dataclass(frozen=True)
class LearnedShape:
    """The shape part of the model (468 MediaPipe vertices, before subdivision).

    Attributes:
        mean: ``[468, 3]`` float64 mm, left-right symmetric. triangles: ``[T, 3]`` int32 CCW.
        id_basis: ``[1404, Kid]`` unit columns; id_std ``[Kid]`` mm.
        exp_basis: ``[1404, Kexp]``; exp_std ``[Kexp]``.
        symmetry: ``[468]`` int32 mirror partner of each vertex.
        n_photos, n_identities, n_expression_photos: what the modes were learned from.
    """

    mean: np.ndarray
    triangles: np.ndarray
    id_basis: np.ndarray
    id_std: np.ndarray
    exp_basis: np.ndarray
    exp_std: np.ndarray
    symmetry: np.ndarray
    n_photos: int
    n_identities: int
    n_expression_photos: int


#: MediaPipe mesh ids: outer eye corners (subject's right, left), forehead top, chin
_EYE_R, _EYE_L, _TOP, _CHIN = 33, 263, 10, 152


def learn_shape(meshes: np.ndarray, identities: list[str], config: FaceModelConfig) -> LearnedShape:
    """Shape, identity and expression modes from MediaPipe meshes (module docstring, step 2).

    Args:
        meshes: ``[N, 468, 3]`` detected meshes (MediaPipe's x, y pixels, z).
        identities: ``N`` identity labels.
        config: mode counts and the mean's eye width.
    """
    from deocc_core.landmarks.facemesh import ibug68_mesh_map

    model_space = np.stack([_to_model_space(m) for m in meshes])
    aligned = align_meshes(model_space)
    mean = aligned.mean(0)
    # canonical frame: x along the eye corners, y up the face, z toward the viewer
    x = mean[_EYE_L] - mean[_EYE_R]
    x /= np.linalg.norm(x)
    y = mean[_TOP] - mean[_CHIN]
    y -= x * (x @ y)
    y /= np.linalg.norm(y)
    frame = np.stack([x, y, np.cross(x, y)])
    aligned = (aligned - mean.mean(0)) @ frame.T
    mean = aligned.mean(0)
    sym = _mirror_ids(mean - [mean[:, 0].mean(), 0, 0])
    flip = np.array([-1.0, 1.0, 1.0])
    centre_x = 0.5 * (mean[:, 0] + mean[sym, 0]).mean()
    aligned[..., 0] -= centre_x
    # the scale: iBUG's outer eye corners (36, 45: MediaPipe's weighted map) eye_width_mm apart
    corners = [(aligned.mean(0)[ids] * w[:, None]).sum(0) for ids, w in ibug68_mesh_map()]
    scale = config.eye_width_mm / np.linalg.norm(corners[45] - corners[36])
    aligned *= scale
    # mirrored copies make the modes (and the mean) left-right symmetric
    mirrored = aligned[:, sym] * flip
    ids = np.asarray(identities)
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(ids):
        groups.setdefault(str(name), []).append(i)
    id_means, offsets = [], []
    for members in groups.values():
        for src in (aligned, mirrored):
            m = src[members].mean(0)
            id_means.append(m.reshape(-1))
            if len(members) > 1:
                offsets.extend((src[members] - m).reshape(len(members), -1))
    id_means_a = np.stack(id_means)
    mu = id_means_a.mean(0)
    id_basis, id_std = _pca(id_means_a - mu, config.n_id)
    exp_basis = np.zeros((mu.size, 0))
    exp_std = np.zeros(0)
    if config.n_exp and offsets:
        off = np.stack(offsets)
        off -= (off @ id_basis) @ id_basis.T  # what identity explains is not expression
        exp_basis, exp_std = _pca(off, config.n_exp)
    tris = orient_triangles(mu.reshape(-1, 3), mesh_triangles(), [0.0, 0.0, -80.0])
    return LearnedShape(
        mu.reshape(-1, 3),
        tris,
        id_basis,
        id_std,
        exp_basis,
        exp_std,
        sym,
        len(meshes),
        len(groups),
        len(offsets) // 2,
    )


def cylinder_uv(mean: npt.NDArray[np.floating], margin: float = 0.02) -> npt.NDArray[np.float32]:
    """Texture coordinates of a symmetric mean face (module docstring, step 4).

    The face seen from the front with x replaced by the arc length around a vertical
    cylinder through the head (radius 90 mm, axis 90 mm behind the nose tip's depth), so
    u is odd in x: the mirror of texel (u, v) is (1 - u, v).

    Returns:
        ``[V, 2]`` float32 (u, v) in [margin, 1 - margin], v up.
    """
    m = np.asarray(mean, np.float64)
    radius = 90.0
    axis_z = m[:, 2].max() - radius
    arc = radius * np.arctan2(m[:, 0], m[:, 2] - axis_z)
    yc = 0.5 * (m[:, 1].max() + m[:, 1].min())
    half = max(np.abs(arc).max(), 0.5 * (m[:, 1].max() - m[:, 1].min()))
    s = (0.5 - margin) / half
    return np.stack([0.5 + s * arc, 0.5 + s * (m[:, 1] - yc)], 1).astype(np.float32)


def face_topology(mean: npt.NDArray[np.floating]) -> tuple[np.ndarray, list[list[int]]]:
    """Closed-eye, closed-mouth triangles of the MediaPipe mesh.

    The edge list's 3-cliques are MediaPipe's triangles plus two that are not faces (three
    triangles share their edges, beside the nostrils): those go. The mesh is open at the
    eyes and the mouth; each opening is closed by a fan around a new vertex at the mean of
    its loop (ids 468, 469, 470), lifted FAN_LIFT_MM toward the viewer.

    Args:
        mean: ``[468, 3]`` model-space mean shape (orients the triangles).

    Returns:
        ``(triangles [T, 3] int32 counter-clockwise from the front over 471 vertices, the
        three loops of vertex ids the new vertices average)``.
    """
    from collections import Counter

    tris = mesh_triangles()
    count = Counter(tuple(sorted(e)) for t in tris.tolist() for e in _tri_edges(t))
    keep = [t for t in tris.tolist() if sum(count[tuple(sorted(e))] > 2 for e in _tri_edges(t)) < 2]
    count = Counter(tuple(sorted(e)) for t in keep for e in _tri_edges(t))
    oval = set(_oval_loop())
    nbr: dict[int, list[int]] = {}
    for (a, b), k in sorted(count.items()):
        if k == 1 and not (a in oval and b in oval):
            nbr.setdefault(a, []).append(b)
            nbr.setdefault(b, []).append(a)
    loops: list[list[int]] = []
    seen: set[int] = set()
    for start in sorted(nbr):
        if start in seen:
            continue
        loop, prev = [start], -1
        seen.add(start)
        while True:
            nxt = [n for n in nbr[loop[-1]] if n != prev][0]
            if nxt == start:
                break
            prev = loop[-1]
            loop.append(nxt)
            seen.add(nxt)
        loops.append(loop)
    extended = _extend(np.asarray(mean, np.float64), loops, FAN_LIFT_MM)
    fans = []
    for k, loop in enumerate(loops):
        c = MESH_POINTS + k
        fans += [[loop[i], loop[(i + 1) % len(loop)], c] for i in range(len(loop))]
    own = orient_triangles(extended, np.array(keep, np.int32), [0.0, 0.0, -80.0])
    # a fan lies in the face's front: wound to face the viewer (+z), whatever its slant
    fan = np.array(fans, np.int32)
    v = extended
    nz = np.cross(v[fan[:, 1]] - v[fan[:, 0]], v[fan[:, 2]] - v[fan[:, 0]])[:, 2]
    fan[nz < 0] = fan[nz < 0][:, [0, 2, 1]]
    return np.concatenate([own, fan]), loops


def _tri_edges(t: list[int]) -> tuple[tuple[int, int], ...]:
    return ((t[0], t[1]), (t[1], t[2]), (t[2], t[0]))


#: the eye / mouth fan centres sit this far (mm) in front of their loop's mean: a flat fan
#: over closed lips has sliver triangles that turn their back to the camera (holes in M)
FAN_LIFT_MM = 3.0


def _extend(x: np.ndarray, loops: list[list[int]], lift: float = 0.0) -> np.ndarray:
    """``[468, ...]`` per-vertex values with the loop means appended ``[468 + L, ...]``.

    ``lift``: added to the new rows' z (positions ``[468, 3]`` of the mean shape only).
    """
    centres = np.stack([x[loop].mean(0) for loop in loops])
    if lift:
        centres = centres + np.array([0.0, 0.0, lift])
    return np.concatenate([x, centres])


def sample_map(maps: npt.NDArray[np.floating], uv: npt.NDArray[np.floating]) -> np.ndarray:
    """Bilinear samples of ``[T, T, C]`` maps at ``[V, 2]`` (u, v) (row 0 = v 1) → ``[V, C]``."""
    t = maps.shape[0]
    x = np.clip(uv[:, 0] * (t - 1), 0, t - 1)
    y = np.clip((1.0 - uv[:, 1]) * (t - 1), 0, t - 1)
    x0 = np.minimum(np.floor(x).astype(np.int64), t - 2)
    y0 = np.minimum(np.floor(y).astype(np.int64), t - 2)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    m = np.asarray(maps, np.float64)
    return (
        m[y0, x0] * (1 - fx) * (1 - fy)
        + m[y0, x0 + 1] * fx * (1 - fy)
        + m[y0 + 1, x0] * (1 - fx) * fy
        + m[y0 + 1, x0 + 1] * fx * fy
    )


@dataclass
class _UnwrapGrid:
    """The UV raster of the 471-vertex mesh: each texel's triangle and barycentrics."""

    raster: object
    chart: np.ndarray


def _unwrap_grid(uv: np.ndarray, triangles: np.ndarray, size: int) -> _UnwrapGrid:
    from deocc_core.render.raster import rasterize

    texel = np.stack(
        [uv[:, 0] * (size - 1), (1.0 - uv[:, 1]) * (size - 1), np.zeros(len(uv))], 1
    ).astype(np.float32)
    r = rasterize(texel, triangles, size, size, cull_backfaces=False)
    return _UnwrapGrid(r, r.covered)


def unwrap_albedo(
    image: npt.NDArray[np.uint8],
    mesh: npt.NDArray[np.floating],
    loops: list[list[int]],
    triangles: npt.NDArray[np.integer],
    grid: _UnwrapGrid,
    albedo_lum: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """One photo's albedo in the UV map (module docstring, step 5).

    Args:
        image: ``[H, W, 3]`` uint8 RGB.
        mesh: ``[468, 3]`` its detected MediaPipe mesh.
        loops: the eye / mouth loops of :func:`face_topology`.
        triangles: ``[T, 3]`` the 471-vertex triangles.
        grid: the UV raster of those triangles.
        albedo_lum: ``[S, S]`` the current mean albedo's luminance (None: 1 everywhere).

    Returns:
        ``(albedo [S, S, 3] float32 in [0, 1], weight [S, S] float32 in [0, 1])``; weight 0
        where the photo does not see the texel.
    """
    from deocc_core.render.raster import interpolate
    from deocc_core.render.shading import sh_basis, vertex_normals

    pts = _extend(np.asarray(mesh, np.float64), loops)
    cam = (pts * np.array([1.0, -1.0, -1.0])).astype(np.float32)  # model-space axes
    normals = vertex_normals(cam, triangles)
    xy = interpolate(grid.raster, pts[:, :2].astype(np.float32))
    n = interpolate(grid.raster, normals)
    n /= np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-6)
    a, b, c = (pts[triangles[:, k], :2] for k in range(3))
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    tri_id = grid.raster.tri_id
    front = np.zeros(tri_id.shape, bool)
    front[grid.chart] = area[tri_id[grid.chart]] < 0  # CCW in model space = negative in image
    h, w = image.shape[:2]
    inside = (xy[..., 0] >= 0) & (xy[..., 0] <= w - 1) & (xy[..., 1] >= 0) & (xy[..., 1] <= h - 1)
    weight = (grid.chart & front & inside).astype(np.float32) * np.clip(
        (n[..., 2] - 0.2) / 0.3, 0, 1
    )
    col = (
        cv2.remap(
            image,
            np.ascontiguousarray(xy[..., 0]),
            np.ascontiguousarray(xy[..., 1]),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        ).astype(np.float32)
        / 255.0
    )
    use = weight > 0.5
    if use.sum() < 50:
        return col, np.zeros_like(weight)
    lum = col @ np.array([0.299, 0.587, 0.114], np.float32)
    alb = np.ones_like(lum) if albedo_lum is None else np.maximum(albedo_lum, 0.05)
    basis = sh_basis(n[use])
    target = lum[use] / alb[use]
    wts = np.ones(len(target))
    for _ in range(3):  # Tukey-reweighted least squares: hair, glasses, speculars drop out
        sw = np.sqrt(wts)[:, None]
        light = np.linalg.lstsq(basis * sw, target * sw[:, 0], rcond=None)[0]
        r = target - basis @ light
        scale = 1.4826 * np.median(np.abs(r)) + 1e-6
        wts = np.clip(1 - (r / (4.685 * scale)) ** 2, 0, 1) ** 2
    frontal = float(sh_basis(np.array([[0.0, 0.0, 1.0]], np.float32))[0] @ light)
    shading = (sh_basis(n.reshape(-1, 3)) @ light).reshape(lum.shape) / max(frontal, 1e-3)
    albedo = col / np.clip(shading, 0.3, 3.0)[..., None]
    return np.clip(albedo, 0.0, 1.0).astype(np.float32), weight


@dataclass(frozen=True)
class FaceModelStats:
    """What a model was learned from (for its card)."""

    photos: int
    meshed: int
    train_photos: int
    identities: int
    expression_photos: int
    textured_photos: int
    vertices: int
    triangles: int


def learn_face_model(
    photos: list[FacePhoto],
    meshes: dict[str, npt.NDArray[np.float32]],
    config: FaceModelConfig,
    progress: Callable[[int], None] | None = None,
):
    """Learn deocc's face model from meshed photos (module docstring).

    Args:
        photos: the photos (:func:`collect_photos`); only "train" ones are used.
        meshes: their meshes (:func:`detect_meshes`).
        config: mode counts, texture size.
        progress: called with 1 per photo and texture pass.

    Returns:
        ``(MorphableModel, FaceModelStats)``.
    """
    from deocc_core.landmarks.facemesh import ibug68_mesh_map
    from deocc_core.landmarks.ibug import ibug_scheme
    from deocc_core.morphable.model import MorphableModel

    train = [p for p in photos if p.split == "train" and str(p.path) in meshes]
    log.info("shape from %d meshes", len(train))
    stack = np.stack([meshes[str(p.path)] for p in train]).astype(np.float64)
    shape = learn_shape(stack, [p.identity for p in train], config)
    tris0, loops = face_topology(shape.mean)
    n0 = MESH_POINTS + len(loops)
    edges, tris = subdivide(tris0, n0)

    def grow(x: np.ndarray) -> np.ndarray:  # [468, ...] → [V, ...]: fills, then midpoints
        return _with_midpoints(_extend(x, loops), edges)

    def grow_basis(b: np.ndarray) -> np.ndarray:
        k = b.shape[1]
        return grow(b.reshape(MESH_POINTS, 3, k)).reshape(-1, k)

    mean = _with_midpoints(_extend(shape.mean, loops, FAN_LIFT_MM), edges)
    sym = _mirror_ids(mean)
    uv0 = cylinder_uv(_extend(shape.mean, loops, FAN_LIFT_MM))
    uv = _with_midpoints(uv0.astype(np.float64), edges).astype(np.float32)
    lm_pos = np.stack([(shape.mean[ids] * w[:, None]).sum(0) for ids, w in ibug68_mesh_map()])
    lm = np.argmin(((mean[None] - lm_pos[:, None]) ** 2).sum(-1), 1).astype(np.int32)
    mirror = ibug_scheme().mirror
    for k in range(68):  # left-right symmetric picks: a subject-left point mirrors its partner
        if mirror[k] > k:
            lm[mirror[k]] = sym[lm[k]]
    right, left = _contours(mean, edges, n0, lm)
    log.info("albedo from %d photos", len(train))
    tex_mean, tex_basis, tex_std, n_tex = _learn_texture(
        train, meshes, loops, tris0, uv0, config, progress
    )
    albedo_mean = sample_map(tex_mean, uv).astype(np.float32)
    k = tex_basis.shape[1]
    t = config.texture_size
    albedo_basis = sample_map(tex_basis.reshape(t, t, 3 * k), uv).reshape(-1, 3, k)
    model = MorphableModel(
        mean.astype(np.float32),
        grow_basis(shape.id_basis).astype(np.float32),
        shape.id_std.astype(np.float32),
        grow_basis(shape.exp_basis).astype(np.float32),
        shape.exp_std.astype(np.float32),
        tris,
        lm,
        right,
        left,
        albedo_mean=albedo_mean,
        albedo_basis=albedo_basis.reshape(-1, k).astype(np.float32),
        albedo_std=tex_std.astype(np.float32),
        uv=uv,
        symmetry=sym,
        texture_mean=tex_mean.astype(np.float32),
        texture_basis=tex_basis.astype(np.float16).astype(np.float32),
        texture_std=tex_std.astype(np.float32),
        name="deocc-face",
        source="generated by tools/make_face_model.py",
        license="research use only (learned from research-only photo sets); see deocc_face.md",
        units="mm",
    )
    stats = FaceModelStats(
        len(photos),
        len(meshes),
        len(train),
        shape.n_identities,
        shape.n_expression_photos,
        n_tex,
        model.n_vertices,
        len(tris),
    )
    return model, stats


def _contours(
    mean: np.ndarray, edges: np.ndarray, n0: int, lm: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The face oval (with its edge midpoints) from ear level to the chin, per side."""
    oval = _oval_loop()
    mid = {tuple(e): n0 + i for i, e in enumerate(edges.tolist())}
    ring: list[int] = []
    for i, a in enumerate(oval):
        b = oval[(i + 1) % len(oval)]
        ring += [a, mid[(min(a, b), max(a, b))]]
    chin = ring.index(_CHIN)
    ring = ring[chin:] + ring[:chin]  # starts at the chin
    top_y = 0.5 * (mean[lm[0], 1] + mean[lm[16], 1]) + 10.0  # a little above the ear points
    sides = []
    for direction in (1, -1):
        walk = [ring[0]] + (ring[1:] if direction == 1 else ring[:0:-1])
        side = []
        for v in walk:
            if mean[v, 1] > top_y:
                break
            side.append(v)
        sides.append(np.array(side[::-1], np.int32))  # ear level → chin
    a, b = sides
    return (a, b) if mean[a, 0].mean() < 0 else (b, a)  # subject's right has x < 0


def _learn_texture(train, meshes, loops, tris0, uv0, config, progress):
    """Mean, PCA basis ``[3 T T, K]`` and stds of the photos' UV albedo (step 5)."""
    from deocc_core.recon.texture import pull_push_fill

    t = config.texture_size
    grid = _unwrap_grid(uv0, tris0, t)
    alb = np.zeros((len(train), t, t, 3), np.float16)
    wts = np.zeros((len(train), t, t), np.float16)
    lum = None
    tex_mean = np.full((t, t, 3), 0.5)
    for _round in range(2):
        acc = np.zeros((t, t, 3))
        wsum = np.zeros((t, t))
        for i, ph in enumerate(train):
            try:
                img = read_image(ph.path)
            except Exception:  # noqa: BLE001  (detect_meshes read it; keep going regardless)
                continue
            a, w = unwrap_albedo(img, meshes[str(ph.path)], loops, tris0, grid, lum)
            # small faces are blurry: their weight grows with the eye distance (px)
            eyes = float(
                np.linalg.norm(meshes[str(ph.path)][_EYE_L, :2] - meshes[str(ph.path)][_EYE_R, :2])
            )
            w = w * min(1.0, eyes / 60.0)
            alb[i], wts[i] = a, w
            acc += a * w[..., None]
            wsum += w
            if progress is not None:
                progress(1)
        tex_mean = acc / np.maximum(wsum, 1e-6)[..., None]
        log.info("albedo pass %d done", _round + 1)
        lum = tex_mean @ np.array([0.299, 0.587, 0.114])
    # robust: texels far from the mean (hair, glasses, a hand) are not the face's albedo
    dist = np.abs(alb.astype(np.float32) - tex_mean[None].astype(np.float32)).max(-1)
    wts = (wts.astype(np.float32) * (np.clip(1 - (dist / 0.35) ** 2, 0, 1) ** 2)).astype(np.float16)
    wf = wts.astype(np.float32)
    tex_mean = (alb.astype(np.float32) * wf[..., None]).sum(0) / np.maximum(wf.sum(0), 1e-6)[
        ..., None
    ]
    tex_mean = pull_push_fill(tex_mean, np.minimum(wf.sum(0), 1.0))
    # each photo completed: seen texels, else their mirror (u → 1 - u), else the mean
    rows = np.zeros((len(train), t * t * 3), np.float32)
    used = 0
    for i in range(len(train)):  # float32 rows: 2,300 photos x 49k texels is 450 MB
        w = wf[i]
        if w.sum() < 0.2 * grid.chart.sum():
            continue
        a = alb[i].astype(np.float32)
        wm = w[:, ::-1]
        own = np.clip(w, 0, 1)[..., None]
        mir = (np.clip(wm, 0, 1) * (1 - np.clip(w, 0, 1)))[..., None]
        full = own * a + mir * a[:, ::-1] + (1 - own - mir) * tex_mean
        rows[used] = (full - tex_mean).reshape(-1)
        used += 1
    basis, std = _pca(rows[:used], config.n_albedo)
    return tex_mean, basis, std, used


def labelled_nme(data: str | Path, models: dict) -> dict[str, list[float]]:
    """Landmark-fit NME of models on the shared human-labelled photos.

    Args:
        data: the shared data folder.
        models: ``{name: MorphableModel}``; the starter and (when present) the Surrey model
            are added.

    Returns:
        ``{name: [NME per photo]}`` (:func:`deocc_core.morphable.fit.landmark_nme` of the
        fitted landmark vertices against the labels).
    """
    from deocc_core.landmarks.readers import find_annotation, read_annotation
    from deocc_core.morphable.fit import fit_landmarks
    from deocc_core.morphable.model import load_model

    d = Path(data) / "faces"
    paths = sorted((d / "PRNet_AFLW2000").glob("*.jpg")) + [
        d / "face3d_300WLP" / "IBUG_image_008_1_0.jpg",
        d / "eos_examples" / "image_0010.png",
    ]
    all_models = {"deocc-starter": load_model("starter")}
    sfm = Path(data) / "3dmm" / "eos_sfm" / "share" / "sfm_shape_3448.bin"
    if sfm.is_file():
        all_models["Surrey (sfm_shape_3448)"] = load_model(sfm)
    all_models.update(models)
    out: dict[str, list[float]] = {name: [] for name in all_models}
    for p in paths:
        if not p.is_file():
            continue
        lm = read_annotation(find_annotation(p))
        for name, m in all_models.items():
            out[name].append(float(fit_landmarks(m, lm).nme))
    return out
