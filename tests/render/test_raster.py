"""Rasterizer: reference comparison, coverage rules, culling/winding, clipping, sizes, Z order."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from deocc_core.errors import InputError
from deocc_core.render.raster import interpolate, rasterize, vertex_visibility


def reference_rasterize(p: np.ndarray, tris: np.ndarray, h: int, w: int, cull: bool):
    """Slow, obviously-correct per-pixel rasterizer in float64 (same top-left rule)."""
    depth = np.full((h, w), -np.inf)
    tri_id = np.full((h, w), -1)
    for t, (a, b, c) in enumerate(tris):
        (x0, y0, z0), (x1, y1, z1), (x2, y2, z2) = p[a], p[b], p[c]
        area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
        if area == 0 or (cull and area > 0):
            continue
        if area < 0:  # orient positively
            (x1, y1, z1), (x2, y2, z2) = (x2, y2, z2), (x1, y1, z1)
            area = -area
        edges = [((x1, y1), (x2, y2)), ((x2, y2), (x0, y0)), ((x0, y0), (x1, y1))]
        for py in range(h):
            for px in range(w):
                ws, ok = [], True
                for (sx, sy), (ex, ey) in edges:
                    dx, dy = ex - sx, ey - sy
                    e = dx * (py - sy) - dy * (px - sx)
                    top_left = dy < 0 or (dy == 0 and dx > 0)
                    ok &= e > 0 or (e == 0 and top_left)
                    ws.append(e / area)
                if ok:
                    z = ws[0] * z0 + ws[1] * z1 + ws[2] * z2
                    if z > depth[py, px]:
                        depth[py, px], tri_id[py, px] = z, t
    return depth, tri_id


@pytest.mark.parametrize("cull", [True, False])
def test_matches_a_slow_reference_rasterizer_on_random_meshes(cull):
    rng = np.random.default_rng(1)
    for _ in range(4):
        # quarter-pixel grid: many centres fall exactly on edges and vertices, exercising ties
        p = np.concatenate(
            [rng.integers(-8, 64, (12, 2)) / 4, rng.integers(0, 40, (12, 1)) / 8], 1
        ).astype(np.float32)
        tris = rng.integers(0, 12, (10, 3)).astype(np.int32)
        r = rasterize(p, tris, 13, 11, cull_backfaces=cull)
        depth, tri_id = reference_rasterize(p.astype(np.float64), tris, 13, 11, cull)
        assert (r.tri_id == tri_id).mean() > 0.99  # float32 vs float64 may flip a near-tie depth
        np.testing.assert_allclose(r.depth, depth, atol=1e-5)


def test_shared_edges_are_drawn_once_and_nearer_triangle_wins():
    v = np.array([[2, 2, 0], [2, 12, 0], [12, 12, 0], [12, 2, 0]], np.float32)  # front-facing quad
    quad = np.array([[0, 1, 2], [0, 2, 3]])
    r = rasterize(v, quad, 16, 16)
    assert r.covered.sum() == 10 * 10  # top-left rule: columns/rows 2..11, diagonal drawn once
    np.testing.assert_allclose(r.bary.sum(2)[r.covered], 1, atol=1e-5)
    both = rasterize(np.concatenate([v, v + [0, 0, 5]]), np.concatenate([quad, quad + 4]), 16, 16)
    np.testing.assert_allclose(both.depth[both.covered], 5, atol=1e-5)
    assert (both.tri_id[both.covered] >= 2).all()
    tilted = v + np.array(
        [[0, 0, 0], [0, 0, 10], [0, 0, 10], [0, 0, 0]], np.float32
    )  # crosses z=5 mid-way
    cross = rasterize(
        np.concatenate([tilted, v + [0, 0, 5]]), np.concatenate([quad, quad + 4]), 16, 16
    )
    assert (cross.tri_id[3, 4:8] >= 2).all() and (cross.tri_id[11, 4:8] < 2).all()


def test_backface_culling_follows_the_documented_winding():
    # counter-clockwise in model space (y up) = front; the camera flips y, so image area < 0
    model = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32)
    img = np.stack([4 + 8 * model[:, 0], 12 - 8 * model[:, 1], model[:, 2]], 1)
    front = rasterize(img, np.array([[0, 1, 2]]), 16, 16)
    back = rasterize(img, np.array([[0, 2, 1]]), 16, 16)
    assert front.covered.sum() > 20 and back.covered.sum() == 0
    assert (
        rasterize(img, np.array([[0, 2, 1]]), 16, 16, cull_backfaces=False).covered.sum()
        == front.covered.sum()
    )
    degenerate = rasterize(
        np.array([[0, 0, 0], [5, 5, 0], [10, 10, 0]], np.float32), np.array([[0, 1, 2]]), 16, 16
    )
    assert degenerate.covered.sum() == 0


def test_partly_outside_triangles_are_clipped_with_correct_coverage():
    p = np.array(
        [[-50, -50, 1], [-50, 60, 1], [60, -50, 1]], np.float32
    )  # covers x + y < 10 in frame
    r = rasterize(p, np.array([[0, 1, 2]]), 8, 8)
    ys, xs = np.mgrid[:8, :8]
    assert ((r.covered) == (xs + ys < 10)).all()
    far = rasterize(p + [1000, 0, 0], np.array([[0, 1, 2]]), 8, 8)
    assert far.covered.sum() == 0
    nan = rasterize(
        np.array([[np.nan, 0, 0], [0, 9, 0], [9, 0, 0]], np.float32), np.array([[0, 1, 2]]), 8, 8
    )
    assert nan.covered.sum() == 0


@pytest.mark.parametrize("hw", [(1, 1), (17, 31), (256, 256)])
def test_any_image_size_full_cover(hw):
    h, w = hw
    quad = np.array([[-1, -1, 0], [-1, h, 0], [w, h, 0], [w, -1, 0]], np.float32)
    r = rasterize(quad, np.array([[0, 1, 2], [0, 2, 3]]), h, w)
    assert r.depth.shape == (h, w) and r.bary.shape == (h, w, 3) and (r.mask == 255).all()
    assert r.depth.dtype == np.float32 and r.tri_id.dtype == np.int32 and r.mask.dtype == np.uint8
    out = interpolate(r, np.full((4, 3), 0.25))
    np.testing.assert_allclose(out, 0.25, atol=1e-6)


def test_interpolate_reproduces_linear_attributes_and_bad_input_is_rejected():
    p = np.array([[0, 0, 0], [0, 30, 0], [30, 0, 0]], np.float32)
    r = rasterize(p, np.array([[0, 1, 2]]), 32, 32)
    out = interpolate(r, p[:, :2])  # interpolating x, y gives back the pixel centre
    ys, xs = np.mgrid[:32, :32]
    np.testing.assert_allclose(out[r.covered], np.stack([xs, ys], 2)[r.covered], atol=1e-4)
    assert (out[~r.covered] == 0).all()
    with pytest.raises(InputError):
        rasterize(p, np.array([[0, 1, 3]]), 4, 4)
    with pytest.raises(InputError):
        rasterize(p, np.array([[0, 1, 2]]), 0, 4)


def uv_sphere(n_lat: int = 24, n_lon: int = 48):
    """Closed unit sphere, triangles counter-clockwise seen from outside."""
    th = np.linspace(0, np.pi, n_lat + 1)[1:-1]
    ph = np.linspace(0, 2 * np.pi, n_lon, endpoint=False)
    t, f = np.meshgrid(th, ph, indexing="ij")
    v = np.concatenate(
        [
            [[0, 1, 0]],
            np.stack([np.sin(t) * np.cos(f), np.cos(t), -np.sin(t) * np.sin(f)], -1).reshape(-1, 3),
            [[0, -1, 0]],
        ]
    )
    idx = lambda i, j: 1 + i * n_lon + j % n_lon  # noqa: E731
    tris = [[0, idx(0, j), idx(0, j + 1)] for j in range(n_lon)]
    for i in range(n_lat - 2):
        for j in range(n_lon):
            tris += [
                [idx(i, j), idx(i + 1, j), idx(i + 1, j + 1)],
                [idx(i, j), idx(i + 1, j + 1), idx(i, j + 1)],
            ]
    last = len(v) - 1
    tris += [[last, idx(n_lat - 2, j + 1), idx(n_lat - 2, j)] for j in range(n_lon)]
    tris = np.array(tris, np.int32)
    # make every triangle's normal point outward (the test fixture must be right, not lucky)
    a, b, c = v[tris[:, 0]], v[tris[:, 1]], v[tris[:, 2]]
    flip = (np.cross(b - a, c - a) * (a + b + c)).sum(1) < 0
    tris[flip] = tris[flip][:, ::-1]
    return v.astype(np.float32), tris


def test_convex_mesh_silhouette_is_the_filled_hull_and_culling_keeps_it():
    v, tris = uv_sphere()
    p = np.stack([100 + 60 * v[:, 0] + 7 * v[:, 1], 90 - 60 * v[:, 1], 60 * v[:, 2]], 1).astype(
        np.float32
    )
    r = rasterize(p, tris, 181, 203)
    hull = np.zeros((181, 203), np.uint8)
    cv2.fillConvexPoly(
        hull,
        np.round(cv2.convexHull(np.ascontiguousarray(p[:, :2]))[:, 0] * 16).astype(np.int32),
        255,
        cv2.LINE_8,
        4,
    )
    k = np.ones((3, 3), np.uint8)
    assert not (r.mask & ~cv2.dilate(hull, k)).any() and not (cv2.erode(hull, k) & ~r.mask).any()
    r_all = rasterize(p, tris, 181, 203, cull_backfaces=False)
    assert (r_all.mask == r.mask).all() and (
        r.depth[r.covered] >= -1e-3
    ).all()  # only the near half is seen
    vis = vertex_visibility(r, p)
    assert vis[p[:, 2] > 5].all() and not vis[p[:, 2] < -10].any()  # one 7.5-degree ring of slack
