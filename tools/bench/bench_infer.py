"""End-to-end deocc-infer ms per face at 256x256 on CPU, split into detect / landmarks / fit /
render / G / paste (full-size generator, ngf 64, untrained weights: speed only). JSON.
"""

from __future__ import annotations

import json
import time

import _common  # noqa: F401
import numpy as np
import torch
from _common import SHARED

from deocc_core.imageio import read_image
from deocc_core.infer.pipeline import deocclude, paste_back
from deocc_core.landmarks.detect import make_detector
from deocc_core.morphable.fit import fit_landmarks
from deocc_core.morphable.model import load_model
from deocc_core.nets.io import GeneratorSpec, prepare_generator, run_generator
from deocc_core.nets.networks import define_generator
from deocc_core.render.face import render_face
from deocc_core.synth.align import align_face


def main():
    img = read_image(SHARED / "faces" / "PRNet_AFLW2000" / "image00050.jpg")
    det = make_detector("dlib", mode="hog")
    m = load_model("starter")
    G = prepare_generator(define_generator(256, ngf=64))  # as deocc-infer runs it (NHWC)
    t = {k: [] for k in ("detect", "landmarks", "fit", "render", "G", "paste")}
    for it in range(6):
        t0 = time.perf_counter()
        boxes = det.boxes(img)
        t1 = time.perf_counter()
        lm = det.landmarks_in(img, boxes[0][0])
        t2 = time.perf_counter()
        crop = align_face(img, lm, 256)
        fit = fit_landmarks(m, crop.landmarks)
        t3 = time.perf_counter()
        rr = render_face(m, fit.params, 256, 256)
        t4 = time.perf_counter()
        out = run_generator(G, crop.image, rr.image, False)
        t5 = time.perf_counter()
        paste_back(img, out, crop.inverse, rr.mask)
        t6 = time.perf_counter()
        if it:  # first iteration: JIT / allocator warm-up
            for k, a, b in (
                ("detect", t0, t1),
                ("landmarks", t1, t2),
                ("fit", t2, t3),
                ("render", t3, t4),
                ("G", t4, t5),
                ("paste", t5, t6),
            ):
                t[k].append((b - a) * 1e3)
    # the same photo through the library entry point deocc-infer uses (detector included)
    spec = GeneratorSpec(size=256, ngf=64)
    e2e = []
    for it in range(4):
        t0 = time.perf_counter()
        deocclude(img, G, spec, m, det, torch.device("cpu"))
        if it:
            e2e.append((time.perf_counter() - t0) * 1e3)
    res = {k: round(float(np.median(v)), 2) for k, v in t.items()}
    res["total_ms"] = round(sum(res.values()), 1)
    res["deocclude_end_to_end_ms"] = round(float(np.median(e2e)), 1)
    res["threads"] = torch.get_num_threads()
    res["image_px"] = list(img.shape[:2])
    print(json.dumps({"infer_ms_per_face_256_cpu": res}))


if __name__ == "__main__":
    main()
