"""deocc's face model (assets/deocc_face.npz, tools/make_face_model.py) and its completed render.

The shipped model: a closed MediaPipe topology, a left-right symmetric mean and UV map, an
albedo model in UV space; it fits the human labels of the shared faces; its render, made
from a real face with a real blue surgical mask pasted on, keeps the clean face's colour
(the mask does not colour it) and is completed under the mask.
"""

from __future__ import annotations

from collections import Counter

import cv2
import numpy as np
import pytest

from deocc_core.face.face_model import face_topology, mesh_triangles, subdivide
from deocc_core.face.prepare import FaceInputConfig, prepare_face, relight_face
from deocc_core.imageio import read_image
from deocc_core.landmarks.readers import find_annotation, read_annotation
from deocc_core.morphable.fit import fit_landmarks
from deocc_core.morphable.model import MorphableModel, load_model
from deocc_core.morphable.params import FitParams, Pose
from deocc_core.occluders.assets import load_asset_packs
from deocc_core.occluders.composite import blend_layer
from deocc_core.render.complete import uv_grid
from deocc_core.render.face import render_face


@pytest.fixture(scope="module")
def face_model() -> MorphableModel:
    return load_model("deocc-face")


def _edges(tris: np.ndarray) -> Counter:
    return Counter(
        tuple(sorted(e)) for t in tris.tolist() for e in ((t[0], t[1]), (t[1], t[2]), (t[2], t[0]))
    )


def test_topology_is_closed_at_eyes_and_mouth():
    raw = mesh_triangles()
    assert raw.shape[1] == 3 and raw.max() == 467
    mean = np.zeros((468, 3))
    mean[:, 0] = np.arange(468)  # any positions: only orientation depends on them
    tris, loops = face_topology(mean)
    assert sorted(len(x) for x in loops) == [16, 16, 20]  # two eyes, the mouth
    count = _edges(tris)
    assert max(count.values()) == 2  # manifold: the two non-face 3-cliques are gone
    assert sum(v == 1 for v in count.values()) == 36  # only the face oval is open
    edges, sub = subdivide(tris, 471)
    assert len(sub) == 4 * len(tris) and len(edges) == len(count)
    assert max(_edges(sub).values()) == 2


def test_shipped_model_fields(face_model):
    m = face_model
    assert m.name == "deocc-face" and m.has_albedo and m.n_id >= 20 and m.n_exp >= 10
    v = m.n_vertices
    assert m.uv.shape == (v, 2) and 0 <= m.uv.min() and m.uv.max() <= 1
    sym = m.symmetry
    # the mean is mirror-symmetric; 6 edge midpoints have no exact partner (MediaPipe's
    # triangulation is not mirror-symmetric everywhere): theirs is the nearest vertex
    off = np.linalg.norm(m.mean[sym] * [-1, 1, 1] - m.mean, axis=1)
    assert (off < 1e-3).sum() >= v - 8 and off.max() < 2.0
    assert (sym[sym] == np.arange(v)).sum() >= v - 8
    # the UV map is mirror-symmetric: the partner of (u, v) is (1 - u, v)
    exact = off < 1e-3
    np.testing.assert_allclose(m.uv[sym, 0][exact], 1 - m.uv[exact, 0], atol=1e-4)
    t = m.texture_mean.shape[0]
    assert m.texture_basis.shape == (3 * t * t, len(m.texture_std))
    lm = m.mean[m.landmarks68]
    assert 85 < np.linalg.norm(lm[36] - lm[45]) < 95  # outer eye corners, mm
    assert lm[0, 0] < 0 < lm[16, 0] and lm[8, 1] < lm[30, 1] < lm[27, 1]
    assert m.mean[m.contour_right, 0].max() <= 0 <= m.mean[m.contour_left, 0].min()


@pytest.mark.parametrize("yaw", [0.0, 0.4])
def test_silhouette_has_no_holes(face_model, yaw):
    # the eye and mouth fans face the viewer: closed lips leave no back-facing slivers in M
    # (tilted up or down, the inner lips' own walls turn away: a few pixels, < 0.1 % of M)
    m = face_model
    for pitch, most in ((0.0, 0), (0.3, 0.001)):
        p = FitParams(np.zeros(m.n_id), np.zeros(m.n_exp), Pose(1.2, pitch, yaw, 0.0, 128, 128))
        mask = render_face(m, p, 256, 256).mask
        closed = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
        holes = int(((closed > 0) & (mask == 0)).sum())
        assert mask.max() == 255 and holes <= most * (mask > 0).sum()


def test_save_load_round_trip(face_model, tmp_path):
    p = face_model.save(tmp_path / "m.npz")
    back = load_model(p)
    assert back.sha256 == face_model.sha256
    assert np.array_equal(back.texture_basis, face_model.texture_basis)


def test_fits_labelled_faces(face_model, aflw_dir):
    for img in sorted(aflw_dir.glob("*.jpg"))[:4]:
        lm = read_annotation(find_annotation(img))
        assert fit_landmarks(face_model, lm).nme < 0.06


def test_blue_mask_does_not_colour_the_completed_render(face_model, aflw_dir, occluders_dir):
    img = sorted(aflw_dir.glob("*.jpg"))[0]
    photo = read_image(img)
    lm = read_annotation(find_annotation(img))
    cfg = FaceInputConfig(size=96)
    face = prepare_face(photo, lm, face_model, cfg)
    chart = uv_grid(face_model).covered
    assert face.texture is not None and face.texture.seen[chart].mean() > 0.3
    pack = {p.name: p for p in load_asset_packs(occluders_dir)}["surgical_blue"]
    yaw = float(np.degrees(face.fit.params.pose.yaw))
    layer = pack.draw(face.crop.shape[:2], face.landmarks, np.random.default_rng(0), yaw)
    occluded, occ_mask, _ = blend_layer(face.crop, layer)
    relit = relight_face(face, occluded, face_model, cfg)
    m = face.face_mask > 127
    hole = m & (occ_mask > 127)
    assert hole.sum() > 200

    def chroma(x, where):
        c = x[where].astype(np.float64).mean(0)
        return np.array([c[0] / c[1], c[2] / c[1]])

    # the render's colour from the masked crop is the clean one's, under the mask too
    assert np.abs(chroma(relit.render, m) - chroma(face.render, m)).max() < 0.1
    assert np.abs(chroma(relit.render, hole) - chroma(face.crop, hole)).max() < 0.15
    # the blue mask is blue; the render under it is not
    assert chroma(occluded, hole)[1] > 1.1 and chroma(relit.render, hole)[1] < 0.95


def test_textured_mesh_files(face_model, aflw_dir, tmp_path):
    # deocc-infer --mesh with deocc-face: OBJ + MTL + PNG texture from the model's own UVs
    from deocc_core.recon.export import MeshConfig, write_face_meshes

    img = sorted(aflw_dir.glob("*.jpg"))[1]
    face = prepare_face(
        read_image(img), read_annotation(find_annotation(img)), face_model, FaceInputConfig(size=64)
    )
    paths = write_face_meshes(
        tmp_path / "f", face, face.crop, face_model, MeshConfig(texture_size=64)
    )
    names = sorted(p.name for p in paths)
    assert names == ["f.mtl", "f.obj", "f.png", "f_view.png"]
    obj = (tmp_path / "f.obj").read_text()
    assert obj.count("\nvt ") == face_model.n_vertices and "mtllib f.mtl" in obj
