"""Gradients ↔ normals ↔ depth, and the two Poisson integrators (sparse reference, DCT)."""

from __future__ import annotations

import numpy as np
import pytest

from deocc_core.errors import ShapeError
from deocc_core.recon.integrate import (
    depth_gradients,
    gradients_from_normals,
    grid_graph,
    integrate_gradients,
    normals_from_gradients,
    poisson_dct,
)


def _surface(h: int = 96, w: int = 80):
    """A smooth face-like height field (sphere cap + a Gaussian 'nose'), its exact gradients
    and an elliptic mask well inside the cap."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    cx, cy, r = (w - 1) / 2, (h - 1) / 2, 120.0
    bump = 8.0 * np.exp(-((x - cx) ** 2 + (y - cy - 5) ** 2) / (2 * 6.0**2))
    cap = np.sqrt(r**2 - (x - cx) ** 2 - (y - cy) ** 2)
    z = cap + bump
    p = -(x - cx) / cap - bump * (x - cx) / 6.0**2
    q = -(y - cy) / cap - bump * (y - cy - 5) / 6.0**2
    mask = ((x - cx) / (0.42 * w)) ** 2 + ((y - cy) / (0.45 * h)) ** 2 < 1
    return z, p, q, mask


def test_integrating_the_normals_of_a_known_surface_recovers_it():
    z, p, q, mask = _surface()
    n = normals_from_gradients(p, q)
    np.testing.assert_allclose(np.linalg.norm(n, axis=-1), 1, atol=1e-5)
    pn, qn = gradients_from_normals(n)
    out = integrate_gradients(pn, qn, mask)
    err = (out - z)[mask]
    err -= err.mean()  # the constant is free without a prior
    assert np.abs(err).max() < 0.05 * np.ptp(z[mask])  # discretisation only (central vs pair)
    assert np.sqrt((err**2).mean()) < 0.1
    assert np.isneginf(out[~mask]).all()


def test_a_prior_fixes_the_constant_and_keeps_the_surface():
    z, p, q, mask = _surface()
    out = integrate_gradients(p, q, mask, prior=z, prior_weight=1e-2)
    assert np.abs(out - z)[mask].max() < 0.2


def test_dct_solve_equals_the_sparse_solve_on_a_full_rectangle():
    rng = np.random.default_rng(0)
    p, q = rng.normal(size=(2, 24, 31))
    full = np.ones((24, 31), bool)
    ref = integrate_gradients(p, q, full, prior=np.zeros((24, 31)), prior_weight=0.05)
    got = poisson_dct(p, q, screen=0.05)
    np.testing.assert_allclose(got, ref, atol=1e-4)
    ref0 = integrate_gradients(p, q, full)
    got0 = poisson_dct(p, q)
    np.testing.assert_allclose(got0 - got0.mean(), ref0 - ref0.mean(), atol=1e-3)


def test_dct_integration_of_a_correction_recovers_a_bump():
    """SfS integrates corrections to the coarse depth that vanish outside the face."""
    h, w = 64, 64
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    bump = 5.0 * np.exp(-((x - 32) ** 2 + (y - 30) ** 2) / (2 * 5.0**2))
    dp, dq = np.gradient(bump, axis=1), np.gradient(bump, axis=0)
    out = poisson_dct(dp, dq, screen=1.0 / 40**2)
    err = out - bump
    err -= np.median(err)  # the screen lowers the whole field a little (the bump's volume)
    assert np.abs(err).max() < 0.3 and abs(np.median(out - bump)) < 0.3


def test_depth_gradients_of_a_plane_and_cardinality():
    z = np.add.outer(np.arange(5.0) * -0.5, np.arange(7.0) * 2.0)  # z = 2 x - 0.5 y
    mask = np.ones_like(z, bool)
    mask[0, 0] = False
    p, q = depth_gradients(z, mask)
    assert p.shape == q.shape == z.shape and p.dtype == np.float32
    np.testing.assert_allclose(p[mask], 2.0)
    np.testing.assert_allclose(q[mask], -0.5)
    assert p[0, 0] == 0 and q[0, 0] == 0
    g = grid_graph(mask)
    assert g.n == 34 and len(g.h_left) == 5 * 6 - 1 and len(g.v_top) == 4 * 7 - 1


@pytest.mark.parametrize("h,w", [(8, 8), (17, 33)])
def test_poisson_dct_cardinality(h, w):
    out = poisson_dct(np.zeros((h, w)), np.zeros((h, w)), screen=0.1, bending=2.0)
    assert out.shape == (h, w) and out.dtype == np.float32 and not out.any()


def test_mismatched_shapes_raise():
    with pytest.raises(ShapeError, match="q"):
        integrate_gradients(np.zeros((4, 4)), np.zeros((4, 5)), np.ones((4, 4), bool))
    with pytest.raises(ShapeError, match="q"):
        poisson_dct(np.zeros((4, 4)), np.zeros((5, 4)))
