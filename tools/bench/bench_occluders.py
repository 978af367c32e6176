"""Occluder composites at 256 px on real faces, in ms per composite.

Per class for the 3D default path (build + render + composite, and its stages), the mixed
sampler, the per-face scene cost, and the earlier 2D path as the reference measured in the
same run. Process CPU time on one core (numba / OpenCV limited to one thread), JIT warm-up
excluded. JSON on stdout.
"""

from __future__ import annotations

import json
import os
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import _common  # noqa: E402, F401
import cv2  # noqa: E402
import numpy as np  # noqa: E402
from _common import SHARED  # noqa: E402

from deocc_core.face.prepare import FaceInputConfig, prepare_face  # noqa: E402
from deocc_core.imageio import read_image  # noqa: E402
from deocc_core.landmarks.readers import read_mat_annotation  # noqa: E402
from deocc_core.morphable.model import load_model  # noqa: E402
from deocc_core.occluders.classes import OccluderClass  # noqa: E402
from deocc_core.occluders.composite import composite_occluder  # noqa: E402
from deocc_core.occluders.layer import render_layer  # noqa: E402
from deocc_core.occluders.occlude import build_occluder, occlude_face  # noqa: E402
from deocc_core.occluders.scene import composite_layer, prepare_scene  # noqa: E402

N = 24  # composites per class


def faces(model):
    """The shared AFLW2000-3D faces (|yaw| <= 60), cropped, fitted and rendered."""
    out = []
    for mat in sorted((SHARED / "faces" / "PRNet_AFLW2000").glob("*.mat")):
        ann = read_mat_annotation(mat)
        if ann.yaw_deg is not None and abs(ann.yaw_deg) > 60:
            continue
        f = prepare_face(
            read_image(mat.with_suffix(".jpg")), ann.landmarks, model, FaceInputConfig(256)
        )
        out.append(f)
    return out


def cpu_ms(fn, n: int) -> float:
    """Process CPU ms per call of ``fn(i)`` over ``n`` calls after one warm-up."""
    fn(0)  # warm-up (JIT, caches)
    t = time.process_time()
    for i in range(n):
        fn(i)
    return round((time.process_time() - t) / n * 1e3, 2)


def main() -> None:
    """Print the JSON."""
    cv2.setNumThreads(1)
    model = load_model("starter")
    fs = faces(model)
    t = time.process_time()
    scenes = [
        prepare_scene(
            f.crop,
            f.landmarks,
            model,
            f.fit.params,
            f.render_result.depth,
            f.face_mask,
            jpeg_quality=90,
        )
        for f in fs
    ]
    scene_ms = round((time.process_time() - t) / len(fs) * 1e3, 2)
    per_class, stages = {}, {}
    for c in OccluderClass:
        acc = np.zeros(4)  # build, render, composite seconds; count

        def one(i, c=c, acc=acc):
            rng = np.random.default_rng(i)
            sc = scenes[i % len(scenes)]
            t0 = time.process_time()
            mesh, _ = build_occluder(sc, c, rng)
            t1 = time.process_time()
            layer = render_layer(mesh, sc.head.pose, sc.head.rotation, sc.ref_depth, sc.light)
            t2 = time.process_time()
            if layer is not None:
                composite_layer(sc.image, sc, layer, rng)
            t3 = time.process_time()
            acc[:] += (t1 - t0, t2 - t1, t3 - t2, 1)

        per_class[c.name.lower()] = cpu_ms(one, N)
        stages[c.name.lower()] = {
            k: round(v / acc[3] * 1e3, 2)
            for k, v in zip(("build", "render", "composite"), acc[:3], strict=True)
        }
    mixed = cpu_ms(lambda i: occlude_face(scenes[i % len(scenes)], np.random.default_rng(i)), 3 * N)
    ref_2d = cpu_ms(
        lambda i: composite_occluder(
            fs[i % len(fs)].crop, fs[i % len(fs)].landmarks, np.random.default_rng(i)
        ),
        3 * N,
    )
    print(
        json.dumps(
            {
                "composite_256_cpu_ms": per_class,
                "stages_cpu_ms": stages,
                "occlude_face_mixed_cpu_ms": mixed,
                "scene_per_face_cpu_ms": scene_ms,
                "reference_2d_cpu_ms": ref_2d,
                "ratio_3d_mean_over_2d": round(
                    float(np.mean(list(per_class.values()))) / ref_2d, 2
                ),
                "faces": len(fs),
            }
        )
    )


if __name__ == "__main__":
    main()
