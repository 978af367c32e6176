"""Derive ``deocc_core/landmarks/mediapipe_to_ibug68.txt`` from human-labelled faces.

For each labelled face (the 13 AFLW2000-3D faces, the 300W-LP face and the iBUG 300-W photo
of ``../shared/data/faces``) the face mesh runs on the eyes-level square around the
labelled landmarks (the detector plays no part). Then, for each iBUG point, among the 8
mesh points nearest to it on average (face-size units), the combination of 1 to 3 of
them with non-negative weights summing to 1 that best predicts the labelled point over all
faces is kept (each extra point must lower the mean error by 0.002 face sizes).
The leave-one-face-out error of each entry is written as its comment.

    python tools/make_mediapipe_map.py [--shared ../shared/data] [--out PATH]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from deocc_core.imageio import read_image  # noqa: E402
from deocc_core.landmarks.facemesh import FaceMeshDetector, _Roi  # noqa: E402
from deocc_core.landmarks.readers import find_annotation, read_annotation  # noqa: E402

NAMES = (
    "jaw_00 jaw_01 jaw_02 jaw_03 jaw_04 jaw_05 jaw_06 jaw_07 chin jaw_09 jaw_10 jaw_11 jaw_12 "
    "jaw_13 jaw_14 jaw_15 jaw_16 brow_r0 brow_r1 brow_r2 brow_r3 brow_r4 brow_l0 brow_l1 brow_l2 "
    "brow_l3 brow_l4 bridge_0 bridge_1 bridge_2 nose_tip nostril_r0 nostril_r1 nose_base "
    "nostril_l1 nostril_l0 eye_r_outer eye_r_top0 eye_r_top1 eye_r_inner eye_r_bot1 eye_r_bot0 "
    "eye_l_inner eye_l_top0 eye_l_top1 eye_l_outer eye_l_bot1 eye_l_bot0 mouth_r lip_top_r1 "
    "lip_top_r0 lip_top lip_top_l0 lip_top_l1 mouth_l lip_bot_l1 lip_bot_l0 lip_bot lip_bot_r0 "
    "lip_bot_r1 inner_r inner_top_r inner_top inner_top_l inner_l inner_bot_l inner_bot "
    "inner_bot_r"
).split()


def labelled_faces(shared: Path) -> list[Path]:
    """The human-labelled photos of the shared data (sidecar landmarks beside each)."""
    d = shared / "faces"
    return sorted((d / "PRNet_AFLW2000").glob("*.jpg")) + [
        d / "face3d_300WLP" / "IBUG_image_008_1_0.jpg",
        d / "eos_examples" / "image_0010.png",
    ]


def meshes(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Labelled landmarks ``[F, 68, 2]`` and face meshes ``[F, 468, 2]`` of the photos."""
    det = FaceMeshDetector()
    gts, ms = [], []
    for p in paths:
        gt = read_annotation(find_annotation(p)).astype(np.float64)
        img = read_image(p)
        d = gt[45] - gt[36]
        lo, hi = gt.min(0), gt.max(0)
        roi = _Roi(*((lo + hi) / 2), 1.5 * float(max(hi - lo)), -float(np.arctan2(d[1], d[0])))
        first = det._mesh(img, roi)
        from deocc_core.landmarks.facemesh import _roi_from_points

        second = det._mesh(img, _roi_from_points(first[0]))
        gts.append(gt)
        ms.append(second[0][:, :2])
    return np.array(gts), np.array(ms)


def fit_point(gt: np.ndarray, mesh: np.ndarray, iod: np.ndarray) -> tuple[list, np.ndarray, float]:
    """Best 1-3 mesh points and weights for one iBUG point: ``(ids, weights, mean error)``."""
    d = np.linalg.norm(mesh - gt[:, None], axis=2) / iod[:, None]
    cand = np.argsort(d.mean(0))[:8]
    best: tuple[list, np.ndarray, float] = ([], np.zeros(0), np.inf)
    for r in (1, 2, 3):
        for combo in itertools.combinations(cand, r):
            c = list(combo)
            a = np.concatenate(
                [mesh[:, c, 0] / iod[:, None], mesh[:, c, 1] / iod[:, None], 100 * np.ones((1, r))]
            )
            b = np.concatenate([gt[:, 0] / iod, gt[:, 1] / iod, [100.0]])
            w, _ = nnls(a, b)
            w = w / w.sum()
            err = float(
                np.mean(np.linalg.norm((mesh[:, c] * w[None, :, None]).sum(1) - gt, axis=1) / iod)
            )
            if err + 0.002 * r < best[2] + 0.002 * len(best[0]):
                best = (c, w, err)
    return best


def main() -> None:
    """Derive the map and write it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    root = Path(__file__).resolve().parents[1]
    parser.add_argument(
        "--shared",
        type=Path,
        default=root.parent / "shared" / "data",
        help="shared data folder (default: ../shared/data beside the repo)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=root / "deocc_core" / "landmarks" / "mediapipe_to_ibug68.txt",
        help="output file (default: the packaged map)",
    )
    args = parser.parse_args()
    paths = labelled_faces(args.shared)
    gts, ms = meshes(paths)
    # face size sqrt(w * h) of the labelled box: inter-ocular distance collapses on profiles and
    # would let the two most turned faces decide every entry
    iod = np.sqrt(np.prod(np.ptp(gts, axis=1), axis=1))
    lines = [
        "# MediaPipe face mesh (468 points) -> iBUG 300-W 68 points, 0-based.",
        "# Generated by tools/make_mediapipe_map.py from the human-labelled shared faces",
        f"# ({len(paths)} faces: AFLW2000-3D, 300W-LP, iBUG 300-W); not a published table.",
        "# Columns: ibug_index  mesh_ids  weights   # name: mean error, leave-one-face-out error",
        "# (face sizes: sqrt of the labelled box area). Weights are non-negative, sum to 1.",
    ]
    for i in range(68):
        ids, w, err = fit_point(gts[:, i], ms, iod)
        w = np.round(w, 3)
        w[-1] = round(1.0 - float(w[:-1].sum()), 3)
        loo = []
        for f in range(len(paths)):
            keep = np.arange(len(paths)) != f
            c, wf, _ = fit_point(gts[keep, i], ms[keep], iod[keep])
            loo.append(np.linalg.norm((ms[f, c] * wf[:, None]).sum(0) - gts[f, i]) / iod[f])
        lines.append(
            f"{i:<3d} {','.join(str(int(v)) for v in ids):<14s} "
            f"{','.join(f'{x:.3f}' for x in w):<18s} "
            f"# {NAMES[i]}: {err:.3f}, LOO {np.mean(loo):.3f}"
        )
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
