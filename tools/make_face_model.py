"""Learn deocc's own face model from the shared real faces: ``assets/deocc_face.npz`` + card.

Meshes every photo with MediaPipe's 468-point face mesh (cached: a rerun only detects new
photos), learns shape, identity, expression and a UV albedo model from the training split
(:mod:`deocc_core.face.face_model`), writes the model (byte-deterministic) and its card
``assets/deocc_face.md`` with the landmark-fit NME against the starter and Surrey models on
the shared labelled faces.

Usage:
    python tools/make_face_model.py [--data ../shared/data] [--out assets/deocc_face.npz]
"""

from __future__ import annotations

import os

# many small solves: BLAS threads only fight each other (and the other jobs) on 2 cores
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import logging  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from deocc_core.face.face_model import (  # noqa: E402
    FaceModelConfig,
    collect_photos,
    detect_meshes,
    labelled_nme,
    learn_face_model,
)
from deocc_core.synth.splits import assign_split  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

CARD = """# deocc-face: deocc's own face model

`assets/deocc_face.npz` (our .npz model format, DESIGN.md), made by `tools/make_face_model.py`
from real photos only. `--model deocc-face` everywhere a command takes `--model`.

## What it is
- {vertices} vertices, {triangles} triangles: MediaPipe's 468-point face-mesh topology (its
  triangulation, from the mediapipe wheel's `FACEMESH_TESSELATION`), the eye and mouth openings
  closed by a fan each, subdivided once at the edge midpoints.
- mean shape (millimetres, outer eye corners {eye_mm:.0f} mm apart), {n_id} identity modes,
  {n_exp} expression modes, the 68 iBUG landmark vertices, jaw contours, a left-right symmetry
  map, texture coordinates (u odd in x: the mirror of texel (u, v) is (1 - u, v)), an albedo
  model in UV space ({tex} x {tex} texels, {n_alb} modes; the per-vertex albedo is it sampled at
  the vertices).

## Why this route
The real models (BFM, Surrey) may not be shipped, and no shippable 3DMM with a texture model is
at hand offline. MediaPipe's face mesh is in the installed wheel (no download), gives a dense,
consistent 468-point 3D mesh per photo with a fixed topology, so a linear model follows from
Procrustes + PCA over our own photos, and the same points unwrap each photo into one UV map for
the albedo model. Its limits: the mesh stops at the face oval (no ears, neck or skull; the
occluders' head proxies come from the landmarks as for Surrey), MediaPipe's depth is a network's
estimate (the shape modes carry its biases), and the albedo is learned at {tex} x {tex} texels
from photos of 100-500 px faces.

## Data
{photos} photos of `../shared/data` ({meshed} meshed by MediaPipe): `faces_bulk/celebamask_hq`,
`faces_bulk/face_mask_detection/without_mask` and `faces_bulk/deepface` (identities from their
`identities.tsv`), and the labelled photos of `faces/`. The identity-disjoint test split of each
bulk set (the build's hash split: 10 % of the RMFD / CelebAMask identities, 15 % of deepface's) is
left out, so evaluations on those faces use a model that never saw them. Learned from
{train} photos of {identities} identities (with mirrored copies); expression modes from the
{exp_photos} photos of identities with several photos; albedo from {textured} photos.

## Terms
Research use only, like the default de-occluder: the model is derived from photo sets whose
terms are research / non-commercial only (CelebAMask-HQ, RMFD, deepface's test photos,
AFLW2000-3D, 300W). The mesh topology is MediaPipe's (Apache-2.0).

## Rebuild
    python tools/make_face_model.py --data ../shared/data

(deterministic: the same photos and meshes give the same bytes; this build took {seconds:.0f} s on
the shared 2-core CPU, {meshed_now} photos meshed by MediaPipe in it; the meshes are kept in
`--cache`, so a rerun skips that step).

## Landmark fit on the shared labelled faces
The 3DMM fitted to the human labels of the {n_faces} labelled photos (AFLW2000-3D, 300W-LP,
iBUG), NME = mean point error / sqrt(box area) (`morphable.fit.landmark_nme`). These photos are
in the learning set (the MediaPipe meshes of them, not their labels).

| model | mean NME | median | max |
|---|---|---|---|
{nme_rows}
"""


def main() -> None:
    """Learn the model, write it and its card."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=REPO / "assets" / "deocc_face.npz")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path("/tmp/deocc_face_meshes.npz"),
        help="MediaPipe meshes kept between runs",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = FaceModelConfig(data=str(args.data))
    start = time.perf_counter()
    photos = collect_photos(args.data, lambda ident, t: assign_split(ident, test_fraction=t))
    if not photos:
        raise SystemExit(f"{args.data}: no photos (expected the shared data's faces/, faces_bulk/)")
    cached = args.cache.is_file()
    meshes = detect_meshes(photos, args.cache)
    model, stats = learn_face_model(photos, meshes, cfg)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out)
    seconds = time.perf_counter() - start
    table = labelled_nme(args.data, {"deocc-face": model})
    rows = "\n".join(
        f"| {name} | {np.mean(v):.4f} | {np.median(v):.4f} | {np.max(v):.4f} |"
        for name, v in table.items()
    )
    lm = model.mean[model.landmarks68]
    card = CARD.format(
        vertices=model.n_vertices,
        triangles=len(model.triangles),
        eye_mm=float(np.linalg.norm(lm[36] - lm[45])),
        n_id=model.n_id,
        n_exp=model.n_exp,
        tex=cfg.texture_size,
        n_alb=model.texture_basis.shape[1],
        photos=stats.photos,
        meshed=stats.meshed,
        train=stats.train_photos,
        identities=stats.identities,
        exp_photos=stats.expression_photos,
        textured=stats.textured_photos,
        seconds=seconds,
        meshed_now=0 if cached else stats.photos,
        n_faces=len(next(iter(table.values()))),
        nme_rows=rows,
    )
    args.out.with_suffix(".md").write_text(card)
    print(
        f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB): {model.n_vertices} vertices, "
        f"{model.n_id} identity / {model.n_exp} expression / {model.texture_basis.shape[1]} "
        f"albedo modes, {seconds:.0f} s; card {args.out.with_suffix('.md')}"
    )


if __name__ == "__main__":
    main()
