"""3D reconstruction speed on a 256 px crop: shape from shading and the mesh outputs, per stage.

A real face (AFLW2000-3D image00050, human landmarks) fitted with the Surrey model at a
256 px crop, single thread. Stages: the light + albedo estimate (the shared estimator),
the SfS iterations (``shape_from_shading``), the whole ``refine_face``; the per-pixel mesh
(``depth_mesh``), the UV texture unwrap (512 px), one mesh picture. The integration step is
also timed against the sparse direct solve it replaces (SuperLU on the face's pixels) on the
same problem: the ratio survives a loaded machine. Prints JSON (ms, median and min over
``repeats`` runs after a warm-up).

    python tools/bench/bench_recon.py [--repeats 10]
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402

import numpy as np  # noqa: E402
from _common import SHARED, load_average, timeit_ms  # noqa: E402

from deocc_core.face.prepare import FaceInputConfig, prepare_face  # noqa: E402
from deocc_core.imageio import read_image  # noqa: E402
from deocc_core.landmarks.readers import find_annotation, read_annotation  # noqa: E402
from deocc_core.morphable.camera import rotation_matrix  # noqa: E402
from deocc_core.morphable.model import load_model  # noqa: E402
from deocc_core.recon.integrate import integrate_gradients, poisson_dct  # noqa: E402
from deocc_core.recon.mesh import depth_mesh  # noqa: E402
from deocc_core.recon.mesh_view import mesh_view, render_mesh  # noqa: E402
from deocc_core.recon.sfs import SfSConfig, refine_face, shape_from_shading  # noqa: E402
from deocc_core.recon.texture import uv_texture  # noqa: E402
from deocc_core.recon.uv import load_uv  # noqa: E402
from deocc_core.render.light import estimate_face_light  # noqa: E402
from deocc_core.render.shading import vertex_normals  # noqa: E402
from deocc_core.render.skin import skin_field  # noqa: E402


def main() -> None:
    """Time the stages and print the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--size", type=int, default=256)
    a = ap.parse_args()
    model = load_model(SHARED / "3dmm" / "eos_sfm" / "share" / "sfm_shape_3448.bin")
    path = SHARED / "faces" / "PRNet_AFLW2000" / "image00050.jpg"
    face = prepare_face(
        read_image(path), read_annotation(find_annotation(path)), model, FaceInputConfig(a.size)
    )
    p, rr = face.fit.params, face.render_result
    cfg = SfSConfig()
    d = refine_face(face.crop, model, p, rr.raster, cfg)  # warm-up; inputs of the stages

    verts = model.vertices(p.id_coef, p.exp_coef)
    rot = rotation_matrix(p.pose.pitch, p.pose.yaw, p.pose.roll).astype(np.float32)
    normals = vertex_normals(verts, model.triangles) @ rot.T
    field = skin_field(model)
    inside = np.isfinite(d.coarse_depth)
    weights = d.sfs.weights
    albedo = d.sfs.albedo  # any plausible albedo: the iterations cost the same
    uv = load_uv(model)
    mesh = depth_mesh(d.sfs.depth, p.pose)
    view = mesh_view(verts, size=a.size)
    gx, gy = np.gradient(np.where(inside, d.sfs.depth - d.coarse_depth, 0.0))
    screen = 1.0 / cfg.reach_px**2

    r = a.repeats
    stages = {
        "light_estimate": timeit_ms(
            lambda: estimate_face_light(
                face.crop, rr.raster, normals, field.albedo, field.weights, vertex_prior=field.prior
            ),
            r,
        ),
        "sfs_iterations": timeit_ms(
            lambda: shape_from_shading(
                face.crop,
                d.coarse_depth,
                d.coarse_normals,
                albedo,
                d.light.coloured_sh,
                weights,
                cfg,
            ),
            r,
        ),
        "refine_face_total": timeit_ms(lambda: refine_face(face.crop, model, p, rr.raster, cfg), r),
        "depth_mesh": timeit_ms(lambda: depth_mesh(d.sfs.depth, p.pose), r),
        "uv_texture_512": timeit_ms(
            lambda: uv_texture(face.crop, rr.projected, rr.raster, uv, 512), r
        ),
        "mesh_picture_detail": timeit_ms(
            lambda: render_mesh(mesh.vertices, mesh.triangles, view), r
        ),
    }
    dct = timeit_ms(lambda: poisson_dct(gy, gx, screen=screen), r)
    sparse = timeit_ms(
        lambda: integrate_gradients(gy, gx, inside, prior=np.zeros_like(gx), prior_weight=screen),
        max(2, r // 3),
    )
    print(
        json.dumps(
            {
                "crop_px": a.size,
                "face_px": int(inside.sum()),
                "detail_mesh_vertices": len(mesh.vertices),
                "sfs_iterations": cfg.iterations,
                "load_average": load_average(),
                "stages_ms": stages,
                "integration_ms": {"dct_full_crop": dct, "sparse_superlu_face": sparse},
                "integration_speedup_median": round(sparse["median_ms"] / dct["median_ms"], 1),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
