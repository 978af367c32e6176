"""Renderer speed at 256x256 on the BFM mean mesh (53,215 vertices / 105,840 triangles), frontal
and 45-degree yaw, single thread: rasterization alone (depth + triangle ids + barycentrics), the
stages of a shaded render, the shaded core (rasterize + normals + SH + interpolate) and the full
``render_face`` (adds model evaluation, projection, visibility, uint8 compositing). Prints JSON (ms per render, median and
min over ``repeats`` runs after a JIT warm-up). Reference: 3DDFA_V2's Cython rasterizer takes
~2.6 ms for this mesh and its lit render ~27 ms (their numbers, other machine).

    python tools/bench/bench_render.py [--repeats 20]
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402

import numpy as np  # noqa: E402
from _common import SHARED, timeit_ms  # noqa: E402

from deocc_core.morphable.camera import project, rotation_matrix  # noqa: E402
from deocc_core.morphable.model import load_model  # noqa: E402
from deocc_core.morphable.params import FitParams, Pose  # noqa: E402
from deocc_core.render.face import render_face  # noqa: E402
from deocc_core.render.raster import interpolate, rasterize  # noqa: E402
from deocc_core.render.shading import DEFAULT_SH, shade_sh, vertex_normals  # noqa: E402


def run(repeats: int = 20) -> dict:
    """Time the renderer on the BFM mean mesh; returns the JSON-able result dict."""
    import numba

    numba.set_num_threads(1)
    m = load_model(SHARED / "3dmm" / "3DDFA")
    tri = m.triangles
    verts = m.vertices()
    out: dict = {
        "mesh": "BFM mean (3DDFA)",
        "vertices": int(m.n_vertices),
        "triangles": int(len(tri)),
        "size": "256x256",
        "repeats": repeats,
        "threads": 1,
    }
    scale = 0.55 * 256 / float(np.ptp(verts[:, 0]))
    for yaw in (0, 45):
        pose = Pose(scale, 0.0, np.radians(yaw), 0.0, 127.5, 127.5)
        params = FitParams(np.zeros(m.n_id), np.zeros(m.n_exp), pose)
        proj = project(verts, pose)
        r = rasterize(proj, tri, 256, 256)
        rot = rotation_matrix(pose.pitch, pose.yaw, pose.roll).astype(np.float32)
        normals = vertex_normals(verts, tri) @ rot.T
        colors = shade_sh(np.full_like(verts, 0.7), normals, DEFAULT_SH)

        def shaded_core():  # what a shaded render costs once the vertices are projected
            ras = rasterize(proj, tri, 256, 256)
            col = shade_sh(np.float32(0.7), vertex_normals(verts, tri), DEFAULT_SH, rotation=rot)
            return interpolate(ras, col)

        out[f"yaw{yaw}"] = {
            "covered_px": int(r.covered.sum()),
            "rasterize": timeit_ms(lambda: rasterize(proj, tri, 256, 256), repeats),
            "rasterize_no_cull": timeit_ms(
                lambda: rasterize(proj, tri, 256, 256, cull_backfaces=False), repeats
            ),
            "project": timeit_ms(lambda: project(verts, pose), repeats),
            "vertex_normals": timeit_ms(lambda: vertex_normals(verts, tri), repeats),
            "shade_sh": timeit_ms(
                lambda: shade_sh(np.full_like(verts, 0.7), normals, DEFAULT_SH), repeats
            ),
            "interpolate": timeit_ms(lambda: interpolate(r, colors), repeats),
            "shaded_core_raster_normals_sh_interp": timeit_ms(shaded_core, repeats),
            "render_face_full": timeit_ms(lambda: render_face(m, params, 256, 256), repeats),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20, help="timed runs per item (default 20)")
    print(json.dumps(run(ap.parse_args().repeats), indent=1))


if __name__ == "__main__":
    main()
