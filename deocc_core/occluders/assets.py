"""Real occluder images as asset packs: MaskTheFace templates and RGBA cut-outs.

- MaskTheFace (``masks/masks.cfg`` + ``masks/templates/*.png``): each template has six
  anchor points (``mask_a``..``mask_f``) that we map to landmarks (jaw at nose-bridge
  height, nose bridge, lower jaw, chin) with a homography; ``_left`` / ``_right`` variants
  are chosen by the fitted yaw (``_left`` shows the nose toward the image's left); its
  ``textures/`` dress the 3D cloth masks (:func:`load_fabric_textures`).
- A folder of RGBA PNGs named by class (``mask*.png``, ``glass*.png`` → eyeglasses,
  ``sunglass*.png``, ``cup*``, ``scarf*``, ``hand*``): the alpha's bounding box is mapped
  onto the landmark box of that class.

Every warp is checked (:func:`plausible_warp`: area, aspect, orientation, overlap with the
face hull) and an implausible one is rejected and drawn again: a homography fitted to six
points tears on profile faces.

Nothing is copied into the repository: users point ``--occluder-assets`` at their copy.
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from deocc_core.errors import InputError
from deocc_core.occluders.classes import OccluderClass

__all__ = [
    "AssetPack",
    "load_asset_packs",
    "load_fabric_textures",
    "load_occluder_assets",
    "OccluderAssets",
    "read_rgba",
    "plausible_warp",
    "view_for_yaw",
]

VIEW_YAW_DEG = 20.0  # beyond this fitted yaw a MaskTheFace side template is used
WARP_MIN_AREA, WARP_MAX_AREA = 0.05, 1.1  # object area / face hull area
WARP_MAX_ASPECT = 4.0
WARP_MAX_OUTSIDE = 0.2  # share of the object outside the dilated face hull

# MaskTheFace anchors a..f → landmark targets (a, c: jaw at nose-bridge height; b: bridge;
# d, f: lower jaw; e: chin); the subject's right (landmarks 0-8) is the image left.
_MTF_TARGETS = {
    "mask_a": (1, 28),
    "mask_b": (28, 28),
    "mask_c": (15, 28),
    "mask_d": (4, None),
    "mask_e": (8, None),
    "mask_f": (12, None),
}


def read_rgba(path: Path) -> npt.NDArray[np.float32]:
    """Read a PNG as ``[H, W, 4]`` float32 RGBA in [0, 1] (opaque alpha when it has none)."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(f"{path}: cannot read occluder image")
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGRA)
    if img.shape[2] == 3:
        img = np.concatenate([img, np.full(img.shape[:2] + (1,), 255, img.dtype)], 2)
    rgba = img[:, :, [2, 1, 0, 3]].astype(np.float32)
    return rgba / (65535.0 if img.dtype == np.uint16 else 255.0)


@dataclass(frozen=True)
class AssetPack:
    """One real occluder image and how to anchor it.

    Attributes:
        occluder_class: the class it belongs to. name: file stem.
        rgba: ``[h, w, 4]`` float32. anchors: ``[k, 2]`` template points (MaskTheFace) or None.
        view: "front", "left" or "right" (MaskTheFace variants).
    """

    occluder_class: OccluderClass
    name: str
    rgba: npt.NDArray[np.float32]
    anchors: npt.NDArray[np.float64] | None = None
    view: str = "front"

    def target_points(self, lm: np.ndarray) -> np.ndarray:
        """``[6, 2]`` landmark targets of the template anchors ``mask_a``..``mask_f``."""
        pts = []
        for key in ("mask_a", "mask_b", "mask_c", "mask_d", "mask_e", "mask_f"):
            i, j = _MTF_TARGETS[key]
            p = lm[i].copy()
            if j is not None and key != "mask_b":
                p[1] = lm[j, 1] * 0.7 + lm[i, 1] * 0.3
            pts.append(p)
        return np.array(pts)

    def draw(
        self,
        shape: tuple[int, int],
        landmarks: npt.NDArray[np.floating],
        rng: np.random.Generator,
        yaw: float | None = None,
    ) -> np.ndarray | None:
        """Warp onto an ``(H, W)`` frame as ``[H, W, 4]`` float32 RGBA.

        Args:
            shape: ``(H, W)``.
            landmarks: ``[68, 2]`` pixels.
            rng: unused (kept for the maker signature).
            yaw: the FITTED head yaw in degrees, our sign (positive turns the nose toward the
                image's right): MaskTheFace's ``_right`` templates show that view.

        Returns:
            The layer, or None when the view does not suit the yaw or the warp is implausible
            (:func:`plausible_warp`): the caller draws again.
        """
        lm = np.asarray(landmarks, np.float64)
        h, w = shape
        if self.anchors is not None:
            if self.view != view_for_yaw(yaw):
                return None
            m, _ = cv2.findHomography(
                self.anchors.astype(np.float32), self.target_points(lm).astype(np.float32)
            )
            if m is None or not _homography_keeps_side(m, self.rgba):
                return None
            layer = cv2.warpPerspective(self.rgba, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
        else:
            ys, xs = np.nonzero(self.rgba[..., 3] > 0.1)
            src = np.float32([[xs.min(), ys.min()], [xs.max(), ys.min()], [xs.min(), ys.max()]])
            if self.occluder_class in (OccluderClass.EYEGLASSES, OccluderClass.SUNGLASSES):
                x0, x1 = lm[0, 0] * 0.15 + lm[36, 0] * 0.85, lm[16, 0] * 0.15 + lm[45, 0] * 0.85
                y0 = lm[17:27, 1].mean() * 0.6 + lm[36:48, 1].mean() * 0.4
                y1 = lm[36:48, 1].mean() + (lm[33, 1] - lm[36:48, 1].mean()) * 0.45
            else:  # masks, scarves and the rest: nose bridge to below the chin, jaw to jaw
                x0, x1 = lm[1, 0], lm[15, 0]
                y0, y1 = lm[28, 1], lm[8, 1] + (lm[8, 1] - lm[57, 1]) * 0.3
            dst = np.float32([[x0, y0], [x1, y0], [x0, y1]])
            m = cv2.getAffineTransform(src, dst)
            layer = cv2.warpAffine(self.rgba, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
        return layer if plausible_warp(layer[..., 3], lm) else None


def view_for_yaw(yaw: float | None) -> str:
    """MaskTheFace template view for a fitted yaw (degrees, our sign).

    ``_left`` templates show the nose toward the image's left (negative yaw), ``_right``
    toward its right; within +-20 degrees the frontal template.

    Example:
        >>> view_for_yaw(None), view_for_yaw(35.0), view_for_yaw(-35.0)
        ('front', 'right', 'left')
    """
    if yaw is None or abs(yaw) < VIEW_YAW_DEG:
        return "front"
    return "right" if yaw > 0 else "left"


def _homography_keeps_side(m: np.ndarray, rgba: np.ndarray) -> bool:
    """False when the template's corners straddle the homography's horizon (a torn warp)."""
    h, w = rgba.shape[:2]
    corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], np.float64)
    wz = corners @ m[2]
    return bool((wz > 1e-6).all() or (wz < -1e-6).all())


def plausible_warp(alpha: npt.NDArray[np.floating], landmarks: npt.NDArray[np.floating]) -> bool:
    """Whether a warped occluder image is sane: the checks DESIGN.md asks for.

    Rejected: an object smaller than :data:`WARP_MIN_AREA` or larger than
    :data:`WARP_MAX_AREA` times the face hull, a bounding box wider / taller than
    :data:`WARP_MAX_ASPECT` : 1, an upside-down or sideways object (its vertical extent must
    follow the face's), or more than :data:`WARP_MAX_OUTSIDE` of it outside the face hull
    dilated by 10 % of the face size.

    Example:
        >>> from deocc_core.morphable.model import load_model
        >>> m = load_model("starter")
        >>> lm = m.mean[m.landmarks68, :2] * [0.4, -0.4] + 64
        >>> good = np.zeros((128, 128), np.float32); good[int(lm[30, 1]):int(lm[8, 1]), 40:88] = 1
        >>> torn = np.zeros((128, 128), np.float32); torn[:, :70] = 1
        >>> plausible_warp(good, lm), plausible_warp(torn, lm)
        (True, False)
    """
    from deocc_core.occluders.regions import face_hull_mask

    a = np.asarray(alpha) > 0.5
    if not a.any():
        return False
    lm = np.asarray(landmarks, np.float64)
    hull = face_hull_mask(lm, a.shape)
    face_area = max(int(hull.sum()), 1)
    area = int(a.sum()) / face_area
    if not WARP_MIN_AREA <= area <= WARP_MAX_AREA:
        return False
    ys, xs = np.nonzero(a)
    bw, bh = np.ptp(xs) + 1, np.ptp(ys) + 1
    if max(bw / bh, bh / bw) > WARP_MAX_ASPECT:
        return False
    face_size = float(np.sqrt(face_area))
    k = max(3, int(round(0.1 * face_size)) | 1)
    grown = cv2.dilate(hull.astype(np.uint8), np.ones((k, k), np.uint8)) > 0
    if (a & ~grown).sum() / a.sum() > WARP_MAX_OUTSIDE:
        return False
    # orientation: the object's rows must run along the face's vertical (nose line)
    axis = lm[8] - lm[27]
    axis /= max(float(np.linalg.norm(axis)), 1e-6)
    c = np.stack([xs - xs.mean(), ys - ys.mean()], 1).astype(np.float64)
    along = c @ axis
    across = c @ np.array([axis[1], -axis[0]])
    return bool(np.ptp(along) > 0.25 * np.ptp(across))


def _class_of(stem: str) -> OccluderClass | None:
    s = stem.lower()
    for prefix, cls in (
        ("sunglass", OccluderClass.SUNGLASSES),
        ("glass", OccluderClass.EYEGLASSES),
        ("mask", OccluderClass.MASK),
        ("cup", OccluderClass.CUP),
        ("scarf", OccluderClass.SCARF),
        ("hand", OccluderClass.HAND),
    ):
        if s.startswith(prefix):
            return cls
    return None


@dataclass(frozen=True)
class OccluderAssets:
    """What ``--occluder-assets`` provides: warpable occluder images and cloth textures."""

    packs: tuple[AssetPack, ...] = ()
    fabrics: tuple[npt.NDArray[np.float32], ...] = ()


def load_occluder_assets(root: str | Path) -> OccluderAssets:
    """:func:`load_asset_packs` and :func:`load_fabric_textures` of one folder.

    Raises:
        InputError: missing folder, or a folder with nothing usable.
    """
    return OccluderAssets(tuple(load_asset_packs(root)), tuple(load_fabric_textures(root)))


def load_fabric_textures(root: str | Path) -> list[npt.NDArray[np.float32]]:
    """Fabric images of an asset folder (MaskTheFace ``masks/textures/**``) for cloth masks.

    Returns:
        ``[h, w, 3]`` float32 images in [0, 1] (empty when the folder has none).
    """
    from deocc_core.occluders.textures import load_texture_images

    out: list[npt.NDArray[np.float32]] = []
    for d in sorted(Path(root).rglob("textures")):
        if d.is_dir():
            out.extend(load_texture_images(d))
    return out


def _mtf_pack(cfg_path: Path, base: Path, name: str, sec: configparser.SectionProxy) -> AssetPack:
    """One MaskTheFace template section as a pack (raises on a broken entry)."""
    tpl = base / sec["template"].strip()
    missing = [k for k in _MTF_TARGETS if k not in sec]
    if missing:
        raise InputError(f"{cfg_path} [{name}]: missing anchor {', '.join(missing)}")
    if not tpl.is_file():
        raise InputError(f"{cfg_path} [{name}]: template {tpl} not found")
    try:
        anchors = np.array([[float(v) for v in sec[k].split(",")] for k in _MTF_TARGETS])
    except ValueError:
        raise InputError(f"{cfg_path} [{name}]: anchors must be 'x, y' pixel pairs") from None
    rgba = read_rgba(tpl)
    if rgba[..., 3].min() > 0.99:
        raise InputError(f"{tpl}: template has no transparency (needs an RGBA PNG)")
    view = "left" if name.endswith("_left") else "right" if name.endswith("_right") else "front"
    return AssetPack(OccluderClass.MASK, name, rgba, anchors, view)


def load_asset_packs(root: str | Path) -> list[AssetPack]:
    """Load every usable occluder image under ``root`` (see module docstring).

    Raises:
        InputError: missing folder, or a folder with nothing usable.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: occluder asset folder not found")
    packs: list[AssetPack] = []
    for cfg_path in sorted(root.rglob("masks.cfg")):
        cfg = configparser.ConfigParser()
        try:
            cfg.read(cfg_path)
        except configparser.Error as e:
            raise InputError(
                f"{cfg_path}: not a MaskTheFace masks.cfg ({str(e).splitlines()[0]})"
            ) from None
        for name in cfg.sections():
            if "template" in cfg[name]:  # MaskTheFace's special modes have no image
                packs.append(_mtf_pack(cfg_path, cfg_path.parent.parent, name, cfg[name]))
    for png in sorted(root.rglob("*.png")):
        cls = _class_of(png.stem)
        if cls is None or "templates" in png.parts:
            continue
        rgba = read_rgba(png)
        if rgba[..., 3].min() > 0.99:
            raise InputError(
                f"{png}: occluder image has no transparency "
                "(needs an RGBA PNG with the background cut out)"
            )
        packs.append(AssetPack(cls, png.stem, rgba))
    if not packs:
        raise InputError(
            f"{root}: no occluder images found (expected MaskTheFace masks.cfg or RGBA PNGs "
            "named mask*/glass*/sunglass*/cup*/scarf*/hand*)"
        )
    return packs
