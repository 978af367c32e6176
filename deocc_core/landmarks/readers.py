"""Landmark annotation files: iBUG ``.pts``, 300W-LP / AFLW2000-3D ``.mat``.

Convention:
    In memory, landmarks are ``[68, 2]`` float32 0-based pixels (centre of the top-left
    pixel = (0, 0)). ``.pts`` files are 1-based (iBUG / menpo): readers subtract 1,
    :func:`write_pts` adds it back. The 300W-LP / AFLW2000-3D ``.mat`` files were made in
    MATLAB and are read as 1-based too (subtract 1). Neither dataset states its origin;
    measured on the shared AFLW2000-3D faces (7 with |yaw| < 20°), dlib minus ground truth
    averages (+0.9, +1.0) px with the subtraction, against (-1.6, -0.3) px on the iBUG .pts
    photo: the evidence is within dlib's per-image bias (~1-2 px, under 3% NME), so
    treat the .mat origin as uncertain by one pixel. dlib imglab XML is 0-based (as is).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from deocc_core.errors import FormatError, InputError
from deocc_core.fileio import write_text_atomic

__all__ = [
    "read_pts",
    "write_pts",
    "MatAnnotation",
    "read_mat_annotation",
    "find_annotation",
    "read_annotation",
    "ImglabFace",
    "read_imglab_xml",
]


def read_pts(path: str | Path) -> npt.NDArray[np.float32]:
    """Read an iBUG ``.pts`` file with 68 points.

    Returns:
        ``[68, 2]`` float32, 0-based pixels.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "a.pts")
        >>> _ = write_pts(p, np.tile([[10.0, 20.0]], (68, 1)))
        >>> read_pts(p)[0].tolist()
        [10.0, 20.0]
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: landmark file not found")
    text = path.read_text(errors="replace")
    try:
        body = text[text.index("{") + 1 : text.index("}")]
        pts = np.array(body.split(), np.float64).reshape(-1, 2)
    except ValueError:
        raise FormatError(
            f"{path}: not an iBUG .pts file (expected 'n_points: 68' and a {{ x y ... }} block)"
        ) from None
    if pts.shape[0] != 68:
        raise FormatError(f"{path}: {pts.shape[0]} points, expected 68 (iBUG 300-W scheme)")
    if not np.isfinite(pts).all():
        raise FormatError(f"{path}: landmark coordinates are not finite numbers (nan / inf)")
    return (pts - 1.0).astype(np.float32)


def write_pts(path: str | Path, landmarks: npt.NDArray[np.floating]) -> Path:
    """Write ``[68, 2]`` 0-based landmarks as a 1-based iBUG ``.pts`` file."""
    path = Path(path)
    lines = ["version: 1", f"n_points: {len(landmarks)}", "{"]
    lines += [f"{x + 1:.3f} {y + 1:.3f}" for x, y in np.asarray(landmarks, np.float64)]
    return write_text_atomic(path, "\n".join(lines + ["}"]) + "\n")


@dataclass(frozen=True)
class MatAnnotation:
    """A 300W-LP / AFLW2000-3D annotation.

    Attributes:
        landmarks: ``[68, 2]`` float32 0-based pixels (``pt3d_68`` if present, else ``pt2d``).
        yaw_deg: head yaw from ``Pose_Para`` in our convention (nose toward +x positive), or None.
        pose_para: the raw ``Pose_Para`` ``[7]`` (pitch, yaw, roll, tx, ty, tz, scale) or None.
        shape_para, exp_para: BFM coefficients (``[199]``, ``[29]``) or None.
    """

    landmarks: npt.NDArray[np.float32]
    yaw_deg: float | None
    pose_para: npt.NDArray[np.float64] | None
    shape_para: npt.NDArray[np.float64] | None
    exp_para: npt.NDArray[np.float64] | None


def read_mat_annotation(path: str | Path) -> MatAnnotation:
    """Read a 300W-LP / AFLW2000-3D ``.mat`` (also a 300W-LP ``landmarks/*_pts.mat``)."""
    from scipy.io import loadmat

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: annotation file not found")
    try:
        d = loadmat(str(path))
    except (ValueError, OSError, NotImplementedError) as e:
        raise FormatError(f"{path}: not a readable .mat file ({e})") from None
    lm = None
    for key in ("pt3d_68", "pts_2d", "pt2d", "pts_3d"):
        if key in d:
            a = np.asarray(d[key], np.float64)
            a = a if a.shape[0] in (2, 3) and a.shape[-1] == 68 else a.T
            if a.shape[-1] == 68:
                lm = a[:2].T
                break
    if lm is None:
        raise FormatError(f"{path}: no 68-point landmarks (expected pt3d_68 or pt2d of shape 2x68)")
    pose = np.asarray(d["Pose_Para"], np.float64).reshape(-1) if "Pose_Para" in d else None
    # 300W-LP's yaw is positive when the face turns to the image's left: ours is the opposite
    yaw = float(-np.degrees(pose[1])) if pose is not None else None
    return MatAnnotation(
        (lm - 1.0).astype(np.float32),
        yaw,
        pose,
        np.asarray(d["Shape_Para"], np.float64).reshape(-1) if "Shape_Para" in d else None,
        np.asarray(d["Exp_Para"], np.float64).reshape(-1) if "Exp_Para" in d else None,
    )


def find_annotation(image: Path) -> Path | None:
    """The sidecar annotation of an image, or None.

    Looked for: ``<stem>.pts``, ``<stem>.mat``, 300W-LP ``landmarks/<set>/<stem>_pts.mat``.
    """
    for cand in (image.with_suffix(".pts"), image.with_suffix(".mat")):
        if cand.is_file():
            return cand
    lp = image.parent.parent / "landmarks" / image.parent.name / f"{image.stem}_pts.mat"
    return lp if lp.is_file() else None


def read_annotation(path: Path) -> npt.NDArray[np.float32]:
    """Landmarks ``[68, 2]`` from a ``.pts`` or ``.mat`` file.

    Raises:
        FormatError: not a landmark file, or coordinates that are not finite numbers.
    """
    lm = read_pts(path) if path.suffix == ".pts" else read_mat_annotation(path).landmarks
    if not np.isfinite(lm).all():
        raise FormatError(f"{path}: landmark coordinates are not finite numbers (nan / inf)")
    return lm


@dataclass(frozen=True)
class ImglabFace:
    """One ``<box>`` of a dlib imglab XML file.

    Attributes:
        image: path of the image (resolved against the XML's folder).
        box: ``[4]`` float32 (x0, y0, x1, y1) pixels, inclusive like dlib's rectangle.
        landmarks: ``[68, 2]`` float32 0-based pixels, or None when the box has no parts.
        ignore: the box is marked ``ignore='1'``.
    """

    image: Path
    box: npt.NDArray[np.float32]
    landmarks: npt.NDArray[np.float32] | None
    ignore: bool


def read_imglab_xml(path: str | Path) -> list[ImglabFace]:
    """Read a dlib imglab dataset XML (``<image file><box top left width height><part name x y>``).

    Returns:
        One :class:`ImglabFace` per box, in file order.

    Raises:
        InputError: file missing. FormatError: not XML, or a box with parts that are not 68.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "d.xml")
        >>> box = "<box top='1' left='2' width='10' height='12'/>"
        >>> xml = f"<dataset><images><image file='a.jpg'>{box}</image></images></dataset>"
        >>> _ = open(p, "w").write(xml)
        >>> f = read_imglab_xml(p)[0]
        >>> f.box.tolist(), f.landmarks
        ([2.0, 1.0, 11.0, 12.0], None)
    """
    import xml.etree.ElementTree as ET

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: imglab XML not found")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise FormatError(f"{path}: not an XML file ({e})") from None
    out = []
    for img in root.iter("image"):
        file = path.parent / img.get("file", "")
        for box in img.iter("box"):
            t, left, w, h = (float(box.get(k, 0)) for k in ("top", "left", "width", "height"))
            parts = sorted(box.iter("part"), key=lambda q: int(q.get("name", "0")))
            lm = None
            if parts:
                if len(parts) != 68:
                    raise FormatError(
                        f"{path}: a box in {file.name} has {len(parts)} parts, expected 68"
                    )
                lm = np.array([[float(q.get("x")), float(q.get("y"))] for q in parts], np.float32)
            out.append(
                ImglabFace(
                    file,
                    np.array([left, t, left + w - 1, t + h - 1], np.float32),
                    lm,
                    box.get("ignore") == "1",
                )
            )
    return out
