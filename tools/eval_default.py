"""The shipped default model through the evaluation users care about; RESULTS section.

    python -m tools.eval_default [--data ../shared/data] [--out eval_default_out]
        [--per-face 2] [--photos-limit 300] [--model assets/default_model.safetensors]

1. The default model's TEST identities (``face_mask_detection/without_mask``, the split
   ``tools.train_default`` made: ``assign_split(identity, test_fraction=0.1)``) linked into
   one folder (its own ``identities.tsv``), then two ``synth-occ build``s of those faces:
   (a) "own": the default 3D occluders the model trained on; (b) "held-out": only the real
   cut-outs of ``../shared/data/occluders`` (MaskTheFace templates, Face-Image-Occlusions
   mask / glass / sunglass; ``--asset-share 1``: never our objects), classes mask,
   eyeglasses, sunglasses.
2. ``deocc-eval`` of the default model on both, ``--mask-source both`` (m̂ and the true
   mask), identity columns on; twice: ``--segmenter auto`` (as ``deocc-infer`` runs it: the
   shipped segmenter's m̂) into ``eval/NAME``, and ``--segmenter none`` (G's own m̂) into
   ``eval/NAME_gmask``. A given-mask model (blend given) has no m̂ of its own: only the
   first, where its rows stand beside the ``render`` baseline (its prefill alone, the
   completed-render fill) and Telea, each in the segmenter's m̂ and in the true mask.
3. ``deocc-eval --photos`` on the 300 real masked photos (``face_mask_detection/with_mask``),
   with the same m̂ (two, or one for a given-mask model).
4. The "evaluation" section of ``docs/RESULTS.md``.

Every stage is a CLI command, echoed as it runs; a stage whose output exists is not redone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

if __name__ == "__main__" and __package__ in (None, ""):  # python tools/eval_default.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.experiment_small import ROOT, cli, replace_section, sh  # noqa: E402

SECTION = "evaluation"
MODEL = ROOT / "assets" / "default_model.safetensors"
SETS = ("own", "held_out")
# eval folder suffix -> --segmenter: deocc-infer's default (the shipped segmenter's m̂ with the
# shipped G), then G's own m̂ side by side
MASKS = {"": "auto", "_gmask": "none"}


def _masks(model: Path) -> dict[str, str]:
    """The ``--segmenter`` runs for ``model``: a given-mask G has no m̂ of its own."""
    from deocc_core.nets.packaged import resolve_generator

    blend = resolve_generator(model)[1].blend
    return {"": "auto"} if blend == "given" else MASKS


def _infer_row(model: Path, masks: dict[str, str]) -> str:
    """The eval row ``deocc-infer photo.jpg`` makes with ``model``.

    ``masks``: :func:`_masks` of it (one m̂ run: a given-mask G). A given-mask G whose fill
    deocc-infer resolves to ``render`` (:func:`deocc_core.infer.run.resolve_fill`: the shipped
    model) fills with its prefill alone: the ``render@default`` row.
    """
    from deocc_core.infer.run import InferConfig, resolve_fill

    given = "_gmask" not in masks
    fill = resolve_fill(InferConfig(inputs=("-",), ckpt=str(model)))
    return "render@default" if given and fill == "render" else "default"


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=ROOT / "eval_default_out")
    ap.add_argument("--per-face", type=int, default=2, help="copies per face [default: 2]")
    ap.add_argument(
        "--photos-limit", type=int, default=300, help="real masked photos [default: 300]"
    )
    ap.add_argument("--docs", type=Path, default=ROOT / "docs")
    ap.add_argument(
        "--model",
        type=Path,
        default=MODEL,
        help="the model to evaluate (.safetensors, checkpoint or run folder) [default: the "
        "shipped default model]",
    )
    return ap.parse_args()


def test_faces(data: Path, out: Path) -> Path:
    """The default model's test identities of RMFD without_mask, linked into ``out``."""
    from deocc_core.synth.splits import assign_split

    src = data / "faces_bulk" / "face_mask_detection" / "without_mask"
    out.mkdir(parents=True, exist_ok=True)
    rows = (src / "identities.tsv").read_text().splitlines()
    keep = [rows[0]]
    for line in rows[1:]:
        image, identity = line.split("\t")
        if assign_split(identity, test_fraction=0.1) == "test":  # train_default's split
            keep.append(line)
            if not (out / image).exists():
                os.symlink(src / image, out / image)
    (out / "identities.tsv").write_text("\n".join(keep) + "\n")
    return out


def main() -> None:
    """Build, evaluate, report (see the module docstring)."""
    a = _args()
    if not a.data.is_dir():
        sys.exit(f"eval_default: {a.data}: shared data folder not found (pass --data)")
    log: list[str] = []
    faces = test_faces(a.data, a.out / "test_faces")
    common = ["build", "--source", "folder", "--root", str(faces), "--size", "128"]
    common += ["--per-face", str(a.per_face), "--per-shard", "512", "--seed", "0"]
    common += ["--test-fraction", "1.0"]
    # every test face, tight photos too: the test set stays the one earlier models were scored on
    common += ["--max-padding", "1"]
    extra = {
        "own": [],
        "held_out": ["--occluders", "mask,eyeglasses,sunglasses", "--asset-share", "1.0"]
        + ["--occluder-assets", str(a.data / "occluders")],
    }
    masks = _masks(a.model)
    results = {}
    for name in SETS:
        shards = a.out / "shards" / name
        _stage(
            cli("synth_occ") + common + ["--out", str(shards)] + extra[name],
            shards / "manifest.json",
            log,
        )
        for tag, seg in masks.items():  # as deocc-infer runs it, then G's own m̂
            ev = a.out / "eval" / (name + tag)
            _stage(
                cli("deocc_eval")
                + ["--shards", str(shards), "--split", "test", "--out", str(ev)]
                + ["--device", "cpu", "--ckpt", str(a.model), "--name", "default"]
                + ["--mask-source", "both", "--segmenter", seg],
                ev / "results.json",
                log,
            )
            results[name + tag] = json.loads((ev / "results.json").read_text())
    photos = {}
    for tag, seg in masks.items():
        ev = a.out / "eval" / ("photos" + tag)
        _stage(
            cli("deocc_eval")
            + ["--photos", str(a.data / "faces_bulk" / "face_mask_detection" / "with_mask")]
            + ["--out", str(ev), "--device", "cpu", "--limit", str(a.photos_limit)]
            + ["--ckpt", str(a.model), "--segmenter", seg],
            ev / "photos.json",
            log,
        )
        photos[tag] = json.loads((ev / "photos.json").read_text())
    text = section(results, photos, log, _infer_row(a.model, masks))
    replace_section(a.docs / "RESULTS.md", SECTION, text)
    print(f"\nwrote the {SECTION} section of {a.docs / 'RESULTS.md'}")


def _stage(cmd: list[str], done: Path, log: list[str]) -> None:
    """Run ``cmd`` unless its output ``done`` exists (then only log it: resumed runs)."""
    if done.is_file():
        log.append(" ".join(cmd) + "   # output existed: not rerun")
        return
    sh(cmd, log)


def _f(x: float, fmt: str = ".2f") -> str:
    return "n/a" if x != x else format(x, fmt)


def _cell(t: dict, m: str, g: str, k: str, fmt: str = ".3f") -> str:
    return _f(t[m][g].get(k, float("nan")), fmt) if m in t else "n/a"


G_ROWS = ("default", "telea@default", "ns@default")  # the rows G's own m̂ changes
G_TAG = " (G's m̂)"


def _merged(seg: dict, own: dict | None) -> dict:
    """The segmenter run's table with G's-m̂ rows beside its m̂ rows (same samples).

    ``own`` None (a given-mask model: no m̂ of its own): the segmenter run's table alone.
    """
    t = {}
    for m, groups in seg["table"].items():
        t[m] = groups
        if own and m in G_ROWS and m in own["table"]:
            t[m + G_TAG] = own["table"][m]
    return t


def _reading(t: dict, infer_row: str = "default") -> list[str]:
    """The comparisons the numbers answer, as sentences (computed, not typed).

    ``infer_row``: the row ``deocc-infer photo.jpg`` makes (``render@default`` for the shipped
    given-mask G, whose default fill is its prefill alone).
    """
    a = {m: g["all"] for m, g in t.items()}
    best_id = min(a, key=lambda m: a[m].get("id_dist", 9.0))
    d, g = a[infer_row], a.get("default" + G_TAG)
    true_row = infer_row.replace("@default", "@true") if "@" in infer_row else "default@true"
    own = (
        f"; with G's own m̂ {g.get('psnr', float('nan')):.2f} dB / "
        f"{g.get('ssim', float('nan')):.3f}, {g.get('psnr_mask', float('nan')):.2f} dB, m̂ IoU "
        f"{g.get('mask_iou', float('nan')):.3f}, identity {g.get('id_dist', float('nan')):.3f}"
        if g
        else " (a given-mask model: no m̂ of its own)"
    )
    return [
        f"- As `deocc-infer photo.jpg` runs it (the segmenter's m̂): {infer_row} "
        f"{d['psnr']:.2f} dB / SSIM {d['ssim']:.3f} on the crop, {d['psnr_mask']:.2f} dB in "
        f"the object, m̂ IoU {a['default']['mask_iou']:.3f} as pasted (the segmenter's m̂ as "
        f"predicted: {a['default'].get('seg_iou', float('nan')):.3f}), identity "
        f"{d['id_dist']:.3f}{own}.",
        *_render_reading(a),
        f"- The fill, judged apart from the mask (both in the true object mask): default@true "
        f"{a['default@true']['psnr_mask']:.2f} dB / SSIM {a['default@true']['ssim_mask']:.3f} vs "
        f"telea@true {a['telea@true']['psnr_mask']:.2f} dB / {a['telea@true']['ssim_mask']:.3f} "
        f"({a['default@true']['psnr_mask'] - a['telea@true']['psnr_mask']:+.2f} dB); identity "
        f"{a['default@true']['id_dist']:.3f} vs {a['telea@true']['id_dist']:.3f}.",
        f"- What the mask costs: pasted where the segmenter's m̂ says, {infer_row} "
        f"{d['psnr_mask']:.2f} dB in the object vs {a[true_row]['psnr_mask']:.2f}"
        f" dB with the true mask ({true_row}); Telea inside that m̂ "
        f"{a['telea@default']['psnr_mask']:.2f} dB vs {a['telea@true']['psnr_mask']:.2f} dB "
        "in the true mask.",
        f"- Identity: the closest to the ground truth is `{best_id}` "
        f"({a[best_id]['id_dist']:.3f}); the occluded input itself scores "
        f"{a['input']['id_dist']:.3f} ({100 * a['input']['id_same']:.0f} % same person): dlib's "
        "descriptor sees through these occluders, so a fill must beat the input, not only Telea.",
    ]


def _render_reading(a: dict) -> list[str]:
    """G vs the completed-render fill (the ``render`` baseline) vs Telea, in each mask."""
    if "render@true" not in a:
        return []
    return [
        f"- G vs the render fill vs Telea, {where}: default{m} {a['default' + m]['psnr_mask']:.2f}"
        f" dB, render{r} {a['render' + r]['psnr_mask']:.2f} dB, telea{r} "
        f"{a['telea' + r]['psnr_mask']:.2f} dB in the object (identity "
        f"{a['default' + m]['id_dist']:.3f} / {a['render' + r]['id_dist']:.3f} / "
        f"{a['telea' + r]['id_dist']:.3f})."
        for where, m, r in (
            ("given the true mask", "@true", "@true"),
            ("given the segmenter's m̂", "", "@default"),
        )
        if "render" + r in a
    ]


def section(
    results: dict[str, dict], photos: dict[str, dict], log: list[str], infer_row: str = "default"
) -> str:
    """The RESULTS section: every method's row with every column, per test set.

    ``results``: deocc-eval's results.json per set (``own``, ``held_out``) and per m̂
    (suffix ``_gmask``: ``--segmenter none``); ``photos``: photos.json per m̂ suffix.
    """
    out = [
        "## Evaluation of the default model: identity, masks given or predicted, held-out "
        "occluders, real photos",
        "",
        "Written by `python -m tools.eval_default` (shared 2-core CPU). Test faces: the default "
        "model's test identities of RMFD without_mask (never trained on), 2 occluded copies "
        "each. `own`: the 3D occluders it trained on. `held_out`: only real cut-outs it never "
        "saw. The default model is scored as `deocc-infer photo.jpg` runs it: `deocc-eval "
        "--segmenter auto` (the shipped occlusion segmenter's m̂ with the shipped G, one policy "
        "shared with deocc-infer), and beside it with G's own m̂ (`--segmenter none`, rows "
        f"marked `{G_TAG.strip()}`). Rows: `default` G's raw output blended and pasted where "
        "the segmenter's m̂ says; `default@true` G's raw output pasted exactly into the true "
        "occluder object's mask (as `deocc-infer --mask`), beside `telea@true` / `ns@true` on "
        "the same pixels; `default:raw` every pixel redrawn; `telea` / `ns` inpaint every "
        "pixel the composite changed (the earlier oracle: object, shadow, noise and 16-px JPEG "
        "blocks, often most of the face); `telea@default` / `ns@default` inpaint inside the "
        "m̂ (what the mask costs). Identity: dlib ResNet descriptor distance to the ground "
        "truth on the sample's landmarks (lower is better; same person < 0.6) and the share "
        "under 0.6. The real eyeglasses cut-out (Face-Image-Occlusions glass.png) is a thin "
        "frame: at 128 px most of its samples have no pixel of 50 % opacity, so its m̂ IoU "
        "says little.",
        "",
    ]
    if not any(k.endswith("_gmask") for k in results):
        out += [
            "This default model is a given-mask G (blend given): it fills the segmenter's m̂ "
            "(or the true mask) and has no m̂ of its own, so there are no "
            f"`{G_TAG.strip()}` rows (n/a in the class table). `render` / `render@true` / "
            "`render@default`: its prefill alone (the mask filled by the colour-matched "
            "completed render of the shards' face model, Telea beyond the render), in the "
            "same masks as Telea.",
            "",
        ]
    for name in SETS:
        r, rg = results[name], results.get(name + "_gmask")
        t = _merged(r, rg)
        p = r.get("protocol", {})
        held = p.get("held_out")
        out += [
            f"### {name}: {r['n_samples']} samples",
            "",
            f"Occluder families: {', '.join(p.get('test_families') or [])}. Held out (never in "
            f"the default model's training data): "
            f"{'unknown' if held is None else ', '.join(held) or 'none'}. m̂ of `default`: "
            f"{r.get('segmenter', {}).get('default', 'unknown')}.",
            "",
            "| method | PSNR | SSIM | PSNR in mask | SSIM in mask | identity dist | same person "
            "| m̂ IoU |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for m, groups in t.items():
            a = groups["all"]
            out.append(
                f"| {m} | {_f(a['psnr'])} | {_f(a['ssim'], '.4f')} | {_f(a['psnr_mask'])} | "
                f"{_f(a['ssim_mask'], '.4f')} | {_f(a.get('id_dist', float('nan')), '.3f')} | "
                f"{_f(100 * a.get('id_same', float('nan')), '.0f')} % | "
                f"{_f(a.get('mask_iou', float('nan')), '.3f')} |"
            )
        classes = sorted(k[6:] for k in t["default"] if k.startswith("class:"))
        gd = "default" + G_TAG
        out += [
            "",
            "Per class (n): m̂ IoU of the segmenter as predicted / as pasted (grown for the "
            "fill) / of G | identity distance of default "
            "(segmenter m̂) / default (G's m̂) / default@true / input / telea@true | PSNR in the "
            "object mask of default (segmenter m̂) / default@true / telea@true",
            "",
            "| class | n | IoU m̂ | IoU pasted | IoU G | id default | id default (G) | "
            "id default@true | id input | id telea@true | PSNR default | PSNR default@true | "
            "PSNR telea@true |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for c in classes:
            g = f"class:{c}"
            cells = [
                _cell(t, "default", g, "seg_iou"),
                _cell(t, "default", g, "mask_iou"),
                _cell(t, gd, g, "mask_iou"),
                *(
                    _cell(t, m, g, "id_dist")
                    for m in ("default", gd, "default@true", "input", "telea@true")
                ),
                *(
                    _cell(t, m, g, "psnr_mask", ".2f")
                    for m in ("default", "default@true", "telea@true")
                ),
            ]
            out.append(f"| {c} | {t['default'][g]['n']} | " + " | ".join(cells) + " |")
        out += ["", *_reading(t, infer_row), ""]
    out += [
        "### Real masked photos (face_mask_detection/with_mask, "
        f"{photos['']['n_photos']} photos, no ground truth)",
        "",
    ]
    for tag, what in (("", "the segmenter's m̂ (as deocc-infer)"), ("_gmask", "G's own m̂")):
        if tag not in photos:  # a given-mask model: no m̂ of its own
            continue
        ph = photos[tag]
        area = ph.get("mask_area_face") or []
        share = ph["n_with_face"] / max(ph["n_photos"], 1)
        skipped = ", ".join(f"{k} ×{v}" for k, v in ph["skipped"].items()) or "none"
        out.append(
            f"- {what}: a face processed in {ph['n_with_face']} photos ({100 * share:.1f} %), "
            f"{ph['n_faces']} faces; m̂ covers on average "
            f"{100 * sum(area) / max(len(area), 1):.1f} % of the fitted face silhouette M. "
            f"Skipped: {skipped}."
        )
    out += ["", "Commands:", "", "```", *log, "```"]
    return "\n".join(out)


if __name__ == "__main__":
    main()
