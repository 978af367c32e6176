"""Bad inputs a user hands synth-occ: one line naming the file, the right exit code, no traceback.

Batch commands (fit, landmarks) skip a bad photo with its reason and go on. The exit code
tells the truth: every input skipped (nothing written) exits 1 after the skip table; a
partial success exits 0 and says how many were skipped; ``--strict`` turns any skip into 1.
"""

from __future__ import annotations

import os
import pickle
import shutil

import numpy as np
import pytest
from _rel import synth, write_png


@pytest.fixture()
def face(ibug_pts_image, tmp_path):
    """A real photo with its .pts (iBUG 300-W), copied."""
    img, pts = ibug_pts_image
    shutil.copy(img, tmp_path / "face.png")
    shutil.copy(pts, tmp_path / "face.pts")
    return tmp_path / "face.png"


def test_fit_skips_a_1x1_image_nothing_written_exits_1(tmp_path):
    tiny = write_png(tmp_path / "tiny.png", 1, 1)
    r = synth("fit", tiny, "--landmarks-from", "auto", "--out", tmp_path / "out")
    r.one_line(1, "nothing written", "all 1 photo(s) skipped")
    assert "too small" in r.stdout and "1 photo(s) skipped" in r.stdout, "the table comes first"


def test_fit_nan_pts_is_a_bad_annotation(face, tmp_path):
    pts = face.with_suffix(".pts")
    lines = pts.read_text().splitlines()
    lines[3] = "nan nan"  # the first point
    pts.write_text("\n".join(lines) + "\n")
    r = synth("fit", face, "--landmarks-from", "pts", "--out", tmp_path / "out", "--strict")
    r.one_line(1, "skipped")
    assert "bad annotation" in r.stdout
    assert not list((tmp_path / "out").glob("*")), "nothing written for a skipped photo"


def test_landmarks_folder_with_a_1x1_image(tmp_path):
    write_png(tmp_path / "in" / "tiny.png", 1, 1)
    write_png(tmp_path / "in" / "photo[bold].png", 2, 2)  # rich markup in a name
    r = synth("landmarks", tmp_path / "in", "--out", tmp_path / "out")
    r.one_line(1, "nothing written", "all 2 input(s) skipped")
    assert r.stdout.count("too small") == 2
    assert "photo[bold].png" in r.stdout, "brackets in file names are printed as they are"


def test_build_from_a_folder_of_1x1_images(tmp_path):
    for i in range(3):
        write_png(tmp_path / "in" / f"t{i}.png", 1, 1)
    r = synth(
        "build", "--source", "folder", "--root", tmp_path / "in", "--out", tmp_path / "out",
        "--size", "32", "--workers", "1",
    )  # fmt: skip
    r.one_line(1, str(tmp_path / "in"), "too small")


@pytest.mark.parametrize(
    "name,content",
    [
        ("garbage.bin", os.urandom(4000)),
        ("empty.bin", b""),
        ("garbage.mat", os.urandom(4000)),
        ("trunc.mat", b"MATLAB 5.0 MAT-file, garbage"),
        ("garbage.pkl", os.urandom(4000)),
        ("bad[red].npz", b"PK\x03\x04garbage"),
    ],
)
def test_model_info_on_garbage(tmp_path, name, content):
    p = tmp_path / name
    p.write_bytes(content)
    r = synth("model", "info", p)
    r.one_line(1, str(p), "not a")


def test_truncated_surrey_model(sfm_dir, tmp_path):
    p = tmp_path / "sfm_shape_3448.bin"
    p.write_bytes((sfm_dir / "sfm_shape_3448.bin").read_bytes()[:100_000])
    synth("model", "info", p).one_line(1, str(p), "not a readable morphable model")


def test_fit_with_a_garbage_model(face, tmp_path):
    model = tmp_path / "model.mat"
    model.write_bytes(os.urandom(3000))
    r = synth("fit", face, "--landmarks-from", "pts", "--model", model, "--out", tmp_path / "o")
    r.one_line(1, str(model))


class _WritesAFile:
    """A pickle that would create a file when loaded with plain ``pickle.load``."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_hostile_model_pickle_is_refused_unrun(tmp_path):
    marker = tmp_path / "pwned"
    p = tmp_path / "bfm_noneck_v3.pkl"
    p.write_bytes(pickle.dumps({"u": np.zeros(3), "w_shp": _WritesAFile(str(marker))}))
    r = synth("model", "info", p)
    r.one_line(1, str(p), "refused", "system")
    assert not marker.exists(), "the pickle's code ran"
    # the same file in a 3DDFA tri.pkl beside a model
    (tmp_path / "tri.pkl").write_bytes(pickle.dumps(_WritesAFile(str(marker))))
    from deocc_core.errors import FormatError
    from deocc_core.morphable.model import load_array_pickle

    with pytest.raises(FormatError, match="refused"):
        load_array_pickle(tmp_path / "tri.pkl")
    assert not marker.exists()


def test_object_arrays_in_a_pickle_are_refused(tmp_path):
    from deocc_core.errors import FormatError
    from deocc_core.morphable.model import load_array_pickle

    p = tmp_path / "a.pkl"
    p.write_bytes(pickle.dumps({"u": np.array([1, "x"], dtype=object)}))
    with pytest.raises(FormatError):
        load_array_pickle(p)


@pytest.mark.parametrize("target", ["folder", "no-suffix", "txt"])
def test_image_outputs_must_be_image_files(built, tmp_path, target):
    out = {"folder": tmp_path, "no-suffix": tmp_path / "grid", "txt": tmp_path / "g.txt"}[target]
    r = synth("inspect", built, "--grid", out)
    r.one_line(2, "--grid", str(out))
    r = synth("preview", "--source", "synthetic", "--n", "1", "--out", out)
    r.one_line(2, "--out", str(out))


@pytest.mark.parametrize("size", ["33", "96", "100000"])
def test_build_refuses_sizes_training_would_refuse(tmp_path, size):
    r = synth("build", "--source", "synthetic", "--size", size, "--out", tmp_path / "o")
    r.one_line(2, "--size", "power of two", size)
    assert not (tmp_path / "o").exists()


def test_size_rule_is_shared():
    from deocc_core.check import CROP_SIZES, crop_size_problem
    from deocc_core.errors import ConfigError
    from deocc_core.synth.pipeline import BuildConfig

    with pytest.raises(ConfigError, match="power of two"):
        BuildConfig(source="synthetic", out="x", size=96)
    for s in CROP_SIZES:  # every size a build accepts, training accepts too
        assert crop_size_problem(s) is None
        assert s >= 32 and s & (s - 1) == 0
