"""Outputs never overwrite each other: equal file names from different folders, and two
builds into one folder."""

from __future__ import annotations

import shutil

from _rel import BUILD_ARGS, synth


def _two_faces(ibug_pts_image, root):
    img, pts = ibug_pts_image
    for sub, flip in (("a", False), ("b", True)):
        (root / sub).mkdir(parents=True)
        if flip:  # a different photo under the same name
            import cv2

            cv2.imwrite(str(root / sub / "face.png"), cv2.imread(str(img))[:, ::-1])
        else:
            shutil.copy(img, root / sub / "face.png")
        shutil.copy(pts, root / sub / "face.pts")
    return root / "a" / "face.png", root / "b" / "face.png"


def test_landmarks_same_name_in_two_folders(ibug_pts_image, tmp_path):
    a, b = _two_faces(ibug_pts_image, tmp_path / "in")
    out = tmp_path / "out"
    r = synth("landmarks", a, b, "--out", out, "--dlib-detector", "hog")
    assert r.code == 0, r
    pts = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.pts"))
    assert pts == ["a/face_0.pts", "b/face_0.pts"], pts
    assert (out / "a/face_0.pts").read_text() != (out / "b/face_0.pts").read_text()
    assert "2 face(s) written" in r.stdout


def test_fit_same_name_in_two_folders(ibug_pts_image, tmp_path):
    a, b = _two_faces(ibug_pts_image, tmp_path / "in")
    out = tmp_path / "out"
    r = synth("fit", a, b, "--landmarks-from", "pts", "--out", out)
    assert r.code == 0, r
    assert (out / "a/face_params.json").is_file() and (out / "b/face_params.json").is_file()
    assert (out / "a/face_params.json").read_text() != (out / "b/face_params.json").read_text()


def test_two_builds_into_one_folder(tmp_path):
    """While a build holds the folder (here: this process, as a build would), a second one
    stops at once with one line; once the first is done the same command builds."""
    import os

    from deocc_core.fileio import FolderLock

    out = tmp_path / "shards"
    out.mkdir()
    args = [*BUILD_ARGS, "--out", out, "--workers", "1"]
    with FolderLock(out, ".build-rank0.lock", "synth-occ build"):
        synth("build", *args).one_line(1, str(out), "another synth-occ build", str(os.getpid()))
        assert not list(out.glob("*.h5*"))
        other_rank = synth("build", *args, "--rank", "1", "--world-size", "2")
        assert other_rank.code == 0, other_rank  # ranks share a folder
    assert synth("build", *args).code == 0
    assert synth("verify", out).code == 0
