"""dlib HOG and CNN detectors on the shared AFLW2000-3D faces: detection rate and NME per yaw
bin, ms per image (450x450). JSON on stdout."""
from __future__ import annotations

import json
import time

import _common  # noqa: F401
import cv2
import numpy as np

from _common import SHARED
from deocc_core.landmarks.detect import make_detector
from deocc_core.landmarks.readers import read_mat_annotation
from deocc_core.morphable.fit import landmark_nme


def main():
    data = []
    for mat in sorted((SHARED / "faces" / "PRNet_AFLW2000").glob("*.mat")):
        a = read_mat_annotation(mat)
        data.append((cv2.imread(str(mat.with_suffix(".jpg")))[:, :, ::-1].copy(), a.landmarks, abs(a.yaw_deg)))
    res = {}
    for mode in ("hog", "cnn", "auto"):
        det = make_detector("dlib", mode=mode)
        det.detect(data[0][0])
        bins = {"<30": [0, 0, []], "30-45": [0, 0, []], ">45": [0, 0, []]}
        ms = []
        for img, gt, yaw in data:
            t = time.perf_counter()
            faces = det.detect(img)
            ms.append((time.perf_counter() - t) * 1e3)
            b = bins["<30" if yaw < 30 else "30-45" if yaw <= 45 else ">45"]
            b[1] += 1
            if faces:
                b[0] += 1
                b[2].append(min(landmark_nme(f.landmarks, gt) for f in faces))
        res[mode] = {"ms_per_image_median": round(float(np.median(ms)), 1),
                     "by_yaw": {k: {"detected": f"{v[0]}/{v[1]}", "nme": round(float(np.mean(v[2])), 4) if v[2] else None} for k, v in bins.items()}}
    print(json.dumps(res))


if __name__ == "__main__":
    main()
