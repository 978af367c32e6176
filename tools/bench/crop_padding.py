"""How much of each face's crop window lies outside its photo (the edge-replicated padding).

Picks ``synth-occ build --max-padding``: for every face of each photo folder (landmarks from
sidecars or the detector, as the ``folder`` source finds them) the share of the
``--size`` crop that ``align_face`` fills by edge replication. Prints one JSON object:
per folder, the faces, the quantiles of that share and the share of faces above each
threshold.

    python tools/bench/crop_padding.py FOLDER [FOLDER ...] [--size 128] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _common import load_average  # sys.path: the repository

from deocc_core.errors import InputError, SkipInput
from deocc_core.face.align import crop_matrix, outside_share
from deocc_core.synth.sources import FolderSource

THRESHOLDS = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3)


def folder_shares(root: Path, size: int, limit: int | None) -> tuple[list[float], int]:
    """Outside-the-photo share of every face's crop, and the photos that gave no face."""
    source = FolderSource(root)
    shares, no_face = [], 0
    for key in source.keys()[:limit]:
        try:
            records = source.load(key)
        except (SkipInput, InputError):
            no_face += 1
            continue
        for r in records:
            m = crop_matrix(r.landmarks, size)
            shares.append(outside_share(m, size, r.image.shape[:2]))
    return shares, no_face


def summary(shares: list[float], no_face: int, seconds: float) -> dict:
    """Quantiles and above-threshold shares of one folder's faces."""
    s = np.asarray(shares)
    q = np.quantile(s, [0.5, 0.75, 0.9, 0.95, 0.99]) if s.size else [np.nan] * 5
    return {
        "faces": int(s.size),
        "photos_without_face": no_face,
        "seconds": round(seconds, 1),
        "quantiles": dict(zip(("p50", "p75", "p90", "p95", "p99"), map(float, q), strict=True)),
        "share_of_faces_above": {str(t): round(float((s > t).mean()), 4) for t in THRESHOLDS},
    }


def main() -> None:
    """Measure each folder and print the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--limit", type=int, default=None, help="first N photos of each folder")
    args = ap.parse_args()
    out = {"size": args.size, "load_1min_start": load_average(), "folders": {}}
    for folder in args.folders:
        t = time.perf_counter()
        shares, no_face = folder_shares(folder, args.size, args.limit)
        out["folders"][str(folder)] = summary(shares, no_face, time.perf_counter() - t)
    out["load_1min_end"] = load_average()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
