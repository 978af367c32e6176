"""The evaluation report.

``results.md`` (tables), ``report.html`` (the same tables plus worst / median / best samples per
region) and the ``samples.png`` sheet.

Pure formatting: the numbers come from :func:`deocc_core.eval.evaluate.evaluate`
(``table[method][group][metric]``, groups ``all``, ``region:<name>``, ``class:<name>``).
"""

from __future__ import annotations

import base64
import html
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from deocc_core.occluders.classes import OccluderClass, Region
from deocc_core.viz import image_grid

__all__ = ["PAPER_TABLE1", "markdown_report", "html_report", "comparison_rows", "sheet_header"]

# Yuan & Park, ICCV 2019, Table 1 (PSNR dB / SSIM), for reference
PAPER_TABLE1 = {
    "lower": (27.32, 0.9615),
    "upper": (34.00, 0.9860),
    "left_right_half": (28.78, 0.9659),
    "three_quarters": (22.17, 0.8967),
}

Table = dict[str, dict[str, dict[str, float]]]


def _pair(cell: dict[str, float], metric: str, with_n: bool = False) -> str:
    """``PSNR / SSIM`` of one table cell (``metric`` "" for the whole crop, "_mask" inside)."""
    s = f"{cell['psnr' + metric]:.2f} / {cell['ssim' + metric]:.4f}"
    return s + (f" (n={cell['n']})" if with_n else "")


def _header(first: str, columns: list[str]) -> list[str]:
    return [f"| {first} | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]


def _region_section(table: Table, methods: list[str], regions: list[str], metric: str) -> list:
    """Rows of ``method | all | regions...``; counts shown for the whole-crop table only."""
    lines = _header("method", ["all", *regions])
    for m in methods:
        cells = [_pair(table[m]["all"], metric)]
        cells += [_pair(table[m][f"region:{r}"], metric, with_n=not metric) for r in regions]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return lines


def _paper_row(regions: list[str]) -> str:
    cells = [
        f"{PAPER_TABLE1[r][0]:.2f} / {PAPER_TABLE1[r][1]:.4f}" if r in PAPER_TABLE1 else ""
        for r in regions
    ]
    return "| paper (Yuan & Park 2019) | | " + " | ".join(cells) + " |"


def _identity_cell(cell: dict[str, float]) -> str:
    """``mean distance / share same person`` of one table cell."""
    return f"{cell['id_dist']:.3f} / {100 * cell['id_same']:.0f} %"


def _protocol_lines(protocol: dict[str, Any] | None) -> list[str]:
    if not protocol:
        return []
    held = protocol.get("held_out")
    lines = [
        "## Occluders (protocol)",
        "",
        f"- test set families: {', '.join(protocol.get('test_families') or []) or 'unknown'}",
    ]
    if protocol.get("train_families") is not None:
        lines.append(f"- the first checkpoint trained on: {', '.join(protocol['train_families'])}")
    if held is None:
        lines.append("- held out: unknown (no checkpoint, or one without its training data)")
    else:
        lines.append(
            f"- HELD OUT (never in the first checkpoint's training data): "
            f"{', '.join(held) if held else 'none: every test family was trained on'}"
        )
    return [*lines, ""]


def identity_lines(table: Table, methods: list[str], regions: list[str], classes: list[str]):
    """Identity tables (mean descriptor distance / share under 0.6) and the m̂ IoU per class."""
    ident = [m for m in methods if "id_dist" in table[m]["all"]]
    lines: list[str] = []
    if ident:
        lines += [
            "## Identity: dlib descriptor distance to the ground truth / share same person "
            "(< 0.6), per region",
            "",
        ]
        lines += _header("method", ["all", *regions])
        for m in ident:
            cells = [_identity_cell(table[m]["all"])]
            cells += [_identity_cell(table[m][f"region:{r}"]) for r in regions]
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines += ["", "## Identity per occluder class (distance / share same person)", ""]
        lines += _header("method", classes)
        for m in ident:
            cells = [_identity_cell(table[m][f"class:{c}"]) for c in classes]
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")
    iou = [m for m in methods if "mask_iou" in table[m]["all"]]
    if iou:
        lines += ["## Occlusion mask m̂: IoU with the occluder object, per class", ""]
        lines += _header("method", ["all", *classes])
        for m in iou:
            for key, tag in (("mask_iou", ""), ("seg_iou", " (m̂ as predicted)")):
                if key not in table[m]["all"]:
                    continue
                cells = [f"{table[m]['all'][key]:.3f}"]
                cells += [f"{table[m][f'class:{c}'][key]:.3f}" for c in classes]
                lines.append(f"| {m}{tag} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "Rows name the pixels pasted over (a given-mask G's m̂ is grown 2 px to cover "
            "the object's edge); `(m̂ as predicted)`: the segmenter's m̂ > 0.5 itself.",
            "",
        ]
    return lines


def markdown_report(
    table: Table, methods: list[str], n: int, protocol: dict[str, Any] | None = None
) -> str:
    """``results.md``.

    Whole-crop and in-mask tables per region, in-mask per occluder class, identity and m̂
    IoU where scored, the occluder protocol, and the paper's Table 1 for reference.
    """
    first = table[methods[0]]
    regions = [r.name.lower() for r in Region if f"region:{r.name.lower()}" in first]
    classes = [c.name.lower() for c in OccluderClass if f"class:{c.name.lower()}" in first]
    lines = [f"# deocc-eval ({n} samples)", ""]
    lines += _protocol_lines(protocol)
    lines += ["## PSNR / SSIM of the whole crop, per region (paper Table 1 groups)", ""]
    lines += _region_section(table, methods, regions, "")
    lines.append(_paper_row(regions))
    lines += ["", "## Inside the occluder mask (PSNR / SSIM), per region", ""]
    lines += _region_section(table, methods, regions, "_mask")
    lines += ["", "## Inside the occluder mask, per occluder class (PSNR / SSIM)", ""]
    lines += _header("method", classes)
    for m in methods:
        cells = [_pair(table[m][f"class:{c}"], "_mask", with_n=True) for c in classes]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines += ["", *identity_lines(table, methods, regions, classes)]
    lines += [
        "## Paper Table 1 (Yuan & Park, ICCV 2019; PSNR / SSIM, their data), for reference",
        "",
        "| " + " | ".join(PAPER_TABLE1) + " |",
        "|---" * len(PAPER_TABLE1) + "|",
        "| " + " | ".join(f"{p:.2f} / {q:.4f}" for p, q in PAPER_TABLE1.values()) + " |",
        "",
        "`<name>` is a checkpoint's output pasted into the occluded crop where its occlusion"
        " mask says (what deocc-infer writes); `<name>:raw` is G's raw output (every pixel"
        " redrawn). In-mask scores use the occluder object's mask.",
        "Baselines `telea` / `ns` are OpenCV inpainting given the true occluder mask (an oracle);"
        " `input` is the occluded image.",
        "`<name>@true`: G's raw output pasted exactly into the true occluder object's mask (what"
        " `deocc-infer --mask` writes), beside `telea@true` / `ns@true` on the same pixels."
        " `telea@<name>` / `ns@<name>`: inpainting inside `<name>`'s m̂ (what the mask costs).",
        "Identity: dlib's ResNet face descriptor (face-recognition-models) of each output and of"
        " the ground truth, aligned on the sample's landmarks (the same for every method);"
        " dlib's same-person threshold is 0.6.",
        "The paper's numbers come from its own data (134k 300W-LP-based samples, 110 epochs):"
        " compare rankings, not absolutes.",
        "",
    ]
    return "\n".join(lines)


def png64(img: npt.NDArray[np.uint8]) -> str:
    ok, buf = cv2.imencode(".png", img[:, :, ::-1])
    return base64.b64encode(buf.tobytes()).decode()


def markdown_to_html(md: str) -> list[str]:
    """Markdown tables → one ``<table>`` per block, headings and paragraphs (our subset only)."""
    body: list[str] = []
    block: list[str] = []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            if not line.startswith("|---"):
                cells = "".join(
                    f"<td>{html.escape(c.strip())}</td>" for c in line.strip("|").split("|")
                )
                block.append(f"<tr>{cells}</tr>")
            continue
        if block:
            body.append("<table border=1 cellpadding=4>" + "".join(block) + "</table>")
            block = []
        if line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("- "):
            body.append(f"<li>{html.escape(line[2:])}</li>")
        elif line and not line.startswith("# "):
            body.append(f"<p>{html.escape(line)}</p>")
    return body


def comparison_rows(
    images: dict[int, dict[str, npt.NDArray[np.uint8]]], ids: list[int], methods: list[str]
) -> list[list[npt.NDArray[np.uint8]]]:
    """Rows of occluded | render | each method but ``input`` | gt for the samples ``ids``."""
    shown = [m for m in methods if m != "input"]
    return [
        [
            images[i]["occluded"],
            images[i]["render"],
            *[images[i][m] for m in shown],
            images[i]["gt"],
        ]
        for i in ids
    ]


def sheet_header(methods: list[str]) -> str:
    """The column legend of :func:`comparison_rows`."""
    return "occluded | render | " + " | ".join(m for m in methods if m != "input") + " | gt"


def html_report(
    table: Table,
    methods: list[str],
    rows: list[dict[str, Any]],
    images: dict[int, dict[str, npt.NDArray[np.uint8]]],
    picks: dict[str, list[int]],
    n: int,
    protocol: dict[str, Any] | None = None,
) -> str:
    """Self-contained ``report.html``.

    The markdown tables, then per region the worst, median and best samples (ranked by the first
    method's PSNR in the mask) as inline PNGs.

    Args:
        table: the aggregates.
        methods: in column order.
        rows: per-sample scores.
        images: sample id → uint8 crops (``occluded``, ``render``, ``gt`` and one per method).
        picks: region → sample ids to show.
        n: number of samples evaluated.
        protocol: the occluder families (:func:`deocc_core.eval.protocol.occluder_protocol`).
    """
    body = [
        f"<h1>deocc-eval report</h1><p>{n} samples; methods: {html.escape(', '.join(methods))}</p>"
    ]
    body += markdown_to_html(markdown_report(table, methods, n, protocol))
    ref = methods[0]
    body.append(
        f"<h2>Worst / median / best samples per region (by {html.escape(ref)} PSNR in the mask)"
        "</h2>"
    )
    for region, pick in picks.items():
        labels = [f"{rows[i]['class']}: {ref} {rows[i][ref]['psnr_mask']:.1f} dB" for i in pick]
        grid = image_grid(comparison_rows(images, pick, methods), labels=labels)
        body.append(
            f"<h3>{html.escape(region)}</h3><p>{html.escape(sheet_header(methods))}</p>"
            f"<img src='data:image/png;base64,{png64(grid)}'>"
        )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>deocc-eval</title></head><body>"
        + "\n".join(body)
        + "</body></html>"
    )
