"""Evaluate checkpoints and baselines on a shard split.

Tables per region (the paper's Table 1 groups) and per occluder class, whole crop and
inside the occluder's object mask, and a self-contained HTML report (report.py).

Each checkpoint gives two rows: ``<name>`` is what ``deocc-infer`` delivers (G's output
pasted into the occluded crop by :func:`deocc_core.infer.paste.paste_crop`, where its mask
m̂ says), ``<name>:raw`` is G's raw output (every pixel redrawn). Baselines: the occluded
input, and OpenCV Telea / Navier-Stokes inpainting given the true mask (an oracle).

Masks given or predicted (``mask_source``), so the fill and the mask are judged apart:
``<name>@true`` is G's raw output pasted exactly into the TRUE object mask (what
``deocc-infer --mask`` delivers), beside ``telea@true`` / ``ns@true`` on the same pixels, and
``telea@<name>`` / ``ns@<name>`` inpaint where the first checkpoint's m̂ says (what the
mask costs a classical fill). Identity: dlib's face descriptor distance between each output
and the ground truth on the sample's landmarks (:mod:`deocc_core.eval.identity`). The m̂ IoU
with the occluder object's mask per checkpoint. The occluder families of the shards, and
which of them the checkpoint never trained on (:mod:`deocc_core.eval.protocol`).

A given-mask G (``blend="given"``) is told the mask: ``<name>`` fills the segmenter's m̂ of
the occluded crop (as deocc-infer), ``<name>@true`` the true object mask; both prefill it
with the sample's render (:func:`deocc_core.infer.fill.prefill`), which the ``render``
baseline scores alone in the same masks as Telea (``render``, ``render@true``,
``render@<name>``).
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deocc_core.device import DEVICES, resolve_device
from deocc_core.errors import ConfigError, FormatError, InputError
from deocc_core.eval.baselines import BASELINES, run_baseline
from deocc_core.eval.identity import SAME_PERSON, descriptor_distance, face_descriptors
from deocc_core.eval.metrics import score
from deocc_core.eval.protocol import occluder_protocol
from deocc_core.eval.report import (
    PAPER_TABLE1,
    comparison_rows,
    html_report,
    markdown_report,
    sheet_header,
)
from deocc_core.imageio import write_image
from deocc_core.infer.fill import segmenter_mask
from deocc_core.infer.paste import IDENTITY, paste_crop, paste_given, paste_region, replaced_pixels
from deocc_core.infer.pipeline import given_fill, segmented_output
from deocc_core.nets.io import GeneratorSpec, prepare_generator, run_generator
from deocc_core.nets.packaged import resolve_generator
from deocc_core.nets.segmenter import SEGMENTER_HELP, resolve_segmenter, run_segmenter
from deocc_core.occluders.classes import OccluderClass, Region
from deocc_core.options import option
from deocc_core.synth.manifest import read_manifest
from deocc_core.synth.schema import ENUMS, IMAGE_KEYS
from deocc_core.synth.shards import ShardReader
from deocc_core.synth.verify import checked_shard_paths
from deocc_core.viz import image_grid

__all__ = [
    "EvalConfig",
    "EvalResult",
    "evaluate",
    "method_names",
    "mask_iou",
    "PAPER_TABLE1",
    "RAW_SUFFIX",
    "TRUE_SUFFIX",
    "SCORE_MASK",
]

log = logging.getLogger(__name__)

METRICS = ("psnr", "ssim", "psnr_mask", "ssim_mask")
RAW_SUFFIX = ":raw"  # the second row of each checkpoint: G's raw output
REGION_SUFFIX = ":region"  # (batch key) where a checkpoint pastes: m̂, or M for blend none
SEG_SUFFIX = ":seg"  # (batch key) the segmenter's m̂ as predicted, before the fill grows it
TRUE_SUFFIX = "@true"  # G's raw output pasted into the true mask
MASK_SOURCES = ("predicted", "true", "both")
# "inside the occluder" = the occluder object's mask (occ_mask); the oracle baselines inpaint
# every pixel the composite changed (changed_mask: object + shadow)
SCORE_MASK = "occ_mask"
ORACLE_MASK = "changed_mask"
TRUE_MASK = "occ_mask"  # mask_source true: what NAME@true and telea@true / ns@true fill


@dataclass(frozen=True)
class EvalConfig:
    """What ``deocc-eval`` runs (each field's help is its ``option`` metadata)."""

    shards: str | None = option(
        None, "Shard folder (with manifest.json).", path="dir", default_help="none: --photos"
    )
    photos: str | None = option(
        None,
        "Instead of shards: a folder of real occluded photos without ground truth (faces "
        "found, skip reasons, m̂ area per face, input | m̂ | output sheet); one --ckpt or the "
        "default model.",
        path="dir",
        default_help="none",
    )
    out: str = option("eval_out", "Report folder.", path="out")
    split: str = option("test", "Split to evaluate (identity-disjoint from train).")
    checkpoints: tuple[tuple[str, str], ...] = option(
        (),
        "(method name, checkpoint file, run folder or .safetensors) pairs; each gives the rows "
        "NAME (pasted back, what deocc-infer writes) and NAME:raw (G's raw output).",
    )
    baselines: tuple[str, ...] = option(
        ("input", "telea", "ns", "render"),
        "Baselines (input: the occluded image; telea, ns: OpenCV inpainting given the TRUE "
        "occluder mask; render: the mask filled by the sample's render colour-matched to the "
        "skin around it, Telea beyond its silhouette, i.e. a given-mask G's prefill: "
        "deocc-face's completed render on shards built with --model deocc-face, that model's "
        "render on others; read render@true / render@NAME: its plain row fills every changed "
        "pixel, often the whole crop, mostly beyond the render, where it is Telea of that hole)",
        choices=BASELINES,
    )
    mask_source: str = option(
        "both",
        "Which mask says where to fill. predicted: each checkpoint pastes where its m̂ says "
        "(NAME) and Telea / NS inpaint inside the first checkpoint's m̂ (telea@NAME); true: "
        "every method fills the true occluder object's mask (NAME@true: G's raw output, as "
        "deocc-infer --mask; telea@true, ns@true); both: all of these rows. The rows telea / "
        "ns (inpainting every pixel the composite changed: an oracle) are always there.",
        choices=MASK_SOURCES,
    )
    segmenter: str = option(
        "auto",
        SEGMENTER_HELP + " Per --ckpt, as deocc-infer runs it (none with a given-mask "
        "generator: only --mask-source true).",
    )
    identity: bool = option(
        True,
        "Identity columns: dlib's face descriptor distance of each output to the ground "
        "truth on the sample's landmarks (same person below 0.6); ~0.1 CPU s per face and "
        "method.",
    )
    limit: int | None = option(None, "Evaluate at most N samples.", min=1, default_help="all")
    device: str = option("auto", "Where G runs.", choices=DEVICES)
    batch_size: int = option(8, "Samples per generator batch.", min=1)


@dataclass
class EvalResult:
    """Per-method aggregates: ``table[method][group][metric]`` (+ ``n``).

    Groups: ``all``, ``region:<name>`` and ``class:<name>``.
    """

    table: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    n_samples: int = 0
    out: Path | None = None
    protocol: dict[str, Any] = field(default_factory=dict)
    segmenters: dict[str, str] = field(default_factory=dict)


# method name, prepared G, its spec, the segmenter whose m̂ it pastes by (None: G's own)
Net = tuple[str, nn.Module, GeneratorSpec, nn.Module | None]


def evaluate(config: EvalConfig, progress: Callable[..., None] | None = None) -> EvalResult:
    """Run every method on the split and write ``results.json``, ``results.md``, ``report.html``.

    Raises:
        ConfigError: split missing, checkpoint of another resolution, unknown baseline.
    """
    if not config.shards:
        raise ConfigError("nothing to evaluate: give --shards DIR or --photos DIR")
    folder = Path(config.shards)
    manifest = _check_config(config, folder)
    device = resolve_device(config.device)
    nets, infos, segmenters = _load_checkpoints(config, manifest["resolution"], device)
    methods = method_names([n[0] for n in nets], config.baselines, config.mask_source)
    if not methods:
        raise ConfigError("nothing to evaluate: give --ckpt and/or --baselines")
    protocol = occluder_protocol(manifest.get("config"), infos[0] if infos else None)
    paths = checked_shard_paths(folder, config.split)  # a changed shard: one line, no score
    rows = _score_split(config, paths, nets, methods, device, progress)
    if not rows:
        raise ConfigError(f"{folder}: split {config.split!r} has no samples")
    table = _aggregate(rows, methods)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    _write_results_json(out / "results.json", config, table, rows, protocol, segmenters)
    md = markdown_report(table, methods, len(rows), protocol)
    _write_text(out / "results.md", md + _segmenter_note(segmenters))
    # images only for the few samples shown: re-read and re-run them (memory stays O(batch))
    picks = _picks(rows, methods[0])
    first = list(range(min(8, len(rows))))
    wanted = sorted({i for ids in picks.values() for i in ids} | set(first))
    images = _sample_images(rows, wanted, {p.name: p for p in paths}, nets, methods, device)
    _write_text(
        out / "report.html", html_report(table, methods, rows, images, picks, len(rows), protocol)
    )
    labels = [
        f"{rows[i]['class']} / {rows[i]['region']}"
        + (f"   ({sheet_header(methods)})" if j == 0 else "")
        for j, i in enumerate(first)
    ]
    write_image(out / "samples.png", image_grid(comparison_rows(images, first, methods), labels))
    return EvalResult(table, len(rows), out, protocol, segmenters)


def _segmenter_note(segmenters: dict[str, str]) -> str:
    """results.md: which m̂ each checkpoint's rows were pasted by."""
    if not segmenters:
        return ""
    said = {"none": "G's own mask channel", "default": "the shipped occlusion segmenter"}
    lines = [f"- `{n}`: {said.get(c, f'the segmenter {c}')}" for n, c in segmenters.items()]
    return "\n## Occlusion mask m̂ (--segmenter)\n\n" + "\n".join(lines) + "\n"


def method_names(nets: list[str], baselines: tuple[str, ...], mask_source: str) -> list[str]:
    """The rows of an evaluation, in report order.

    Example:
        >>> method_names(["m"], ("input", "telea"), "both")
        ['m', 'm@true', 'm:raw', 'input', 'telea', 'telea@true', 'telea@m']
        >>> method_names(["m"], ("input", "telea"), "predicted")
        ['m', 'm:raw', 'input', 'telea', 'telea@m']
        >>> method_names([], ("input", "telea"), "predicted")  # no m̂: the oracle only
        ['input', 'telea']

    ``telea`` / ``ns`` (the oracle on every changed pixel, as before) are always rows.
    """
    pred = mask_source in ("predicted", "both")
    true = mask_source in ("true", "both")
    methods = []
    for n in nets:
        methods += [n] if pred else []
        methods += [n + TRUE_SUFFIX] if true else []
        methods.append(n + RAW_SUFFIX)
    for b in baselines:
        if b == "input":
            methods.append(b)
            continue
        methods.append(b)
        if true:
            methods.append(b + TRUE_SUFFIX)
        if pred and nets:
            methods.append(f"{b}@{nets[0]}")
    return methods


def _check_config(config: EvalConfig, folder: Path) -> dict[str, Any]:
    """The shard manifest, after checking the split, baselines and method names."""
    try:
        manifest = read_manifest(folder)
    except ValueError:  # corrupt or empty manifest.json
        manifest = None
    if not isinstance(manifest, dict) or not {"splits", "resolution"} <= set(manifest):
        raise FormatError(f"{folder / 'manifest.json'}: not a readable shard manifest")
    if config.split not in manifest["splits"]:
        raise ConfigError(
            f"{folder}: no {config.split!r} split (has {', '.join(manifest['splits'])})"
        )
    bad = [b for b in config.baselines if b not in BASELINES]
    if bad:
        raise ConfigError(f"unknown baseline {bad[0]!r} (choose from {', '.join(BASELINES)})")
    if config.mask_source not in MASK_SOURCES:
        raise ConfigError(
            f"mask_source must be one of {', '.join(MASK_SOURCES)}, got {config.mask_source!r}"
        )
    names = [m for n, _ in config.checkpoints for m in (n, n + RAW_SUFFIX)]
    names += list(config.baselines)
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"method name {dup[0]!r} used twice: give each --ckpt its own --name")
    return manifest


def _load_checkpoints(
    config: EvalConfig, resolution: int, device: torch.device
) -> tuple[list[Net], list[dict[str, Any]], dict[str, str]]:
    """Every ``--ckpt`` as (name, prepared G, spec, segmenter), with its info and m̂ choice.

    The info holds its training data; the choice is what ``--segmenter`` resolved to for
    it, by deocc-infer's policy (:func:`deocc_core.nets.segmenter.resolve_segmenter`).

    Raises:
        ConfigError: a checkpoint for another resolution; a given-mask G without a segmenter
            where a predicted mask is scored.
    """
    nets, infos, chosen = [], [], {}
    for name, path in config.checkpoints:
        G, spec, info = resolve_generator(path, device)
        infos.append(info)
        if spec.size != resolution:
            raise ConfigError(
                f"{path}: checkpoint is for {spec.size} px, shards {config.shards} are "
                f"{resolution} px"
            )
        given = spec.blend == "given"
        seg, chosen[name] = resolve_segmenter(config.segmenter, path, device, given=given)
        if given and seg is None and config.mask_source != "true":
            raise ConfigError(
                f"{path}: a given-mask generator (blend given) has no mask of its own: "
                f"--segmenter {config.segmenter} leaves --mask-source {config.mask_source} "
                "nothing to fill; use --segmenter default (or a file) or --mask-source true"
            )
        nets.append((name, prepare_generator(G), spec, seg))
    return nets, infos, chosen


def _score_split(
    config: EvalConfig,
    paths: list[Path],
    nets: list[Net],
    methods: list[str],
    device: torch.device,
    progress: Callable[..., None] | None,
) -> list[dict[str, Any]]:
    """One row per sample: shard, index, region, class and each method's scores.

    At most ``config.limit`` samples, run in batches of ``config.batch_size``.
    """
    total = 0
    for p in paths:
        with ShardReader(p) as r:
            total += len(r)
    limit = min(total, config.limit) if config.limit else total
    if progress:
        progress(0, total=limit)
    rows: list[dict[str, Any]] = []
    for p in paths:
        with ShardReader(p) as r:
            for s0 in range(0, len(r), config.batch_size):
                stop = min(len(r), s0 + config.batch_size, s0 + limit - len(rows))
                if stop <= s0:
                    return rows
                batch = _run_methods(r, s0, stop, nets, methods, device)
                rows += _score_batch(batch, p.name, s0, methods, nets, config.identity)
                if progress:
                    for _ in range(stop - s0):
                        progress(1)
    return rows


def _score_batch(
    batch: dict[str, np.ndarray],
    shard: str,
    start: int,
    methods: list[str],
    nets: list[Net],
    identity: bool,
) -> list[dict[str, Any]]:
    """Per sample: PSNR / SSIM per method, the identity distance, each m̂'s IoU."""
    dist = {}
    if identity:  # one descriptor per image: the ground truth's, then each method's
        gt_desc = face_descriptors(batch["gt"], batch["landmarks"])
        for m in methods:
            dist[m] = descriptor_distance(face_descriptors(batch[m], batch["landmarks"]), gt_desc)
    rows = []
    for k in range(len(batch["gt"])):
        mask = batch[SCORE_MASK][k] > 0
        row = {
            "shard": shard,
            "index": start + k,
            "region": Region(int(batch["region"][k])).name.lower(),
            "class": OccluderClass(int(batch["occluder_class"][k])).name.lower(),
        }
        for m in methods:
            row[m] = asdict(score(batch[m][k], batch["gt"][k], mask))
            if identity:
                row[m]["id_dist"] = float(dist[m][k])
                row[m]["id_same"] = float(dist[m][k] < SAME_PERSON)
        for name, _, spec, seg in nets:
            if (spec.blend == "mask" or seg is not None) and name in row:
                row[name]["mask_iou"] = mask_iou(
                    batch[name + REGION_SUFFIX][k], batch[SCORE_MASK][k]
                )
            if name + SEG_SUFFIX in batch and name in row:
                row[name]["seg_iou"] = mask_iou(batch[name + SEG_SUFFIX][k], batch[SCORE_MASK][k])
        rows.append(row)
    return rows


def mask_iou(region: np.ndarray, occ_mask: np.ndarray, threshold: float = 0.5) -> float:
    """IoU of m̂ ≥ threshold with the occluder object (opacity ≥ 50 %); NaN when both empty.

    Example:
        >>> a = np.zeros((4, 4), np.uint8); a[:2] = 255; b = np.zeros_like(a); b[1:3] = 255
        >>> mask_iou(a, b)
        0.3333333333333333
    """
    p = region >= threshold * 255
    t = occ_mask >= 128
    union = (p | t).sum()
    return float((p & t).sum() / union) if union else float("nan")


def _write_results_json(
    path: Path,
    config: EvalConfig,
    table: dict[str, Any],
    rows: list[dict[str, Any]],
    protocol: dict[str, Any],
    segmenters: dict[str, str],
) -> None:
    results = {
        "config": asdict(config),
        "protocol": protocol,
        "segmenter": segmenters,  # per checkpoint: default, none or a file (which m̂)
        "n_samples": len(rows),
        "table": table,
        "paper_table1": PAPER_TABLE1,
        "samples": rows,
    }
    _write_text(path, json.dumps(results, indent=1, default=str))


def _write_text(path: Path, text: str) -> None:
    """Write a report file; InputError naming the path and the reason on failure."""
    try:
        path.write_text(text)
    except OSError as e:
        raise InputError(f"{path}: cannot write: {(e.strerror or str(e)).lower()}") from None


def _sample_images(
    rows: list[dict[str, Any]],
    ids: list[int],
    by_name: dict[str, Path],
    nets: list[Net],
    methods: list[str],
    device: torch.device,
) -> dict[int, dict[str, np.ndarray]]:
    """Crops and every method's output for the samples ``ids`` (re-read and re-run)."""
    images = {}
    for i in ids:
        with ShardReader(by_name[rows[i]["shard"]]) as r:
            b = _run_methods(r, rows[i]["index"], rows[i]["index"] + 1, nets, methods, device)
        images[i] = {k: v[0] for k, v in b.items() if k in (*IMAGE_KEYS, *methods)}
    return images


def _run_methods(
    r: ShardReader, start: int, stop: int, nets: list[Net], methods: list[str], device: torch.device
) -> dict[str, np.ndarray]:
    """Samples ``start:stop`` of an open shard and every method's uint8 output for them."""
    keys = sorted({*IMAGE_KEYS, SCORE_MASK, ORACLE_MASK, "face_mask", "landmarks", *ENUMS})
    try:
        b = {k: r.dataset(k)[start:stop] for k in keys}
    except (OSError, ValueError, KeyError, RuntimeError) as e:  # damaged HDF5 chunks
        msg = str(e).splitlines()[0][:80] if str(e) else type(e).__name__
        raise FormatError(f"{r.path}: samples {start}..{stop - 1} unreadable ({msg})") from None
    oracle = b[ORACLE_MASK]
    # the true mask a user would paint: the occluder object (with its soft edge), not the
    # shadow / JPEG / noise pixels the oracle rows also get (changed_mask: often the whole face)
    true = ((b[TRUE_MASK] > 0) * 255).astype(np.uint8)
    n = stop - start
    covered = b["face_mask"] > 0  # the render's silhouette
    for name, G, spec, seg in nets:
        if spec.blend == "given":
            _run_given(b, name, G, spec, seg, true, covered, methods, device)
            continue
        g = run_generator(G, b["occluded"], b["render"], spec, device)
        b[name + RAW_SUFFIX] = g.raw
        if seg is None:
            outputs = list(g.output)
            regions = [paste_region(spec.blend, g.mask[k], b["face_mask"][k]) for k in range(n)]
        else:  # the segmenter's m̂ replaces G's, exactly as deocc-infer does
            probs = run_segmenter(seg, b["occluded"], device)
            b[name + SEG_SUFFIX] = np.round(probs * 255).astype(np.uint8)
            pairs = [segmented_output(b["occluded"][k], g.raw[k], m) for k, m in enumerate(probs)]
            outputs, regions = [p[0] for p in pairs], [p[1] for p in pairs]
        b[name + REGION_SUFFIX] = np.stack(regions)
        b[name] = np.stack([paste_crop(b["occluded"][k], outputs[k], regions[k]) for k in range(n)])
        if name + TRUE_SUFFIX in methods:  # as deocc-infer --mask: exactly the given pixels
            b[name + TRUE_SUFFIX] = np.stack(
                [paste_given(b["occluded"][k], g.raw[k], IDENTITY, true[k])[0] for k in range(n)]
            )
    for m in methods:
        if m in b:
            continue
        base, _, source = m.partition("@")
        if source == "true":
            masks = list(true)
        elif source:
            masks = [(replaced_pixels(r) * 255).astype(np.uint8) for r in b[source + REGION_SUFFIX]]
        else:
            masks = list(oracle)
        b[m] = np.stack(
            [
                run_baseline(
                    base, b["occluded"][k], masks[k], render=b["render"][k], covered=covered[k]
                )
                for k in range(n)
            ]
        )
    return b


def _run_given(
    b: dict[str, np.ndarray],
    name: str,
    G: nn.Module,
    spec: GeneratorSpec,
    seg: nn.Module | None,
    true: np.ndarray,
    covered: np.ndarray,
    methods: list[str],
    device: torch.device,
) -> None:
    """A given-mask G's rows into ``b``, as deocc-infer makes them.

    ``name``: the segmenter's m̂ (shaped like G's training masks:
    :func:`deocc_core.infer.fill.segmenter_mask`) prefilled, refined, blended by it and
    pasted over it;
    ``name@true``: the true mask ``[B, S, S]`` uint8 (0 / 255) prefilled, refined, pasted
    exactly there (``deocc-infer --mask``); ``name:raw``: G's raw output for m̂ (for the true
    mask without a segmenter).
    """
    occ, n = b["occluded"], len(b["occluded"])

    def refine(masks: np.ndarray) -> np.ndarray:
        return given_fill(occ, b["render"], covered, masks, G, spec, device)

    if seg is not None and name in methods:
        probs = run_segmenter(seg, occ, device)
        b[name + SEG_SUFFIX] = np.round(probs * 255).astype(np.uint8)
        m_hat = np.stack([segmenter_mask(m) for m in probs])
        raw = refine(m_hat)
        pairs = [segmented_output(occ[k], raw[k], m_hat[k]) for k in range(n)]
        b[name + REGION_SUFFIX] = np.stack([p[1] for p in pairs])
        b[name] = np.stack([paste_crop(occ[k], *pairs[k]) for k in range(n)])
        b[name + RAW_SUFFIX] = raw
    if name + TRUE_SUFFIX in methods:
        raw_t = refine((true > 0).astype(np.float32))
        b[name + TRUE_SUFFIX] = np.stack(
            [paste_given(occ[k], raw_t[k], IDENTITY, true[k])[0] for k in range(n)]
        )
        b.setdefault(name + RAW_SUFFIX, raw_t)


def _picks(rows: list[dict[str, Any]], ref: str) -> dict[str, list[int]]:
    """Worst, median and best sample ids per region, ranked by ``ref``'s PSNR in the mask."""
    by_region: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by_region[r["region"]].append(i)
    picks = {}
    for region, ids in sorted(by_region.items()):
        ids = sorted(
            ids,
            key=lambda i: (
                rows[i][ref]["psnr_mask"] if math.isfinite(rows[i][ref]["psnr_mask"]) else 1e9
            ),
        )
        picks[region] = [ids[0], ids[len(ids) // 2], ids[-1]] if len(ids) >= 3 else ids
    return picks


def _aggregate(
    rows: list[dict[str, Any]], methods: list[str]
) -> dict[str, dict[str, dict[str, float]]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        groups["all"].append(i)
        groups[f"region:{r['region']}"].append(i)
        groups[f"class:{r['class']}"].append(i)
    table: dict[str, dict[str, dict[str, float]]] = {}
    for m in methods:
        table[m] = {}
        metrics = list(rows[0][m]) if rows else list(METRICS)
        for g, ids in sorted(groups.items()):
            vals = {
                k: [rows[i][m][k] for i in ids if math.isfinite(rows[i][m].get(k, math.nan))]
                for k in metrics
            }
            table[m][g] = {k: float(np.mean(v)) if v else float("nan") for k, v in vals.items()}
            table[m][g]["n"] = len(ids)
    return table
