"""Landmark backends on occluded faces: detection rate on real masked photos, NME with occluders.

Per backend (``mediapipe``, the default; ``dlib``, HOG then CNN):

- ``with_mask``: share of the real photos of people wearing masks in
  ``faces_bulk/face_mask_detection/with_mask/`` in which the backend finds a face (no ground
  truth: a found face is counted; an unreadable or truncated file counts as not found), and
  ms per photo;
- ``occluded``: the human-labelled faces of ``faces/`` (13 AFLW2000-3D, 1 300W-LP, the iBUG
  300-W photo) with occluders pasted on the whole photo: our six procedural classes and the
  real cut-outs of ``occluders/`` (MaskTheFace templates, Face-Image-Occlusions mask, glasses,
  sunglasses); the face nearest the labelled one is scored. NME = mean point error /
  inter-ocular distance (outer eye corners 36-45), median per |yaw| bin (AFLW2000-3D
  ``Pose_Para``, else the Surrey fit), also box-normalised (sqrt(w h), the AFLW2000-3D
  convention, which does not blow up on profiles). Missed faces are counted, not scored.

- ``fit_gap``: "train like you test" (``synth-occ build --fit-landmarks``): how far the
  render fitted to the landmarks found on the occluded composite (as at inference) is from
  the one fitted to the annotated landmarks, on the real occluded set and on synthetic faces.

Note: the MediaPipe → iBUG-68 map was derived from these same 15 faces (without occluders);
its leave-one-face-out error is in the map file's comments.

    python tools/bench/bench_landmarks_occluded.py [--backends mediapipe,dlib] [--limit N]

Caveat: 2 CPU cores shared with other jobs; timings are upper bounds. JSON on stdout.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import _common  # noqa: F401
import numpy as np
from _common import SHARED, load_average

from deocc_core.errors import DeoccError
from deocc_core.face.align import align_face
from deocc_core.face.prepare import FaceInputConfig, prepare_face
from deocc_core.imageio import read_image
from deocc_core.landmarks.detect import make_detector
from deocc_core.landmarks.readers import find_annotation, read_annotation, read_mat_annotation
from deocc_core.morphable.fit import fit_landmarks
from deocc_core.morphable.model import load_model
from deocc_core.occluders.assets import load_asset_packs
from deocc_core.occluders.classes import OccluderClass
from deocc_core.occluders.composite import blend_layer, composite_occluder
from deocc_core.render.face import render_face
from deocc_core.synth.sources import make_source

BINS = ((0, 30), (30, 45), (45, 60), (60, 91))
COMMON = 60  # masked photos every backend runs on (dlib's CNN takes seconds on large photos)
REAL = ("surgical_blue", "N95", "cloth", "mask", "sunglass", "glass")


def labelled_faces() -> list:
    """The human-labelled photos of the shared data (sidecar landmarks beside each)."""
    d = SHARED / "faces"
    return sorted((d / "PRNet_AFLW2000").glob("*.jpg")) + [
        d / "face3d_300WLP" / "IBUG_image_008_1_0.jpg",
        d / "eos_examples" / "image_0010.png",
    ]


def occluded_set() -> list[tuple[str, str, float, np.ndarray, np.ndarray]]:
    """(face, occluder, |yaw| degrees, photo, labelled landmarks) for every pasted occluder."""
    packs = load_asset_packs(SHARED / "occluders")
    sfm = load_model(SHARED / "3dmm" / "eos_sfm" / "share" / "sfm_shape_3448.bin")
    out = []
    for i, path in enumerate(labelled_faces()):
        img = read_image(path)
        ann = find_annotation(path)
        lm = read_annotation(ann)
        try:
            yaw = float(read_mat_annotation(ann).yaw_deg)
        except DeoccError:
            yaw = float(np.degrees(fit_landmarks(sfm, lm).params.pose.yaw))
        for k, cls in enumerate(OccluderClass):
            rng = np.random.default_rng([i, k, 7])
            occ = composite_occluder(img, lm, rng, classes=[cls], yaw=yaw).image
            out.append((path.stem, cls.name.lower(), abs(yaw), occ, lm))
        for p in packs:
            if p.name.split("_left")[0].split("_right")[0] not in REAL:
                continue
            layer = p.draw(img.shape[:2], lm, np.random.default_rng(i), yaw)
            if layer is not None:
                out.append((path.stem, "real_" + p.name, abs(yaw), blend_layer(img, layer)[0], lm))
    return out


def _median(x: list[float]) -> float | None:
    return round(float(np.median(x)), 4) if x else None


def score_occluded(det, data) -> dict[str, object]:
    """Detection and NME per |yaw| bin of a backend on the occluded labelled photos."""
    rows, ms = [], []
    for _, _, yaw, img, gt in data:
        t = time.perf_counter()
        faces = det.detect(img)
        ms.append((time.perf_counter() - t) * 1e3)
        size = float(np.ptp(gt, 0).max())
        near = [f for f in faces if np.linalg.norm(f.landmarks.mean(0) - gt.mean(0)) < size / 2]
        if not near:
            rows.append((yaw, None, None))
            continue
        err = min(np.linalg.norm(f.landmarks - gt, axis=1).mean() for f in near)
        rows.append(
            (
                yaw,
                err / np.linalg.norm(gt[45] - gt[36]),
                err / np.sqrt(np.prod(np.ptp(gt, 0))),
            )
        )
    out: dict[str, object] = {"n": len(rows), "ms_per_photo_median": round(float(np.median(ms)), 1)}
    for lo, hi in BINS + ((0, 60),):
        r = [x for x in rows if lo <= x[0] < hi]
        out[f"yaw_{lo}_{min(hi, 90)}"] = {
            "n": len(r),
            "detected": sum(x[1] is not None for x in r),
            "nme_interocular_median": _median([x[1] for x in r if x[1] is not None]),
            "nme_box_median": _median([x[2] for x in r if x[2] is not None]),
        }
    return out


def score_with_mask(det, limit: int | None) -> dict[str, object]:
    """Share of the real masked photos in which a backend finds a face, and ms per photo."""
    files = sorted((SHARED / "faces_bulk" / "face_mask_detection" / "with_mask").glob("*.*"))
    files = files[:limit] if limit else files
    found, ms, unreadable, first = 0, [], 0, 0
    routes: dict[str, int] = {}
    for i, f in enumerate(files):
        try:
            img = read_image(f)
        except DeoccError:
            unreadable += 1
            continue
        t = time.perf_counter()
        faces = det.detect(img)
        ms.append((time.perf_counter() - t) * 1e3)
        found += bool(faces)
        first += bool(faces) and i < COMMON
        if faces:  # which route found the first face (mesh on a box, whole image, box+dlib)
            routes[faces[0].detector] = routes.get(faces[0].detector, 0) + 1
    return {
        f"found_in_first_{COMMON}": first,
        "photos": len(files),
        "found": found,
        "unreadable": unreadable,
        "detection_rate": round(found / max(len(files), 1), 4),
        "ms_per_photo_median": round(float(np.median(ms)), 1) if ms else None,
        "routes": dict(sorted(routes.items())),
    }


def _gap(det, crop: np.ndarray, lm: np.ndarray, model, cfg) -> dict[str, float] | None:
    """Landmark and fit gap between the annotated landmarks and those found on ``crop``."""
    size = float(np.sqrt(np.prod(np.ptp(lm, 0))))
    near = [
        f for f in det.detect(crop) if np.linalg.norm(f.landmarks.mean(0) - lm.mean(0)) < size / 2
    ]
    if not near:
        return None
    found = min(near, key=lambda f: float(np.linalg.norm(f.landmarks - lm, axis=1).mean()))
    fa = fit_landmarks(model, lm, config=cfg.fit)
    fd = fit_landmarks(model, found.landmarks, config=cfg.fit)
    ra = render_face(model, fa.params, cfg.size, cfg.size)
    rd = render_face(model, fd.params, cfg.size, cfg.size)
    ma, md = ra.mask > 0, rd.mask > 0
    return {
        "landmark_nme_interocular": float(
            np.linalg.norm(found.landmarks - lm, axis=1).mean() / np.linalg.norm(lm[45] - lm[36])
        ),
        "vertex_gap": float(
            np.linalg.norm(ra.projected[:, :2] - rd.projected[:, :2], axis=1).mean()
        )
        / size,
        "mask_iou": float((ma & md).sum() / max((ma | md).sum(), 1)),
        "yaw_gap_deg": abs(float(np.degrees(fa.params.pose.yaw - fd.params.pose.yaw))),
        "fit_nme_annotated": float(fa.nme),
        "fit_nme_detected": float(fd.nme),
    }


def fit_gap(det, data, n_synthetic: int) -> dict[str, object]:
    """Train like you test: the render fitted to annotated vs detected-on-the-composite landmarks.

    Real: the occluded human-labelled photos, cropped as ``prepare_face`` crops them (from the
    annotated landmarks). Synthetic: the starter source's faces with one occluder each, as
    ``synth-occ build`` draws them. Gaps: landmark NME (inter-ocular), mean distance between
    the two fits' projected vertices (face sizes), IoU of their masks M, yaw difference.
    """
    model = load_model("starter")
    cfg = FaceInputConfig(size=256)
    out: dict[str, object] = {}
    real = []
    for _, _, _, img, lm in data:
        a = align_face(img, lm, cfg.size)
        real.append(_gap(det, a.image, a.landmarks, model, cfg))
    src = make_source("synthetic", model=model, n=n_synthetic, size=512, seed=0)
    syn = []
    for i, key in enumerate(src.keys()):
        rec = src.load(key)[0]
        face = prepare_face(rec.image, rec.landmarks, model, cfg)
        occ = composite_occluder(
            face.crop, face.landmarks, np.random.default_rng(i), face_mask=face.face_mask
        )
        syn.append(_gap(det, occ.image, face.landmarks, model, cfg))
    for name, rows in (("real", real), ("synthetic", syn)):
        ok = [r for r in rows if r is not None]
        out[name] = {"n": len(rows), "detected": len(ok)} | {
            k + "_median": round(float(np.median([r[k] for r in ok])), 4)
            for k in (ok[0] if ok else {})
        }
    return out


def main() -> None:
    """Run the benchmark and print its JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backends", default="mediapipe,dlib", help="default: mediapipe,dlib")
    ap.add_argument(
        "--limit", type=int, default=None, help="first N masked photos only (default: all 300)"
    )
    ap.add_argument(
        "--synthetic", type=int, default=40, help="synthetic faces of the fit gap (default: 40)"
    )
    ap.add_argument(
        "--dlib-limit",
        type=int,
        default=COMMON,
        help=f"masked photos for dlib, whose CNN takes seconds per large photo (default: {COMMON})",
    )
    args = ap.parse_args()
    data = occluded_set()
    result: dict[str, object] = {
        "machine": platform.node(),
        "load_before": load_average(),
        "occluded_pairs": len(data),
        "backends": {},
    }
    for name in args.backends.split(","):
        det = make_detector(name)
        det.detect(data[0][3])  # warm-up: model loading, JIT
        limit = args.limit if name != "dlib" else min(args.limit or 300, args.dlib_limit)
        result["backends"][name] = {  # type: ignore[index]
            "with_mask": score_with_mask(det, limit),
            "occluded": score_occluded(det, data),
            "fit_gap": fit_gap(det, data, args.synthetic),
        }
    result["load_after"] = load_average()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
