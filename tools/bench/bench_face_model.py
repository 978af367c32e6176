"""deocc's face model in ONE run beside the starter: landmark fit and the (completed) render.

Fit: ms/face and NME of the 68-landmark fit on the 15 shared human-labelled faces (13
AFLW2000-3D, the 300W-LP sample, the iBUG .pts) for deocc-face, the starter and Surrey.
Render at 256 px on those faces (their clean crops): the light estimate, the texture
completion (:func:`deocc_core.render.complete.complete_texture`) and the textured render
(:func:`deocc_core.render.complete.render_textured`) for deocc-face; the starter's whole
colour render (light + per-vertex shading) as the reference. Per face the median of
``--repeats`` runs (JIT warm-up excluded), then the median over faces; single thread; the
1-minute load average before and after says how busy the shared 2 cores were.

    python tools/bench/bench_face_model.py [--repeats 5]
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402

import _common  # noqa: E402, F401  (sys.path)
import numpy as np  # noqa: E402
from _common import SHARED, load_average, timeit_ms  # noqa: E402

from deocc_core.face.align import align_face  # noqa: E402
from deocc_core.face.prepare import FaceInputConfig, colour_render  # noqa: E402
from deocc_core.imageio import read_image  # noqa: E402
from deocc_core.landmarks.readers import find_annotation, read_annotation  # noqa: E402
from deocc_core.morphable.camera import rotation_matrix  # noqa: E402
from deocc_core.morphable.fit import fit_landmarks  # noqa: E402
from deocc_core.morphable.model import load_model  # noqa: E402
from deocc_core.render.complete import complete_texture, render_textured  # noqa: E402
from deocc_core.render.face import render_face  # noqa: E402
from deocc_core.render.light import estimate_face_light  # noqa: E402
from deocc_core.render.shading import vertex_normals  # noqa: E402
from deocc_core.render.skin import skin_field  # noqa: E402


def faces() -> list[tuple[np.ndarray, np.ndarray]]:
    """(photo, labelled landmarks) of the 15 labelled shared faces."""
    d = SHARED / "faces"
    paths = sorted((d / "PRNet_AFLW2000").glob("*.jpg")) + [
        d / "face3d_300WLP" / "IBUG_image_008_1_0.jpg",
        d / "eos_examples" / "image_0010.png",
    ]
    return [(read_image(p), read_annotation(find_annotation(p))) for p in paths]


def _median(rows: list[dict], key: str = "median_ms") -> float:
    return round(float(np.median([r[key] for r in rows])), 3)


def _time_face(fm, st, photo, lm, size, cfg, repeats) -> dict[str, dict]:
    """The render stages of one face (deocc-face) and the starter's whole colour render."""
    crop = align_face(photo, lm, size)
    p = fit_landmarks(fm, crop.landmarks).params
    rr = render_face(fm, p, size, size)
    rot = rotation_matrix(p.pose.pitch, p.pose.yaw, p.pose.roll).astype(np.float32)
    normals = vertex_normals(fm.vertices(p.id_coef, p.exp_coef), fm.triangles) @ rot.T
    field = skin_field(fm)

    def light_estimate():
        return estimate_face_light(
            crop.image,
            rr.raster,
            normals,
            field.albedo,
            field.weights,
            vertex_prior=field.prior,
        )[0]  # no albedo basis: prepare_face leaves it to the completion for texture models

    light = light_estimate()
    tex = complete_texture(crop.image, fm, rr.raster, rr.projected, normals, light)
    sp = fit_landmarks(st, crop.landmarks).params
    return {
        "raster": timeit_ms(lambda: render_face(fm, p, size, size), repeats),
        "light": timeit_ms(light_estimate, repeats),
        "complete": timeit_ms(
            lambda: complete_texture(crop.image, fm, rr.raster, rr.projected, normals, light),
            repeats,
        ),
        "textured": timeit_ms(
            lambda: render_textured(rr.raster, fm.uv, tex.albedo, normals, light), repeats
        ),
        "old": timeit_ms(lambda: colour_render(st, sp, crop.image, cfg), repeats),
    }


def main() -> None:
    """Time the fits and renders; JSON on stdout."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--size", type=int, default=256)
    a = ap.parse_args()
    import numba

    numba.set_num_threads(1)
    data = faces()
    res: dict = {"threads": 1, "load_average_1min_before": load_average(), "faces": len(data)}
    models = {
        "deocc-face": load_model("deocc-face"),
        "starter": load_model("starter"),
        "surrey": load_model(SHARED / "3dmm" / "eos_sfm" / "share" / "sfm_shape_3448.bin"),
    }
    for name, m in models.items():
        t, nme = [], []
        for _photo, lm in data:
            t.append(timeit_ms(lambda m=m, lm=lm: fit_landmarks(m, lm), a.repeats))
            nme.append(fit_landmarks(m, lm).nme)
        res[f"fit_{name}"] = {
            "vertices": m.n_vertices,
            "ms_per_face": _median(t),
            "nme_mean": round(float(np.mean(nme)), 4),
            "nme_median": round(float(np.median(nme)), 4),
        }
    cfg = FaceInputConfig(size=a.size)
    fm, st = models["deocc-face"], models["starter"]
    stages: dict[str, list] = {k: [] for k in ("raster", "light", "complete", "textured", "old")}
    for photo, lm in data:
        for k, v in _time_face(fm, st, photo, lm, a.size, cfg, a.repeats).items():
            stages[k].append(v)
    res[f"render_{a.size}px_ms"] = {
        "deocc_face_raster": _median(stages["raster"]),
        "deocc_face_light_estimate": _median(stages["light"]),
        "deocc_face_complete_texture": _median(stages["complete"]),
        "deocc_face_textured_render": _median(stages["textured"]),
        "starter_colour_render_whole": _median(stages["old"]),
    }
    res["load_average_1min_after"] = load_average()
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
