"""Fit and render in ONE run, beside eos (eos-py) as the reference, single thread. JSON on stdout.

Fit: ms/face and NME (mean error / sqrt(box area)) on the 15 shared real faces (13 AFLW2000-3D,
the 300W-LP sample, the iBUG .pts) for the Surrey model, the 68-landmark BFM basis and the
starter model; per stage (Python wrapper vs the numba kernel). eos on the same faces with the
same Surrey model: ``fit_shape_and_pose`` (5 iterations, contour fitting, blendshapes) and its
linear fit (``estimate_orthographic_projection_linear`` + ``fit_shape_to_landmarks_linear``,
one pass); eos maps 50 of the 68 iBUG points (no jaw), so the NMEs are compared on those 50.
Each face is timed ours / eos-linear / eos-full back to back (ratios survive machine load).

Render: ``render_face`` at 256x256 on the BFM mean mesh (53,215 vertices / 105,840 triangles),
frontal and 45° yaw, per stage, with the same render composed from the public functions as
the reference (see bench_render.py).

Timings: JIT warm-up excluded; per face the median of ``--repeats`` runs, then the median over
faces. The 1-minute load average before and after says how busy the 2 cores were.

    python tools/bench/bench_morphable.py [--repeats 7] [--eos-repeats 3]
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import _common  # noqa: E402, F401  (sys.path)
import numpy as np  # noqa: E402
from _common import SHARED, load_average  # noqa: E402
from bench_render import render_stages  # noqa: E402
from scipy.io import loadmat  # noqa: E402

from deocc_core.landmarks.readers import read_pts  # noqa: E402
from deocc_core.morphable import fit as fit_module  # noqa: E402
from deocc_core.morphable.fit import FitConfig, fit_landmarks, landmark_nme  # noqa: E402
from deocc_core.morphable.model import MorphableModel, load_model  # noqa: E402

SFM = SHARED / "3dmm" / "eos_sfm" / "share"


def faces() -> list[tuple[np.ndarray, float | None, str]]:
    """(landmarks [68,2] 0-based px, dataset yaw in degrees with OUR sign, source)."""
    out = []
    for mat in sorted((SHARED / "faces" / "PRNet_AFLW2000").glob("*.mat")):
        d = loadmat(mat)
        out.append((d["pt3d_68"][:2].T - 1.0, -float(np.degrees(d["Pose_Para"][0, 1])), "aflw2000"))
    for mat in sorted((SHARED / "faces" / "face3d_300WLP").glob("*.mat")):
        d = loadmat(mat)
        out.append((d["pt2d"].T - 1.0, -float(np.degrees(d["Pose_Para"][0, 1])), "300w_lp"))
    for pts in sorted((SHARED / "faces" / "eos_examples").glob("*.pts")):
        out.append((read_pts(pts).astype(np.float64), None, "ibug"))
    return out


def _median_ms(fn, repeats: int) -> float:
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1e3)
    return float(np.median(ts))


def _kernel_only(model: MorphableModel, lm: np.ndarray, cfg: FitConfig):
    """The fit's numba kernel with the wrapper's inputs prepared once (the 'kernel' stage)."""
    kid, kexp = min(model.n_id, cfg.max_id), min(model.n_exp, cfg.max_exp)
    d = fit_module._fit_data(model, kid, kexp, cfg.rho_id, cfg.rho_exp)
    norm = np.sqrt(np.prod(np.ptp(lm, 0))) / 100.0
    target, w = lm / norm, np.ones(68)
    x, pred = np.empty(kid + kexp + 6), np.empty((68, 2))

    def call():
        fit_module._fit_kernel(
            d.mean, d.basis, d.rows.copy(), target, w, d.prior, d.contours, d.unit_gram,
            cfg.rounds, cfg.max_iter, cfg.tol, x, pred,
        )  # fmt: skip

    return call


class _Eos:
    """eos-py's fits of the Surrey model (the reference), with NME on its 50 mapped points."""

    def __init__(self) -> None:
        import eos

        self.eos = eos
        model = eos.morphablemodel.load_model(str(SFM / "sfm_shape_3448.bin"))
        self.shape = model.get_shape_model()
        blend = eos.morphablemodel.load_blendshapes(str(SFM / "expression_blendshapes_3448.bin"))
        self.mm = eos.morphablemodel.MorphableModel(
            self.shape,
            blend,
            color_model=eos.morphablemodel.PcaModel(),
            vertex_definitions=None,
            texture_coordinates=model.get_texture_coordinates(),
        )
        self.mapper = eos.core.LandmarkMapper(str(SFM / "ibug_to_sfm.txt"))
        self.topo = eos.morphablemodel.load_edge_topology(str(SFM / "sfm_3448_edge_topology.json"))
        self.contour = eos.fitting.ContourLandmarks.load(str(SFM / "ibug_to_sfm.txt"))
        self.mcontour = eos.fitting.ModelContour.load(str(SFM / "sfm_model_contours.json"))
        pairs = [(i, self.mapper.convert(str(i + 1))) for i in range(68)]
        self.ibug = np.array([i for i, v in pairs if v is not None])
        self.vids = [int(v) for _, v in pairs if v is not None]
        self.mean = np.asarray(self.shape.get_mean()).reshape(-1, 3)
        self.size = 450  # eos's viewport; the NME does not depend on it

    def full(self, lm: np.ndarray) -> np.ndarray:
        """fit_shape_and_pose (5 iterations); returns the 50 mapped points, pixels."""
        e = self.eos
        lms = [e.core.Landmark(str(i + 1), [float(x), float(y)]) for i, (x, y) in enumerate(lm)]
        mesh, pose, _, _ = e.fitting.fit_shape_and_pose(
            self.mm, lms, self.mapper, self.size, self.size, self.topo, self.contour,
            self.mcontour, 5,
        )  # fmt: skip
        verts = np.asarray(mesh.vertices)[self.vids]
        hom = np.c_[verts, np.ones(len(verts))] @ (pose.get_projection() @ pose.get_modelview()).T
        half = self.size / 2
        return np.c_[(hom[:, 0] + 1) * half, self.size - (hom[:, 1] + 1) * half]

    def linear(self, lm: np.ndarray) -> np.ndarray:
        """Linear pose + linear shape, one pass; returns the 50 mapped points, pixels."""
        fitting = self.eos.fitting
        ip = [p.astype(np.float32).reshape(2, 1) for p in lm[self.ibug]]
        mp = [np.r_[self.mean[v], 1.0].astype(np.float32).reshape(4, 1) for v in self.vids]
        pose = fitting.estimate_orthographic_projection_linear(ip, mp, True, self.size)
        rp = fitting.RenderingParameters(pose, self.size, self.size)
        cam = np.asarray(fitting.get_3x4_affine_camera_matrix(rp, self.size, self.size))
        coef = fitting.fit_shape_to_landmarks_linear(self.shape, cam, ip, self.vids)
        verts = np.asarray(self.shape.draw_sample(coef)).reshape(-1, 3)[self.vids]
        return (np.c_[verts, np.ones(len(verts))] @ cam.T)[:, :2]


def bench_fit_surrey_vs_eos(data, repeats: int, eos_repeats: int) -> dict:
    """Ours (Surrey), eos linear and eos full, face by face, back to back."""
    model = load_model(SFM / "sfm_shape_3448.bin")
    cfg = FitConfig()
    ref = _Eos()
    rows = []
    for lm, _, _ in data:
        kernel = _kernel_only(model, lm, cfg)
        r = fit_landmarks(model, lm)  # warm-up (JIT compile on the first face)
        kernel()
        ref.linear(lm)
        row = {
            "ours_ms": _median_ms(lambda lm=lm: fit_landmarks(model, lm), repeats),
            "ours_kernel_ms": _median_ms(kernel, repeats),
            "eos_linear_ms": _median_ms(lambda lm=lm: ref.linear(lm), repeats),
            "eos_full_ms": _median_ms(lambda lm=lm: ref.full(lm), eos_repeats),
            "ours_nme68": r.nme,
            "ours_nme50": landmark_nme(r.projected[ref.ibug], lm[ref.ibug]),
            "eos_linear_nme50": landmark_nme(ref.linear(lm), lm[ref.ibug]),
            "eos_full_nme50": landmark_nme(ref.full(lm), lm[ref.ibug]),
            "iterations": r.iterations,
        }
        rows.append(row)

    def med(k: str, nd: int = 3) -> float:
        return round(float(np.median([r[k] for r in rows])), nd)

    def mean(k: str) -> float:
        return round(float(np.mean([r[k] for r in rows])), 4)

    return {
        "faces": len(rows),
        "ms_per_face_median": {
            "ours": med("ours_ms"),
            "ours_kernel": med("ours_kernel_ms"),
            "ours_wrapper": round(med("ours_ms") - med("ours_kernel_ms"), 3),
            "eos_linear": med("eos_linear_ms"),
            "eos_fit_shape_and_pose": med("eos_full_ms", 2),
        },
        "ours_ms_per_face_max": round(float(np.max([r["ours_ms"] for r in rows])), 3),
        "nme_mean": {
            "ours_68": mean("ours_nme68"),
            "ours_50_mapped": mean("ours_nme50"),
            "eos_linear_50_mapped": mean("eos_linear_nme50"),
            "eos_fit_shape_and_pose_50_mapped": mean("eos_full_nme50"),
        },
        "ratio_ours_over_eos_full": round(
            float(np.median([r["ours_ms"] / r["eos_full_ms"] for r in rows])), 4
        ),
        "ratio_ours_over_eos_linear": round(
            float(np.median([r["ours_ms"] / r["eos_linear_ms"] for r in rows])), 3
        ),
        "lm_iterations_median": med("iterations", 1),
    }


def bench_fit(model: MorphableModel, data, repeats: int) -> dict:
    """Ours alone on another model: ms/face, NME, yaw error against the dataset's pose."""
    ms, nmes, iters, yaw_err = [], [], [], []
    for lm, yaw, _ in data:
        r = fit_landmarks(model, lm)  # warm-up
        ms.append(_median_ms(lambda lm=lm: fit_landmarks(model, lm), repeats))
        nmes.append(r.nme)
        iters.append(r.iterations)
        if yaw is not None:
            yaw_err.append(abs(np.degrees(r.params.pose.yaw) - yaw))
    return {
        "ms_per_face_median": round(float(np.median(ms)), 3),
        "ms_per_face_max": round(float(np.max(ms)), 3),
        "nme_mean": round(float(np.mean(nmes)), 4),
        "nme_max": round(float(np.max(nmes)), 4),
        "yaw_abs_err_deg_median": round(float(np.median(yaw_err)), 2),
        "lm_iterations_median": float(np.median(iters)),
        "faces": len(nmes),
    }


def main() -> None:
    """Run everything once and print the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7, help="timed runs per face (default 7)")
    ap.add_argument(
        "--eos-repeats", type=int, default=3, help="timed eos fit_shape_and_pose runs (default 3)"
    )
    ap.add_argument("--render-repeats", type=int, default=30, help="timed renders (default 30)")
    args = ap.parse_args()
    import numba

    numba.set_num_threads(1)
    data = faces()
    res: dict = {"threads": 1, "load_average_1min_before": load_average()}
    res["fit_surrey_vs_eos"] = bench_fit_surrey_vs_eos(data, args.repeats, args.eos_repeats)
    res["fit_other_models"] = {
        name: bench_fit(load_model(path), data, args.repeats)
        for name, path in (
            ("bfm_68_landmarks", SHARED / "3dmm" / "3DDFA" / "c++" / "weights"),
            ("starter", "starter"),
        )
    }
    bfm = load_model(SHARED / "3dmm" / "3DDFA")
    res["render_bfm_mean_mesh_256"] = {
        "vertices": bfm.n_vertices,
        "triangles": int(len(bfm.triangles)),
        **{f"yaw{y}": render_stages(bfm, y, 256, args.render_repeats) for y in (0, 45)},
    }
    res["load_average_1min_after"] = load_average()
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
