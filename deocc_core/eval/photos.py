"""``deocc-eval --photos DIR``: real occluded photos without ground truth.

Numbers that can be read without a person (the share of photos where a face was found,
why faces were skipped, the area the model's occlusion mask m̂ covers per face) and the
pictures for one (input crop | m̂ | output per face, the paper's Figure 6).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deocc_core.errors import ConfigError, InputError, SkipInput
from deocc_core.eval.report import markdown_to_html, png64
from deocc_core.imageio import read_image, write_image
from deocc_core.infer.grid import SHEET_COLUMNS, face_sheet
from deocc_core.infer.pipeline import deocclude_face
from deocc_core.landmarks.find import landmarks_for

__all__ = ["PhotoEvalResult", "evaluate_photos", "SHEET_FACES"]

log = logging.getLogger(__name__)
SHEET_FACES = 24  # faces shown in the report's sheet


@dataclass
class PhotoEvalResult:
    """What ``--photos`` found.

    Attributes:
        n_photos: photos listed. n_with_face: photos with at least one face processed.
        n_faces: faces processed. skipped: reason → count (photos and faces).
        mask_area: per processed face, the share of the crop with m̂ ≥ 0.5.
        mask_area_face: per face, the share of the fitted face silhouette M with m̂ ≥ 0.5.
        out: the report folder. model: which generator (and segmenter).
        segmenter: what ``--segmenter`` resolved to (deocc-infer's policy).
    """

    n_photos: int = 0
    n_with_face: int = 0
    n_faces: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    mask_area: list[float] = field(default_factory=list)
    mask_area_face: list[float] = field(default_factory=list)
    out: Path | None = None
    model: str = ""
    segmenter: str = "none"  # whose m̂: default (the shipped segmenter), none (G's) or a file


def evaluate_photos(config: Any, progress: Callable[..., None] | None = None) -> PhotoEvalResult:
    """Run the model over ``config.photos`` and write ``photos.json``, ``photos.md``, a report.

    Args:
        config: an :class:`deocc_core.eval.evaluate.EvalConfig` with ``photos`` set (its first
            checkpoint, else the default model; ``limit``, ``device``, ``out``).
        progress: ``progress(0, total=n)`` then ``progress(1)`` per photo.

    Raises:
        InputError: the folder has no images.
        ConfigError: more than one checkpoint.
    """
    from deocc_core.infer.run import InferConfig, list_images, load_run

    if len(config.checkpoints) > 1:
        raise ConfigError("--photos evaluates one model: give at most one --ckpt")
    paths = list_images([config.photos])
    if not paths:
        raise InputError(f"{config.photos}: no images found")
    paths = paths[: config.limit] if config.limit else paths
    ckpt = config.checkpoints[0][1] if config.checkpoints else None
    run = load_run(
        InferConfig(
            inputs=(config.photos,), ckpt=ckpt, device=config.device, segmenter=config.segmenter
        )
    )
    if progress:
        progress(0, total=len(paths))
    r = PhotoEvalResult(n_photos=len(paths), model=run.label, segmenter=run.segmenter_choice)
    skipped: Counter[str] = Counter()
    per_photo, sheet = [], []
    for path in paths:
        rec: dict[str, Any] = {"photo": str(path), "faces": [], "skipped": []}
        per_photo.append(rec)
        try:
            photo = read_image(path)
            found = landmarks_for(path, photo, "detector", run.detector)
        except SkipInput as e:
            skipped[e.reason] += 1
            rec["skipped"].append(e.reason)
            found = []
        if not found and not rec["skipped"]:
            skipped["no face found"] += 1
            rec["skipped"].append("no face found")
        for k, f in enumerate(found):
            try:
                fo = deocclude_face(
                    photo,
                    f.landmarks,
                    run.G,
                    run.spec,
                    run.model,
                    run.device,
                    config=run.face_config,
                    segmenter=run.segmenter,  # m̂ and its fill as deocc-infer makes them
                    fill=run.fill,
                    fill_model=run.fill_model,
                )
            except InputError as e:
                reason = e.reason if isinstance(e, SkipInput) else str(e).split(" (")[0]
                skipped[reason] += 1
                rec["skipped"].append(f"face {k}: {reason}")
                continue
            occ = fo.mask >= 128
            face = fo.face.face_mask > 0
            area = float(occ.mean())
            area_face = float((occ & face).sum() / max(face.sum(), 1))
            r.mask_area.append(area)
            r.mask_area_face.append(area_face)
            rec["faces"].append({"face": k, "mask_area": area, "mask_area_face": area_face})
            if len(sheet) < SHEET_FACES:
                label = f"{path.stem}: {100 * area_face:.0f} %"
                sheet.append((label, fo.face.crop, fo.mask, fo.output))
        r.n_faces += len(rec["faces"])
        r.n_with_face += bool(rec["faces"])
        if progress:
            progress(1)
    r.skipped = dict(skipped.most_common())
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    r.out = out
    md = photos_markdown(r, str(config.photos))
    _write(out / "photos.md", md)
    summary = {k: v for k, v in asdict(r).items() if k not in ("out",)}
    _write(out / "photos.json", json.dumps({**summary, "photos": per_photo}, indent=1))
    png = ""
    if sheet:
        img = face_sheet(sheet, per_row=4)
        write_image(out / "photos_sheet.png", img)
        png = (
            f"<p>{SHEET_COLUMNS}; label: m̂ share of M</p>"
            f"<img src='data:image/png;base64,{png64(img)}'>"
        )
    body = "\n".join(markdown_to_html(md)) + png
    _write(
        out / "report.html",
        "<!doctype html><html><head><meta charset='utf-8'><title>deocc-eval --photos</title>"
        f"</head><body><h1>deocc-eval --photos</h1>{body}</body></html>",
    )
    return r


def photos_markdown(r: PhotoEvalResult, folder: str) -> str:
    """``photos.md``: faces found, skip reasons, m̂ area per face (quantiles)."""
    area = np.asarray(r.mask_area_face, np.float64)
    q = np.percentile(area, [10, 50, 90]) if area.size else [np.nan] * 3
    share = r.n_with_face / max(r.n_photos, 1)
    lines = [
        f"# deocc-eval --photos ({r.n_photos} photos, no ground truth)",
        "",
        f"Model: {r.model}. Photos: `{folder}`.",
        "",
        "| photos | with a face processed | faces | m̂ share of the face M: mean | p10 | "
        "median | p90 | m̂ share of the crop: mean |",
        "|---|---|---|---|---|---|---|---|",
        f"| {r.n_photos} | {r.n_with_face} ({100 * share:.1f} %) | {r.n_faces} | "
        f"{np.mean(area) if area.size else float('nan'):.3f} | {q[0]:.3f} | {q[1]:.3f} | "
        f"{q[2]:.3f} | {np.mean(r.mask_area) if r.mask_area else float('nan'):.3f} |",
        "",
        "## Skipped (photos or faces), by reason",
        "",
        "| reason | count |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in r.skipped.items()],
        "",
    ]
    return "\n".join(lines)


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text)
    except OSError as e:
        raise InputError(f"{path}: cannot write: {(e.strerror or str(e)).lower()}") from None
