"""Fit ms/face + NME (Surrey, 68-landmark BFM basis, starter) on the shared faces (13 AFLW2000-3D,
the 300W-LP sample, the iBUG .pts; NME = mean error / sqrt(box area)),
eos-py's own fit as the reference in the same run, and render ms at 256x256 for the BFM mean
mesh (53,215 vertices / 105,840 triangles), frontal and 45° yaw, single thread. JSON on stdout.
"""

from __future__ import annotations

import json
import time

import _common  # noqa: F401  (sys.path)
import numpy as np
from _common import SHARED, timeit_ms
from scipy.io import loadmat

from deocc_core.morphable.camera import project
from deocc_core.morphable.fit import fit_landmarks, landmark_nme
from deocc_core.morphable.model import load_model
from deocc_core.morphable.params import FitParams, Pose
from deocc_core.render.face import render_face
from deocc_core.render.raster import rasterize


def faces():
    """(landmarks [68,2] 0-based px, dataset yaw in degrees with OUR sign, source) for the shared faces."""
    out = []
    for mat in sorted((SHARED / "faces" / "PRNet_AFLW2000").glob("*.mat")):
        d = loadmat(mat)
        out.append((d["pt3d_68"][:2].T - 1.0, -float(np.degrees(d["Pose_Para"][0, 1])), "aflw2000"))
    for mat in sorted((SHARED / "faces" / "face3d_300WLP").glob("*.mat")):
        d = loadmat(mat)
        out.append((d["pt2d"].T - 1.0, -float(np.degrees(d["Pose_Para"][0, 1])), "300w_lp"))
    for pts in sorted((SHARED / "faces" / "eos_examples").glob("*.pts")):
        t = pts.read_text()
        lm = (
            np.array(
                [ln.split() for ln in t[t.index("{") + 1 : t.index("}")].split("\n") if ln.strip()],
                float,
            )
            - 1.0
        )
        out.append((lm, None, "ibug"))
    return out


def bench_fit(model, data, repeats=5):
    nmes, ms, iters, yaw_err = [], [], [], []
    by_yaw = {"<30": [], "30-45": [], ">45": [], "unknown": []}
    for lm, yaw, _ in data:
        r = fit_landmarks(model, lm)  # warm-up (JIT compile on the first face)
        runs = []
        for _ in range(repeats):
            t = time.perf_counter()
            r = fit_landmarks(model, lm)
            runs.append((time.perf_counter() - t) * 1e3)
        ms.append(min(runs))
        nmes.append(r.nme)
        iters.append(r.iterations)
        if yaw is not None:
            yaw_err.append(abs(np.degrees(r.params.pose.yaw) - yaw))
        key = (
            "unknown"
            if yaw is None
            else "<30"
            if abs(yaw) < 30
            else "30-45"
            if abs(yaw) <= 45
            else ">45"
        )
        by_yaw[key].append(r.nme)
    return {
        "ms_per_face_median": round(float(np.median(ms)), 3),
        "ms_per_face_max": round(float(np.max(ms)), 3),
        "lm_iterations_median": float(np.median(iters)),
        "nme_mean": round(float(np.mean(nmes)), 4),
        "nme_max": round(float(np.max(nmes)), 4),
        "yaw_abs_err_deg_median": round(float(np.median(yaw_err)), 2),
        "nme_by_yaw": {k: round(float(np.mean(v)), 4) if v else None for k, v in by_yaw.items()},
        "faces": len(nmes),
    }


def bench_eos(data):
    import eos

    share = SHARED / "3dmm" / "eos_sfm" / "share"
    model = eos.morphablemodel.load_model(str(share / "sfm_shape_3448.bin"))
    blend = eos.morphablemodel.load_blendshapes(str(share / "expression_blendshapes_3448.bin"))
    mm = eos.morphablemodel.MorphableModel(
        model.get_shape_model(),
        blend,
        color_model=eos.morphablemodel.PcaModel(),
        vertex_definitions=None,
        texture_coordinates=model.get_texture_coordinates(),
    )
    mapper = eos.core.LandmarkMapper(str(share / "ibug_to_sfm.txt"))
    topo = eos.morphablemodel.load_edge_topology(str(share / "sfm_3448_edge_topology.json"))
    contour = eos.fitting.ContourLandmarks.load(str(share / "ibug_to_sfm.txt"))
    mcontour = eos.fitting.ModelContour.load(str(share / "sfm_model_contours.json"))
    ms, nmes = [], []
    for lm, _, _ in data:
        lms = [eos.core.Landmark(str(i + 1), [float(x), float(y)]) for i, (x, y) in enumerate(lm)]
        t = time.perf_counter()
        mesh, pose, shape, blendc = eos.fitting.fit_shape_and_pose(
            mm, lms, mapper, 450, 450, topo, contour, mcontour, 5
        )
        ms.append((time.perf_counter() - t) * 1e3)
        verts = np.asarray(mesh.vertices)
        p = pose.get_projection() @ pose.get_modelview()
        hom = np.c_[verts, np.ones(len(verts))] @ p.T
        xy = np.c_[(hom[:, 0] + 1) * 225, 450 - (hom[:, 1] + 1) * 225]
        ids = [
            (i, int(mapper.convert(str(i + 1))))
            for i in range(68)
            if mapper.convert(str(i + 1)) is not None
        ]
        pred = np.array([xy[v] for _, v in ids])
        nmes.append(landmark_nme(pred, lm[[i for i, _ in ids]]))
    return {
        "ms_per_face_contour_5it": round(float(np.median(ms)), 2),
        "nme_mean_mapped_points": round(float(np.mean(nmes)), 4),
    }


def bench_render():
    import numba

    numba.set_num_threads(1)
    m = load_model(SHARED / "3dmm" / "3DDFA")
    out = {"vertices": m.n_vertices, "triangles": int(len(m.triangles))}
    scale = 0.55 * 256 / np.ptp(m.mean[:, 0])
    for yaw in (0, 45):
        pose = Pose(scale, 0.0, np.radians(yaw), 0.0, 127.5, 127.5)
        params = FitParams(np.zeros(m.n_id), np.zeros(m.n_exp), pose)
        proj = project(m.vertices(), pose)
        out[f"yaw{yaw}"] = {
            "rasterize": timeit_ms(lambda: rasterize(proj, m.triangles, 256, 256), 10),
            "shaded_render": timeit_ms(lambda: render_face(m, params, 256, 256), 5),
        }
    return out


def main():
    data = faces()
    res = {"fit": {}, "render_bfm_mean_mesh_256": bench_render()}
    for name, path in (
        ("surrey", SHARED / "3dmm" / "eos_sfm" / "share" / "sfm_shape_3448.bin"),
        ("bfm_68_landmarks", SHARED / "3dmm" / "3DDFA" / "c++" / "weights"),
        ("starter", "starter"),
    ):
        res["fit"][name] = bench_fit(load_model(path), data)
    try:
        res["fit"]["eos_reference"] = bench_eos(data)
    except Exception as e:  # eos API drift must not hide our own figures
        res["fit"]["eos_reference"] = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(res))


if __name__ == "__main__":
    main()
