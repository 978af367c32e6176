"""Renderer speed at 256x256 on the BFM mean mesh, per stage, against the plain composition.

The BFM mean mesh (53,215 vertices / 105,840 triangles), frontal and 45-degree yaw, single
thread, per stage: ``project``, ``rasterize``, vertex normals, the
vectorised shading of every vertex, the composite (interpolated straight to uint8) and the
whole ``render_face``; the reference is the same render composed from the public functions
(project, rasterize, vertex_normals, shade_sh, interpolate, uint8, vertex_visibility: what
``render_face`` did before it was fused). Prints JSON (ms per render, median and min over
``repeats`` runs after a JIT warm-up). 3DDFA_V2's Cython rasterizer takes ~2.6 ms for this
mesh and its lit render ~27 ms (their numbers, other machine).

    python tools/bench/bench_render.py [--repeats 30]
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from _common import SHARED, load_average, timeit_ms  # noqa: E402

from deocc_core.morphable.camera import project, rotation_matrix  # noqa: E402
from deocc_core.morphable.model import MorphableModel, load_model  # noqa: E402
from deocc_core.morphable.params import FitParams, Pose  # noqa: E402
from deocc_core.render import face as face_module  # noqa: E402
from deocc_core.render.face import SKIN_GREY, render_face  # noqa: E402
from deocc_core.render.raster import interpolate, rasterize, vertex_visibility  # noqa: E402
from deocc_core.render.shading import (  # noqa: E402
    DEFAULT_SH,
    _unit_normals,
    shade_sh,
    vertex_normals,
)


def composed_render(m: MorphableModel, params: FitParams, size: int) -> np.ndarray:
    """The reference: render_face as the plain composition of the public functions."""
    verts = m.vertices(params.id_coef, params.exp_coef)
    proj = project(verts, params.pose)
    r = rasterize(proj, m.triangles, size, size)
    rot = rotation_matrix(params.pose.pitch, params.pose.yaw, params.pose.roll)
    col = shade_sh(SKIN_GREY, vertex_normals(verts, m.triangles), DEFAULT_SH, rotation=rot)
    out = np.zeros((size, size, 3), np.uint8)
    cov = r.covered
    out[cov] = np.clip(interpolate(r, col)[cov] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    vertex_visibility(r, proj)
    return out


def render_stages(m: MorphableModel, yaw_deg: float, size: int = 256, repeats: int = 30) -> dict:
    """Per-stage and total ms of ``render_face`` (no albedo: skin grey, default light)."""
    scale = 0.55 * size / float(np.ptp(m.mean[:, 0]))
    pose = Pose(scale, 0.0, np.radians(yaw_deg), 0.0, (size - 1) / 2, (size - 1) / 2)
    params = FitParams(np.zeros(m.n_id), np.zeros(m.n_exp), pose)
    verts = m.vertices()
    proj = project(verts, pose)
    r = rasterize(proj, m.triangles, size, size)
    normals, sign = _unit_normals(verts, r.triangles)
    rot = rotation_matrix(pose.pitch, pose.yaw, pose.roll).astype(np.float32) * np.float32(sign)
    light = np.ascontiguousarray(DEFAULT_SH.reshape(9, 1))
    out = np.zeros((size, size, 3), np.uint8)
    cols = np.empty_like(normals)
    fused = render_face(m, params, size, size).image  # also the JIT warm-up of both paths
    diff = np.abs(fused.astype(int) - composed_render(m, params, size)).max()
    return {
        "covered_px": int(r.covered.sum()),
        "stages": {
            "project": timeit_ms(lambda: project(verts, pose), repeats),
            "rasterize": timeit_ms(lambda: rasterize(proj, m.triangles, size, size), repeats),
            "vertex_normals": timeit_ms(lambda: _unit_normals(verts, r.triangles), repeats),
            "shade_vertices": timeit_ms(
                lambda: face_module._shade_kernel(
                    normals.reshape(-1), SKIN_GREY, False, rot, light, cols.reshape(-1)
                ),
                repeats,
            ),
            "composite_uint8": timeit_ms(
                lambda: face_module._composite_kernel(r.tri_id, r.bary, r.triangles, cols, out),
                repeats,
            ),
            "vertex_visibility_on_access": timeit_ms(lambda: vertex_visibility(r, proj), repeats),
        },
        **_interleaved(
            lambda: render_face(m, params, size, size),
            lambda: composed_render(m, params, size),
            repeats,
        ),
        "render_face_equals_composition": bool(diff == 0),
        "render_face_vs_composition_max_levels": int(diff),
    }


def _interleaved(fused, composed, repeats: int) -> dict:
    """render_face and the composition timed alternately (a load burst hits both alike)."""
    a, b = [], []
    for _ in range(repeats):
        for fn, ts in ((fused, a), (composed, b)):
            t = time.perf_counter()
            fn()
            ts.append((time.perf_counter() - t) * 1e3)
    a, b = np.array(a), np.array(b)
    return {
        "render_face": {"median_ms": round(float(np.median(a)), 3), "min_ms": round(a.min(), 3)},
        "composed_public_functions": {
            "median_ms": round(float(np.median(b)), 3),
            "min_ms": round(b.min(), 3),
        },
        "ratio_render_face_over_composed": {
            "median_of_pairs": round(float(np.median(a / b)), 3),
            "of_mins": round(float(a.min() / b.min()), 3),  # the least disturbed runs
        },
    }


def run(repeats: int = 30) -> dict:
    """Time the renderer on the BFM mean mesh; returns the JSON-able result dict."""
    import numba

    numba.set_num_threads(1)
    m = load_model(SHARED / "3dmm" / "3DDFA")
    out: dict = {
        "mesh": "BFM mean (3DDFA)",
        "vertices": int(m.n_vertices),
        "triangles": int(len(m.triangles)),
        "size": "256x256",
        "repeats": repeats,
        "threads": 1,
        "load_average_1min_before": load_average(),
    }
    for yaw in (0, 45):
        out[f"yaw{yaw}"] = render_stages(m, yaw, 256, repeats)
    out["load_average_1min_after"] = load_average()
    return out


def main() -> None:
    """Print the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30, help="timed runs per item (default 30)")
    print(json.dumps(run(ap.parse_args().repeats), indent=1))


if __name__ == "__main__":
    main()
