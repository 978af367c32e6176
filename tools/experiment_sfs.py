"""The paper's §5.4 claim measured: depth error from clean, occluded and de-occluded faces.

The coarse and the SfS-detailed reconstruction, on synthetic faces whose true shape is known.

Faces come from the starter model's synthetic source (``FaceRecord.true_params``: the exact
identity, expression and pose the photo was rendered with), occluded as ``synth-occ build``
does (:func:`deocc_core.synth.pipeline.make_samples`) and de-occluded by a trained checkpoint.
The coarse shape is the 3DMM fitted to the landmarks, the same for the three images (the
landmarks are the same); the detail is :func:`deocc_core.recon.sfs.refine_face` on each image.
Errors are RMS depth differences to the true shape's depth map, in mm, inside M (the fit's
silhouette ∩ the truth's, eroded 2 px), after removing the median offset over M (a weak-
perspective depth has no absolute offset); "under the occluder" is the same error restricted
to the occluder's pixels (offset still from all of M). "de-occluded" pastes G's output (run
at its own size, resized to ``--size``) inside the true occluder mask (what a mask-aware G
does with a perfect m̂); "G output" is G's whole crop (the paper's G redraws every pixel).

    python tools/experiment_sfs.py --ckpt RUN --out sfs_exp [--n 30] [--seed 7]

Writes ``<out>/depth_errors.json`` (per face and the means), ``<out>/table.md`` and, for the
first ``--sheets`` faces, the ``deocc-infer --compare-occluded`` files (Fig. 9 sheets).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch

from deocc_core.face.prepare import prepare_face
from deocc_core.morphable.camera import project
from deocc_core.morphable.model import load_model
from deocc_core.nets.io import load_generator, prepare_generator, run_generator
from deocc_core.recon.export import MeshConfig, write_face_meshes
from deocc_core.recon.sfs import SfSConfig, refine_face
from deocc_core.render.raster import rasterize
from deocc_core.synth.pipeline import BuildConfig, make_samples
from deocc_core.synth.sources import SyntheticSource

INPUTS = ("clean", "occluded", "deoccluded", "g_output")
CONFIGS = {"sfs": SfSConfig(), "sfs_robust": SfSConfig(robust=True)}


def _true_depth(model, record, face, size):
    """The true shape's depth map in the crop (px) and px per mm."""
    tp = record.true_params
    pr = project(model.vertices(tp.id_coef, tp.exp_coef), tp.pose)
    m = face.matrix
    k = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    xy = pr[:, :2] @ m[:, :2].T + m[:, 2]
    proj = np.concatenate([xy, pr[:, 2:] * k], 1).astype(np.float32)
    return rasterize(proj, model.triangles, size, size).depth, tp.pose.scale * k


def _errors(depth, true, face_region, occ_region, mm):
    off = float(np.median(depth[face_region] - true[face_region]))
    e_face = (depth[face_region] - true[face_region] - off) / mm
    e_occ = (depth[occ_region] - true[occ_region] - off) / mm
    rms = float(np.sqrt(np.mean(e_face**2)))
    occ = float(np.sqrt(np.mean(e_occ**2))) if occ_region.any() else float("nan")
    return rms, occ


def main() -> None:
    """Run the measurement and write the JSON, the table and the sheets."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ckpt", required=True, help="de-occlusion checkpoint or run folder")
    ap.add_argument("--out", type=Path, default=Path("sfs_exp"))
    ap.add_argument("--n", type=int, default=30, help="synthetic faces")
    ap.add_argument("--seed", type=int, default=7, help="face seed (not the training seed)")
    ap.add_argument("--sheets", type=int, default=3)
    ap.add_argument(
        "--size", type=int, default=0, help="crop side of the reconstruction (default: G's)"
    )
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    model = load_model("starter")
    G, spec, info = load_generator(a.ckpt, "cpu")
    G = prepare_generator(G)
    size = a.size or spec.size
    build = BuildConfig(source="synthetic", out=str(a.out), size=size, per_face=1)
    g_build = replace(build, size=spec.size)
    src = SyntheticSource(model, n=a.n, size=256, seed=a.seed)
    rows, t0 = [], time.perf_counter()
    for i, key in enumerate(src.keys()):
        rec = src.load(key)[0]
        rng = np.random.default_rng([a.seed, i])
        try:
            sample = make_samples(rec, build, model, rng)[0]
        except Exception as e:  # yaw filter
            print(f"{key}: skipped ({e})")
            continue
        face = prepare_face(rec.image, rec.landmarks, model, build.face_input())
        occ_mask = sample.occ_mask > 127
        g_in, g_render = sample.occluded, sample.render
        if spec.size != size:  # G at its size, its output pasted back at ours (as deocc-infer)
            g_in = cv2.resize(g_in, (spec.size,) * 2, interpolation=cv2.INTER_AREA)
            g_render = prepare_face(rec.image, rec.landmarks, model, g_build.face_input()).render
        g_out = run_generator(G, g_in, g_render, spec, torch.device("cpu")).raw
        if spec.size != size:
            g_out = cv2.resize(g_out, (size, size), interpolation=cv2.INTER_CUBIC)
        deocc = np.where(occ_mask[..., None], g_out, sample.occluded)
        images = {"clean": face.crop, "occluded": sample.occluded, "deoccluded": deocc}
        images["g_output"] = g_out
        true, mm = _true_depth(model, rec, face, size)
        region = np.isfinite(face.render_result.depth) & np.isfinite(true)
        region = cv2.erode(region.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        under = region & occ_mask
        row = {"key": key, "occluder_px": int(under.sum()), "mm_per_px": float(1.0 / mm)}
        coarse = np.where(face.render_result.raster.covered, face.render_result.depth, np.nan)
        row["coarse"] = _errors(coarse, true, region, under, mm)
        for name, img in images.items():
            for cname, cfg in CONFIGS.items():
                d = refine_face(img, model, face.fit.params, face.render_result.raster, cfg)
                row[f"{cname}/{name}"] = _errors(d.sfs.depth, true, region, under, mm)
        rows.append(row)
        print(key, {k: np.round(v, 2).tolist() for k, v in row.items() if isinstance(v, tuple)})
        if len(rows) <= a.sheets:
            write_face_meshes(
                a.out / f"{key}",
                replace(face, crop=sample.occluded),
                deocc,
                model,
                MeshConfig(detail=True, compare_occluded=True, view_yaw=35.0),
            )
    keys = [k for k in rows[0] if isinstance(rows[0][k], tuple)]
    means = {k: np.nanmean([r[k] for r in rows], 0).round(3).tolist() for k in keys}
    summary = {
        "n_faces": len(rows),
        "crop_px": size,
        "generator_px": spec.size,
        "checkpoint": info["path"],
        "checkpoint_step": info["step"],
        "seconds": round(time.perf_counter() - t0, 1),
        "mean_rms_mm": means,
        "faces": rows,
    }
    (a.out / "depth_errors.json").write_text(json.dumps(summary, indent=1))
    lines = [
        "| reconstruction | from | depth RMS in M (mm) | under the occluder (mm) |",
        "|---|---|---|---|",
        f"| coarse (3DMM fit) | any | {means['coarse'][0]:.2f} | {means['coarse'][1]:.2f} |",
    ]
    for cname in CONFIGS:
        for name in INPUTS:
            v = means[f"{cname}/{name}"]
            lines.append(f"| {cname} | {name} | {v[0]:.2f} | {v[1]:.2f} |")
    (a.out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
