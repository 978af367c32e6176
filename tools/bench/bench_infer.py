"""End-to-end deocc-infer ms per face at 256x256 on CPU, per stage. JSON.

Stages: detect / landmarks / prepare (prepare_face: align + fit + render, the path synth
shares) / G / paste (m̂ → weight → warp into the photo). Full-size mask-aware generator,
ngf 64, untrained weights: speed only.
"""

from __future__ import annotations

import json
import time

import _common  # noqa: F401
import numpy as np
import torch
from _common import SHARED

from deocc_core.face.prepare import FaceInputConfig, prepare_face
from deocc_core.imageio import read_image
from deocc_core.infer.paste import paste_back, paste_region, paste_weight
from deocc_core.infer.pipeline import deocclude
from deocc_core.landmarks.detect import make_detector
from deocc_core.morphable.model import load_model
from deocc_core.nets.io import GeneratorSpec, prepare_generator, run_generator


def main() -> None:
    """Print the per-stage timings as JSON."""
    img = read_image(SHARED / "faces" / "PRNet_AFLW2000" / "image00050.jpg")
    det = make_detector("dlib", mode="hog")
    m = load_model("starter")
    spec = GeneratorSpec(size=256, ngf=64, blend="mask")
    G = prepare_generator(spec.build())  # as deocc-infer runs it (NHWC)
    t = {k: [] for k in ("detect", "landmarks", "prepare", "G", "paste")}
    config = FaceInputConfig(size=256)
    for it in range(6):
        t0 = time.perf_counter()
        boxes = det.boxes(img)
        t1 = time.perf_counter()
        lm = det.landmarks_in(img, boxes[0][0])
        t2 = time.perf_counter()
        face = prepare_face(img, lm, m, config)
        t3 = time.perf_counter()
        g = run_generator(G, face.crop, face.render, spec)
        t4 = time.perf_counter()
        region = paste_region(spec.blend, g.mask, face.face_mask)
        paste_back(img, g.output, face.inverse, paste_weight(region))
        t5 = time.perf_counter()
        if it:  # first iteration: JIT / allocator warm-up
            for k, a, b in (
                ("detect", t0, t1),
                ("landmarks", t1, t2),
                ("prepare", t2, t3),
                ("G", t3, t4),
                ("paste", t4, t5),
            ):
                t[k].append((b - a) * 1e3)
    # the same photo through the library entry point deocc-infer uses (detector included)
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
