"""Full disks and refused writes: one line with the path and the reason, exit 1, nothing
half-written, and a rerun once there is space finishes the job.

The disk is a private tmpfs of a few KiB (``unshare``); where namespaces are not allowed, a
``RLIMIT_FSIZE`` child process stands in (a write past the limit fails with EFBIG, so the
reason is "file too large" and hard links are not limited).
"""

from __future__ import annotations

import shutil

import pytest
from _rel import BUILD_ARGS, disk_full_reason, run_on_full_disk, synth


def _no_partials(full) -> None:
    assert not [f for f in full.files if f.endswith(".partial")], full.files


def test_build_on_a_full_disk_fails_in_one_line_and_resumes(tmpfs_ok, tmp_path):
    out = tmp_path / "disk" / "shards"
    full = run_on_full_disk(
        tmpfs_ok,
        tmp_path / "disk",
        160,
        ["synth_occ", "build", *BUILD_ARGS, "--out", out, "--workers", "1"],
        ["synth_occ", "build", *BUILD_ARGS, "--out", out, "--workers", "1"],
        ["synth_occ", "verify", out],
    )
    first, rerun, verify = full.results
    assert first.code != 139, f"segfault\n{first}"
    line = first.one_line(1, str(tmp_path / "disk"))
    disk_full_reason(line, full)
    _no_partials(full)
    assert rerun.code == 0, rerun
    assert verify.code == 0, verify


def test_preview_and_inspect_grid_on_a_full_disk(tmpfs_ok, built, tmp_path):
    disk = tmp_path / "disk"
    full = run_on_full_disk(
        tmpfs_ok,
        disk,
        8,
        ["synth_occ", "preview", "--source", "synthetic", "--n", "4", "--out", disk / "p.png"],
    )
    disk_full_reason(full.result.one_line(1, "p.png"), full)
    assert "p.png" not in full.files, "a half-written image was left"
    full = run_on_full_disk(
        tmpfs_ok, disk, 8, ["synth_occ", "inspect", built, "--grid", disk / "g.png"]
    )
    disk_full_reason(full.result.one_line(1, "g.png"), full)
    assert "g.png" not in full.files


def test_fit_and_landmarks_on_a_full_disk(tmpfs_ok, ibug_pts_image, tmp_path):
    img, pts = ibug_pts_image
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(img, src / "face.png")
    shutil.copy(pts, src / "face.pts")
    disk = tmp_path / "disk"
    for cmd, kb in (
        (["fit", src / "face.png", "--landmarks-from", "pts", "--out", disk / "fit"], 24),
        (["landmarks", src / "face.png", "--out", disk / "lm"], 12),
    ):
        full = run_on_full_disk(tmpfs_ok, disk, kb, ["synth_occ", *cmd])
        disk_full_reason(full.result.one_line(1, str(disk)), full)
        _no_partials(full)
        # a face's files are all there or none: no orphan .pts / .json / .obj
        assert not full.files, f"{cmd[0]}: left {full.files}"


def test_merge_on_a_full_disk_then_rerun_keeps_every_split(tmpfs_ok, built, tmp_path):
    if not tmpfs_ok:
        pytest.skip("hard links ignore RLIMIT_FSIZE: needs a tmpfs")
    out = tmp_path / "disk" / "merged"
    full = run_on_full_disk(
        tmpfs_ok,
        tmp_path / "disk",
        200,
        ["synth_occ", "merge", built, "--out", out],
        ["synth_occ", "merge", built, "--out", out],
        ["synth_occ", "verify", out],
        ["synth_occ", "inspect", out],
    )
    first, rerun, verify, inspect = full.results
    disk_full_reason(first.one_line(1, str(out)), full)
    _no_partials(full)
    assert not [n for n, size in full.files.items() if size == 0], full.files
    assert rerun.code == 0, rerun
    assert verify.code == 0, verify
    n_built = len(list(built.glob("*.h5")))
    assert f"{n_built} shards" in rerun.stdout, rerun
    assert "  train:" in inspect.stdout and "  test:" in inspect.stdout, inspect


def test_permission_denied_names_the_path(
    as_other_user, open_tmp, ibug_pts_image, built, others_numba_cache
):
    img, pts = ibug_pts_image
    src = open_tmp / "in"
    for sub in ("a", "b"):
        (src / sub).mkdir(parents=True)
        shutil.copy(img, src / sub / "face.png")
        shutil.copy(pts, src / sub / "face.pts")
    for p in [src, *src.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    out = open_tmp / "out"
    (out / "b").mkdir(parents=True)
    out.chmod(0o777)
    (out / "b").chmod(0o555)  # a's outputs can be written, b's cannot
    env = others_numba_cache  # a numba cache the other user can write, already warm
    r = synth(
        "fit", src / "a/face.png", src / "b/face.png", "--landmarks-from", "pts", "--out", out,
        prefix=as_other_user, env=env,
    )  # fmt: skip
    r.one_line(1, str(out / "b"), "permission denied")
    assert not list((out / "b").iterdir())
    ro = open_tmp / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    r = synth("merge", built, "--out", ro, prefix=as_other_user, env=env)
    r.one_line(2, str(ro), "not writable")
    r = synth("inspect", built, "--grid", ro / "g.png", prefix=as_other_user, env=env)
    r.one_line(2, str(ro), "not writable")


def test_checkpoint_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path):
    """torch.save into a full file: the OSError, not torch's 'unexpected pos' RuntimeError."""
    import resource
    import signal

    from deocc_core.errors import InputError
    from deocc_core.nets.checkpoint import save_checkpoint
    from deocc_core.nets.networks import UnetGenerator

    state = {"G": UnetGenerator(6, 3, 6, ngf=8).state_dict()}  # real weights, > 64 KiB
    old = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_sig = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, old[1]))  # the disk holds 64 KiB
    try:
        with pytest.raises(InputError) as e:
            save_checkpoint(tmp_path / "step_1.pt", state)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old)
        signal.signal(signal.SIGXFSZ, old_sig)
    msg = str(e.value)
    assert msg == f"{tmp_path / 'step_1.pt'}: cannot write: file too large", msg
    assert e.value.__cause__ is None and e.value.__suppress_context__  # no second traceback
    assert not list(tmp_path.iterdir())


def test_a_shard_on_a_full_disk_names_its_path(tmp_path):
    """HDF5's seeks flush the write buffer too: a full disk there is the same one line."""
    import resource
    import signal

    import numpy as np

    from deocc_core.errors import InputError
    from deocc_core.synth.schema import Sample
    from deocc_core.synth.shards import ShardWriter

    rng = np.random.default_rng(0)
    old = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_sig = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    path = tmp_path / "train-00000.h5"
    resource.setrlimit(resource.RLIMIT_FSIZE, (96 * 1024, old[1]))
    try:
        with pytest.raises(InputError) as e, ShardWriter(path, 32, 5, 64) as w:
            for _ in range(64):  # incompressible images: ~12 KiB a sample
                im = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(3)]
                masks = [np.zeros((32, 32), np.uint8)] * 3
                lm, params = np.zeros((68, 2), np.float32), np.zeros(5, np.float32)
                w.add(Sample(*im, *masks, lm, params, 1, 0, "id", "k"))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old)
        signal.signal(signal.SIGXFSZ, old_sig)
    assert str(e.value) == f"{path}: cannot write: file too large", e.value
    assert not list(tmp_path.iterdir())
    # no file object of the shard is left open over a released descriptor: collected later,
    # it would flush into and close whatever file reused that number (it closed deocc-infer's
    # lock in a later test)
    import gc
    import io

    stale = [
        f
        for f in gc.get_objects()
        if isinstance(f, io.BufferedRandom) and str(f.name).startswith(str(path))
    ]
    assert all(f.closed for f in stale), stale
