"""dlib detectors on the shared AFLW2000-3D faces (13 photos, 450x450).

Detection rate and inter-ocular NME per |yaw| bin (from Pose_Para), and ms per image for HOG, HOG +
mirrored HOG, CNN and the default HOG+CNN cascade. Each image is timed ``--repeat`` times (min and
median kept), after one warm-up call per configuration. JSON on stdout.

Caveat: 2 CPU cores shared with other jobs; timings are upper bounds.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time

import _common  # noqa: F401
import cv2
import numpy as np
from _common import SHARED

from deocc_core.landmarks.detect import make_detector
from deocc_core.landmarks.readers import read_mat_annotation
from deocc_core.morphable.fit import landmark_nme

CONFIGS = {
    "hog": {"detector": "hog", "flip": False},
    "hog+flip": {"detector": "hog", "flip": True},
    "cnn": {"detector": "cnn"},
    "hog+cnn (default)": {"detector": "hog+cnn"},
}


def _bin(yaw: float) -> str:
    return "<30" if yaw < 30 else "30-45" if yaw <= 45 else ">45"


def main(repeat: int = 3) -> None:
    """Detection rate, NME and ms per image for each dlib detector; print JSON."""
    data = []
    for mat in sorted((SHARED / "faces" / "PRNet_AFLW2000").glob("*.mat")):
        a = read_mat_annotation(mat)
        data.append(
            (
                mat.stem,
                cv2.imread(str(mat.with_suffix(".jpg")))[:, :, ::-1].copy(),
                a.landmarks,
                abs(a.yaw_deg),
            )
        )
    res: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "note": "2 shared cores, loaded by other jobs",
        },
        "images": len(data),
        "repeat": repeat,
        "configs": {},
    }
    for name, kw in CONFIGS.items():
        det = make_detector("dlib", **kw)
        det.detect(data[0][1])  # warm-up (model load, CNN allocation)
        bins: dict[str, dict] = {
            b: {"n": 0, "detected": 0, "nme": []} for b in ("<30", "30-45", ">45")
        }
        ms_min, ms_med = [], []
        for _, img, gt, yaw in data:
            ts = []
            for _ in range(repeat):
                t = time.perf_counter()
                faces = det.detect(img)
                ts.append((time.perf_counter() - t) * 1e3)
            ms_min.append(min(ts))
            ms_med.append(float(np.median(ts)))
            b = bins[_bin(yaw)]
            b["n"] += 1
            if faces:
                b["detected"] += 1
                b["nme"].append(min(landmark_nme(f.landmarks, gt) for f in faces))
        res["configs"][name] = {
            "ms_per_image_median": round(float(np.median(ms_med)), 1),
            "ms_per_image_mean_of_min": round(float(np.mean(ms_min)), 1),
            "detected": f"{sum(b['detected'] for b in bins.values())}/{len(data)}",
            "by_yaw": {
                k: {
                    "detected": f"{v['detected']}/{v['n']}",
                    "nme_mean": round(float(np.mean(v["nme"])), 4) if v["nme"] else None,
                    "nme_median": round(float(np.median(v["nme"])), 4) if v["nme"] else None,
                }
                for k, v in bins.items()
            },
        }
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
