"""Evaluate checkpoints and baselines on a shard split: tables per region (the paper's
Table 1 groups) and per occluder class, and a self-contained HTML report.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from deocc_core.device import resolve_device
from deocc_core.errors import ConfigError
from deocc_core.eval.baselines import BASELINES, run_baseline
from deocc_core.eval.metrics import score
from deocc_core.nets.io import load_generator, prepare_generator, run_generator
from deocc_core.occluders.classes import OccluderClass, Region
from deocc_core.synth.inspect import shard_paths
from deocc_core.synth.manifest import read_manifest
from deocc_core.synth.shards import ShardReader
from deocc_core.viz import image_grid

__all__ = ["EvalConfig", "EvalResult", "evaluate", "PAPER_TABLE1"]

log = logging.getLogger(__name__)

# Yuan & Park, ICCV 2019, Table 1 (PSNR dB / SSIM), for reference
PAPER_TABLE1 = {
    "lower": (27.32, 0.9615),
    "upper": (34.00, 0.9860),
    "left_right_half": (28.78, 0.9659),
    "three_quarters": (22.17, 0.8967),
}
METRICS = ("psnr", "ssim", "psnr_mask", "ssim_mask")


@dataclass(frozen=True)
class EvalConfig:
    """Attributes:
    shards: shard folder. split: split to evaluate. out: report folder.
    checkpoints: (name, checkpoint file or run folder) pairs. baselines: names from BASELINES.
    limit: evaluate at most N samples. device: auto | cpu | cuda. batch_size: G batch.
    """

    shards: str
    out: str
    split: str = "test"
    checkpoints: tuple[tuple[str, str], ...] = ()
    baselines: tuple[str, ...] = ("input", "telea")
    limit: int | None = None
    device: str = "auto"
    batch_size: int = 8


@dataclass
class EvalResult:
    """Per-method aggregates: ``table[method][group][metric]`` (+ ``n``), groups = all + regions + classes."""

    table: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    n_samples: int = 0
    out: Path | None = None


def evaluate(config: EvalConfig, progress: Callable[..., None] | None = None) -> EvalResult:
    """Run every method on the split and write ``results.json``, ``results.md``, ``report.html``.

    Raises:
        ConfigError: split missing, checkpoint of another resolution, unknown baseline.
    """
    folder = Path(config.shards)
    manifest = read_manifest(folder)
    if config.split not in manifest["splits"]:
        raise ConfigError(
            f"{folder}: no {config.split!r} split (has {', '.join(manifest['splits'])})"
        )
    bad = [b for b in config.baselines if b not in BASELINES]
    if bad:
        raise ConfigError(f"unknown baseline {bad[0]!r} (choose from {', '.join(BASELINES)})")
    names = [n for n, _ in config.checkpoints] + list(config.baselines)
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"method name {dup[0]!r} used twice: give each --ckpt its own --name")
    device = resolve_device(config.device)
    nets = []
    for name, path in config.checkpoints:
        G, spec, info = load_generator(path, device)
        if spec.size != manifest["resolution"]:
            raise ConfigError(
                f"{path}: checkpoint is for {spec.size} px, shards {folder} are {manifest['resolution']} px"
            )
        nets.append((name, prepare_generator(G), spec))
    methods = [n for n, _, _ in nets] + list(config.baselines)
    if not methods:
        raise ConfigError("nothing to evaluate: give --ckpt and/or --baselines")
    paths = shard_paths(folder, config.split)
    by_name = {p.name: p for p in paths}
    total = 0
    for p in paths:
        with ShardReader(p) as r:
            total += len(r)
    total = min(total, config.limit) if config.limit else total
    if progress:
        progress(0, total=total)
    rows: list[dict[str, Any]] = []
    done = 0
    for p in paths:
        if config.limit and done >= config.limit:
            break
        with ShardReader(p) as r:
            n = len(r)
            for s0 in range(0, n, config.batch_size):
                if config.limit and done >= config.limit:
                    break
                stop = (
                    min(n, s0 + config.batch_size, s0 + config.limit - done)
                    if config.limit
                    else min(n, s0 + config.batch_size)
                )
                batch = _run_methods(r, s0, stop, nets, methods, device)
                for k in range(stop - s0):
                    mask = batch["occ_mask"][k] > 0
                    row = {
                        "shard": p.name,
                        "index": s0 + k,
                        "region": Region(int(batch["region"][k])).name.lower(),
                        "class": OccluderClass(int(batch["occluder_class"][k])).name.lower(),
                    }
                    for m in methods:
                        row[m] = asdict(score(batch[m][k], batch["gt"][k], mask))
                    rows.append(row)
                    done += 1
                    if progress:
                        progress(1)
    if not rows:
        raise ConfigError(f"{folder}: split {config.split!r} has no samples")
    table = _aggregate(rows, methods)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(
        json.dumps(
            {
                "config": asdict(config),
                "n_samples": len(rows),
                "table": table,
                "paper_table1": PAPER_TABLE1,
                "samples": rows,
            },
            indent=1,
            default=str,
        )
    )
    (out / "results.md").write_text(_markdown(table, methods, len(rows)))
    # images only for the few samples shown: re-read and re-run them (memory stays O(batch) at any scale)
    picks = _picks(rows, methods[0])
    wanted = sorted({i for ids in picks.values() for i in ids} | set(range(min(8, len(rows)))))
    keep: dict[int, dict[str, np.ndarray]] = {}
    for i in wanted:
        with ShardReader(by_name[rows[i]["shard"]]) as r:
            b = _run_methods(r, rows[i]["index"], rows[i]["index"] + 1, nets, methods, device)
        keep[i] = {k: v[0] for k, v in b.items() if k in ("occluded", "gt", "render", *methods)}
    (out / "report.html").write_text(_html(table, methods, rows, keep, picks, len(rows)))
    first = list(range(min(8, len(rows))))
    tiles = [
        [
            keep[i]["occluded"],
            keep[i]["render"],
            *[keep[i][m] for m in methods if m != "input"],
            keep[i]["gt"],
        ]
        for i in first
    ]
    header = "occluded | render | " + " | ".join(m for m in methods if m != "input") + " | gt"
    grid = image_grid(
        tiles,
        labels=[
            f"{rows[i]['class']} / {rows[i]['region']}" + (f"   ({header})" if j == 0 else "")
            for j, i in enumerate(first)
        ],
    )
    cv2.imwrite(str(out / "samples.png"), grid[:, :, ::-1])
    return EvalResult(table, len(rows), out)


def _run_methods(
    r: ShardReader, start: int, stop: int, nets: list, methods: list[str], device: torch.device
) -> dict[str, np.ndarray]:
    """Samples ``start:stop`` of an open shard and every method's uint8 output for them."""
    b = {
        k: r.dataset(k)[start:stop]
        for k in ("occluded", "gt", "render", "occ_mask", "region", "occluder_class")
    }
    for name, G, spec in nets:
        b[name] = run_generator(G, b["occluded"], b["render"], spec.no_render, device)
    for m in methods:
        if m not in b:
            b[m] = np.stack(
                [run_baseline(m, b["occluded"][k], b["occ_mask"][k]) for k in range(stop - start)]
            )
    return b


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
        for g, ids in sorted(groups.items()):
            vals = {
                k: [rows[i][m][k] for i in ids if math.isfinite(rows[i][m][k])] for k in METRICS
            }
            table[m][g] = {k: float(np.mean(v)) if v else float("nan") for k, v in vals.items()}
            table[m][g]["n"] = len(ids)
    return table


def _markdown(table, methods, n) -> str:
    regions = [r.name.lower() for r in Region if f"region:{r.name.lower()}" in table[methods[0]]]
    lines = [
        f"# deocc-eval ({n} samples)",
        "",
        "## PSNR / SSIM of the whole crop, per region (paper Table 1 groups)",
        "",
        "| method | all | " + " | ".join(regions) + " |",
        "|---" * (len(regions) + 2) + "|",
    ]
    for m in methods:
        cells = [f"{table[m]['all']['psnr']:.2f} / {table[m]['all']['ssim']:.4f}"]
        cells += [
            f"{table[m][f'region:{r}']['psnr']:.2f} / {table[m][f'region:{r}']['ssim']:.4f} (n={table[m][f'region:{r}']['n']})"
            for r in regions
        ]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines.append(
        "| paper (Yuan & Park 2019) | | "
        + " | ".join(
            f"{PAPER_TABLE1[r][0]:.2f} / {PAPER_TABLE1[r][1]:.4f}" if r in PAPER_TABLE1 else ""
            for r in regions
        )
        + " |"
    )
    lines += [
        "",
        "## Inside the occluder mask (PSNR / SSIM), per region",
        "",
        "| method | all | " + " | ".join(regions) + " |",
        "|---" * (len(regions) + 2) + "|",
    ]
    for m in methods:
        cells = [f"{table[m]['all']['psnr_mask']:.2f} / {table[m]['all']['ssim_mask']:.4f}"]
        cells += [
            f"{table[m][f'region:{r}']['psnr_mask']:.2f} / {table[m][f'region:{r}']['ssim_mask']:.4f}"
            for r in regions
        ]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    classes = [
        c.name.lower() for c in OccluderClass if f"class:{c.name.lower()}" in table[methods[0]]
    ]
    lines += [
        "",
        "## Inside the occluder mask, per occluder class (PSNR / SSIM)",
        "",
        "| method | " + " | ".join(classes) + " |",
        "|---" * (len(classes) + 1) + "|",
    ]
    for m in methods:
        lines.append(
            f"| {m} | "
            + " | ".join(
                f"{table[m][f'class:{c}']['psnr_mask']:.2f} / {table[m][f'class:{c}']['ssim_mask']:.4f} (n={table[m][f'class:{c}']['n']})"
                for c in classes
            )
            + " |"
        )
    lines += [
        "",
        "## Paper Table 1 (Yuan & Park, ICCV 2019; PSNR / SSIM, their data), for reference",
        "",
        "| " + " | ".join(PAPER_TABLE1) + " |",
        "|---" * len(PAPER_TABLE1) + "|",
        "| " + " | ".join(f"{p:.2f} / {q:.4f}" for p, q in PAPER_TABLE1.values()) + " |",
    ]
    lines += [
        "",
        "Baselines `telea` / `ns` are OpenCV inpainting given the true occluder mask (an oracle); `input` is the occluded image.",
        "The paper's numbers come from its own data (134k 300W-LP-based samples, 110 epochs): compare rankings, not absolutes.",
        "",
    ]
    return "\n".join(lines)


def _png64(img: np.ndarray) -> str:
    ok, buf = cv2.imencode(".png", img[:, :, ::-1])
    return base64.b64encode(buf.tobytes()).decode()


def _html(table, methods, rows, keep, picks, n) -> str:
    md = _markdown(table, methods, n)
    body = [
        f"<h1>deocc-eval report</h1><p>{n} samples; methods: {html.escape(', '.join(methods))}</p>"
    ]
    # markdown tables → html tables (simple: one <table> per block)
    block: list[str] = []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            if not line.startswith("|---"):
                block.append(
                    "<tr>"
                    + "".join(
                        f"<td>{html.escape(c.strip())}</td>" for c in line.strip("|").split("|")
                    )
                    + "</tr>"
                )
        else:
            if block:
                body.append("<table border=1 cellpadding=4>" + "".join(block) + "</table>")
                block = []
            if line.startswith("## "):
                body.append(f"<h2>{html.escape(line[3:])}</h2>")
            elif line and not line.startswith("# "):
                body.append(f"<p>{html.escape(line)}</p>")
    ref = methods[0]
    body.append(
        f"<h2>Worst / median / best samples per region (by {html.escape(ref)} PSNR in the mask)</h2>"
    )
    for region, pick in picks.items():
        tiles = [
            [
                keep[i]["occluded"],
                keep[i]["render"],
                *[keep[i][m] for m in methods if m != "input"],
                keep[i]["gt"],
            ]
            for i in pick
        ]
        labels = [f"{rows[i]['class']}: {ref} {rows[i][ref]['psnr_mask']:.1f} dB" for i in pick]
        grid = image_grid(tiles, labels=labels)
        cols = "occluded | render | " + " | ".join(m for m in methods if m != "input") + " | gt"
        body.append(
            f"<h3>{html.escape(region)}</h3><p>{html.escape(cols)}</p><img src='data:image/png;base64,{_png64(grid)}'>"
        )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>deocc-eval</title></head><body>"
        + "\n".join(body)
        + "</body></html>"
    )
