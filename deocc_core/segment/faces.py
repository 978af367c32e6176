"""Aligned real face crops for the occlusion segmenter: the same crop inference makes.

Each photo is detected (the default landmark backend), aligned with
:func:`deocc_core.face.align.align_face` and kept with its identity, its split and, for
CelebAMask-HQ, its face-parsing labels warped into the crop (nearest neighbour). Splits
are identity-disjoint (:func:`deocc_core.synth.splits.assign_split`); the CelebAMask-HQ
faces that wear real eyeglasses (class 3) are split apart by a fixed rule (each image is
its own identity; :func:`split_glasses`): ``glasses_train`` (trained on with their pixel
labels) and ``glasses`` (never trained on: the real-glasses test).

Crops whose alignment needs pixels outside the photo would carry replicate-padding
streaks; their share of padded pixels is kept (``padded``) so training can skip them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from deocc_core.errors import InputError
from deocc_core.face.align import AlignedFace, align_face
from deocc_core.fileio import read_arrays, write_arrays_atomic
from deocc_core.imageio import read_image
from deocc_core.synth.splits import assign_split

__all__ = [
    "FaceCrops",
    "GLASSES_CLASS",
    "GLASSES_TRAIN",
    "collect_photos",
    "crop_faces",
    "largest_face_crop",
    "link_split_photos",
    "load_face_crops",
    "real_masked_crops",
    "save_face_crops",
    "split_glasses",
]

log = logging.getLogger(__name__)
GLASSES_CLASS = 3  # CelebAMask-HQ parsing label of eyeglasses
GLASSES_MIN_PX = 400  # at 512 px: a face "wears glasses" above this many class-3 pixels
SPLIT_SALT = "segmenter"
TEST_FRACTION = 0.15
GLASSES_TRAIN = "glasses_train"  # real-glasses faces trained on; the rest stay "glasses"
GLASSES_SALT = "segmenter-glasses"  # 14 of the 29 train, 15 held out
PHOTO_FOLDERS = {  # source → its photo folder under faces_bulk (as collect_photos reads it)
    "celebamask_hq": "celebamask_hq/images",
    "without_mask": "face_mask_detection/without_mask",
    "deepface": "deepface",
}


@dataclass(frozen=True)
class FaceCrops:
    """Aligned face crops.

    Attributes:
        images: ``[N, S, S, 3]`` uint8 RGB crops.
        landmarks: ``[N, 68, 2]`` float32 crop pixels.
        labels: ``[N, S, S]`` uint8 parsing labels (255 = none: not a CelebAMask-HQ face).
        padded: ``[N]`` float32 share of the crop that lies outside the photo.
        source, identity, split, name: ``[N]`` str (split: "train", "test", "glasses" or
            "glasses_train"; name: ``<source>/<file name>``).
    """

    images: npt.NDArray[np.uint8]
    landmarks: npt.NDArray[np.float32]
    labels: npt.NDArray[np.uint8]
    padded: npt.NDArray[np.float32]
    source: npt.NDArray[np.str_]
    identity: npt.NDArray[np.str_]
    split: npt.NDArray[np.str_]
    name: npt.NDArray[np.str_]

    def select(self, keep: npt.NDArray[np.bool_]) -> FaceCrops:
        """The crops where ``keep`` ([N] bool) is true."""
        return FaceCrops(**{k: getattr(self, k)[keep] for k in self.__dataclass_fields__})


def _identities(tsv: Path) -> dict[str, str]:
    if not tsv.is_file():
        return {}
    rows = [ln.split("\t") for ln in tsv.read_text().splitlines()[1:] if "\t" in ln]
    return {r[0]: r[1].strip() for r in rows}


def collect_photos(faces_bulk: Path) -> list[tuple[str, Path, str, Path | None]]:
    """Photos of ``faces_bulk`` with a clean (unmasked) face.

    Returns:
        ``(source, image path, identity, label path or None)`` per photo: CelebAMask-HQ
        (each image its own identity, with its parsing labels), Face-Mask-Detection
        ``without_mask`` and deepface (identities from their ``identities.tsv``).

    Raises:
        InputError: ``faces_bulk`` is not a folder.
    """
    if not faces_bulk.is_dir():
        raise InputError(f"{faces_bulk}: faces_bulk folder not found")
    out: list[tuple[str, Path, str, Path | None]] = []
    celeb = faces_bulk / "celebamask_hq"
    for p in sorted((celeb / "images").glob("*.jpg")):
        out.append(("celebamask_hq", p, "celeb_" + p.stem, celeb / "masks" / (p.stem + ".png")))
    for src, folder in (
        ("without_mask", faces_bulk / "face_mask_detection" / "without_mask"),
        ("deepface", faces_bulk / "deepface"),
    ):
        ids = _identities(folder / "identities.tsv")
        for p in sorted(folder.iterdir()):
            if p.suffix.lower() in (".jpg", ".jpeg", ".png"):
                out.append((src, p, f"{src}_{ids.get(p.name, p.stem)}", None))
    return out


def _labels_in_crop(path: Path, shape: tuple[int, int], matrix: np.ndarray, size: int):
    from PIL import Image  # a palette PNG: OpenCV would turn the class ids into colours

    try:
        with Image.open(path) as im:
            lab = np.array(im if im.mode in ("P", "L") else im.convert("L"))
    except OSError:
        raise InputError(f"{path}: cannot read the parsing labels") from None
    if lab.shape[:2] != shape:  # CelebAMask-HQ labels may be stored at another size
        lab = cv2.resize(lab, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    return cv2.warpAffine(lab, matrix, (size, size), flags=cv2.INTER_NEAREST, borderValue=0), int(
        (lab == GLASSES_CLASS).sum() * (512 / shape[0]) ** 2
    )


def largest_face_crop(
    path: Path, detector: object, size: int
) -> tuple[AlignedFace, npt.NDArray[np.bool_], tuple[int, int]] | None:
    """A photo's largest detected face aligned as inference does; None: unreadable or no face.

    Returns:
        ``(aligned crop, [S, S] bool: crop pixels that lie inside the photo, photo (H, W))``.
    """
    try:
        image = read_image(path)
    except InputError as e:
        log.info("%s: %s", path, e)
        return None
    faces = detector.detect(image)  # type: ignore[attr-defined]
    if not faces:
        return None
    lm = max(faces, key=lambda f: float(np.ptp(f.landmarks, 0).prod())).landmarks
    al = align_face(image, lm, size)
    inside = cv2.warpAffine(np.ones(image.shape[:2], np.uint8), al.matrix, (size, size)) > 0
    return al, inside, image.shape[:2]


def crop_faces(
    photos: list[tuple[str, Path, str, Path | None]],
    detector: object,
    size: int = 128,
    progress: Callable[[int], None] | None = None,
) -> Iterator[dict]:
    """Detect, align and label each photo's largest face (photos without one are skipped).

    Yields:
        One dict per face with the :class:`FaceCrops` fields of one crop.
    """
    for source, path, identity, label_path in photos:
        if progress is not None:
            progress(1)
        found = largest_face_crop(path, detector, size)
        if found is None:
            continue
        al, inside, shape = found
        labels, n_glasses = np.full((size, size), 255, np.uint8), 0
        if label_path is not None:
            labels, n_glasses = _labels_in_crop(label_path, shape, al.matrix, size)
        split = (
            "glasses"
            if n_glasses > GLASSES_MIN_PX
            else assign_split(identity, SPLIT_SALT, TEST_FRACTION)
        )
        yield {
            "images": al.image,
            "landmarks": al.landmarks,
            "labels": labels,
            "padded": np.float32(1.0 - inside.mean()),
            "source": source,
            "identity": identity,
            "split": split,
            "name": f"{source}/{path.name}",
        }


def save_face_crops(path: Path, rows: list[dict]) -> FaceCrops:
    """Stack crop dicts and write them as one ``.npz`` (atomically)."""
    crops = FaceCrops(**{k: np.stack([r[k] for r in rows]) for k in FaceCrops.__dataclass_fields__})
    write_arrays_atomic(path, {k: getattr(crops, k) for k in FaceCrops.__dataclass_fields__})
    return crops


def split_glasses(crops: FaceCrops) -> FaceCrops:
    """The crops with the real-glasses faces split: half ``glasses_train``, half ``glasses``.

    The rule is fixed per image (a salted hash of its identity, each image its own
    identity), so it does not depend on which other faces a crop file holds.
    """
    split = crops.split.tolist()
    for i in np.nonzero(crops.split == "glasses")[0]:
        if assign_split(str(crops.identity[i]), GLASSES_SALT, 0.5) == "train":
            split[i] = GLASSES_TRAIN
    return replace(crops, split=np.array(split, dtype=str))


def load_face_crops(path: Path) -> FaceCrops:
    """Read a :func:`save_face_crops` file, its real-glasses faces split (:func:`split_glasses`).

    Raises:
        InputError: missing. FormatError: not a face-crop file.
    """
    arrays = read_arrays(
        path, FaceCrops.__dataclass_fields__, "face crop file", "make it with --faces-bulk"
    )
    return split_glasses(FaceCrops(**arrays))


def link_split_photos(
    crops: FaceCrops, faces_bulk: Path, split: str, n: int, out: Path, seed: int = 0
) -> int:
    """Link up to ``n`` photos per source of one split into ``out/<source>/`` for ``synth-occ``.

    Only crops padded at most 0.6 are drawn (as training uses). ``out/identities.tsv`` keeps
    the crops' identities, so a ``synth-occ build --source folder --root out`` keeps them and
    its ``source_key`` is the crop's ``name``.

    Returns:
        Photos linked.

    Raises:
        InputError: a photo of the crop file is missing under ``faces_bulk``.
    """
    rng = np.random.default_rng(seed)
    rows = ["image\tidentity"]
    for source, folder in PHOTO_FOLDERS.items():
        idx = np.nonzero((crops.split == split) & (crops.source == source) & (crops.padded <= 0.6))
        pick = np.sort(rng.choice(idx[0], size=min(n, len(idx[0])), replace=False))
        (out / source).mkdir(parents=True, exist_ok=True)
        for i in pick:
            name = str(crops.name[i])
            photo = faces_bulk / folder / name.split("/", 1)[1]
            if not photo.is_file():
                raise InputError(f"{photo}: photo of {name} not found")
            link = out / name
            if not link.is_symlink():
                link.symlink_to(photo.resolve())
            rows.append(f"{name}\t{crops.identity[i]}")
    (out / "identities.tsv").write_text("\n".join(rows) + "\n")
    return len(rows) - 1


def real_masked_crops(
    photos: list[Path], detector: object, n: int, seed: int = 0, size: int = 128
) -> tuple[list[npt.NDArray[np.uint8]], int, int]:
    """Aligned crops of ``n`` random photos of real masked faces (no labels).

    Returns:
        ``(crops [S, S, 3] uint8, photos tried, photos where no face was found)``.

    Raises:
        InputError: no photo given.
    """
    if not photos:
        raise InputError("no real masked photo to crop")
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(photos), size=min(n, len(photos)), replace=False)
    out = []
    for i in pick:
        found = largest_face_crop(photos[i], detector, size)
        if found is not None:
            out.append(found[0].image)
    return out, len(pick), len(pick) - len(out)
