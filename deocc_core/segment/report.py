"""Export a segmenter run (fp16 safetensors + card) and write its held-out scores.

The scores go into a marked section of ``docs/RESULTS.md`` and of the card, replaced in
place on every run (``<!-- segmenter:begin -->`` … ``<!-- segmenter:end -->``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from deocc_core.errors import InputError
from deocc_core.nets.checkpoint import load_checkpoint
from deocc_core.nets.segmenter import (
    Segmenter,
    SegmenterSpec,
    load_segmenter,
    run_segmenter,
    save_segmenter,
)
from deocc_core.segment.evaluate import (
    THRESHOLD,
    SegEvalResult,
    binary_iou,
    evaluate_masks,
    results_markdown,
)
from deocc_core.segment.faces import load_face_crops, real_masked_crops
from deocc_core.segment.pseudo import FOLDERS, RealMasks, load_real_masks, real_mask_photos

__all__ = [
    "SegExport",
    "SegReportConfig",
    "export_segmenter",
    "replace_section",
    "run_segmenter_eval",
]

log = logging.getLogger(__name__)
BEGIN, END = "<!-- segmenter:begin -->", "<!-- segmenter:end -->"

_CARD = """# Occlusion segmenter (deocc, issue 24 part 1)

A compact U-Net (`deocc_core/nets/segmenter.py`, {n_params:,} parameters, fp16 safetensors)
that marks the occluded pixels of an aligned {size} px face crop. `deocc-infer` fills its m̂
(`--segmenter default`; a generator with a mask channel: in place of G's own m̂).

- **Data**: real, clean face photos of `../shared/data/faces_bulk` (CelebAMask-HQ minus its
  eyeglasses wearers, Face-Mask-Detection `without_mask`, deepface), aligned like
  inference, identity-disjoint train split only; occluded on the fly by the project's own
  procedural occluders (masks, glasses, sunglasses, hands, scarves, cups) and random shapes,
  with their inside redrawn from other photos, fabric-like textures, the face's own skin
  tone or flat colours (`deocc_core/segment/occlude.py`).{extra_data} No real cut-out of
  `../shared/data/occluders` was used: they are the test.
- **Terms**: research use only (the photos are CelebA-HQ / RMFD / web photos with
  non-commercial research terms).
- **Budget**: {steps} steps of {batch} crops (`tools/train_segmenter.py train`), CPU, one
  thread on a shared 2-core machine. {note}

{begin}
(no scores yet: run `python -m tools.train_segmenter eval --card {card_name}`)
{end}
"""


@dataclass(frozen=True)
class SegExport:
    """``path`` written, its ``size_bytes``, the run's ``step``."""

    path: Path
    size_bytes: int
    step: int


def export_segmenter(run: Path, out: Path, note: str = "") -> SegExport:
    """A run's ``latest.pt`` as fp16 safetensors at ``out`` plus a card ``out.with_suffix('.md')``.

    ``note`` is added to the card's budget line (e.g. what the run started from).

    Raises:
        InputError: the run has no checkpoint.
    """
    ckpt = Path(run) / "latest.pt"
    if not ckpt.is_file():
        raise InputError(f"{ckpt}: no segmenter checkpoint (train first)")
    state = load_checkpoint(ckpt)
    cfg = state["config"]
    widths = tuple(int(w) for w in cfg["widths"].strip("()").split(",") if w.strip())
    sd = state["G"]
    net = Segmenter(SegmenterSpec(size=128, widths=widths))
    net.load_state_dict(sd)
    meta = {"step": str(state["step"]), "batch": cfg["batch"], "terms": "research use only"}
    path = save_segmenter(net, out, meta)
    card = Path(out).with_suffix(".md")
    card.write_text(
        _CARD.format(
            n_params=sum(p.numel() for p in net.parameters()),
            size=net.spec.size,
            steps=state["step"],
            batch=cfg["batch"],
            begin=BEGIN,
            end=END,
            card_name=card.as_posix(),
            note=note,
            extra_data=_extra_data(cfg),
        )
    )
    return SegExport(path, path.stat().st_size, int(state["step"]))


def _extra_data(cfg: dict[str, str]) -> str:
    """The card's words for the labelled crops a run mixed in (its config, as strings)."""
    out = ""
    if cfg.get("occ_shards") and float(cfg.get("occ_share", 0)) > 0:
        out += (
            f" {float(cfg['occ_share']):.1%} of each batch: deocc's 3D occluders "
            "(`synth-occ build` on train photos only, `deocc_core/segment/occ3d.py`)."
        )
    if float(cfg.get("glasses_share", 0)) > 0:
        out += (
            f" {float(cfg['glasses_share']):.1%} of each batch: the `glasses_train` half of "
            "CelebAMask-HQ's eyeglasses wearers with their pixel labels (class 3); the other "
            "half is the real-glasses test."
        )
    if cfg.get("real_masks") and float(cfg.get("real_share", 0)) > 0:
        out += (
            f" {float(cfg['real_share']):.1%} of each batch: real face masks of the train split "
            "of `with_mask` and `rwmfd_part1` (70 % of their identities) with GrabCut "
            "pseudo-labels that passed their checks (`deocc_core/segment/pseudo.py`, "
            "`train-segmenter pseudo`); the held-out 30 % are the real-photo sheets."
        )
    return out


def replace_section(path: Path, section: str) -> None:
    """Put ``section`` between the segmenter markers of ``path``.

    When the markers are absent the block goes before the file's first generated section
    (``<!-- ...`` line: the results are newest first), else at the end.
    """
    text = path.read_text() if path.is_file() else ""
    block = f"{BEGIN}\n{section.rstrip()}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    elif "\n<!-- " in text:  # newest first: before the first generated section
        head, rest = text.split("\n<!-- ", 1)
        text = head + "\n" + block + "\n\n<!-- " + rest
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


@dataclass(frozen=True)
class SegReportConfig:
    """Options of ``tools/train_segmenter.py eval`` (see its ``--help``)."""

    faces: Path
    segmenter: Path
    shared_data: Path
    out: Path
    results: Path | None = None
    card: Path | None = None
    n_faces: int = 40
    n_real: int = 16
    with_default: bool = True
    seed: int = 0
    occ_shards: Path | None = None
    real_masks: Path | None = None


REAL_ROW = "real masks: held-out photos (pseudo-labels)"


def _score_real_masks(r: SegEvalResult, net: torch.nn.Module, masks: RealMasks) -> None:
    """Add the segmenter's IoU with the checked pseudo-labels of held-out real photos to ``r``.

    Those labels were seeded by a segmenter's m̂ (the one that made the file), so the row
    favours it a little; it still says whether m̂ follows real masks in real photos.
    """
    keep = masks.ok & (masks.split == "test")
    if not keep.any():
        return
    probs = run_segmenter(net, masks.images[keep])
    iou = [binary_iou(p > THRESHOLD, t) for p, t in zip(probs, masks.targets[keep], strict=True)]
    r.scores["segmenter"][REAL_ROW] = float(np.mean(iou))
    r.counts[REAL_ROW] = int(keep.sum())


def run_segmenter_eval(
    config: SegReportConfig, progress: Callable[[int], None] | None = None
) -> SegEvalResult:
    """Score a packaged segmenter held out (:func:`evaluate_masks`) and write the reports.

    Writes ``out/scores.json`` and the sheets; rewrites the segmenter section of
    ``results`` and ``card`` when given.
    """
    from deocc_core.landmarks.find import LazyDetector

    torch.set_num_threads(1)
    net, meta = load_segmenter(config.segmenter)
    crops = load_face_crops(config.faces)
    generator = None
    if config.with_default:
        from deocc_core.morphable.model import load_model
        from deocc_core.nets.io import prepare_generator
        from deocc_core.nets.packaged import resolve_generator

        G, spec, _ = resolve_generator(None, "cpu")
        if spec.blend == "given":  # the default model fills a given mask: no m̂ of its own
            log.info("the default model is a given-mask G: no 'default G' column")
        else:
            generator = (prepare_generator(G), spec, load_model("starter"), torch.device("cpu"))
    occ3d = None
    if config.occ_shards is not None:
        from deocc_core.segment.occ3d import load_occ_samples

        occ3d = load_occ_samples(config.occ_shards, crops, "test")
    real, tried = {}, {}
    if config.n_real:
        det = LazyDetector()
        # the photos the pseudo-labels never train on (deocc_core.segment.pseudo's test split)
        photos_all = real_mask_photos(config.shared_data / "faces_bulk")
        held = [(k, p) for k, p, split in photos_all if split == "test"]
        for name in FOLDERS:
            photos = [p for k, p in held if k.startswith(name + "/")]
            real[name], n, missed = real_masked_crops(photos, det, config.n_real, config.seed)
            tried[name] = (n, missed)
        real["real_glasses"] = list(crops.images[crops.split == "glasses"][: config.n_real])
    r = evaluate_masks(
        crops,
        config.shared_data / "occluders",
        net,
        generator,
        n_faces=config.n_faces,
        seed=config.seed,
        real_photos=real,
        occ3d=occ3d,
        out=config.out,
        progress=progress,
    )
    if config.real_masks is not None:
        _score_real_masks(r, net, load_real_masks(config.real_masks))
    config.out.mkdir(parents=True, exist_ok=True)
    (config.out / "scores.json").write_text(
        json.dumps(
            {"scores": r.scores, "counts": r.counts, "skipped": r.skipped, "real": tried},
            indent=1,
        )
    )
    note = (
        f"`python -m tools.train_segmenter eval` (segmenter step {meta.get('step')}): "
        f"{config.n_faces} held-out test faces (identity-disjoint), one real cut-out per "
        "family each, pasted on the aligned crop with the clean face's landmarks; both masks "
        "on the same crop. Real masked photos, no face found: "
        + ", ".join(f"{k} {m} of {n}" for k, (n, m) in tried.items())
        + ". Real eyeglasses: the held-out half of CelebAMask-HQ's eyeglasses wearers."
        + (
            f" 3D rows: `synth-occ` samples of {len(occ3d.images)} crops of test photos "
            f"({config.occ_shards.name}); eyeglasses scored as frame + lenses and as the "
            "object alone."
            if occ3d is not None
            else ""
        )
    )
    md = results_markdown(r, note)
    if config.results is not None:
        replace_section(config.results, md)
    if config.card is not None:
        replace_section(config.card, md.replace("## ", "### ", 1))
    return r
