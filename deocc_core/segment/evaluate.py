"""Held-out evaluation of occlusion masks: the segmenter's m̂ against G's own mask channel.

Everything here is kept out of training (:mod:`deocc_core.segment.occlude`):

- the faces: the identity-disjoint ``test`` split of the face crops;
- the occluders: every real cut-out of ``../shared/data/occluders`` by family
  (MaskTheFace templates; the same shapes dressed in MaskTheFace's fabric textures or in
  insightface's mask images; Face-Image-Occlusions' mask, glasses and sunglasses);
- the held-out half of the CelebAMask-HQ faces wearing real eyeglasses (split ``glasses``,
  :func:`deocc_core.segment.faces.split_glasses`), with their pixel labels (class 3: frame
  and lenses; the Face-Image-Occlusions glasses, whose alpha is the frame only, are scored
  against the frame plus the lenses it encloses, the same definition);
- deocc's own 3D occluders (optional): ``synth-occ`` shard samples of test photos
  (:mod:`deocc_core.segment.occ3d`), scored per class; eyeglasses both as frame + lenses
  and as the object alone (what ``tools/eval_default.py`` scores);
- clean test faces (the share of the crop m̂ marks: should be ~0);
- real masked photos (``with_mask``, ``rwmfd_part1``): no labels, a contact sheet to look at.

Both masks are computed on exactly the same crop: the composite goes through
:func:`deocc_core.face.prepare.prepare_face` (what inference does), G runs on its crop and
render, the segmenter on its crop, and the true mask is warped by the same matrix. The
landmarks are the clean face's (for both models): this measures the masks, not the detector.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from deocc_core.errors import InputError
from deocc_core.face.prepare import FaceInputConfig, prepare_face
from deocc_core.nets.segmenter import Segmenter, run_segmenter
from deocc_core.occluders.assets import AssetPack, load_asset_packs, read_rgba
from deocc_core.occluders.classes import OccluderClass
from deocc_core.occluders.regions import face_hull_mask
from deocc_core.segment.faces import GLASSES_CLASS, FaceCrops
from deocc_core.segment.occ3d import OccSamples, fill_holes
from deocc_core.viz import image_grid

__all__ = [
    "FAMILIES",
    "SegEvalResult",
    "binary_iou",
    "evaluate_masks",
    "heldout_layers",
    "results_markdown",
]

log = logging.getLogger(__name__)
FAMILIES = (
    "mask: MaskTheFace templates",
    "mask: MaskTheFace fabric textures",
    "mask: insightface images",
    "mask: Face-Image-Occlusions",
    "eyeglasses: Face-Image-Occlusions",
    "sunglasses: Face-Image-Occlusions",
)
THRESHOLD = 0.5  # m̂ > this is "occluded" for IoU and areas
MAX_SIDE = 384  # real cut-outs are shrunk to this (px, longer side): crops are 128 px


@dataclass(frozen=True)
class SegEvalResult:
    """Scores per method (``"segmenter"``, ``"default G"``) and the sheets written.

    Attributes:
        scores: ``{method: {row: value}}``; rows are the families' IoU, ``real eyeglasses
            (CelebAMask-HQ)`` IoU, ``clean faces: area`` (share of the crop marked),
            ``masks: eyes marked`` and ``glasses: mouth marked`` (share of those parts).
        counts: samples per row. skipped: samples the face preparation refused.
        sheets: PNG paths.
    """

    scores: dict[str, dict[str, float]]
    counts: dict[str, int]
    skipped: int
    real_photos: dict[str, int] = field(default_factory=dict)
    sheets: tuple[Path, ...] = ()


def _mtf_front(packs: list[AssetPack]) -> list[AssetPack]:
    return [p for p in packs if p.anchors is not None and p.view == "front"]


def _redress(pack: AssetPack, texture: np.ndarray, tile: bool) -> AssetPack:
    """The template's silhouette and shading, dressed in ``texture`` ([h, w, 3] float32)."""
    h, w = pack.rgba.shape[:2]
    if tile:  # a fabric: repeat it at its own scale (about a fifth of the mask)
        k = max(8, w // 5)
        t = cv2.resize(texture, (k, int(k * texture.shape[0] / texture.shape[1])))
        t = np.tile(t, (h // t.shape[0] + 1, w // t.shape[1] + 1, 1))[:h, :w]
    else:  # an image of a whole mask: stretch it over the silhouette's box
        ys, xs = np.nonzero(pack.rgba[..., 3] > 0.1)
        t = np.zeros((h, w, 3), np.float32)
        t[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = cv2.resize(
            texture, (int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1)
        )
    lum = pack.rgba[..., :3].mean(2, keepdims=True)
    shade = np.clip(lum / max(float(np.median(lum[pack.rgba[..., 3] > 0.5])), 1e-3), 0.5, 1.2)
    rgba = np.concatenate([np.clip(t * shade, 0, 1), pack.rgba[..., 3:]], 2).astype(np.float32)
    return AssetPack(pack.occluder_class, pack.name, rgba, pack.anchors, pack.view)


def _shrink(pack: AssetPack, side: int = MAX_SIDE) -> AssetPack:
    """The pack at most ``side`` px on its longer side (anchors scaled alike)."""
    k = side / max(pack.rgba.shape[:2])
    if k >= 1:
        return pack
    rgba = cv2.resize(pack.rgba, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    anchors = None if pack.anchors is None else pack.anchors * k
    return AssetPack(pack.occluder_class, pack.name, rgba, anchors, pack.view)


def heldout_layers(occluders: Path) -> dict[str, list[Callable[[], AssetPack]]]:
    """The held-out real occluders by family (see the module docstring), made on first use.

    Raises:
        InputError: the folder is missing or a family has no images.
    """
    packs = [_shrink(p) for p in load_asset_packs(occluders)]
    front = _mtf_front(packs)
    cloth = [p for p in front if "surgical" in p.name or "cloth" in p.name] or front
    fabrics = []
    for f in sorted((occluders / "MaskTheFace" / "masks" / "textures").rglob("*")):
        if f.suffix.lower() in (".png", ".jpg", ".jpeg"):
            fabrics.append(read_rgba(f)[..., :3])
    insight = [read_rgba(f)[..., :3] for f in sorted((occluders / "insightface").glob("*.jpg"))]
    fio = {p.name: p for p in packs if p.anchors is None}

    def of(cls: OccluderClass) -> list[Callable[[], AssetPack]]:
        return [functools.partial(lambda p: p, p) for p in fio.values() if p.occluder_class == cls]

    out = {
        FAMILIES[0]: [functools.partial(lambda p: p, p) for p in front],
        FAMILIES[1]: [functools.partial(_redress, c, t, True) for c in cloth for t in fabrics],
        FAMILIES[2]: [functools.partial(_redress, c, t, False) for c in cloth for t in insight],
        FAMILIES[3]: of(OccluderClass.MASK),
        FAMILIES[4]: of(OccluderClass.EYEGLASSES),
        FAMILIES[5]: of(OccluderClass.SUNGLASSES),
    }
    empty = [k for k, v in out.items() if not v]
    if empty:
        raise InputError(f"{occluders}: no images for {', '.join(empty)}")
    return out


def binary_iou(pred: np.ndarray, true: np.ndarray) -> float:
    """IoU of two ``[S, S]`` bool masks; 1 when both are empty."""
    u = (pred | true).sum()
    return float((pred & true).sum() / u) if u else 1.0


def _parts(lm: np.ndarray, shape: tuple[int, int], idx: list[range]) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    for r in idx:
        cv2.fillPoly(
            m, [np.round(cv2.convexHull(lm[list(r)].astype(np.float32))).astype(np.int32)], 1
        )
    return m > 0


def evaluate_masks(  # noqa: C901 (one pass over every crop and both methods)
    crops: FaceCrops,
    occluders: Path,
    segmenter: Segmenter,
    generator: tuple | None,
    *,
    n_faces: int = 50,
    seed: int = 0,
    real_photos: dict[str, list[npt.NDArray[np.uint8]]] | None = None,
    occ3d: OccSamples | None = None,
    out: Path,
    progress: Callable[[int], None] | None = None,
) -> SegEvalResult:
    """Score the segmenter (and G's mask channel when ``generator`` is given) held out.

    Args:
        crops: face crops; their ``test`` and ``glasses`` splits are used.
        occluders: the real occluder folder (``../shared/data/occluders``).
        segmenter: the net (eval mode).
        generator: ``(G, spec, model, device)`` for G's m̂, or None.
        n_faces: test faces (each gets one occluder per family, and is scored clean).
        seed: draws of faces and occluders.
        real_photos: ``{name: [aligned crops]}`` of real masked photos (sheet only).
        occ3d: 3D-occluded crops of test photos, scored per class (``3D: <class>``).
        out: folder for the sheets.
        progress: called once per scored crop.

    Returns:
        SegEvalResult.
    """
    rng = np.random.default_rng(seed)
    families = heldout_layers(occluders)
    test = crops.select((crops.split == "test") & (crops.padded <= 0.6))
    pick = rng.choice(len(test.images), size=min(n_faces, len(test.images)), replace=False)
    s = crops.images.shape[1]
    cfg = FaceInputConfig(size=s)
    items: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []  # row, image, lm, true
    for i in pick:
        img, lm = test.images[i], test.landmarks[i]
        items.append(("clean faces: area", img, lm, np.zeros((s, s), bool)))
        for fam, packs in families.items():
            for _ in range(8):
                layer = packs[rng.integers(len(packs))]().draw((s, s), lm, rng, None)
                if layer is not None:
                    break
            if layer is None:
                continue
            a = layer[..., 3:]
            comp = img.astype(np.float32) / 255 * (1 - a) + layer[..., :3] * a
            true = a[..., 0] > 0.5
            if fam.startswith("eyeglasses"):  # frame + the lenses it encloses, as CelebAMask-HQ
                true = fill_holes(true)
            items.append((fam, np.round(comp * 255).astype(np.uint8), lm, true))
    glasses = crops.select(crops.split == "glasses")
    for img, lm, lab in zip(glasses.images, glasses.landmarks, glasses.labels, strict=True):
        items.append(("real eyeglasses (CelebAMask-HQ)", img, lm, lab == GLASSES_CLASS))
    if occ3d is not None:
        items += _occ3d_items(occ3d)

    rows: dict[str, dict[str, list[float]]] = {"segmenter": {}, "default G": {}}
    sheet_rows: list[list[np.ndarray]] = []  # 16 held-out composites, 8 real glasses
    sheet_kind: list[bool] = []
    skipped = 0
    for row, img, lm, true in items:
        if progress is not None:
            progress(1)
        crop, lm2, true2, g_mask = img, lm, true, None
        if generator is not None:
            G, spec, model, device = generator
            from deocc_core.errors import SkipInput
            from deocc_core.nets.io import run_generator

            try:
                face = prepare_face(img, lm, model, cfg)
            except SkipInput:
                skipped += 1
                continue
            crop, lm2 = face.crop, face.landmarks
            true2 = (
                cv2.warpAffine(true.astype(np.uint8), face.matrix, (s, s), flags=cv2.INTER_NEAREST)
                > 0
            )
            g_mask = run_generator(G, face.crop, face.render, spec, device).mask > THRESHOLD
        seg = run_segmenter(segmenter, crop) > THRESHOLD
        for method, pred in (("segmenter", seg), ("default G", g_mask)):
            if pred is None:
                continue
            r = rows[method]
            if row == "clean faces: area":
                r.setdefault(row, []).append(float(pred.mean()))
                r.setdefault("clean faces: face hull area", []).append(
                    float(pred[face_hull_mask(lm2, (s, s))].mean())
                )
                continue
            r.setdefault(row, []).append(binary_iou(pred, true2))
            if row.startswith("3D"):
                continue
            if row.startswith("mask"):
                eyes = _parts(lm2, (s, s), [range(36, 42), range(42, 48)])
                r.setdefault("masks: eyes marked", []).append(float(pred[eyes].mean()))
            elif "glasses" in row:
                mouth = _parts(lm2, (s, s), [range(48, 60)])
                r.setdefault("eyewear: mouth marked", []).append(float(pred[mouth].mean()))
        real = row.startswith("real")
        kept = sum(real == r for r in sheet_kind)
        if kept < (8 if real else 16) and (row != "clean faces: area" or kept % 6 == 0):
            blank = np.zeros((s, s), np.uint8)
            sheet_kind.append(real)
            sheet_rows.append(
                [crop, true2.astype(np.uint8) * 255]
                + [blank if g_mask is None else g_mask.astype(np.uint8) * 255]
                + [seg.astype(np.uint8) * 255]
            )
    out.mkdir(parents=True, exist_ok=True)
    sheets = [out / "heldout_sheet.png"]
    cols = [sheet_rows[k : k + 8] for k in range(0, len(sheet_rows), 8)]
    grid = np.concatenate([image_grid(c) for c in cols if len(c) == len(cols[0])], 1)
    cv2.imwrite(str(sheets[0]), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    n_real: dict[str, int] = {}
    if real_photos:
        for name, faces in real_photos.items():
            n_real[name] = len(faces)
            if not faces:
                continue
            tiles = []
            for img in faces:
                seg = run_segmenter(segmenter, img)
                tiles.append([img, _overlay(img, seg)])
            grid = image_grid([sum(tiles[k : k + 4], []) for k in range(0, len(tiles), 4)])
            p = out / f"real_{name}_sheet.png"
            cv2.imwrite(str(p), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
            sheets.append(p)
    scores = {m: {k: float(np.mean(v)) for k, v in r.items()} for m, r in rows.items() if r}
    counts = {k: len(v) for k, v in rows["segmenter"].items()}
    return SegEvalResult(scores, counts, skipped, n_real, tuple(sheets))


def _occ3d_items(occ: OccSamples) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """``(row, crop, landmarks, true mask)`` per 3D sample; eyeglasses twice (see module)."""
    items = []
    for img, lm, t, f, c in zip(
        occ.images, occ.landmarks, occ.targets, occ.frames, occ.classes, strict=True
    ):
        items.append((f"3D: {c}", img, lm, t))
        if c == "eyeglasses":
            items.append(("3D: eyeglasses, object only", img, lm, f))
    return items


def _overlay(img: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """The crop with m̂ > 0.5 tinted red."""
    m = (prob > THRESHOLD)[..., None]
    return np.where(m, (img * 0.4 + np.array([255, 0, 0]) * 0.6).astype(np.uint8), img)


def results_markdown(result: SegEvalResult, note: str) -> str:
    """The ``docs/RESULTS.md`` section of a :class:`SegEvalResult` (a markdown table)."""
    methods = list(result.scores)
    keys = list(result.scores["segmenter"])
    lines = [
        "## Occlusion mask m̂ on held-out occluders (issue 24, part 1)",
        "",
        note,
        "",
        "| row | n | " + " | ".join(methods) + " |",
        "|---|---|" + "---|" * len(methods),
    ]
    for k in keys:
        vals = [f"{result.scores[m][k]:.3f}" if k in result.scores[m] else "–" for m in methods]
        lines.append(f"| {k} | {result.counts.get(k, 0)} | " + " | ".join(vals) + " |")
    lines += [
        "",
        "IoU rows: mean per-crop IoU of m̂ > 0.5 with the object's alpha > 0.5 (real "
        "eyeglasses: CelebAMask-HQ class 3). Area rows: share of the crop / face hull / "
        "eye / mouth pixels that m̂ marks (lower is better).",
        f"Face preparation refused {result.skipped} composite(s) (left out for both).",
        "",
        "```json",
        json.dumps({"scores": result.scores, "counts": result.counts}, indent=1, sort_keys=True),
        "```",
    ]
    return "\n".join(lines) + "\n"
