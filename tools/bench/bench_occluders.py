"""Composite ms/sample per occluder class at 256x256 on a real aligned face. JSON on stdout."""

from __future__ import annotations

import json

import _common  # noqa: F401
import numpy as np
from _common import SHARED, timeit_ms

from deocc_core.face.align import align_face
from deocc_core.imageio import read_image
from deocc_core.landmarks.readers import read_mat_annotation
from deocc_core.occluders.classes import OccluderClass
from deocc_core.occluders.composite import composite_occluder


def main():
    """Milliseconds per occluder class on one aligned face; print JSON."""
    mat = SHARED / "faces" / "PRNet_AFLW2000" / "image00050.mat"
    a = align_face(read_image(mat.with_suffix(".jpg")), read_mat_annotation(mat).landmarks, 256)
    rng = np.random.default_rng(0)
    res = {
        c.name.lower(): timeit_ms(
            lambda c=c: composite_occluder(a.image, a.landmarks, rng, classes=[c]), 20, 2
        )
        for c in OccluderClass
    }
    print(json.dumps({"composite_256": res}))


if __name__ == "__main__":
    main()
