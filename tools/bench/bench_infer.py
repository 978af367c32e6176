"""``deocc-infer`` at its default settings: start-up apart, then ms per face per stage. JSON.

What a user runs: the shipped default model, MediaPipe landmarks, the training shards' face
preparation, CPU. Real photos of several sizes from ``../shared/data`` (450 px to 12 MP, two
with several faces). Stages per photo, as ``deocc-infer`` does them (each photo once to warm
up, then ``REPEAT`` times, median):

- read: decode the photo; detect: BlazeFace + face mesh → 68 landmarks (all faces);
- prepare: align + fit + colour render (every face); G: the generator (one call for the
  photo's faces, as `deocclude` runs it; on an older tree, once per face);
  A given-mask G (``--ckpt`` of one): the segmenter's m̂ and the render prefill are part of
  the G stage;
- paste: m̂ → weight → blend into the photo (per face);
- write: the PNGs ``deocc-infer`` writes (4 per face, the de-occluded photo and its mask).

``per_face_ms`` = the photo's stages summed / its faces. ``startup_ms``: importing the CLI
(a child process running ``deocc-infer --version``), loading G + 3DMM, starting the MediaPipe
graphs, the first face (JIT caches): what a one-photo run waits for before its photo.
``folder``: ``run_inference`` over all the photos in one call (start-up included), and per
face once the start-up measured here is taken off.

    python tools/bench/bench_infer.py [--repeat 3] [--ckpt MODEL]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401
import numpy as np
from _common import ROOT, SHARED, load_average

PHOTOS = (
    "faces/PRNet_AFLW2000/image00050.jpg",  # 450 x 450
    "faces_bulk/deepface/img51.jpg",  # 600 x 417
    "faces_bulk/deepface/img20.jpg",  # 900 x 900
    "faces_bulk/deepface/selfie-many-people.jpg",  # 600 x 604, four faces
    "faces_bulk/deepface/couple.jpg",  # 2280 x 1588, two faces
    "faces_bulk/deepface/img33.jpg",  # 2048 x 2048
    "faces_bulk/deepface/img49.jpg",  # 4352 x 2903 (12.6 MP)
)
STAGES = ("read", "detect", "prepare", "G", "paste", "write")


def _cli_import_ms() -> float:
    """Wall time of ``deocc-infer --version`` in a fresh interpreter (imports + exit)."""
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "tools.deocc_infer", "--version"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    return (time.perf_counter() - t) * 1e3


def _photo_ms(path: Path, run, out: Path) -> tuple[dict[str, float], int]:
    """One photo through deocc-infer's stages: ms per stage and the number of faces."""
    from deocc_core.face.prepare import prepare_face
    from deocc_core.imageio import read_image, write_image
    from deocc_core.infer import pipeline
    from deocc_core.infer.paste import paste_region, paste_weight
    from deocc_core.nets.io import run_generator

    batched = hasattr(pipeline, "G_BATCH")  # older trees (before/after runs): G per face
    try:
        from deocc_core.infer.paste import paste_into
    except ImportError:  # this script on an older tree (before/after runs): a copy per face
        from deocc_core.infer.paste import paste_back

        def paste_into(image, weight, crop, inverse, w):  # type: ignore[no-redef]
            out, a = paste_back(image, crop, inverse, w)
            image[:] = out
            np.maximum(weight, a, out=weight)

    t = dict.fromkeys(STAGES, 0.0)
    c = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal c
        now = time.perf_counter()
        t[stage] += (now - c) * 1e3
        c = now

    photo = read_image(path)
    lap("read")
    found = run.detector.detect(photo)
    lap("detect")
    faces = [prepare_face(photo, f.landmarks, run.model, run.face_config) for f in found]
    lap("prepare")
    image, weight, outs = None, np.zeros(photo.shape[:2], np.float32), []
    if faces:
        if run.spec.blend == "given":
            gs = _given_g(faces, run)
        elif batched:  # as deocclude: one G call for the photo's faces
            g = run_generator(
                run.G,
                np.stack([f.crop for f in faces]),
                np.stack([f.render for f in faces]),
                run.spec,
                run.device,
            )
            gs = [(g.output[k], g.mask[k]) for k in range(len(faces))]
        else:
            gs = [
                (r.output, r.mask)
                for r in (run_generator(run.G, f.crop, f.render, run.spec) for f in faces)
            ]
        lap("G")
        image = photo.copy()  # as deocclude: one copy per photo
        for face, (output, mask) in zip(faces, gs, strict=True):
            region = paste_region(run.spec.blend, mask, face.face_mask)
            paste_into(image, weight, output, face.inverse, paste_weight(region))
            outs.append((face, output, region))
        lap("paste")
    for k, (face, output, region) in enumerate(outs):
        for tag, img in (("crop", face.crop), ("render", face.render), ("output", output)):
            write_image(out / f"face{k}_{tag}.png", img)
        write_image(out / f"face{k}_mask.png", region)
    write_image(out / "deoccluded.png", photo if image is None else image)
    write_image(out / "mask.png", np.clip(weight * 255 + 0.5, 0, 255).astype(np.uint8))
    lap("write")
    return t, len(found)


def _given_g(faces: list, run) -> list[tuple[np.ndarray, np.ndarray]]:
    """A given-mask G's ``(output, mask)`` per face, as deocclude makes them.

    The segmenter's m̂, the render prefill, one G call for the photo's faces (none with the
    shipped model's default ``--fill render``: the prefill alone).
    """
    from deocc_core.infer.fill import segmenter_mask
    from deocc_core.infer.pipeline import given_fill, segmented_output
    from deocc_core.nets.segmenter import run_segmenter

    crops = np.stack([f.crop for f in faces])
    masks = np.stack([segmenter_mask(m) for m in run_segmenter(run.segmenter, crops, run.device)])
    renders = np.stack([f.render for f in faces])
    covered = np.stack([f.render_result.raster.covered for f in faces])
    refine = run.fill != "render"  # every tree with a given-mask G has LoadedRun.fill
    raw = given_fill(crops, renders, covered, masks, run.G, run.spec, run.device, refine=refine)
    return [(segmented_output(f.crop, raw[k], masks[k])[0], masks[k]) for k, f in enumerate(faces)]


def main() -> None:
    """Print the start-up and per-face figures as JSON."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per photo (default: 3)")
    ap.add_argument("--spin", action="store_true", help="OpenMP's default wait (spin, then sleep)")
    ap.add_argument("--ckpt", default=None, help="the model (default: the shipped default model)")
    args = ap.parse_args()
    load_before = load_average()
    startup = {"cli_import": _cli_import_ms()}
    # as tools/deocc_infer.py sets it before torch loads (run_all gives every bench a fresh
    # interpreter); --spin measures OpenMP's default (spin, then sleep) for comparison
    if not args.spin:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    t0 = time.perf_counter()
    import torch

    from deocc_core.imageio import read_image
    from deocc_core.infer.run import InferConfig, load_run, run_inference

    startup["library_import"] = (time.perf_counter() - t0) * 1e3
    cfg = InferConfig(inputs=("-",), device="cpu", ckpt=args.ckpt)
    t0 = time.perf_counter()
    run = load_run(cfg)
    startup["load_G_and_3dmm"] = (time.perf_counter() - t0) * 1e3
    t0 = time.perf_counter()
    run.detector.detect(np.zeros((64, 64, 3), np.uint8))
    startup["start_mediapipe"] = (time.perf_counter() - t0) * 1e3
    tmp = Path(tempfile.mkdtemp(prefix="bench_infer_"))
    try:
        t0 = time.perf_counter()
        _photo_ms(SHARED / PHOTOS[0], run, tmp)
        startup["first_face_warmup"] = (time.perf_counter() - t0) * 1e3
        photos: dict[str, dict[str, object]] = {}
        all_ms, all_faces = [], 0
        for rel in PHOTOS:
            path = SHARED / rel
            _photo_ms(path, run, tmp)  # warm-up (allocator, caches)
            runs = [_photo_ms(path, run, tmp) for _ in range(args.repeat)]
            n = runs[0][1]
            med = {s: float(np.median([r[0][s] for r in runs])) for s in STAGES}
            total = sum(med.values())
            h, w = read_image(path).shape[:2]
            photos[path.name] = {
                "px": [w, h],
                "faces": n,
                **{f"{s}_ms": round(v, 1) for s, v in med.items()},
                "per_face_ms": round(total / max(n, 1), 1),
            }
            all_ms.append(total)
            all_faces += n
        # one folder through the library entry point deocc-infer calls (start-up included)
        folder = tmp / "in"
        folder.mkdir()
        for rel in PHOTOS:
            shutil.copy(SHARED / rel, folder / Path(rel).name)
        t0 = time.perf_counter()
        r = run_inference(
            InferConfig(inputs=(str(folder),), out=str(tmp / "out"), device="cpu", ckpt=args.ckpt)
        )
        folder_ms = (time.perf_counter() - t0) * 1e3
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    once = startup["load_G_and_3dmm"] + startup["start_mediapipe"]
    res = {
        "startup_ms": {k: round(v, 1) for k, v in startup.items()},
        "photos": photos,
        "per_face_ms_all_photos": round(sum(all_ms) / max(all_faces, 1), 1),
        "per_face_ms_up_to_1mp": round(
            float(
                np.median(
                    [p["per_face_ms"] for p in photos.values() if p["px"][0] * p["px"][1] <= 1e6]
                )
            ),
            1,
        ),
        "folder": {
            "photos": r.n_images,
            "faces": r.n_faces,
            "seconds": round(folder_ms / 1e3, 2),
            "per_face_ms_after_startup": round((folder_ms - once) / max(r.n_faces, 1), 1),
        },
        "model": run.label,
        "generator": f"{run.spec.size} px, ngf {run.spec.ngf}, blend {run.spec.blend}",
        "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
        "load_before": load_before,
        "load_after": load_average(),
    }
    print(json.dumps({"infer_default_cpu": res}))


if __name__ == "__main__":
    main()
