"""Occlude a face with 3D occluders: draw a recipe for the region mix, build, render, composite.

This is the default occluder path of the sample pipeline (DESIGN.md "Occluders"): every
class is a 3D object in the fitted model's space (:mod:`~deocc_core.occluders.masks`,
:mod:`~deocc_core.occluders.glasses`, :mod:`~deocc_core.occluders.scarves`,
:mod:`~deocc_core.occluders.cups`, :mod:`~deocc_core.occluders.hands`), rendered with the
fitted camera against the head's depth (:mod:`~deocc_core.occluders.layer`) and matched
to the photo (:mod:`~deocc_core.occluders.scene`, :mod:`~deocc_core.occluders.photo`).

The region mix (:class:`~deocc_core.occluders.regions.RegionMix`) picks a recipe of one or
two occluders that usually yields the wanted evaluation region; the label stored is the
region actually covered (:func:`~deocc_core.occluders.regions.classify_region` on the
object mask); a recipe that misses its region is redrawn for the same region (once, twice
for the rarer half / three-quarter groups).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from deocc_core.errors import ConfigError
from deocc_core.occluders.assets import AssetPack, view_for_yaw
from deocc_core.occluders.classes import OccluderClass, Region
from deocc_core.occluders.cups import place_cup, sample_cup_style
from deocc_core.occluders.glasses import make_glasses, sample_glasses_style
from deocc_core.occluders.hands import HAND_PLACES, place_hand, sample_hand_style
from deocc_core.occluders.layer import ObjectLayer, render_layer
from deocc_core.occluders.masks import make_mask, sample_mask_style
from deocc_core.occluders.mesh import Mesh
from deocc_core.occluders.photo import source_grid
from deocc_core.occluders.regions import DEFAULT_MIX, RegionMix, classify_region
from deocc_core.occluders.scarves import make_scarf, sample_scarf_style
from deocc_core.occluders.scene import FaceScene, composite_layer, differs
from deocc_core.timing import stage

__all__ = [
    "Occlusion3D",
    "BUILDERS",
    "build_occluder",
    "render_occluder",
    "occlude_face",
    "pack_layer",
]

MIN_VISIBLE_PX = 30  # an object showing fewer pixels is redrawn
HAND_PLACE_P = {  # where a hand goes when the recipe does not say
    "mouth": 0.22,
    "chin": 0.14,
    "cheek": 0.16,
    "eyes": 0.16,
    "forehead": 0.1,
    "above": 0.08,
    "half": 0.14,
}
HAND_POSE = {
    "mouth": ("flat", "relaxed"),
    "chin": ("relaxed", "fist"),
    "cheek": ("flat", "relaxed"),
    "eyes": ("flat",),
    "forehead": ("flat", "relaxed"),
    "above": ("flat",),
    "half": ("flat",),
}


@dataclass(frozen=True)
class Occlusion3D:
    """An occluded face crop.

    Attributes:
        image: ``[H, W, 3]`` uint8 RGB. occ_mask: ``[H, W]`` uint8 object opacity (0..255).
        changed_mask: ``[H, W]`` uint8, > 0 exactly where ``image`` differs from the input.
        occluder_class: the first occluder's class. region: the region its union covers.
        items: what was drawn, e.g. ``("mask:surgical", "hand:eyes")``.
    """

    image: npt.NDArray[np.uint8]
    occ_mask: npt.NDArray[np.uint8]
    changed_mask: npt.NDArray[np.uint8]
    occluder_class: OccluderClass
    region: Region
    items: tuple[str, ...]


Builder = Callable[[FaceScene, np.random.Generator, "str | None", list], tuple[Mesh, str]]


def _mask(scene, rng, place, fabrics):
    style = sample_mask_style(rng, fabric_images=fabrics or None)
    return make_mask(scene.head, rng, style), f"mask:{style.kind}"


def _glasses(sun: bool) -> Builder:
    def build(scene, rng, place, fabrics):
        style = sample_glasses_style(rng, sun)
        name = "sunglasses" if sun else "eyeglasses"
        return make_glasses(scene.head, rng, style), f"{name}:{style.shape}"

    return build


def _cup(scene, rng, place, fabrics):
    style = sample_cup_style(rng)
    return place_cup(scene.head, rng, style, scene.skin), f"cup:{style.kind}"


def _scarf(scene, rng, place, fabrics):
    return make_scarf(scene.head, rng, sample_scarf_style(rng)), "scarf"


def _hand(scene, rng, place, fabrics):
    if place is None:
        names = list(HAND_PLACE_P)
        p = np.array([HAND_PLACE_P[n] for n in names])
        place = names[int(rng.choice(len(names), p=p / p.sum()))]
    poses = HAND_POSE[place]
    style = sample_hand_style(rng, scene.skin, poses[int(rng.integers(len(poses)))])
    return place_hand(scene.head, rng, style, place), f"hand:{place}"


BUILDERS: dict[OccluderClass, Builder] = {
    OccluderClass.MASK: _mask,
    OccluderClass.EYEGLASSES: _glasses(False),
    OccluderClass.SUNGLASSES: _glasses(True),
    OccluderClass.CUP: _cup,
    OccluderClass.SCARF: _scarf,
    OccluderClass.HAND: _hand,
}


def build_occluder(
    scene: FaceScene,
    cls: OccluderClass,
    rng: np.random.Generator,
    *,
    place: str | None = None,
    fabrics: list | None = None,
) -> tuple[Mesh, str]:
    """One occluder mesh of class ``cls`` for the scene's head (model space) and its name.

    Args:
        scene: the face.
        cls: the class.
        rng: randomness.
        place: for hands, one of :data:`~deocc_core.occluders.hands.HAND_PLACES` (default random).
        fabrics: extra fabric images for cloth masks (e.g. MaskTheFace ``textures/``).

    Raises:
        ConfigError: an unknown hand place.
    """
    if place is not None and place not in HAND_PLACES:
        raise ConfigError(f"unknown hand place {place!r} (choose from {', '.join(HAND_PLACES)})")
    return BUILDERS[OccluderClass(cls)](scene, rng, place, fabrics or [])


def render_occluder(
    scene: FaceScene,
    cls: OccluderClass,
    rng: np.random.Generator,
    *,
    place: str | None = None,
    fabrics: list | None = None,
    tries: int = 4,
) -> tuple[ObjectLayer | None, str]:
    """Build and render an occluder, redrawing (up to ``tries``) when too little of it shows."""
    name = OccluderClass(cls).name.lower()
    for _ in range(tries):
        with stage("occluder mesh"):
            mesh, name = build_occluder(scene, cls, rng, place=place, fabrics=fabrics)
        with stage("occluder render"):
            layer = render_layer(
                mesh,
                scene.head.pose,
                scene.head.rotation,
                scene.ref_depth,
                scene.light,
                env_tilt=float(rng.uniform(-0.4, 0.4)),
            )
        if layer is not None and float(layer.coverage.sum()) >= MIN_VISIBLE_PX:
            return layer, name
    return None, name


def pack_layer(scene: FaceScene, pack: AssetPack, rng: np.random.Generator) -> ObjectLayer | None:
    """A real occluder image (asset pack) as a layer of the scene.

    None for a wrong view or an implausible warp. Its brightness follows the photo's light;
    it sits a few mm off the skin (glasses ~14 mm) for the shadow.
    """
    h, w = scene.shape
    yaw = float(np.degrees(scene.head.pose.yaw))
    rgba = pack.draw((h, w), scene.landmarks, rng, yaw)
    if rgba is None:
        return None
    alpha = rgba[..., 3]
    ys, xs = np.nonzero(alpha > 0.004)
    if ys.size < MIN_VISIBLE_PX:
        return None
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    cov = np.ascontiguousarray(alpha[y0:y1, x0:x1], np.float32)
    sh = scene.light.sh
    gain = np.clip(sh[0] + (2.0 / 3.0) * sh[2] + 0.25 * sh[6], 0.2, 1.5)  # facing the camera
    emission = rgba[y0:y1, x0:x1, :3] * gain[None, None] * cov[..., None]
    glasses = pack.occluder_class in (OccluderClass.EYEGLASSES, OccluderClass.SUNGLASSES)
    lift = (14.0 if glasses else 4.0) * scene.head.pose.scale
    return ObjectLayer(
        int(x0),
        int(y0),
        cov,
        np.repeat(cov[..., None], 3, -1),
        emission.astype(np.float32),
        np.where(cov > 0, lift, 0).astype(np.float32),
    )


def _draw_pack(
    scene: FaceScene, usable: list[AssetPack], rng: np.random.Generator, draws: int
) -> tuple[Any, str]:
    """A layer from one of the ``usable`` packs (up to ``draws`` tries), or None; its name."""
    layer, name = None, ""
    for _ in range(draws):
        pack = usable[int(rng.integers(len(usable)))]
        layer, name = pack_layer(scene, pack, rng), f"asset:{pack.name}"
        if layer is not None:
            break
    return layer, name


def occlude_face(
    scene: FaceScene,
    rng: np.random.Generator,
    *,
    classes: list[OccluderClass] | None = None,
    mix: RegionMix = DEFAULT_MIX,
    count: int = 1,
    fabrics: list | None = None,
    packs: list[AssetPack] | None = None,
    pack_share: float = 0.3,
    match: bool = True,
) -> Occlusion3D:
    """Occlude a prepared face with one recipe of 3D occluders (plus extras up to ``count``).

    Args:
        scene: the face (:func:`~deocc_core.occluders.scene.prepare_scene`).
        rng: the only randomness source.
        classes: allowed classes (default all six).
        mix: the target mix of evaluation regions.
        count: at least this many occluders (extra ones are random allowed classes).
        fabrics: extra cloth textures (``[h, w, 3]`` float32) for cloth masks.
        packs: real occluder images; an occluder of a class they cover is taken from them
            with probability ``pack_share`` (a warp that fails
            :func:`~deocc_core.occluders.assets.plausible_warp` falls back to the 3D object).
        pack_share: see ``packs``; 1 takes every occluder of a covered class from the packs
            and never falls back to the 3D object (a held-out-occluder test set: a failed
            warp leaves that occluder out).
        match: blur / noise / JPEG matching to the photo.

    Returns:
        :class:`Occlusion3D`; ``changed_mask`` is 0 exactly where the image is unchanged.
        When nothing could be drawn (real cut-outs only whose warp failed every try) the
        image is the face unchanged and ``occ_mask`` empty: callers check ``occ_mask``
        (``synth.make_samples`` leaves such a copy out).

    Raises:
        ConfigError: no recipe of the region mix fits the allowed classes.
    """
    pool = list(classes) if classes else list(OccluderClass)
    original = scene.image
    target = mix.draw(rng, pool).region
    tries = 3 if target in (Region.LEFT_RIGHT_HALF, Region.THREE_QUARTERS) else 2
    only_packs = bool(packs) and pack_share >= 1.0
    if only_packs:  # a real cut-out's warp fails often (thin frames): try harder, never fake
        tries = 6
    for attempt in range(tries):
        recipe = mix.draw_region(rng, pool, target)
        items = list(recipe.items)
        while len(items) < count:
            items.append((pool[int(rng.integers(len(pool)))], None))
        image = original
        occ = np.zeros(original.shape[:2], np.uint8)
        shade = np.zeros(original.shape[:2], np.uint8)
        names: list[str] = []
        first: OccluderClass | None = None
        for cls, place in items:
            layer = None
            view = view_for_yaw(float(np.degrees(scene.head.pose.yaw)))
            usable = [
                p
                for p in packs or []
                if p.occluder_class == cls and (p.anchors is None or p.view == view)
            ]
            if usable and rng.random() < pack_share:
                layer, name = _draw_pack(scene, usable, rng, 4 if only_packs else 1)
            if layer is None and usable and pack_share >= 1.0:
                continue  # only real cut-outs: our objects must not leak into the test
            if layer is None:
                layer, name = render_occluder(scene, cls, rng, place=place, fabrics=fabrics)
            if layer is None:
                continue
            with stage("composite"):
                image, o, c = composite_layer(image, scene, layer, rng, match=match, finish=False)
            occ = np.maximum(occ, o)
            shade = np.maximum(shade, c)
            names.append(name)
            first = first if first is not None else OccluderClass(cls)
        if match:
            with stage("photo match"):
                image = source_grid(image, differs(image, original), scene.photo)
        changed = differs(image, original)
        occ = np.where(changed, occ, 0).astype(np.uint8)
        changed_mask = np.where(changed, np.maximum(shade, 1), 0).astype(np.uint8)
        with stage("region"):
            region = classify_region(occ, scene.landmarks, scene.face_mask)
        if first is not None and (region == target or attempt == tries - 1):
            return Occlusion3D(image, occ, changed_mask, first, region, tuple(names))
    fallback = OccluderClass(items[0][0])
    return Occlusion3D(
        image, occ, changed_mask, first or fallback, region, tuple(names)
    )  # nothing could be drawn: no occluder (seen with --asset-share 1 and thin frames)
