"""deocc-infer as a batch tool: output names, skipped inputs, failed writes, --strict, markup.

Real files made by the tests: copies of a real photo with its landmarks, a 1×1 image, a
full disk (RLIMIT_FSIZE in a child process; a 300 kB tmpfs where mounting is allowed),
a folder another user cannot write.
"""

from __future__ import annotations

import importlib.util
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from deocc_core.errors import InputError
from deocc_core.imageio import read_image, write_image
from deocc_core.infer.run import InferConfig, plan_outputs, run_inference

ROOT = Path(__file__).resolve().parents[2]


def _photos(tmp_path: Path, ibug_pts_image, names: list[str], big: tuple[str, ...] = ()) -> Path:
    """A folder with copies of the real photo (+ .pts) under the given relative names.

    The copies are 320×256 px (the names in ``big``: 640×512 px).
    """
    img, pts = ibug_pts_image
    photo = read_image(img)
    raw = np.loadtxt(pts, comments=("version", "n_points", "{", "}"))  # 1-based .pts values
    d = tmp_path / "photos"
    for name in names:
        k = 0.5 if name in big else 0.25
        dst = d / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        size = (round(photo.shape[1] * k), round(photo.shape[0] * k))
        write_image(dst, cv2.resize(photo, size, interpolation=cv2.INTER_AREA))
        lm = raw * k + 1.5 * (1 - k)  # pixel centres scale about -0.5 (0-based) = 0.5 (1-based)
        dst.with_suffix(".pts").write_text(
            "version: 1\nn_points: 68\n{\n" + "".join(f"{x} {y}\n" for x, y in lm) + "}\n"
        )
    return d


def _cli(*args: str, limit: int | None = None) -> subprocess.CompletedProcess[str]:
    """``deocc-infer ARGS`` in a child process (``limit``: RLIMIT_FSIZE, bytes per file)."""

    def pre() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [sys.executable, "-m", "tools.deocc_infer", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=dict(os.environ, COLUMNS="300", PYTHONPATH=str(ROOT)),
        preexec_fn=pre if limit is not None else None,
    )


def test_output_names_keep_the_relative_path(tmp_path):
    for name in ("a/face.jpg", "b/face.jpg", "b/face.png", "c.jpg", "c_gt.jpg"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    names = [n for _, n in plan_outputs([str(tmp_path)])]
    assert names == ["a/face", "b/face", "b/face_2", "c"]
    # files given directly: named below the folder they share; a file given twice runs once
    files = [str(tmp_path / "a/face.jpg"), str(tmp_path / "b/face.jpg")]
    assert [n for _, n in plan_outputs([*files, files[0]])] == ["a/face", "b/face"]
    # two folders: each name starts with its folder's name
    both = [n for _, n in plan_outputs([str(tmp_path / "a"), str(tmp_path / "b")])]
    assert both == ["a/face", "b/face", "b/face_2"]
    with pytest.raises(InputError, match="no such image or folder"):
        plan_outputs([str(tmp_path / "missing")])


def test_same_file_names_do_not_overwrite_each_other(
    tmp_path, ibug_pts_image, generator_checkpoint
):
    # the same file name in two folders, different photos (b is twice as large)
    photos = _photos(tmp_path, ibug_pts_image, ["a/face.png", "b/face.png"], big=("b/face.png",))
    out = tmp_path / "out"
    r = run_inference(
        InferConfig(
            inputs=(str(photos),),
            ckpt=str(generator_checkpoint("mask", 20.0)),
            out=str(out),
            landmarks_from="pts",
            device="cpu",
            grid=4,
        )
    )
    assert (r.n_images, r.n_written, r.n_faces, r.problems, r.error) == (2, 2, 2, (), None)
    a_out, b_out = (
        read_image(out / "a/face_deoccluded.png"),
        read_image(out / "b/face_deoccluded.png"),
    )
    assert a_out.shape == (256, 320, 3) and b_out.shape == (512, 640, 3)
    assert np.array_equal(a_out[:, 0], read_image(photos / "a/face.png")[:, 0])
    for name in ("a/face", "b/face"):
        for suffix in ("_mask.png", "_face0_mask.png", "_face0_output.png", "_face0_crop.png"):
            assert (out / f"{name}{suffix}").is_file()
    mask = read_image(out / "a/face_face0_mask.png")
    assert mask.shape == (64, 64, 3) and mask.min() == 255  # m̂ ≡ 1
    assert r.grid == out / "grid.png" and read_image(r.grid).shape[1] > 6 * 64


def test_a_folder_run_writes_the_bytes_of_photo_by_photo_runs(tmp_path, ibug_pts_image):
    # a folder run decodes the next photo and writes the last ones while one is processed;
    # a run of one photo has nothing to overlap: same files, same bytes, same table
    names = ["a.png", "b/c.png", "d.png"]
    photos = _photos(tmp_path, ibug_pts_image, names, big=("b/c.png",))
    write_image(photos / "b/dot.png", np.zeros((1, 1, 3), np.uint8))  # skipped between two
    args = {"landmarks_from": "pts", "device": "cpu"}  # the shipped model, its default fill
    r = run_inference(InferConfig(inputs=(str(photos),), out=str(tmp_path / "all"), **args))
    assert (r.n_images, r.n_written, r.n_faces, r.error) == (4, 3, 3, None)
    assert len(r.problems) == 1 and "dot.png" in r.problems[0] and "too small" in r.problems[0]
    stems = [Path(n).with_suffix("").as_posix() for n in names]
    assert r.outputs == tuple(tmp_path / "all" / f"{s}_deoccluded.png" for s in stems)
    for name, stem in zip(names, stems, strict=True):
        one = tmp_path / "one" / stem
        run_inference(InferConfig(inputs=(str(photos / name),), out=str(one), **args))
        files = sorted(p.name for p in one.glob("*.png"))
        assert len(files) == 6, files  # 4 per face, the photo and its mask
        for f in files:
            assert (tmp_path / "all" / Path(stem).parent / f).read_bytes() == (one / f).read_bytes()


def test_tiny_images_bad_names_and_exit_codes_through_the_cli(
    tmp_path, ibug_pts_image, generator_checkpoint
):
    photos = _photos(tmp_path, ibug_pts_image, ["photo[bold].png"])
    write_image(photos / "one[bold].png", np.zeros((1, 1, 3), np.uint8))
    tiny_dir = tmp_path / "only_tiny"
    tiny_dir.mkdir()
    write_image(tiny_dir / "dot.png", np.zeros((1, 1, 3), np.uint8))
    ckpt = str(generator_checkpoint("mask"))
    args = ("--ckpt", ckpt, "--landmarks-from", "auto", "--device", "cpu")
    r = _cli(str(photos), *args, "--out", str(tmp_path / "o1"))
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    skip = [ln for ln in r.stdout.splitlines() if ln.startswith("skipped")]
    assert len(skip) == 1 and "too small" in skip[0] and "1x1" in skip[0]
    assert "one[bold].png" in skip[0]  # rich markup did not eat the brackets
    assert "1 face(s) de-occluded in 1 of 2 image(s)" in r.stdout
    assert (tmp_path / "o1" / "photo[bold]_deoccluded.png").is_file()
    assert "partial: 1 image(s) or face(s) skipped" in r.stdout  # partial success: exit 0
    # every photo skipped: nothing written, exit 1 after the list (without --strict)
    r = _cli(str(tiny_dir), *args, "--out", str(tmp_path / "o2"))
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "dot.png" in r.stdout and "nothing written" in r.stderr
    assert not list((tmp_path / "o2").rglob("*.png"))


def test_a_full_disk_stops_with_one_line_and_counts_nothing_unwritten(
    tmp_path, ibug_pts_image, generator_checkpoint
):
    # per-file size limit (RLIMIT_FSIZE) between a's and b's de-occluded photo sizes; c, as
    # small as a, is processed while b is written, yet the run stops at b: c is never written
    photos = _photos(tmp_path, ibug_pts_image, ["a.png", "b.png", "c.png"], big=("b.png",))
    sizes = [(photos / n).stat().st_size for n in ("a.png", "b.png")]
    limit = int(sizes[0] * 1.5)
    assert sizes[1] > 2 * limit
    out = tmp_path / "out"
    ckpt = str(generator_checkpoint("mask", 20.0))
    args = ("--ckpt", ckpt, "--landmarks-from", "pts", "--device", "cpu", "--out", str(out))
    r = _cli(str(photos), *args, limit=limit)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    err = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and "file too large" in err[0] and str(out / "b_") in err[0], err
    assert "1 face(s) de-occluded in 1 of 3 image(s)" in r.stdout
    assert not list(out.glob("b_*"))  # b's partial outputs were removed
    assert not list(out.glob("c_*"))
    assert read_image(out / "a_deoccluded.png").shape == (256, 320, 3)


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 300 kB tmpfs (root with CAP_SYS_ADMIN only; skipped elsewhere)."""
    d = tmp_path / "tmpfs"
    d.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(d)], capture_output=True
    )
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield d
    subprocess.run(["umount", str(d)], check=False)


def test_no_space_left_names_the_path(tmp_path, tiny_tmpfs, ibug_pts_image, generator_checkpoint):
    photos = _photos(tmp_path, ibug_pts_image, ["a.png", "b.png", "c.png"])
    r = run_inference(
        InferConfig(
            inputs=(str(photos),),
            ckpt=str(generator_checkpoint("mask", 20.0)),
            out=str(tiny_tmpfs),
            landmarks_from="pts",
            device="cpu",
        )
    )
    assert r.error is not None and "no space left on device" in r.error
    assert r.n_written == len(r.outputs) < 3 and all(p.is_file() for p in r.outputs)
    failed = r.error.split(":")[0]
    stem = Path(failed).name.split("_")[0]
    assert not list(tiny_tmpfs.glob(f"{stem}_*"))  # the failing photo's outputs are removed


def test_permission_denied_names_the_path(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    target = ro / "x.png"
    code = (
        "import numpy as np\n"
        "from deocc_core.imageio import write_image\n"
        "from deocc_core.errors import InputError\n"
        "try:\n"
        f"    write_image({str(target)!r}, np.zeros((4, 4, 3), np.uint8))\n"
        "except InputError as e:\n"
        "    print(e)\n"
    )
    cmd = [sys.executable, "-c", code]
    if os.geteuid() == 0:  # root ignores file modes unless it drops the capability
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot be denied a write")
        cmd = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--", *cmd]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert r.stdout.strip() == f"{target}: cannot write image: permission denied", r.stderr
    assert not target.exists()


def test_the_fan_install_hint_keeps_its_brackets(tmp_path, ibug_pts_image, generator_checkpoint):
    photos = _photos(tmp_path, ibug_pts_image, ["a.png"])
    (photos / "a.pts").unlink()  # no sidecar: the detector is needed
    if importlib.util.find_spec("face_alignment") is not None:
        pytest.skip("face-alignment is installed: no install hint to print")
    r = _cli(
        str(photos),
        "--ckpt",
        str(generator_checkpoint("mask")),
        "--backend",
        "fan",
        "--out",
        str(tmp_path / "o"),
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "deocc[fan]" in r.stderr, r.stderr


def test_a_merged_shard_folder_keeps_the_colour_render_and_the_fit():
    """Inference prepares faces as the training shards did, also when they were merged."""
    from deocc_core.infer.run import _face_config
    from deocc_core.nets.io import GeneratorSpec

    spec = GeneratorSpec(size=128)
    fit = {"max_iter": 7}
    one = {"render_version": 2, "fit": fit}
    merged = {"config": [one, {"render_version": 2, "fit": fit, "source": "synthetic"}]}
    for data_config in ({"config": one}, merged):
        cfg = _face_config(spec, data_config)
        assert cfg.colour and cfg.size == 128 and cfg.fit.max_iter == 7
    grey = {"config": [one, {"fit": fit}]}  # a build from before the colour render
    assert not _face_config(spec, grey).colour
    assert not _face_config(spec, {}).colour
