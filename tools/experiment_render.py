"""The completed render measured: does a pasted occluder colour it, and how close is it to the face?

On identity-disjoint real test faces (the test split of ``face_mask_detection/without_mask``,
``deepface`` and ``celebamask_hq``: faces deocc's face model never saw), the face is prepared
(:func:`deocc_core.face.prepare.prepare_face`) with deocc's face model and with the starter,
then an occluder is pasted on the crop: the real cut-outs of the shared data (MaskTheFace's
blue surgical mask, Face-Image-Occlusions' sunglasses) and the project's own procedural mask
(:func:`deocc_core.occluders.composite.composite_occluder`). The render is re-made from the
occluded crop with the same fit (:func:`deocc_core.face.prepare.relight_face`: what a build
stores and what inference computes), and compared:

- colour: the render's mean r/g and b/g over its face region M, from the occluded crop vs
  from the clean crop (absolute shift; the 90th percentile over faces is the number);
- inside the occluder (its alpha > 0.5, within M): PSNR to the clean crop of the completed
  render alone, of the occluded input, and of OpenCV's Telea inpainting given the true mask;
- the shipped default de-occluder (trained on starter renders, 128 px) run with either render:
  does it still work when fed deocc-face's render?

    python tools/experiment_render.py --out /tmp/render_exp [--n 148] [--size 128]

Writes ``<out>/render_eval.json``, ``<out>/table.md`` and ``<out>/sheet.png`` (rows: faces;
columns: clean | occluded | starter render | deocc-face render from the clean crop | from the
occluded crop), and ``<out>/sheet_sunglasses.png``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from deocc_core.errors import DeoccError
from deocc_core.eval.metrics import masked_psnr
from deocc_core.face.face_model import collect_photos, detect_meshes
from deocc_core.face.prepare import FaceInputConfig, prepare_face, relight_face
from deocc_core.imageio import read_image, write_image
from deocc_core.landmarks.facemesh import mesh_to_ibug68
from deocc_core.morphable.model import load_model
from deocc_core.nets.io import prepare_generator, run_generator
from deocc_core.nets.packaged import resolve_generator
from deocc_core.occluders.assets import load_asset_packs
from deocc_core.occluders.classes import OccluderClass
from deocc_core.occluders.composite import blend_layer, composite_occluder
from deocc_core.synth.splits import assign_split

REPO = Path(__file__).resolve().parents[1]
OCCLUDERS = ("real_surgical_blue", "real_sunglass", "procedural_mask")


def _chroma(render: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(r/g, b/g) of the render's mean colour over ``mask``."""
    m = render[mask].astype(np.float64).mean(0)
    return np.array([m[0] / max(m[1], 1e-6), m[2] / max(m[1], 1e-6)])


def _paste(kind, crop, lm, yaw_deg, packs, rng):
    if kind == "procedural_mask":
        occ = composite_occluder(crop, lm, rng, classes=[OccluderClass.MASK], yaw=yaw_deg)
        return occ.image, occ.occ_mask
    pack = packs[kind.removeprefix("real_")]
    layer = pack.draw(crop.shape[:2], lm, rng, yaw_deg)
    if layer is None:
        return None
    img, occ_mask, _ = blend_layer(crop, layer)
    return img, occ_mask


def _measure_face(ph, a, meshes, models, packs, cfg, index, sheets, times, gen) -> dict | None:
    """One test face: clean and occluded renders of both models, their colour and PSNRs."""
    photo = read_image(ph.path)
    lm = mesh_to_ibug68(meshes[str(ph.path)])
    try:
        faces = {name: prepare_face(photo, lm, m, cfg) for name, m in models.items()}
    except DeoccError:
        return None
    clean = faces["deocc-face"].crop
    yaw = float(np.degrees(faces["deocc-face"].fit.params.pose.yaw))
    row: dict = {"photo": str(ph.path.relative_to(a.data)), "identity": ph.identity}
    for kind in OCCLUDERS:
        rng = np.random.default_rng([index, OCCLUDERS.index(kind)])
        got = _paste(kind, clean, faces["deocc-face"].landmarks, yaw, packs, rng)
        if got is None:
            continue
        occ_img, occ_mask = got
        r: dict = {}
        renders = {}
        for name, m in models.items():
            t0 = time.perf_counter()
            relit = relight_face(faces[name], occ_img, m, cfg)
            times[name] += time.perf_counter() - t0
            renders[name] = relit.render
            face_m = faces[name].face_mask > 127
            shift = np.abs(_chroma(relit.render, face_m) - _chroma(faces[name].render, face_m))
            r[f"{name}_rg_shift"], r[f"{name}_bg_shift"] = float(shift[0]), float(shift[1])
        hole = (occ_mask > 127) & (faces["deocc-face"].face_mask > 127)
        holes = (occ_mask > 127).astype(np.uint8) * 255
        telea = cv2.inpaint(occ_img, holes, 3, cv2.INPAINT_TELEA)
        r["hole_px"] = int(hole.sum())
        r["psnr_render"] = masked_psnr(renders["deocc-face"], clean, hole)
        r["psnr_starter_render"] = masked_psnr(renders["starter"], clean, hole)
        r["psnr_input"] = masked_psnr(occ_img, clean, hole)
        r["psnr_telea"] = masked_psnr(telea, clean, hole)
        if gen is not None:  # the shipped de-occluder (trained on starter renders) on each
            G, spec = gen
            for name in models:
                out = run_generator(G, occ_img, renders[name], spec).output
                r[f"psnr_default_G_{name}_render"] = masked_psnr(out, clean, hole)
        row[kind] = r
        if len(sheets[kind]) < a.sheet_rows:
            tiles = [clean, occ_img, renders["starter"], faces["deocc-face"].render]
            sheets[kind].append(np.concatenate([*tiles, renders["deocc-face"]], 1))
    return row


def _test_faces(data: Path, cache: Path) -> tuple[list, dict, dict, dict]:
    """The identity-disjoint test photos, their face meshes, both models and the cut-outs."""
    photos = collect_photos(data, lambda ident, t: assign_split(ident, test_fraction=t))
    test = [p for p in photos if p.split == "test"]
    meshes = detect_meshes(test, cache)
    models = {"starter": load_model("starter"), "deocc-face": load_model("deocc-face")}
    packs = {p.name: p for p in load_asset_packs(data / "occluders")}
    return test, meshes, models, packs


def _write_sheets(out: Path, sheets: dict[str, list[np.ndarray]]) -> None:
    """One ``sheet_<occluder>.png`` per occluder: its rows of tiles, top to bottom."""
    for kind, tiles in sheets.items():
        if tiles:
            write_image(out / f"sheet_{kind}.png", np.concatenate(tiles, 0))


def _summarise(rows: list[dict]) -> dict:
    """Per occluder: faces, the 90th percentile (and median) of each colour shift, mean PSNRs."""
    summary: dict = {}
    for kind in OCCLUDERS:
        rs = [r[kind] for r in rows if kind in r and r[kind]["hole_px"] > 0]
        if not rs:
            continue
        s: dict = {"faces": len(rs)}
        for k in rs[0]:
            if k == "hole_px":
                continue
            v = np.array([x[k] for x in rs], np.float64)
            v = v[np.isfinite(v)]
            if "shift" in k:
                s[k + "_p90"] = float(np.percentile(v, 90))
                s[k + "_median"] = float(np.median(v))
            else:
                s[k + "_mean"] = float(v.mean())
        summary[kind] = s
    return summary


def main() -> None:
    """Run the measurement and write its files."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n", type=int, default=148)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--sheet-rows", type=int, default=8)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/deocc_face_meshes.npz"))
    ap.add_argument(
        "--no-generator",
        dest="generator",
        action="store_false",
        help="skip the shipped default de-occluder (run on both renders at its size)",
    )
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    test, meshes, models, packs = _test_faces(a.data, a.cache)
    cfg = FaceInputConfig(size=a.size)
    gen = None
    if a.generator:
        G, spec, _info = resolve_generator(None)
        if spec.size == a.size:
            gen = (prepare_generator(G), spec)
    rows: list[dict] = []
    sheets: dict[str, list[np.ndarray]] = {k: [] for k in OCCLUDERS}
    times = {"deocc-face": 0.0, "starter": 0.0}
    for ph in test:
        if len(rows) >= a.n:
            break
        if str(ph.path) not in meshes:
            continue
        row = _measure_face(ph, a, meshes, models, packs, cfg, len(rows), sheets, times, gen)
        if row is not None:
            rows.append(row)
    summary = _summarise(rows)
    summary["relight_ms_per_face"] = {
        k: 1000 * v / max(len(rows), 1) / len(OCCLUDERS) for k, v in times.items()
    }
    (a.out / "render_eval.json").write_text(
        json.dumps({"summary": summary, "faces": rows}, indent=1)
    )
    _write_sheets(a.out, sheets)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
