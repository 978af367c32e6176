"""The morphable model: one in-memory format (the .npz of DESIGN.md) and its loaders.

Loaders turn the real formats users have into a :class:`MorphableModel`:

- our ``.npz`` (and ``"starter"``, the embedded demo model, and ``"deocc-face"``, deocc's
  own face model learned from real photos, ``assets/deocc_face.npz``);
- the Surrey Face Model (eos cereal ``.bin``, read through ``eos-py``) with its
  expression blendshapes, ``ibug_to_sfm.txt`` and ``sfm_model_contours.json`` found
  beside it;
- BFM2009 ``01_MorphableModel.mat`` (+ 3DDFA ``Exp_Pca.bin`` expression basis and the
  no-neck crop ``indices.npy`` when given / found beside it);
- Deep3DFaceRecon ``BFM_model_front.mat`` (BFM id 80 + 64 expression + albedo: the
  paper's configuration);
- 3DDFA_V2 ``bfm_noneck_v3.pkl`` (+ ``tri.pkl``), and 3DDFA ``train.configs`` folders
  (mean shape ``u_shp.npy`` + ``u_exp.npy`` with ``w_shp_sim.npy``/``w_exp_sim.npy``
  bases when present, ``keypoints_sim.npy`` landmarks, ``tri.mat``);
- 3DDFA ``c++/weights`` (``u_base.txt``, ``w_shp_base.txt``, ``w_exp_base.txt``): the BFM
  restricted to the 68 landmarks, a mesh-less model for fitting only.

Conversions (one place to check them):
    - SFM: orthonormal basis kept, ``id_std = sqrt(eigenvalue)`` (eos stores variances; its
      ``get_rescaled_pca_basis`` is basis * sqrt(eigenvalue)); the 6 expression blendshapes
      are kept as raw deformations (coefficient 1 = the full expression) with std 0.5;
      ``ibug_to_sfm.txt`` lhs is 1-based iBUG, rhs 0-based vertex; the 16 unmapped jaw
      points come from ``sfm_model_contours.json``; inner mouth corners 60/64 reuse 48/54.
    - BFM (all variants): micrometres → mm (x 1e-3); ``shapeEV``/``texEV`` are stds;
      ``tl``/``tri.mat`` are 1-based and clockwise, 3DDFA_V2 ``tri.pkl`` 0-based ``[3, T]`` and
      clockwise: all flipped to counter-clockwise (checked on the real files); 3DDFA
      keypoints index the flat xyz array (vertex = k // 3); Exp_Pca.bin is C-order
      ``[n, 3V]`` (see :func:`_read_exp_pca`); 53,490 → 53,215 via ``BFM_exp_idx.mat``.
    - Deep3DFaceRecon: decimetres → mm (x 100), bases carry the std (split into unit
      columns + norms), ``tri`` and ``keypoints`` 1-based.
    - Scaled bases (3DDFA ``w_*``): unit columns, std = column norm.

Convention:
    Vertices are model space, y up, z toward the viewer. Bases are xyz-interleaved per
    vertex (row ``3*i + k`` is coordinate k of vertex i); coefficients multiply the basis
    columns directly and their prior scale is ``id_std`` / ``exp_std``.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import pickle
import re
import zipfile
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from importlib.resources import files
from pathlib import Path

import numpy as np
import numpy.typing as npt

from deocc_core.check import check_array
from deocc_core.errors import FormatError, InputError

__all__ = [
    "MorphableModel",
    "load_model",
    "starter_model_path",
    "face_model_path",
    "BUILTIN_MODELS",
    "save_npz_deterministic",
    "load_array_pickle",
    "FORMAT_VERSION",
]

log = logging.getLogger(__name__)
FORMAT_VERSION = 1
UM_TO_MM = np.float32(1e-3)  # BFM files are in micrometres
F32 = npt.NDArray[np.float32]
I32 = npt.NDArray[np.int32]


@dataclass(frozen=True, eq=False)
class MorphableModel:
    """A linear 3D morphable model with 68 iBUG landmark vertices.

    Attributes:
        mean: ``[V, 3]`` float32 mean shape (neutral expression), model units.
        id_basis: ``[3V, Kid]`` float32 identity basis; ``id_std`` ``[Kid]`` its prior std.
        exp_basis: ``[3V, Kexp]`` float32 expression basis (``Kexp`` may be 0); ``exp_std``.
        triangles: ``[T, 3]`` int32 vertex ids, counter-clockwise seen from the front.
        landmarks68: ``[68]`` int32 vertex ids in iBUG order.
        contour_right, contour_left: ``[k]`` int32 outline vertex ids (ear level → chin)
            the fitter slides jaw landmarks 0-7 / 9-16 along on turned faces; may be empty.
        albedo_mean: ``[V, 3]`` float32 in [0, 1] or None; ``albedo_basis`` ``[3V, Ka]``,
            ``albedo_std`` ``[Ka]``.
        uv: ``[V, 2]`` float32 texture coordinates in [0, 1], v up, or None.
        symmetry: ``[V]`` int32 each vertex's left-right mirror partner, or None.
        texture_mean: ``[T, T, 3]`` float32 albedo map in [0, 1] over ``uv`` (row 0 is
            v = 1), or None; ``texture_basis`` ``[3 T T, Kt]`` (rows in the map's
            row-major [T, T, 3] order; stored as float16 in the .npz), ``texture_std``
            ``[Kt]``. The per-vertex ``albedo_*`` of such a model are these maps at ``uv``.
        id_names, exp_names: mode names (may be empty).
        name, source, license, units: metadata.
    """

    mean: F32
    id_basis: F32
    id_std: F32
    exp_basis: F32
    exp_std: F32
    triangles: I32
    landmarks68: I32
    contour_right: I32 = field(default_factory=lambda: np.zeros(0, np.int32))
    contour_left: I32 = field(default_factory=lambda: np.zeros(0, np.int32))
    albedo_mean: F32 | None = None
    albedo_basis: F32 | None = None
    albedo_std: F32 | None = None
    uv: F32 | None = None
    symmetry: I32 | None = None
    texture_mean: F32 | None = None
    texture_basis: F32 | None = None
    texture_std: F32 | None = None
    id_names: tuple[str, ...] = ()
    exp_names: tuple[str, ...] = ()
    name: str = "unnamed"
    source: str = ""
    license: str = ""
    units: str = "mm"

    def __post_init__(self) -> None:
        v = self.mean.shape[0] if self.mean.ndim == 2 else -1
        check_array(self.mean, f"{self.name}: mean", (v, 3), np.float32)
        check_array(
            self.id_basis, f"{self.name}: id_basis", (3 * v, self.id_basis.shape[1]), np.float32
        )
        check_array(self.id_std, f"{self.name}: id_std", (self.id_basis.shape[1],), np.float32)
        check_array(
            self.exp_basis, f"{self.name}: exp_basis", (3 * v, self.exp_basis.shape[1]), np.float32
        )
        check_array(self.exp_std, f"{self.name}: exp_std", (self.exp_basis.shape[1],), np.float32)
        check_array(self.triangles, f"{self.name}: triangles", (None, 3), np.int32)
        check_array(self.landmarks68, f"{self.name}: landmarks68", (68,), np.int32)
        for ids in (self.triangles, self.landmarks68, self.contour_right, self.contour_left):
            if ids.size and (ids.min() < 0 or ids.max() >= v):
                raise FormatError(f"{self.name}: vertex ids out of range [0, {v})")
        if self.albedo_mean is not None:
            check_array(self.albedo_mean, f"{self.name}: albedo_mean", (v, 3), np.float32)
        if self.uv is not None:
            check_array(self.uv, f"{self.name}: uv", (v, 2), np.float32)
        if self.symmetry is not None:
            check_array(self.symmetry, f"{self.name}: symmetry", (v,), np.int32)
            if self.symmetry.min() < 0 or self.symmetry.max() >= v:
                raise FormatError(f"{self.name}: symmetry ids out of range [0, {v})")
        if self.texture_mean is not None:
            t = self.texture_mean.shape[0]
            check_array(self.texture_mean, f"{self.name}: texture_mean", (t, t, 3), np.float32)
            if self.uv is None:
                raise FormatError(f"{self.name}: a texture model needs texture coordinates (uv)")
            if self.texture_basis is not None:
                k = self.texture_basis.shape[1]
                check_array(
                    self.texture_basis, f"{self.name}: texture_basis", (3 * t * t, k), np.float32
                )

    @property
    def n_vertices(self) -> int:
        """V, the number of vertices."""
        return int(self.mean.shape[0])

    @property
    def n_id(self) -> int:
        """Kid, the number of identity modes."""
        return int(self.id_basis.shape[1])

    @property
    def n_exp(self) -> int:
        """Kexp, the number of expression modes (may be 0)."""
        return int(self.exp_basis.shape[1])

    @property
    def has_albedo(self) -> bool:
        """Whether the model has a colour (albedo) model."""
        return self.albedo_mean is not None

    def vertices(
        self, id_coef: npt.ArrayLike | None = None, exp_coef: npt.ArrayLike | None = None
    ) -> F32:
        """Shape for the given coefficients (zeros when None).

        Returns:
            ``[V, 3]`` float32, model units.

        Example:
            >>> m = load_model("starter")
            >>> m.vertices().shape == (m.n_vertices, 3)
            True
        """
        coefs = []
        for name, basis, coef in (
            ("id_coef", self.id_basis, id_coef),
            ("exp_coef", self.exp_basis, exp_coef),
        ):
            c = None
            if coef is not None:
                c = check_array(np.asarray(coef), name, (basis.shape[1],)).astype(np.float32)
            coefs.append(c)
        # one face's render, light estimate and occluder geometry ask for the same shape:
        # the last result is kept (a copy is returned, so callers may modify theirs)
        key = tuple(None if c is None else c.tobytes() for c in coefs)
        last = self.__dict__.get("_last_vertices")
        if last is not None and last[0] == key:
            return last[1].copy()
        flat = self.mean.reshape(-1).astype(np.float32, copy=True)
        for name, c in zip(("id", "exp"), coefs, strict=True):
            if c is None:
                continue
            # trailing zero coefficients (modes a fit leaves out) are skipped: the product is
            # memory-bound, and the BFM's 199 x 160k basis is 127 MB
            nz = np.flatnonzero(c)
            used = int(nz[-1]) + 1 if nz.size else 0
            if used:
                flat += self._basis_columns(name, used) @ c[:used]
        out = flat.reshape(-1, 3)
        self.__dict__["_last_vertices"] = (key, out)
        return out.copy()

    def _basis_columns(self, name: str, used: int) -> F32:
        """The leading ``used`` columns of the ``"id"`` / ``"exp"`` basis, contiguous.

        A column slice of a row-major basis is strided: the product then reads most of the
        full basis (BFM: 127 MB, 2.3x the time of the contiguous columns). For large bases
        (over :data:`CONTIGUOUS_COLUMNS_BYTES`) the contiguous copy is cached per (basis,
        used) for the model's lifetime (a fit keeps the same leading modes on every face).
        BLAS may round the two layouts differently (float32, ~1e-5 mm), so small bases keep
        the strided product: their results stay bit-identical to earlier builds.
        """
        basis = self.id_basis if name == "id" else self.exp_basis
        if used == basis.shape[1] or basis.nbytes <= CONTIGUOUS_COLUMNS_BYTES:
            return basis[:, :used]
        cache = self.__dict__.setdefault("_basis_columns_cache", {})
        cols = cache.get((name, used))
        if cols is None:
            if len(cache) >= 4:  # a few mode counts at most; never grow without bound
                cache.pop(next(iter(cache)))
            cols = cache[(name, used)] = np.ascontiguousarray(basis[:, :used])
        return cols

    def vertex_basis(self, ids: npt.ArrayLike) -> tuple[F32, F32]:
        """Mean and stacked [id | exp] basis restricted to some vertices (landmarks, contours).

        Returns:
            ``([n, 3] float32, [n, 3, Kid + Kexp] float32)``.

        Example:
            >>> m = load_model("starter")
            >>> mean, basis = m.vertex_basis(m.landmarks68)
            >>> mean.shape, basis.shape == (68, 3, m.n_id + m.n_exp)
            ((68, 3), True)
        """
        ids = np.asarray(ids, np.int64)
        rows = (3 * ids[:, None] + np.arange(3)[None]).reshape(-1)
        basis = np.concatenate([self.id_basis[rows], self.exp_basis[rows]], 1)
        return self.mean[ids], basis.reshape(ids.size, 3, -1)

    def albedo(self, coef: npt.ArrayLike | None = None) -> F32 | None:
        """Per-vertex colour ``[V, 3]`` float32 in [0, 1], or None without a colour model."""
        if self.albedo_mean is None:
            return None
        a = self.albedo_mean.reshape(-1).astype(np.float32, copy=True)
        if coef is not None and self.albedo_basis is not None:
            a += self.albedo_basis @ np.asarray(coef, np.float32)
        return np.clip(a.reshape(-1, 3), 0.0, 1.0)

    def with_landmarks(self, landmarks68: npt.ArrayLike) -> MorphableModel:
        """Copy with another 68-landmark vertex map."""
        return replace(self, landmarks68=np.asarray(landmarks68, np.int32))

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The .npz content (DESIGN.md keys)."""
        out: dict[str, np.ndarray] = {"format_version": np.array(FORMAT_VERSION, np.int32)}
        for f in fields(self):
            val = getattr(self, f.name)
            if val is None:
                continue
            if f.name.endswith("_names"):
                val = np.array(list(val), dtype="U")
            elif f.name == "texture_basis":  # half the bytes; loads back as float32
                val = np.asarray(val, np.float16)
            out[f.name] = np.asarray(val)
        return out

    def save(self, path: str | Path) -> Path:
        """Write the .npz (byte-deterministic: fixed zip timestamps, sorted keys)."""
        return save_npz_deterministic(path, self.to_arrays())

    @cached_property
    def sha256(self) -> str:
        """Hash of the saved content (identifies the model in shards and checkpoints).

        Covers every .npz array (geometry, bases, priors, albedo, landmarks, contours, names,
        licence) with its dtype and shape, except ``source`` (where it was loaded from), so
        it is stable across save → load and across copies of the same model.

        Example:
            >>> m = load_model("starter")
            >>> m.sha256 == m.with_landmarks(m.landmarks68).sha256, len(m.sha256)
            (True, 64)
        """
        h = hashlib.sha256()
        for key, arr in sorted(self.to_arrays().items()):
            if key == "source":
                continue
            arr = np.ascontiguousarray(arr)
            h.update(f"{key}|{arr.dtype.str}|{arr.shape}|".encode())
            h.update(arr.tobytes())
        return h.hexdigest()


#: bases larger than this multiply with a cached contiguous copy of their used columns
CONTIGUOUS_COLUMNS_BYTES = 32 << 20


def save_npz_deterministic(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """Like ``np.savez_compressed``, with fixed zip timestamps and sorted keys.

    Same arrays, same bytes.
    """
    path = Path(path)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asanyarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue())
    return path


def _asset(name: str) -> Path:
    local = Path(__file__).resolve().parents[2] / "assets" / name
    if local.is_file():  # source checkout / editable install
        return local
    return Path(str(files("deocc_assets") / name))  # wheel install


def starter_model_path() -> Path:
    """Path of the embedded starter model (``assets/starter_model.npz``)."""
    return _asset("starter_model.npz")


def face_model_path() -> Path:
    """Path of deocc's own face model (``assets/deocc_face.npz``, ``tools/make_face_model.py``)."""
    return _asset("deocc_face.npz")


#: the model names ``load_model`` (and every ``--model``) takes besides a path
BUILTIN_MODELS = {"starter": starter_model_path, "deocc-face": face_model_path}


def load_model(path: str | Path, landmarks_index: str | Path | None = None) -> MorphableModel:
    """Load any supported model format (see module docstring) into a :class:`MorphableModel`.

    Args:
        path: a model file or folder, or a built-in name: ``"starter"`` (the demo head) or
            ``"deocc-face"`` (deocc's face model learned from real photos).
        landmarks_index: optional text file of 68 vertex ids (0-based, one per line or
            whitespace separated, iBUG order) for models that lack them.

    Raises:
        InputError: missing file. FormatError: unknown/broken format or no 68 landmarks.

    Example:
        >>> m = load_model("starter")
        >>> m.name, m.n_id >= 10, m.n_exp >= 10, m.has_albedo
        ('deocc-starter', True, True, True)
    """
    p = BUILTIN_MODELS[str(path)]() if str(path) in BUILTIN_MODELS else Path(path)
    if not p.exists():
        raise InputError(f"{p}: model file not found")
    lm = _read_index(Path(landmarks_index)) if landmarks_index is not None else None
    try:
        if p.is_dir():
            model = _load_dir(p, lm)
        elif p.suffix == ".npz":
            model = _load_npz(p, lm)
        elif p.suffix == ".bin":
            model = _load_sfm(p, lm)
        elif p.suffix == ".mat":
            model = _load_bfm_mat(p, lm)
        elif p.suffix == ".pkl":
            model = _load_3ddfa_pkl(p, lm)
        else:
            raise FormatError(
                f"{p}: unknown model format '{p.suffix}' "
                "(expected .npz, .bin, .mat, .pkl or a 3DDFA folder)"
            )
    except FormatError:
        raise
    except _DAMAGED as e:  # what numpy, scipy, h5py and eos raise on damaged or foreign files
        msg = str(e).splitlines()[0][:120] if str(e) else ""
        raise FormatError(f"{p}: not a readable morphable model ({type(e).__name__}: {msg})") from e
    if lm is not None:
        model = model.with_landmarks(lm)
    log.debug(
        "loaded %s: %d vertices, %d id, %d exp modes", p, model.n_vertices, model.n_id, model.n_exp
    )
    return model


_DAMAGED = (
    KeyError,
    ValueError,
    OSError,
    EOFError,
    IndexError,
    TypeError,
    AttributeError,
    RuntimeError,
    MemoryError,
    NotImplementedError,
    pickle.UnpicklingError,
    zipfile.BadZipFile,
)


def _read_index(path: Path) -> I32:
    if not path.is_file():
        raise InputError(f"{path}: landmark index file not found")
    text = "\n".join(
        line.split("#", 1)[0] for line in path.read_text().splitlines()
    )  # '#' starts a comment
    try:
        ids = np.array(text.split(), dtype=np.int64)
    except ValueError:
        raise FormatError(
            f"{path}: landmark index file must hold integer vertex ids ('#' comments allowed)"
        ) from None
    if ids.size != 68:
        raise FormatError(f"{path}: expected 68 vertex ids, found {ids.size}")
    return ids.astype(np.int32)


def _no_landmarks(p: Path) -> FormatError:
    return FormatError(
        f"{p}: model has no 68 iBUG landmark vertex ids; "
        "pass --landmarks-index FILE (68 vertex ids)"
    )


def _load_npz(p: Path, lm: I32 | None = None) -> MorphableModel:
    with np.load(p, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    version = int(d.pop("format_version", 0))
    if version != FORMAT_VERSION:
        raise FormatError(f"{p}: model format version {version}, this deocc reads {FORMAT_VERSION}")
    if "landmarks68" not in d:
        if lm is None:
            raise _no_landmarks(p)
        d["landmarks68"] = lm
    kw: dict = {}
    for f in fields(MorphableModel):
        if f.name not in d:
            continue
        v = d[f.name]
        if f.name.endswith("_names"):
            kw[f.name] = tuple(str(s) for s in v)
        elif v.dtype.kind == "U":
            kw[f.name] = str(v)
        elif v.dtype.kind in "iu":
            kw[f.name] = v.astype(np.int32)
        else:
            kw[f.name] = v.astype(np.float32)
    return MorphableModel(**kw)


def _check_cereal(p: Path, what: str, count_bytes: int, most: int) -> None:
    """Refuse a file that cannot be an eos cereal archive before eos reads it.

    eos trusts the sizes in the file: garbage makes it allocate without bound or crash. The
    archive starts with a version (``count_bytes`` = 4: shape model) or an item count (8:
    blendshapes) that real files keep small.
    """
    with open(p, "rb") as f:
        head = f.read(16)
    if len(head) < 16:
        raise FormatError(f"{p}: not a {what} (only {len(head)} bytes)")
    first = int.from_bytes(head[:count_bytes], "little")
    if not 0 < first <= most:
        raise FormatError(f"{p}: not a {what} (header {first} is not a cereal archive's)")


def _load_sfm(p: Path, lm: I32 | None) -> MorphableModel:
    import eos  # imported lazily: only this loader needs it

    _check_cereal(p, "Surrey Face Model .bin", 4, 16)
    m = eos.morphablemodel.load_model(str(p))
    shape = m.get_shape_model()
    mean = np.asarray(shape.get_mean(), np.float32).reshape(-1, 3)
    basis = np.asarray(shape.get_orthonormal_pca_basis(), np.float32)
    std = np.sqrt(np.maximum(np.asarray(shape.get_eigenvalues(), np.float32), 0))
    tris = np.asarray(shape.get_triangle_list(), np.int32)
    exp_basis = np.zeros((basis.shape[0], 0), np.float32)
    exp_names: tuple[str, ...] = ()
    blend_files = sorted(p.parent.glob("expression_blendshapes_*.bin"))
    if blend_files:
        _check_cereal(blend_files[0], "eos blendshapes .bin", 8, 10_000)
        shapes = eos.morphablemodel.load_blendshapes(str(blend_files[0]))
        cols = [np.asarray(b.deformation, np.float32) for b in shapes]
        exp_names = tuple(b.name for b in shapes)
        exp_basis = np.stack(cols, 1)
    # blendshapes are full deformations: unit coefficient = the whole expression
    exp_std = np.full(exp_basis.shape[1], 0.5, np.float32)
    contours = [np.zeros(0, np.int32)] * 2
    contour_file = p.parent / "sfm_model_contours.json"
    if contour_file.is_file():
        c = json.loads(contour_file.read_text())["model_contour"]
        # contour lists run from the top (ear level) to the chin
        contours = [np.array(c["right_contour"], np.int32), np.array(c["left_contour"], np.int32)]
    if lm is None:
        lm = _sfm_landmarks(p.parent / "ibug_to_sfm.txt", contours, p)
    return MorphableModel(
        mean,
        basis,
        std,
        exp_basis,
        exp_std,
        tris,
        lm,
        contours[0],
        contours[1],
        exp_names=exp_names,
        name=p.stem,
        source=str(p),
        license="Surrey Face Model: non-commercial",
        units="mm",
    )


def _sfm_landmarks(mapping: Path, contours: list[I32], p: Path) -> I32:
    """iBUG→SFM map (52 points) completed on the jaw by the contour lists."""
    if not mapping.is_file():
        raise _no_landmarks(p)
    lm = -np.ones(68, np.int64)
    for a, b in re.findall(r"^\s*(\d+)\s*=\s*(\d+)", mapping.read_text(), re.M):
        lm[int(a) - 1] = int(b)
    right, left = contours
    if (lm < 0).any() and right.size >= 8 and left.size >= 8:
        # jaw 0-7 on the subject's right contour (top → chin), 9-16 on the left (chin → top)
        idx_r = np.linspace(0, right.size - 1, 9).round().astype(int)[:8]
        idx_l = np.linspace(0, left.size - 1, 9).round().astype(int)[:8]
        lm[:8] = np.where(lm[:8] < 0, right[idx_r], lm[:8])
        lm[9:17] = np.where(lm[9:17] < 0, left[idx_l][::-1], lm[9:17])
    for inner, outer in ((60, 48), (64, 54)):  # SFM leaves the inner mouth corners out
        if lm[inner] < 0:
            lm[inner] = lm[outer]
    if (lm < 0).any():
        raise FormatError(
            f"{mapping}: maps only {(lm >= 0).sum()} of 68 landmarks "
            "and no contour file completes them"
        )
    return lm.astype(np.int32)


def _unit_columns(w: np.ndarray) -> tuple[F32, F32]:
    """Split a scaled basis ``[3V, K]`` into unit-norm columns and their norms (the prior std)."""
    n = np.linalg.norm(w, axis=0)
    return (w / np.maximum(n, 1e-12)).astype(np.float32), n.astype(np.float32)


def _mat(p: Path) -> dict:
    from scipy.io import loadmat

    try:
        return loadmat(str(p))
    except NotImplementedError:  # MATLAB v7.3 = HDF5
        import h5py

        with h5py.File(p, "r") as f:
            return {k: np.asarray(f[k]).T for k in f.keys() if isinstance(f[k], h5py.Dataset)}


def _bfm_keypoints(p: Path, n_vertices: int) -> I32 | None:
    """68 BFM landmark vertex ids from a 3DDFA ``keypoints_sim.npy`` beside the file."""
    for cand in (p.parent / "keypoints_sim.npy", p.parent / "train.configs" / "keypoints_sim.npy"):
        if cand.is_file():
            k = np.load(cand)
            ids = (k.reshape(-1)[::3] // 3).astype(np.int32)
            if ids.size == 68 and ids.max() < n_vertices:
                return ids
    return None


def _load_bfm_mat(p: Path, lm: I32 | None) -> MorphableModel:
    d = _mat(p)
    if "meanshape" in d and "idBase" in d:  # Deep3DFaceRecon BFM_model_front.mat
        # Deep3DFaceRecon stores BFM micrometres / 1e5 (decimetres): x100 gives mm. Its bases
        # carry the PCA std (coefficients ~ N(0, 1)); we store unit columns and std = the norm.
        dm_to_mm = 100.0
        mean = np.asarray(d["meanshape"], np.float32).reshape(-1, 3) * dm_to_mm
        id_basis, id_std = _unit_columns(np.asarray(d["idBase"], np.float64) * dm_to_mm)
        exp_basis, exp_std = _unit_columns(np.asarray(d["exBase"], np.float64) * dm_to_mm)
        kw = dict(
            albedo_mean=np.clip(np.asarray(d["meantex"], np.float32).reshape(-1, 3) / 255.0, 0, 1),
            albedo_basis=np.asarray(d["texBase"], np.float32) / 255.0,
            albedo_std=np.ones(d["texBase"].shape[1], np.float32),
        )
        tris = np.asarray(d["tri"], np.int64) - 1
        if lm is None and "keypoints" in d:
            lm = (np.asarray(d["keypoints"], np.int64).reshape(-1) - 1).astype(np.int32)
        name = "bfm-front"
        units = "mm"
    elif "shapeMU" in d and "shapePC" in d:  # BFM2009 01_MorphableModel.mat
        # BFM2009 is in micrometres; we keep millimetres everywhere
        mean = np.asarray(d["shapeMU"], np.float32).reshape(-1, 3) * UM_TO_MM
        id_basis = np.asarray(d["shapePC"], np.float32)
        id_std = np.asarray(d["shapeEV"], np.float32).reshape(-1) * UM_TO_MM
        kw = {}
        if "texMU" in d:
            kw = dict(
                albedo_mean=np.clip(
                    np.asarray(d["texMU"], np.float32).reshape(-1, 3) / 255.0, 0, 1
                ),
                albedo_basis=np.asarray(d["texPC"], np.float32) / 255.0,
                albedo_std=np.asarray(d["texEV"], np.float32).reshape(-1),
            )
        tris = (
            np.asarray(d["tl"], np.int64)[:, ::-1] - 1
        )  # 1-based; BFM winds clockwise seen from the front
        return _bfm2009_with_expressions(p, mean, id_basis, id_std, tris, lm, kw)
    else:
        raise FormatError(
            f"{p}: .mat is neither BFM2009 (shapeMU/shapePC) nor Deep3DFaceRecon (meanshape/idBase)"
        )
    if lm is None:
        raise _no_landmarks(p)
    return MorphableModel(
        mean,
        id_basis,
        id_std,
        exp_basis,
        exp_std,
        tris.astype(np.int32),
        np.asarray(lm, np.int32),
        name=name,
        source=str(p),
        license="Basel Face Model: academic use",
        units=units,
        **kw,
    )


def _bfm2009_with_expressions(
    p: Path, mean: F32, id_basis: F32, id_std: F32, tris: np.ndarray, lm: I32 | None, kw: dict
) -> MorphableModel:
    """BFM2009 (53,490 vertices) + the 3DDFA/Guo et al. expression basis found beside it.

    ``Exp_Pca.bin`` covers the 53,215-vertex trimmed BFM, so when it is present the model is
    first restricted with ``BFM_exp_idx.mat`` (``trimIndex``, 1-based ids into the 53,490);
    3DDFA ``keypoints_sim.npy`` landmarks and the no-neck ``indices.npy`` (38,365 ids) live in
    that trimmed space too and are applied after it.
    """
    n_vertices = mean.shape[0]
    empty = (np.zeros((3 * n_vertices, 0), np.float32), np.zeros(0, np.float32))
    model = MorphableModel(
        mean,
        id_basis,
        id_std,
        *empty,
        tris.astype(np.int32),
        np.zeros(68, np.int32),  # landmarks set below
        name="bfm2009",
        source=str(p),
        license="Basel Face Model: academic use",
        units="mm",
        **kw,
    )
    exp = _read_exp_pca(p.parent / "Exp_Pca.bin") if (p.parent / "Exp_Pca.bin").is_file() else None
    trim_file = p.parent / "BFM_exp_idx.mat"
    trimmed = False
    if exp is not None and exp[0].shape[0] != 3 * n_vertices or exp is None and trim_file.is_file():
        if not trim_file.is_file():
            raise FormatError(
                f"{p.parent / 'Exp_Pca.bin'}: expression basis has {exp[0].shape[0] // 3} "
                f"vertices, the model {n_vertices}; "
                "put BFM_exp_idx.mat (trimIndex) beside the model"
            )
        keep = (
            np.asarray(_mat(trim_file)["trimIndex"], np.int64).reshape(-1) - 1
        )  # 1-based → 0-based
        model, trimmed = _crop(model, keep, placeholder_landmarks=True), True
    if exp is not None:
        basis, std = exp
        if basis.shape[0] != 3 * model.n_vertices:
            raise FormatError(
                f"{p.parent / 'Exp_Pca.bin'}: {basis.shape[0] // 3} vertices, "
                f"trimmed model has {model.n_vertices}"
            )
        model = replace(model, exp_basis=basis, exp_std=std)
    if lm is None:  # 3DDFA keypoints index the 53,215-vertex (trimmed) BFM only
        found = (
            _bfm_keypoints(p, model.n_vertices) if trimmed or model.n_vertices == 53215 else None
        )
        if found is None:
            raise _no_landmarks(p)
        model = model.with_landmarks(found)
    crop = p.parent / "indices.npy"
    if crop.is_file() and (trimmed or model.n_vertices == 53215):
        keep = np.load(crop).astype(np.int64).reshape(-1)
        if keep.max() < model.n_vertices:
            model = _crop(model, keep, placeholder_landmarks=lm is not None)
    # a user --landmarks-index (lm) refers to this final vertex set: load_model applies it
    return model


def _read_exp_pca(f: Path) -> tuple[F32, F32]:
    """3DDFA / Guo et al. ``Exp_Pca.bin``: int32 n, float32 mean ``[3V]``, basis ``[n, 3V]``.

    Layout as read by Deep3DFaceRecon's ``LoadExpBasis`` (little-endian, C order: the n rows
    are the modes, each xyz-interleaved per vertex); V follows from the file size. Units are
    the BFM's micrometres. The per-mode std is ``std_exp.txt`` beside it when present (its
    ``expEV``), times the column norm; columns are stored with unit norm here.

    Returns:
        ``([3V, n] float32 unit columns, [n] float32 std in mm)``.
    """
    raw = f.read_bytes()
    n = int(np.frombuffer(raw[:4], "<i4")[0])
    body = np.frombuffer(raw[4:], "<f4")
    if n <= 0 or body.size % (n + 1):
        raise FormatError(
            f"{f}: {body.size} floats after the header do not split into a mean and {n} modes"
        )
    v3 = body.size // (n + 1)
    basis = body[v3:].reshape(n, v3).T.astype(np.float64)  # skip the (all-zero) mean offset
    norms = np.linalg.norm(basis, axis=0)
    ev = f.parent / "std_exp.txt"
    scale = np.loadtxt(ev, dtype=np.float64).reshape(-1)[:n] if ev.is_file() else np.ones(n)
    std = norms * scale * float(UM_TO_MM)
    return (basis / np.maximum(norms, 1e-12)).astype(np.float32), std.astype(np.float32)


def _crop(
    model: MorphableModel, keep: np.ndarray, placeholder_landmarks: bool = False
) -> MorphableModel:
    """Restrict to a vertex subset (e.g. the 3DDFA no-neck indices); drops cut triangles.

    With ``placeholder_landmarks`` the landmark ids are not real yet (set later) and may be cut.
    """
    remap = -np.ones(model.n_vertices, np.int64)
    remap[keep] = np.arange(keep.size)
    rows = (3 * keep[:, None] + np.arange(3)).reshape(-1)
    tris = remap[model.triangles]
    tris = tris[(tris >= 0).all(1)]
    lm = remap[model.landmarks68]
    if placeholder_landmarks:
        lm = np.maximum(lm, 0)
    if (lm < 0).any():
        raise FormatError(f"{model.source}: crop removes landmark vertices")
    alb = {}
    if model.albedo_mean is not None:
        alb = dict(
            albedo_mean=model.albedo_mean[keep],
            albedo_basis=model.albedo_basis[rows],
            albedo_std=model.albedo_std,
        )
    return replace(
        model,
        mean=model.mean[keep],
        id_basis=model.id_basis[rows],
        exp_basis=model.exp_basis[rows],
        triangles=tris.astype(np.int32),
        landmarks68=lm.astype(np.int32),
        contour_right=_kept(remap, model.contour_right),
        contour_left=_kept(remap, model.contour_left),
        **alb,
    )


def _kept(remap: np.ndarray, ids: I32) -> I32:
    new = remap[ids]
    return new[new >= 0].astype(np.int32)


# what a model pickle may build: numpy arrays, dtypes and scalars, plain containers
_PICKLE_ALLOWED = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # bytes in Python 2 pickles
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "complex"),
        ("__builtin__", "set"),
        ("__builtin__", "frozenset"),
        ("__builtin__", "complex"),
    }
)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and plain containers only; anything else is refused unrun."""

    def __init__(self, f, path: Path) -> None:
        super().__init__(f)
        self.path = path

    def find_class(self, module: str, name: str):  # noqa: D102
        if (module, name) not in _PICKLE_ALLOWED:
            raise FormatError(
                f"{self.path}: refused: the pickle asks for {module}.{name}; model pickles may "
                "hold only numpy arrays and plain containers"
            )
        if (module, name) == ("numpy", "dtype"):
            return self._plain_dtype
        return super().find_class(module, name)

    def _plain_dtype(self, *args, **kwargs) -> np.dtype:
        """``numpy.dtype``, refusing object dtypes (their items are pickles)."""
        d = np.dtype(*args, **kwargs)
        if d.hasobject:
            raise FormatError(f"{self.path}: refused: object arrays are not loaded from pickles")
        return d


def load_array_pickle(path: str | Path):
    """Read a pickle of numpy arrays and plain containers (dict, list, tuple, str, numbers).

    Nothing in the file can run code: any other global it names is refused before it is
    called (``FormatError``), as are object arrays.

    Example:
        >>> import tempfile, os, pickle
        >>> p = os.path.join(tempfile.mkdtemp(), "a.pkl")
        >>> _ = open(p, "wb").write(pickle.dumps({"u": np.arange(3.0)}))
        >>> load_array_pickle(p)["u"].tolist()
        [0.0, 1.0, 2.0]
        >>> _ = open(p, "wb").write(pickle.dumps(os.system))
        >>> load_array_pickle(p)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        deocc_core.errors.FormatError: ...: refused: the pickle asks for posix.system; ...
    """
    path = Path(path)
    with open(path, "rb") as f:
        return _ArrayUnpickler(f, path).load()


def _load_3ddfa_pkl(p: Path, lm: I32 | None) -> MorphableModel:
    d = load_array_pickle(p)
    if not isinstance(d, dict) or "u" not in d or "w_shp" not in d:
        raise FormatError(
            f"{p}: not a 3DDFA_V2 bfm pickle (needs keys u, w_shp, w_exp, tri, keypoints)"
        )
    mean = np.asarray(d["u"], np.float32).reshape(-1, 3) * UM_TO_MM
    w_shp = np.asarray(d["w_shp"], np.float32) * UM_TO_MM
    w_exp = np.asarray(d["w_exp"], np.float32) * UM_TO_MM
    tri = d.get("tri")
    if tri is None and (p.parent / "tri.pkl").is_file():
        tri = load_array_pickle(p.parent / "tri.pkl")
    if tri is None:
        raise FormatError(f"{p}: no triangles (put 3DDFA_V2 tri.pkl beside it)")
    tri = np.asarray(tri, np.int64)
    tri = tri.T if tri.shape[0] == 3 else tri  # tri.pkl is stored [3, T]
    tri = tri[
        :, ::-1
    ]  # 0-based, but clockwise seen from the front (94 % of the real tri.pkl): flip
    if lm is None and "keypoints" in d:
        lm = (np.asarray(d["keypoints"]).reshape(-1)[::3] // 3).astype(np.int32)
    if lm is None:
        raise _no_landmarks(p)
    id_n, ex_n = np.linalg.norm(w_shp, axis=0), np.linalg.norm(w_exp, axis=0)
    return MorphableModel(
        mean,
        w_shp / np.maximum(id_n, 1e-12),
        id_n.astype(np.float32),
        w_exp / np.maximum(ex_n, 1e-12),
        ex_n.astype(np.float32),
        tri.astype(np.int32),
        lm,
        name="bfm-noneck-3ddfa",
        source=str(p),
        license="Basel Face Model: academic use",
        units="mm",
    )


def _load_landmark_basis(p: Path) -> MorphableModel:
    """3DDFA ``c++/weights``: the BFM restricted to the 68 landmarks (no mesh; fitting only)."""
    u = np.loadtxt(p / "u_base.txt", dtype=np.float32).reshape(-1) * UM_TO_MM
    bases = []
    for name in ("w_shp_base.txt", "w_exp_base.txt"):
        w = np.loadtxt(p / name, dtype=np.float32).reshape(u.size, -1) * UM_TO_MM
        n = np.linalg.norm(w, axis=0)
        bases += [w / np.maximum(n, 1e-12), n.astype(np.float32)]
    if u.size != 204:
        raise FormatError(f"{p}: u_base.txt has {u.size} values, expected 204 (68 landmarks x xyz)")
    return MorphableModel(
        u.reshape(68, 3),
        bases[0],
        bases[1],
        bases[2],
        bases[3],
        np.zeros((0, 3), np.int32),
        np.arange(68, dtype=np.int32),
        name="bfm-68-landmarks",
        source=str(p),
        license="Basel Face Model: academic use",
        units="mm",
    )


def _load_dir(p: Path, lm: I32 | None) -> MorphableModel:
    """A 3DDFA checkout folder (``train.configs/`` + ``visualize/tri.mat``) or an eos share/."""
    sfm = sorted(p.glob("sfm_shape_*.bin"))
    if sfm:
        return _load_sfm(sfm[0], lm)
    if (p / "w_shp_base.txt").is_file():
        return _load_landmark_basis(p)
    cfg = p / "train.configs" if (p / "train.configs").is_dir() else p
    if not (cfg / "u_shp.npy").is_file():
        raise FormatError(
            f"{p}: folder is neither an eos share/ (sfm_shape_*.bin) "
            "nor a 3DDFA train.configs (u_shp.npy)"
        )
    mean = (np.load(cfg / "u_shp.npy") + np.load(cfg / "u_exp.npy")).astype(np.float32).reshape(
        -1, 3
    ) * UM_TO_MM
    v3 = mean.size
    tri_file = next(
        (c for c in (p / "visualize" / "tri.mat", cfg / "tri.mat") if c.is_file()), None
    )
    if tri_file is None:
        raise FormatError(f"{p}: no tri.mat (visualize/tri.mat) for the 3DDFA mesh")
    tris = (np.asarray(_mat(tri_file)["tri"], np.int64).T - 1)[:, ::-1]
    bases = []
    for name in ("w_shp_sim.npy", "w_exp_sim.npy"):
        f = cfg / name
        w = (
            np.load(f).astype(np.float32) * UM_TO_MM
            if f.is_file()
            else np.zeros((v3, 0), np.float32)
        )
        n = np.linalg.norm(w, axis=0)
        bases += [w / np.maximum(n, 1e-12), n.astype(np.float32)]
    if not bases[0].shape[1]:
        log.warning(
            "%s: no w_shp_sim.npy: the model has the BFM mean mesh only (no shape modes)", p
        )
    if lm is None:
        lm = _bfm_keypoints(cfg / "x", mean.shape[0])
    if lm is None:
        raise _no_landmarks(p)
    return MorphableModel(
        mean,
        bases[0],
        bases[1],
        bases[2],
        bases[3],
        tris.astype(np.int32),
        lm,
        name="bfm-3ddfa",
        source=str(p),
        license="Basel Face Model: academic use",
        units="mm",
    )
