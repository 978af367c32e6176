"""How well 3D occluders match the shared real photos, and what the region sampler yields.

- Sharpness: contrast-normalised variance of the Laplacian (``photo.edge_sharpness``) on
  the object's edge band over the same measure on the face's strongest edges, before
  (raw render) and after matching (blur + noise + source grid). Goal: within 1.5x.
- Region mix: the evaluation regions of 300 sampled composites vs the default target, and
  the class shares. JSON on stdout.
"""

from __future__ import annotations

import json
from collections import Counter

import _common  # noqa: F401
import cv2
import numpy as np
from _common import SHARED

from deocc_core.face.prepare import FaceInputConfig, prepare_face
from deocc_core.imageio import read_image
from deocc_core.landmarks.readers import read_mat_annotation
from deocc_core.morphable.model import load_model
from deocc_core.occluders.classes import OccluderClass
from deocc_core.occluders.occlude import occlude_face, render_occluder
from deocc_core.occluders.photo import edge_sharpness, jpeg_quality
from deocc_core.occluders.regions import DEFAULT_MIX
from deocc_core.occluders.scene import composite_layer, prepare_scene


def scenes(model):
    """The shared AFLW2000-3D faces (|yaw| <= 60) prepared for occluders."""
    out = []
    for mat in sorted((SHARED / "faces" / "PRNet_AFLW2000").glob("*.mat")):
        ann = read_mat_annotation(mat)
        if ann.yaw_deg is not None and abs(ann.yaw_deg) > 60:
            continue
        path = mat.with_suffix(".jpg")
        f = prepare_face(read_image(path), ann.landmarks, model, FaceInputConfig(256))
        out.append(
            prepare_scene(
                f.crop, f.landmarks, model, f.fit.params, f.render_result.depth, f.face_mask,
                jpeg_quality=jpeg_quality(path),
            )
        )  # fmt: skip
    return out


def sharpness(scs) -> dict[str, object]:
    """Median object-edge / face-edge sharpness ratio per class, before and after matching."""
    ratios: dict[str, dict[str, list[float]]] = {}
    for c in OccluderClass:
        before, after = [], []
        for i, sc in enumerate(scs):
            rng = np.random.default_rng(100 + i)
            layer, _ = render_occluder(sc, c, rng)
            if layer is None:
                continue
            raw, occ, _ = composite_layer(sc.image, sc, layer, rng, match=False, shadow=0)
            done, _, _ = composite_layer(sc.image, sc, layer, np.random.default_rng(0), shadow=0)
            obj = (occ > 127).astype(np.uint8)
            band = (cv2.dilate(obj, np.ones((3, 3))) - cv2.erode(obj, np.ones((3, 3)))) > 0
            gray = sc.image.astype(np.float32).mean(-1)
            g = cv2.Sobel(gray, cv2.CV_32F, 1, 0) ** 2 + cv2.Sobel(gray, cv2.CV_32F, 0, 1) ** 2
            face = (sc.face_mask > 127) & ~cv2.dilate(obj, np.ones((9, 9))).astype(bool)
            if band.sum() < 20 or face.sum() < 100:
                continue
            edges = face & (g >= np.percentile(g[face], 90))
            ref = edge_sharpness(sc.image, edges)
            before.append(edge_sharpness(raw, band) / ref)
            after.append(edge_sharpness(done, band) / ref)
        ratios[c.name.lower()] = {"before": before, "after": after}
    out: dict[str, object] = {}
    for k, v in ratios.items():
        out[k] = {
            "before_median": round(float(np.median(v["before"])), 2),
            "after_median": round(float(np.median(v["after"])), 2),
        }
    allb = [x for v in ratios.values() for x in v["before"]]
    alla = [x for v in ratios.values() for x in v["after"]]
    out["all"] = {
        "before_median": round(float(np.median(allb)), 2),
        "after_median": round(float(np.median(alla)), 2),
        "after_within_1p5": round(float(np.mean([1 / 1.5 <= x <= 1.5 for x in alla])), 2),
    }
    return out


def mix(scs, n: int = 300) -> dict[str, object]:
    """Regions and classes of ``n`` default composites vs the target mix."""
    regions: Counter = Counter()
    classes: Counter = Counter()
    for i in range(n):
        o = occlude_face(scs[i % len(scs)], np.random.default_rng(i))
        regions[o.region.name.lower()] += 1
        classes[o.occluder_class.name.lower()] += 1
    total = sum(w for _, w in DEFAULT_MIX.weights)
    return {
        "target": {r.name.lower(): round(w / total, 3) for r, w in DEFAULT_MIX.weights},
        "got": {k: round(v / n, 3) for k, v in sorted(regions.items())},
        "classes": {k: round(v / n, 3) for k, v in sorted(classes.items())},
    }


def main() -> None:
    """Print the JSON."""
    scs = scenes(load_model("starter"))
    print(
        json.dumps({"sharpness_ratio": sharpness(scs), "region_mix": mix(scs), "faces": len(scs)})
    )


if __name__ == "__main__":
    main()
