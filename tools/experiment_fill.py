"""``deocc-infer --fill``: G's fill vs the completed render's vs Telea, on held-out real faces.

The protocol of :mod:`tools.experiment_render`: identity-disjoint test faces (the test split
of ``face_mask_detection/without_mask``, ``deepface`` and ``celebamask_hq``), a real cut-out
pasted on the aligned crop (MaskTheFace's blue surgical mask and white KN95,
Face-Image-Occlusions' sunglasses), each face's render re-made from the occluded crop (what
inference computes). Then what a user gets (:func:`deocc_core.infer.paste.paste_crop`, the
feathered paste-back) with the occlusion mask taken two ways:

- ``true``: the cut-out's own alpha;
- ``pred``: the shipped segmenter's m̂ on the occluded crop (what ``deocc-infer`` uses).

and the fill taken four ways: the shipped G's raw output (``g``), the completed deocc-face
render (``render``; G outside its silhouette: what ``--fill render`` does), the same
colour-matched to the skin around the mask (``render_match``,
:func:`deocc_core.infer.fill.match_render`: measured, not used), OpenCV Telea inpainting
of the replaced pixels (``telea``). Scores: PSNR to the clean crop inside the true occluder
(alpha > 0.5), and dlib's identity distance of the whole output crop to the clean crop
(:mod:`deocc_core.eval.identity`; same person < 0.6).

    python tools/experiment_fill.py --out /tmp/renderfill/exp [--n 60]

Writes ``<out>/fill_eval.json``, ``<out>/table.md`` (the docs/RESULTS.md table; ``--table``
remakes it from an existing ``fill_eval.json`` without measuring again) and
``<out>/sheet_<occluder>.png`` (rows: faces; columns: clean | occluded | m̂ | g | render
| telea, all with m̂).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from deocc_core.errors import DeoccError
from deocc_core.eval.identity import descriptor_distance, face_descriptors
from deocc_core.eval.metrics import masked_psnr
from deocc_core.face.prepare import FaceInputConfig, prepare_face, relight_face
from deocc_core.imageio import read_image
from deocc_core.infer.fill import render_fill
from deocc_core.infer.paste import paste_crop, paste_region, replaced_pixels
from deocc_core.landmarks.facemesh import mesh_to_ibug68
from deocc_core.nets.io import prepare_generator, run_generator
from deocc_core.nets.packaged import resolve_generator
from deocc_core.nets.segmenter import default_segmenter_path, load_segmenter, run_segmenter
from tools.experiment_render import _paste, _summarise, _test_faces, _write_sheets

REPO = Path(__file__).resolve().parents[1]
OCCLUDERS = ("real_surgical_blue", "real_KN95", "real_sunglass")
FILLS = ("g", "render", "render_match", "telea")
MASKS = ("true", "pred")


def _outputs(occ, m, raw, filler, face_g) -> dict[str, np.ndarray]:
    """Each fill pasted with occlusion probability ``m`` ``[S, S]`` in [0, 1]."""
    region = paste_region("mask", m, face_g.face_mask)
    replaced = replaced_pixels(region)
    covered = filler.render_result.raster.covered
    fills = {
        "g": raw,
        "render": render_fill(filler.render, covered, raw, occ, replaced, match=False),
        "render_match": render_fill(filler.render, covered, raw, occ, replaced, match=True),
    }
    a = m[..., None]
    out = {
        k: paste_crop(occ, np.round(a * f + (1 - a) * occ).astype(np.uint8), region)
        for k, f in fills.items()
    }
    out["telea"] = cv2.inpaint(occ, replaced.astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA)
    return out


def _measure_face(ph, a, meshes, models, packs, cfg, index, sheets, nets) -> dict | None:
    photo = read_image(ph.path)
    lm = mesh_to_ibug68(meshes[str(ph.path)])
    try:
        faces = {name: prepare_face(photo, lm, m, cfg) for name, m in models.items()}
    except DeoccError:
        return None
    G, spec, seg = nets
    clean = faces["deocc-face"].crop
    yaw = float(np.degrees(faces["deocc-face"].fit.params.pose.yaw))
    row: dict = {"photo": str(ph.path.relative_to(a.data))}
    crops, lms = [clean], [faces["starter"].landmarks]
    for kind in OCCLUDERS:
        rng = np.random.default_rng([index, OCCLUDERS.index(kind)])
        got = _paste(kind, clean, faces["deocc-face"].landmarks, yaw, packs, rng)
        if got is None:
            continue
        occ, occ_mask = got
        hole = occ_mask > 127
        if hole.sum() == 0:
            continue
        relit = {n: relight_face(faces[n], occ, m, cfg) for n, m in models.items()}
        raw = run_generator(G, occ, relit["starter"].render, spec).raw
        pred = run_segmenter(seg, occ)
        r: dict = {"hole_px": int(hole.sum())}
        true = occ_mask.astype(np.float32) / 255.0
        r["pred_iou"] = float(((pred > 0.5) & hole).sum() / max(((pred > 0.5) | hole).sum(), 1))
        r["psnr_input"] = masked_psnr(occ, clean, hole)
        for mk, m in (("true", true), ("pred", pred)):
            outs = _outputs(occ, m, raw, relit["deocc-face"], faces["starter"])
            for k, o in outs.items():
                r[f"psnr_{mk}_{k}"] = masked_psnr(o, clean, hole)
                crops.append(o)
                lms.append(faces["starter"].landmarks)
                r.setdefault("_id", []).append(f"{mk}_{k}")
            if mk == "pred" and len(sheets[kind]) < a.sheet_rows:
                mv = np.repeat((pred * 255).astype(np.uint8)[..., None], 3, -1)
                tiles = [clean, occ, mv, outs["g"], outs["render"], outs["telea"]]
                sheets[kind].append(np.concatenate(tiles, 1))
        crops.append(occ)
        lms.append(faces["starter"].landmarks)
        r["_id"].append("input")
        row[kind] = r
    if len(crops) > 1:  # identity: every output vs the clean crop, one dlib batch per face
        d = face_descriptors(np.stack(crops), np.stack(lms))
        dist = descriptor_distance(d[1:], np.repeat(d[:1], len(d) - 1, 0))
        i = 0
        for kind in OCCLUDERS:
            if kind in row:
                for name in row[kind].pop("_id"):
                    row[kind][f"id_{name}"] = float(dist[i])
                    i += 1
    return row


def _table(summary: dict) -> str:
    """The RESULTS table: per occluder and mask, PSNR in the occluder and identity per fill."""
    lines = [
        "| occluder | faces | m̂ IoU | mask | "
        + " | ".join(f"PSNR {f}" for f in FILLS)
        + " | "
        + " | ".join(f"id {f}" for f in FILLS)
        + " | id input |",
        "|---" * (5 + 2 * len(FILLS)) + "|",
    ]
    for kind in OCCLUDERS:
        s = summary.get(kind)
        if not s:
            continue
        for mk in MASKS:
            psnr = " | ".join(f"{s[f'psnr_{mk}_{f}_mean']:.2f}" for f in FILLS)
            ids = " | ".join(f"{s[f'id_{mk}_{f}_mean']:.3f}" for f in FILLS)
            lines.append(
                f"| {kind} | {s['faces']} | {s['pred_iou_mean']:.3f} | {mk} | {psnr} | {ids} "
                f"| {s['id_input_mean']:.3f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    """Run the measurement and write its files."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--sheet-rows", type=int, default=8)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/deocc_face_meshes.npz"))
    ap.add_argument("--table", action="store_true", help="only remake table.md from the JSON")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    if a.table:
        summary = json.loads((a.out / "fill_eval.json").read_text())["summary"]
        (a.out / "table.md").write_text(_table(summary))
        return
    test, meshes, models, packs = _test_faces(a.data, a.cache)
    G, spec, _info = resolve_generator(None)
    seg = load_segmenter(default_segmenter_path())[0]
    cfg = FaceInputConfig(size=spec.size)
    nets = (prepare_generator(G), spec, seg)
    rows: list[dict] = []
    sheets: dict[str, list[np.ndarray]] = {k: [] for k in OCCLUDERS}
    t0 = time.perf_counter()
    for ph in test:
        if len(rows) >= a.n:
            break
        if str(ph.path) not in meshes:
            continue
        row = _measure_face(ph, a, meshes, models, packs, cfg, len(rows), sheets, nets)
        if row is not None:
            rows.append(row)
            print(len(rows), f"{time.perf_counter() - t0:.0f}s", flush=True)
    summary = _summarise(rows)
    summary["seconds"] = time.perf_counter() - t0
    (a.out / "fill_eval.json").write_text(json.dumps({"summary": summary, "faces": rows}, indent=1))
    (a.out / "table.md").write_text(_table(summary))
    _write_sheets(a.out, sheets)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
