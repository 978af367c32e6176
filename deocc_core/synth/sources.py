"""Face sources: where samples start.

Each is an indexable list of keys, so a shard's content depends only on (source, keys, seed) and
builds are deterministic and resumable.

- ``synthetic``: random identity / expression / pose / light / background rendered from a
  model with albedo (the starter model by default). Its ground-truth params are known, but
  the pipeline still fits its landmarks like a photo's (the render channel never equals GT).
- ``folder``: any images; landmarks from a sidecar ``.pts`` / ``.mat`` or the detector;
  identities from ``identities.tsv`` (image<TAB>identity) at the root, else the sub-folder
  name, else the file stem.
- ``aflw2000-3d``: ``imageNNNNN.jpg`` + ``.mat`` (``pt3d_68``, ``Pose_Para``).
- ``300w3d``: the 300W-LP / 300W-3D layout: the tree as unpacked (``AFW/ HELEN/ IBUG/ LFPW/``
  and their ``*_Flip/`` copies, ``<set>/<name>_<k>.jpg`` + ``.mat`` with ``pt2d``, or the
  landmarks in ``landmarks/<set>/<name>_<k>_pts.mat``); the k views of one photo and its
  flipped copy share an identity.

Both ``.mat`` datasets ship their own BFM fit (``Shape_Para``, ``Exp_Para``, ``Pose_Para``):
when the build's model is 3DDFA's BFM (:data:`~deocc_core.morphable.ddfa.DDFA_MODELS`) the
records carry those parameters (``FaceRecord.params``) and the build renders them instead of
fitting the landmarks (the paper's protocol; ``dataset_params=False`` fits anyway).
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from deocc_core.errors import ConfigError, DeoccError, FormatError, InputError, SkipInput
from deocc_core.imageio import IMAGE_SUFFIXES, read_image
from deocc_core.landmarks.detect import DEFAULT_BACKEND
from deocc_core.landmarks.find import LazyDetector, landmarks_for
from deocc_core.landmarks.readers import find_annotation, read_annotation, read_mat_annotation
from deocc_core.morphable.camera import project
from deocc_core.morphable.ddfa import DDFA_MODELS, params_from_ddfa
from deocc_core.morphable.model import MorphableModel
from deocc_core.morphable.params import FitParams, Pose
from deocc_core.occluders.photo import jpeg_quality

log = logging.getLogger(__name__)

__all__ = [
    "FaceRecord",
    "FaceSource",
    "SOURCES",
    "make_source",
    "iter_faces",
    "SkipTally",
    "uses_dataset_params",
]

SOURCES = ("synthetic", "folder", "aflw2000-3d", "300w3d")


@dataclass(frozen=True)
class FaceRecord:
    """One face ready for the sample pipeline.

    Attributes:
        image: ``[H, W, 3]`` uint8 RGB (the ground truth the occluder is pasted on).
        landmarks: ``[68, 2]`` float32 pixels of ``image``.
        identity: identity label (splits are identity-disjoint).
        source_key: the key this record came from (plus ``#k`` for the k-th face of a photo).
        params: dataset-provided 3DMM params (photo pixels) for the build's model when
            available (300W-LP / AFLW2000-3D with 3DDFA's BFM), else None: then the build
            fits the landmarks. Always None for ``synthetic``: the build pipeline fits every
            face from its landmarks, as for a photo, so G never sees the generator's own
            (exact) parameters.
        yaw_deg: head yaw when known (dataset pose or synthetic truth), our sign convention.
        true_params: the synthetic generator's parameters, for analysis only (never for training).
        jpeg_quality: the photo file's JPEG quality (1-100) when it is a JPEG, else None
            (occluders are re-encoded like the photo).
    """

    image: npt.NDArray[np.uint8]
    landmarks: npt.NDArray[np.float32]
    identity: str
    source_key: str
    params: FitParams | None = None
    yaw_deg: float | None = None
    true_params: FitParams | None = None
    jpeg_quality: int | None = None


class FaceSource(Protocol):
    """What a source offers the build: its keys, and the faces of a key."""

    name: str

    def keys(self) -> list[str]:
        """Every input, in a stable order."""
        ...

    def load(self, key: str) -> list[FaceRecord]:
        """The faces of one input (SkipInput when it yields none)."""
        ...


def _list_images(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )


def _random_background(rng: np.random.Generator, s: int) -> npt.NDArray[np.uint8]:
    """Procedural ``[s, s, 3]`` uint8 background.

    A linear gradient over a few muted colour blobs, 2-5 blurred ellipses / rectangles, and pixel
    noise.
    """
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / max(s - 1, 1)
    ang = rng.uniform(0, 2 * np.pi)
    t = (np.cos(ang) * xx + np.sin(ang) * yy)[..., None]
    c0, c1 = rng.uniform(20, 235, 3), rng.uniform(20, 235, 3)
    img = (1 - t) * c0 + t * c1
    low = rng.uniform(30, 225, (4, 4, 3)).astype(np.float32)
    img = 0.6 * img + 0.4 * cv2.resize(low, (s, s), interpolation=cv2.INTER_CUBIC)
    img = np.ascontiguousarray(img.astype(np.float32))
    for _ in range(int(rng.integers(2, 6))):
        colour = tuple(float(v) for v in rng.uniform(0, 255, 3))
        cx, cy = (int(v) for v in rng.uniform(0, s, 2))
        ax = tuple(int(v) for v in rng.uniform(0.05, 0.3, 2) * s)
        if rng.random() < 0.5:
            cv2.ellipse(img, (cx, cy), ax, float(rng.uniform(0, 180)), 0, 360, colour, -1)
        else:
            cv2.rectangle(img, (cx - ax[0], cy - ax[1]), (cx + ax[0], cy + ax[1]), colour, -1)
    k = max(3, (s // 24) | 1)
    img = cv2.GaussianBlur(img, (k, k), 0) + rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _skin_detail(
    image: npt.NDArray[np.uint8], mask: npt.NDArray[np.uint8], rng: np.random.Generator
) -> npt.NDArray[np.uint8]:
    """Multiplicative skin texture inside the face mask.

    Blotchy low-frequency tone (±6%) plus fine pore-scale noise (±3%), so the face is not a smooth
    vertex-colour gradient.
    """
    h, w = image.shape[:2]
    low = cv2.resize(
        rng.normal(0, 1, (max(2, h // 16), max(2, w // 16))).astype(np.float32),
        (w, h),
        interpolation=cv2.INTER_CUBIC,
    )
    fine = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (3, 3), 0)
    gain = 1 + 0.06 * low + 0.03 * fine / max(float(fine.std()), 1e-6)
    m = (mask > 0)[..., None]
    out = np.where(m, image.astype(np.float32) * gain[..., None], image)
    return np.clip(out, 0, 255).astype(np.uint8)


class SyntheticSource:
    """Random faces rendered from a morphable model with albedo.

    Args:
        model: the model (must have albedo). n: number of images.
        size: image side, pixels. seed: base seed. per_identity: images per identity.
    """

    name = "synthetic"

    def __init__(
        self,
        model: MorphableModel,
        n: int = 1000,
        size: int = 256,
        seed: int = 0,
        per_identity: int = 4,
    ) -> None:
        if not model.has_albedo:
            raise ConfigError(
                f"synthetic source needs a model with albedo; {model.name} has none "
                "(use --model starter)"
            )
        self.model, self.n, self.size, self.seed, self.per_identity = (
            model,
            n,
            size,
            seed,
            per_identity,
        )

    def keys(self) -> list[str]:
        return [f"syn{i:07d}" for i in range(self.n)]

    def identity(self, key: str) -> str:
        return f"syn-id{int(key[3:]) // self.per_identity:06d}"

    def load(self, key: str) -> list[FaceRecord]:
        from deocc_core.render.face import render_face

        i = int(key[3:])
        ident = i // self.per_identity
        m, s = self.model, self.size
        rid = np.random.default_rng([self.seed, 1, ident])
        rng = np.random.default_rng([self.seed, 2, i])
        id_coef = rid.normal(size=m.n_id) * m.id_std * 0.8
        alb = rid.normal(size=len(m.albedo_std)) * m.albedo_std * 0.8
        exp_coef = rng.normal(size=m.n_exp) * m.exp_std * (rng.random(m.n_exp) < 0.3)
        yaw = np.radians(np.clip(rng.normal(0, 25), -60, 60))
        pose = Pose(
            0.55 * s / np.ptp(m.mean[:, 0]) * rng.uniform(0.9, 1.1),
            np.radians(rng.uniform(-12, 12)),
            yaw,
            np.radians(rng.uniform(-10, 10)),
            (s - 1) / 2 + rng.uniform(-0.04, 0.04) * s,
            (s - 1) / 2 + rng.uniform(-0.02, 0.06) * s,
        )
        params = FitParams(id_coef.astype(np.float32), exp_coef.astype(np.float32), pose)
        tint = rng.uniform(0.85, 1.1, 3)
        sh = np.zeros((9, 3), np.float32)
        sh[0] = rng.uniform(0.6, 0.95) * tint
        sh[1:4] = rng.uniform([-0.3, 0.1, -0.45], [0.3, 0.5, 0.45])[:, None] * tint
        background = _random_background(rng, s)
        r = render_face(m, params, s, s, albedo_coef=alb, sh=sh, background=background)
        image = _skin_detail(r.image, r.mask, rng)
        lm = project(m.vertices(id_coef, exp_coef)[m.landmarks68], pose)[:, :2]
        return [
            FaceRecord(
                image, lm, self.identity(key), key, None, float(np.degrees(yaw)), true_params=params
            )
        ]


class FolderSource:
    """Photos in a folder tree; landmarks from sidecars or a detector (built lazily per process)."""

    name = "folder"

    def __init__(self, root: Path, backend: str = DEFAULT_BACKEND, max_faces: int = 8) -> None:
        self.root, self.max_faces = root, max_faces
        self._keys = _list_images(root)
        #: files that are not images (counted as skips by :func:`iter_faces`), sidecars excluded
        self.non_images = sorted(
            str(p.relative_to(root))
            for p in root.rglob("*")
            if p.is_file()
            and p.suffix.lower() not in IMAGE_SUFFIXES + (".pts", ".mat")
            and p.name != "identities.tsv"
        )
        self._detector = LazyDetector(backend)  # built on the first photo without a sidecar
        self._ids: dict[str, str] = {}
        tsv = root / "identities.tsv"
        if tsv.is_file():
            with open(tsv, newline="") as f:
                for row in csv.reader(f, delimiter="\t"):
                    if len(row) >= 2 and row[0] != "image":
                        self._ids[row[0]] = row[1]

    def keys(self) -> list[str]:
        return self._keys

    def identity(self, key: str) -> str:
        if key in self._ids:
            return self._ids[key]
        p = Path(key)
        return p.parent.as_posix() if p.parent != Path(".") else p.stem

    def load(self, key: str) -> list[FaceRecord]:
        path = self.root / key
        image = read_image(path)
        faces = landmarks_for(path, image, "auto", self._detector)[: self.max_faces]
        if not faces:
            raise SkipInput("no face found", key)
        ident = self.identity(key)
        q = jpeg_quality(path)
        if len(faces) == 1 and faces[0].detector in ("pts", "mat"):
            return [FaceRecord(image, faces[0].landmarks, ident, key, jpeg_quality=q)]
        return [
            FaceRecord(
                image,
                f.landmarks,
                ident if len(faces) == 1 else f"{ident}#{k}",
                f"{key}#{k}",
                jpeg_quality=q,
            )
            for k, f in enumerate(faces)
        ]


def uses_dataset_params(model: MorphableModel | None, enabled: bool = True) -> bool:
    """Whether a 300W-LP / AFLW2000-3D build renders the datasets' own 3DMM parameters.

    True when ``enabled`` and ``model`` is one of 3DDFA's BFM bases (in mm), the model those
    parameters refer to; other models fit the landmarks.
    """
    return bool(enabled and model is not None and model.name in DDFA_MODELS and model.units == "mm")


def _annotated_images(root: Path) -> dict[str, Path]:
    """Relative image path → its annotation, for every annotated image under ``root``.

    The annotation rule of :func:`~deocc_core.landmarks.readers.find_annotation`
    (``<stem>.pts``, then ``<stem>.mat``, then 300W-LP's ``landmarks/<set>/<stem>_pts.mat``)
    on one walk of the tree (no per-image file checks: 300W-LP has 122k images). The
    ``landmarks/`` folder itself holds no inputs.
    """
    files: dict[Path, set[str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        files[Path(dirpath)] = set(filenames)
    out = {}
    for folder, names in files.items():
        if folder.relative_to(root).parts[:1] == ("landmarks",):
            continue
        lp_names = files.get(folder.parent / "landmarks" / folder.name, set())
        for name in names:
            p = folder / name
            if p.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            stem = p.stem
            for cand in (f"{stem}.pts", f"{stem}.mat"):
                if cand in names:
                    out[p.relative_to(root).as_posix()] = folder / cand
                    break
            else:
                if f"{stem}_pts.mat" in lp_names:
                    out[p.relative_to(root).as_posix()] = (
                        folder.parent / "landmarks" / folder.name / f"{stem}_pts.mat"
                    )
    return dict(sorted(out.items()))


class MatSource:
    """Images with .mat annotations: AFLW2000-3D or 300W-LP / 300W-3D.

    ``name`` is ``"aflw2000-3d"`` or ``"300w3d"``. With ``model`` one of 3DDFA's BFM bases
    (and ``dataset_params``), each record carries the dataset's own fit as ``params``.
    """

    def __init__(
        self,
        root: Path,
        name: str,
        model: MorphableModel | None = None,
        dataset_params: bool = True,
    ) -> None:
        self.root, self.name = root, name
        self._ann = _annotated_images(root)
        self._keys = list(self._ann)
        self._params_model = model if uses_dataset_params(model, dataset_params) else None
        if not self._keys:
            want = (
                "imageNNNNN.jpg + imageNNNNN.mat"
                if name == "aflw2000-3d"
                else "<set>/<name>_<k>.jpg + .mat (pt2d) or landmarks/<set>/<name>_<k>_pts.mat"
            )
            raise InputError(
                f"{root}: no annotated images found for --source {name} (expected {want})"
            )

    def keys(self) -> list[str]:
        return self._keys

    def identity(self, key: str) -> str:
        stem = Path(key).stem
        # AFLW2000-3D has no identity labels: each image is its own identity; a 300W-LP
        # photo's views (<name>_<k>) and its flipped copy (<set>_Flip/) are one identity
        return stem if self.name == "aflw2000-3d" else re.sub(r"_\d+$", "", stem)

    def load(self, key: str) -> list[FaceRecord]:
        path = self.root / key
        ann = self._ann.get(key) or find_annotation(path)
        if ann is None:
            raise SkipInput("missing annotation", key)
        image = read_image(path)
        params = None
        try:
            if ann.suffix == ".mat":
                mat = read_mat_annotation(ann)  # read once: landmarks, pose, coefficients
                lm, yaw = mat.landmarks, mat.yaw_deg
                if not np.isfinite(lm).all():
                    raise FormatError(f"{ann}: landmark coordinates are not finite numbers")
                if self._params_model is not None and mat.pose_para is not None:
                    params = params_from_ddfa(
                        self._params_model,
                        mat.shape_para if mat.shape_para is not None else np.zeros(0),
                        mat.exp_para if mat.exp_para is not None else np.zeros(0),
                        mat.pose_para,
                        image.shape[0],
                    )
            else:
                lm, yaw = read_annotation(ann), None
        except DeoccError as e:
            raise SkipInput("bad annotation", str(e)) from None
        q = jpeg_quality(path)
        return [FaceRecord(image, lm, self.identity(key), key, params, yaw, jpeg_quality=q)]


class SkipTally:
    """Skipped inputs by reason: ``counts`` (reason -> n) and the first few keys of each."""

    def __init__(self, keep: int = 5) -> None:
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}
        self._keep = keep

    def add(self, reason: str, key: str) -> None:
        """Count one skipped ``key``."""
        self.counts[reason] += 1
        ex = self.examples.setdefault(reason, [])
        if len(ex) < self._keep:
            ex.append(key)

    @property
    def total(self) -> int:
        """Number of skipped inputs."""
        return sum(self.counts.values())


def iter_faces(
    source: FaceSource,
    keys: list[str] | None = None,
    tally: SkipTally | None = None,
    strict: bool = False,
) -> Iterator[FaceRecord]:
    """Stream every face of ``keys`` (default all), counting inputs that yield none.

    Bad inputs (unreadable/truncated image, missing or malformed sidecar, no face found,
    and for a folder the non-image files) are counted in ``tally`` by reason; with
    ``strict`` the first one raises instead.

    Raises:
        SkipInput: only when ``strict``.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "notes.txt").write_text("hi")
        >>> t = SkipTally(); list(iter_faces(make_source("folder", d), tally=t)), dict(t.counts)
        ([], {'not an image': 1})
    """
    tally = tally if tally is not None else SkipTally()
    for name in getattr(source, "non_images", []) if keys is None else []:
        if strict:
            raise SkipInput("not an image", name)
        tally.add("not an image", name)
    for key in source.keys() if keys is None else keys:
        try:
            yield from source.load(key)
        except SkipInput as e:
            if strict:
                raise
            tally.add(e.reason, key)
            log.info("skipped %s: %s", key, e)


def make_source(
    name: str,
    root: str | Path | None = None,
    *,
    model: MorphableModel | None = None,
    n: int = 1000,
    size: int = 256,
    seed: int = 0,
    backend: str = DEFAULT_BACKEND,
    dataset_params: bool = True,
) -> FaceSource:
    """Build a source by name (see module docstring).

    ``model`` is the synthetic source's generator, and for the ``.mat`` sources the build's
    model: with 3DDFA's BFM (and ``dataset_params``) their records carry the datasets' own
    3DMM parameters (:func:`uses_dataset_params`).

    Raises:
        ConfigError: unknown name, or synthetic without a model. InputError: missing root.

    Example:
        >>> from deocc_core.morphable.model import load_model
        >>> src = make_source("synthetic", model=load_model("starter"), n=3, size=64)
        >>> src.keys(), src.load("syn0000001")[0].image.shape
        (['syn0000000', 'syn0000001', 'syn0000002'], (64, 64, 3))
    """
    if name == "synthetic":
        if model is None:
            raise ConfigError("the synthetic source needs a model")
        return SyntheticSource(model, n=n, size=size, seed=seed)
    if name not in SOURCES:
        raise ConfigError(f"unknown source {name!r} (expected one of {', '.join(SOURCES)})")
    if root is None:
        raise ConfigError(f"--source {name} needs --root DIR")
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: source folder not found")
    if name == "folder":
        return FolderSource(root, backend)
    return MatSource(root, name, model, dataset_params)
