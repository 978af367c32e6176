"""Vertex normals and SH shading."""

from __future__ import annotations

import numpy as np
from test_raster import uv_sphere

from deocc_core.render.shading import light_sh, random_light_sh, sh_basis, shade_sh, vertex_normals


def test_sphere_normals_point_outward_and_match_the_position():
    v, tris = uv_sphere(32, 64)
    n = vertex_normals(v * 3 + [1, 2, 3], tris)
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1, atol=1e-5)
    assert (n * v).sum(1).min() > 0.99  # unit sphere: normal == position


def test_first_sh_coefficient_alone_gives_uniform_shading():
    rng = np.random.default_rng(0)
    n = rng.normal(size=(500, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    out = shade_sh(np.full((500, 3), 0.6), n, [0.8] + [0] * 8)
    np.testing.assert_allclose(out, 0.48, atol=1e-6)
    coloured = shade_sh(
        np.full((500, 3), 0.5), n, np.outer(np.eye(9)[0], [1.0, 0.5, 0.2])
    )  # [9, 3] light
    np.testing.assert_allclose(coloured, np.broadcast_to([0.5, 0.25, 0.1], (500, 3)), atol=1e-6)
    assert sh_basis(n).shape == (500, 9)


def test_directional_light_brightens_normals_facing_it():
    rng = np.random.default_rng(1)
    n = rng.normal(size=(4000, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    d = np.array([0.3, 0.5, 0.8]) / np.linalg.norm([0.3, 0.5, 0.8])
    lit = sh_basis(n) @ light_sh(d, ambient=0.0, strength=1.0)
    assert np.abs(lit - np.maximum(n @ d, 0)).max() < 0.1  # order-2 SH of the clamped cosine
    sh = random_light_sh(np.random.default_rng(3))
    assert (sh == random_light_sh(np.random.default_rng(3))).all() and sh[0] > 0.4 and sh[2] > 0
