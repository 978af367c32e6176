"""Real occluder images as asset packs: MaskTheFace templates and RGBA cut-outs.

- MaskTheFace (``masks/masks.cfg`` + ``masks/templates/*.png``): each template has six
  anchor points (``mask_a``..``mask_f``) that we map to landmarks (jaw at nose-bridge
  height, nose bridge, lower jaw, chin) with a homography; ``_left`` / ``_right`` variants
  are chosen by yaw.
- A folder of RGBA PNGs named by class (``mask*.png``, ``glass*.png`` → eyeglasses,
  ``sunglass*.png``, ``cup*``, ``scarf*``, ``hand*``): the alpha's bounding box is mapped
  onto the landmark box of that class.

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

__all__ = ["AssetPack", "load_asset_packs", "read_rgba"]

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
        """Warp onto an ``(H, W)`` frame; None when the view does not suit the yaw."""
        lm = np.asarray(landmarks, np.float64)
        h, w = shape
        if self.anchors is not None:
            want = "front" if yaw is None or abs(yaw) < 20 else ("left" if yaw > 0 else "right")
            if self.view != want:
                return None
            m, _ = cv2.findHomography(
                self.anchors.astype(np.float32), self.target_points(lm).astype(np.float32)
            )
            if m is None:
                return None
            return cv2.warpPerspective(self.rgba, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
        ys, xs = np.nonzero(self.rgba[..., 3] > 0.1)
        src = np.float32([[xs.min(), ys.min()], [xs.max(), ys.min()], [xs.min(), ys.max()]])
        if self.occluder_class in (OccluderClass.EYEGLASSES, OccluderClass.SUNGLASSES):
            x0, x1 = lm[0, 0] * 0.15 + lm[36, 0] * 0.85, lm[16, 0] * 0.15 + lm[45, 0] * 0.85
            y0 = lm[17:27, 1].mean() * 0.6 + lm[36:48, 1].mean() * 0.4
            y1 = lm[36:48, 1].mean() + (lm[33, 1] - lm[36:48, 1].mean()) * 0.45
        else:  # masks, scarves and the rest: nose bridge to below the chin, jaw to jaw
            x0, x1, y0, y1 = lm[1, 0], lm[15, 0], lm[28, 1], lm[8, 1] + (lm[8, 1] - lm[57, 1]) * 0.3
        dst = np.float32([[x0, y0], [x1, y0], [x0, y1]])
        m = cv2.getAffineTransform(src, dst)
        return cv2.warpAffine(self.rgba, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)


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
        base = cfg_path.parent.parent
        for name in cfg.sections():
            sec = cfg[name]
            if "template" not in sec:
                continue  # MaskTheFace's special modes (empty, inpaint) have no image
            tpl = base / sec["template"].strip()
            missing = [k for k in _MTF_TARGETS if k not in sec]
            if missing:
                raise InputError(f"{cfg_path} [{name}]: missing anchor {', '.join(missing)}")
            if not tpl.is_file():
                raise InputError(f"{cfg_path} [{name}]: template {tpl} not found")
            try:
                anchors = np.array(
                    [
                        [float(v) for v in sec[k].split(",")]
                        for k in ("mask_a", "mask_b", "mask_c", "mask_d", "mask_e", "mask_f")
                    ]
                )
            except ValueError:
                raise InputError(
                    f"{cfg_path} [{name}]: anchors must be 'x, y' pixel pairs"
                ) from None
            rgba = read_rgba(tpl)
            if rgba[..., 3].min() > 0.99:
                raise InputError(f"{tpl}: template has no transparency (needs an RGBA PNG)")
            view = (
                "left"
                if name.endswith("_left")
                else "right"
                if name.endswith("_right")
                else "front"
            )
            packs.append(AssetPack(OccluderClass.MASK, name, rgba, anchors, view))
    for png in sorted(root.rglob("*.png")):
        cls = _class_of(png.stem)
        if cls is None or "templates" in png.parts:
            continue
        rgba = read_rgba(png)
        if rgba[..., 3].min() > 0.99:
            raise InputError(
                f"{png}: occluder image has no transparency (needs an RGBA PNG with the background cut out)"
            )
        packs.append(AssetPack(cls, png.stem, rgba))
    if not packs:
        raise InputError(
            f"{root}: no occluder images found (expected MaskTheFace masks.cfg or RGBA PNGs named mask*/glass*/sunglass*/cup*/scarf*/hand*)"
        )
    return packs
