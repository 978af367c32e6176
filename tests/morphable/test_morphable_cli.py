"""synth-occ model info / convert and fit, run as a user would (subprocess), on real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from deocc_core.morphable.model import load_model

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.synth_occ", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=300,
    )


def test_model_info_and_convert_surrey(sfm_dir, tmp_path):
    r = _run("model", "info", str(sfm_dir / "sfm_shape_3448.bin"))
    assert r.returncode == 0, r.stderr
    assert "vertices 3448" in r.stdout and "expression modes 6" in r.stdout
    out = tmp_path / "sfm.npz"
    r = _run("model", "convert", str(sfm_dir / "sfm_shape_3448.bin"), str(out))
    assert r.returncode == 0, r.stderr
    a, b = load_model(sfm_dir / "sfm_shape_3448.bin"), load_model(out)
    assert (
        a.sha256 == b.sha256
        and np.array_equal(a.contour_left, b.contour_left)
        and a.exp_names == b.exp_names
    )


def test_model_without_landmarks_is_a_one_line_error(tmp_path):
    arrays = load_model("starter").to_arrays()
    del arrays["landmarks68"]
    np.savez(tmp_path / "nolm.npz", **arrays)
    r = _run("model", "info", str(tmp_path / "nolm.npz"))
    assert (
        r.returncode != 0 and "--landmarks-index FILE" in r.stderr and "Traceback" not in r.stderr
    )


def test_fit_ibug_photo_writes_params_render_overlay_obj(sfm_dir, ibug_pts_image, tmp_path):
    image, _ = ibug_pts_image
    r = _run(
        "fit",
        str(image),
        "--landmarks-from",
        "pts",
        "--model",
        str(sfm_dir / "sfm_shape_3448.bin"),
        "--out",
        str(tmp_path),
    )
    assert r.returncode == 0, r.stderr
    stem = tmp_path / image.stem
    params = json.loads(Path(f"{stem}_params.json").read_text())
    assert (
        params["nme"] < 0.035 and params["converged"] and len(params["landmark_residual_px"]) == 68
    )
    assert -40 < params["angles_deg"]["yaw"] < -15  # she turns to image left: measured -28 deg
    assert (
        Path(f"{stem}_render.png").stat().st_size > 1000
        and Path(f"{stem}_overlay.png").stat().st_size > 1000
    )
    assert (
        sum(1 for ln in Path(f"{stem}.obj").read_text().splitlines() if ln.startswith("v ")) == 3448
    )
