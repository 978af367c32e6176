"""synth-occ preview / verify / inspect / merge through the real CLI (typer), on real photos."""

from __future__ import annotations

import shutil

import cv2
from typer.testing import CliRunner

from tools.synth_occ import app

runner = CliRunner()


def test_preview_sheet_from_real_aflw_photos(aflw_dir, tmp_path):
    out = tmp_path / "sheet.png"
    r = runner.invoke(
        app,
        [
            "preview",
            "--source",
            "aflw2000-3d",
            "--root",
            str(aflw_dir),
            "--n",
            "4",
            "--size",
            "64",
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    sheet = cv2.imread(str(out))
    assert (
        sheet is not None and sheet.shape[0] >= 4 * 64 and sheet.shape[1] >= 5 * 64
    )  # 4 rows of 5 panels


def test_verify_exit_code_inspect_grid_and_merge(tiny_shards, tmp_path):
    assert runner.invoke(app, ["verify", str(tiny_shards)]).exit_code == 0
    grid = tmp_path / "grid.png"
    r = runner.invoke(app, ["inspect", str(tiny_shards), "--grid", str(grid), "--n", "4"])
    assert r.exit_code == 0 and "train:" in r.output and cv2.imread(str(grid)) is not None
    bad = tmp_path / "bad"
    shutil.copytree(tiny_shards, bad)
    next(bad.glob("train-*.h5")).unlink()
    r = runner.invoke(app, ["verify", str(bad)])
    assert r.exit_code == 1 and "missing" in r.output
    merged = tmp_path / "merged"
    r = runner.invoke(app, ["merge", str(tiny_shards), "--out", str(merged)])
    assert r.exit_code == 0 and runner.invoke(app, ["verify", str(merged)]).exit_code == 0
