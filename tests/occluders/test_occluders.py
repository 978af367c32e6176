"""The earlier 2D occluder path (``--occluder-mode 2d``) on real faces, asset packs, regions.

The default 3D path is tested in test_occluders3d.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from deocc_core.face.align import align_face
from deocc_core.imageio import read_image
from deocc_core.landmarks.readers import read_mat_annotation
from deocc_core.occluders.assets import load_asset_packs
from deocc_core.occluders.classes import OccluderClass, Region
from deocc_core.occluders.composite import composite_occluder
from deocc_core.occluders.regions import classify_region


@pytest.fixture(scope="module")
def faces(aflw_dir):
    out = []
    for mat in sorted(aflw_dir.glob("*.mat"))[:6]:
        ann = read_mat_annotation(mat)
        a = align_face(read_image(mat.with_suffix(".jpg")), ann.landmarks, 128)
        out.append(a)
    return out


def _cover(occ, lm, idx):
    p = np.round(lm[idx]).astype(int)
    return (occ[p[:, 1].clip(0, 127), p[:, 0].clip(0, 127)] > 20).mean()


@pytest.mark.parametrize(
    "cls,covered,free",
    [
        (OccluderClass.MASK, [51, 57, 62], [37, 44]),
        (OccluderClass.SUNGLASSES, [37, 38, 43, 44], [57]),
        (OccluderClass.EYEGLASSES, [37, 44], [57]),
        (OccluderClass.SCARF, [57, 8], [37, 44]),
    ],
)
def test_anchored_classes_cover_their_landmarks(faces, cls, covered, free):
    rng = np.random.default_rng(3)
    hits, misses = [], []
    for a in faces:
        occ = composite_occluder(a.image, a.landmarks, rng, classes=[cls])
        assert occ.occluder_class == cls and occ.image.shape == a.image.shape
        changed = np.abs(occ.image.astype(int) - a.image).max(-1) > 0
        assert (occ.changed_mask[changed] > 0).all(), "every changed pixel is in the mask"
        hits.append(_cover(occ.occ_mask, a.landmarks, covered))
        misses.append(_cover(occ.occ_mask, a.landmarks, free))
    assert np.mean(hits) > 0.8 and np.mean(misses) < 0.2


def test_cups_and_hands_cover_part_of_the_face(faces):
    rng = np.random.default_rng(0)
    for cls in (OccluderClass.CUP, OccluderClass.HAND):
        fractions = [
            (composite_occluder(a.image, a.landmarks, rng, classes=[cls]).occ_mask > 127).mean()
            for a in faces
        ]
        assert 0.02 < np.median(fractions) < 0.6


def test_all_classes_and_several_regions_appear(faces):
    rng = np.random.default_rng(1)
    seen_cls, seen_reg = set(), set()
    for i in range(60):
        a = faces[i % len(faces)]
        o = composite_occluder(a.image, a.landmarks, rng)
        seen_cls.add(o.occluder_class)
        seen_reg.add(o.region)
    assert seen_cls == set(OccluderClass)
    assert {Region.LOWER, Region.UPPER} <= seen_reg and len(seen_reg) >= 3


def test_same_seed_same_occlusion(faces):
    a = faces[0]
    o1 = composite_occluder(a.image, a.landmarks, np.random.default_rng(7))
    o2 = composite_occluder(a.image, a.landmarks, np.random.default_rng(7))
    assert (o1.image == o2.image).all() and o1.occluder_class == o2.occluder_class


def test_real_asset_packs_warp_onto_the_face(occluders_dir, faces):
    packs = load_asset_packs(occluders_dir)
    kinds = {p.occluder_class for p in packs}
    assert {OccluderClass.MASK, OccluderClass.SUNGLASSES} <= kinds
    a = faces[0]
    mtf = next(p for p in packs if p.anchors is not None and p.view == "front")
    layer = mtf.draw((128, 128), a.landmarks, np.random.default_rng(0), 0.0)
    assert _cover((layer[..., 3] * 255).astype(np.uint8), a.landmarks, [51, 57, 62]) == 1.0
    assert _cover((layer[..., 3] * 255).astype(np.uint8), a.landmarks, [37, 44]) == 0.0


def test_region_rules_on_drawn_masks():
    lm = np.zeros((68, 2))
    lm[:17] = np.stack([np.linspace(10, 54, 17), 40 + 20 * np.sin(np.linspace(0, np.pi, 17))], 1)
    lm[17:27] = np.stack([np.linspace(12, 52, 10), np.full(10, 14)], 1)
    lm[27:31] = np.stack([np.full(4, 32), np.linspace(20, 34, 4)], 1)
    lm[31:36] = np.stack([np.linspace(27, 37, 5), np.full(5, 38)], 1)
    lm[36:48] = np.stack(
        [np.r_[np.linspace(16, 26, 6), np.linspace(38, 48, 6)], np.full(12, 22)], 1
    )
    lm[48:68] = np.stack([np.linspace(24, 40, 20), np.full(20, 48)], 1)
    occ = np.zeros((64, 64), np.uint8)
    left = occ.copy()
    left[:, :32] = 255
    upper = occ.copy()
    upper[:26] = 255
    most = occ.copy()
    most[:, :] = 255
    assert classify_region(left, lm) == Region.LEFT_RIGHT_HALF
    assert classify_region(upper, lm) == Region.UPPER
    assert classify_region(most, lm) == Region.THREE_QUARTERS
    assert classify_region(occ, lm) == Region.OTHER


def test_two_occluders_union_their_masks(faces):
    a = faces[0]
    one = composite_occluder(
        a.image, a.landmarks, np.random.default_rng(5), classes=[OccluderClass.SUNGLASSES]
    )
    two = composite_occluder(
        a.image,
        a.landmarks,
        np.random.default_rng(5),
        classes=[OccluderClass.SUNGLASSES, OccluderClass.MASK],
        count=2,
    )
    assert (two.occ_mask > 20).sum() > (one.occ_mask > 20).sum()


def test_asset_pack_errors_are_clear(tmp_path):
    from deocc_core.errors import InputError

    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / "masks.cfg").write_text(
        "[surgical]\ntemplate: masks/t.png\nmask_a: 1, 2\n"
    )
    with pytest.raises(InputError, match=r"\[surgical\]: missing anchor mask_b"):
        load_asset_packs(tmp_path)
    other = tmp_path / "flat"
    other.mkdir()
    import cv2

    cv2.imwrite(str(other / "glass_1.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(InputError, match="no transparency"):
        load_asset_packs(other)
    with pytest.raises(InputError, match="not found"):
        load_asset_packs(tmp_path / "nope")


def test_contact_sheet_of_all_classes_on_real_faces(faces, tmp_path):
    from deocc_core.imageio import write_image
    from deocc_core.viz import image_grid

    rng = np.random.default_rng(0)
    rows = []
    for a in faces[:3]:
        row = []
        for c in OccluderClass:
            occ = composite_occluder(a.image, a.landmarks, rng, classes=[c])
            changed = np.any(occ.image != a.image, axis=-1).mean()
            # measured 7-43 % of the crop: every class draws something visible on every face
            assert occ.occluder_class == c and changed > 0.03, (c, changed)
            row.append(occ.image)
        assert len({r.tobytes() for r in row}) == len(OccluderClass)  # six different pictures
        rows.append(row)
    sheet = image_grid(rows)
    write_image(tmp_path / "contact_sheet.png", sheet)
    assert sheet.shape[0] >= 3 * 128 and sheet.shape[1] >= 6 * 128


def test_unmasked_pixels_are_bit_exact_and_every_change_is_masked(faces):
    rng = np.random.default_rng(11)
    for a in faces:
        for cls in OccluderClass:
            occ = composite_occluder(a.image, a.landmarks, rng, classes=[cls])
            assert occ.occ_mask.dtype == np.uint8 and occ.image.dtype == np.uint8
            changed = np.any(occ.image != a.image, axis=-1)
            unchanged = occ.changed_mask == 0
            assert np.array_equal(occ.image[unchanged], a.image[unchanged]), cls
            assert np.array_equal(changed, occ.changed_mask > 0), cls
            assert not (occ.occ_mask[unchanged] > 0).any(), "the object lies inside the changes"


def test_hands_are_skin_coloured(faces):
    rng = np.random.default_rng(5)
    for _ in range(12):
        occ = composite_occluder(
            faces[0].image, faces[0].landmarks, rng, classes=[OccluderClass.HAND]
        )
        px = occ.image[occ.occ_mask > 250].astype(np.float64)
        r, g, b = np.median(px, axis=0)
        assert r >= g >= b - 2, (r, g, b)  # skin: red >= green >= blue, never teal or violet


def test_far_side_only_on_turned_faces(faces):
    from deocc_core.landmarks.ibug import ibug_scheme
    from deocc_core.occluders.procedural import _far_side

    sides = [_far_side(a.landmarks) for a in faces]
    assert None in sides and any(s is not None for s in sides), sides
    for a, s in zip(faces, sides, strict=True):  # mirroring the face swaps the hidden side
        lm = a.landmarks.copy()
        lm[:, 0] = 127 - lm[:, 0]
        lm = lm[ibug_scheme().mirror]
        assert _far_side(lm) == (None if s is None else 1 - s)


def test_grey_photo_gets_a_grey_occluder(faces):
    grey = np.repeat(faces[0].image.mean(-1, keepdims=True).astype(np.uint8), 3, -1)
    rng = np.random.default_rng(2)
    for cls in (OccluderClass.HAND, OccluderClass.MASK, OccluderClass.SCARF):
        occ = composite_occluder(grey, faces[0].landmarks, rng, classes=[cls])
        spread = occ.image.astype(np.int16).max(-1) - occ.image.astype(np.int16).min(-1)
        assert spread.max() <= 2, cls
