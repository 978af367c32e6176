"""Step time of a given-mask G's training step on the CPU for a few widths, one JSON.

Each (ngf, ndf) trains stage-2 steps (G + D_g + D_l) on one fixed batch of real shards
(prefill and given mask from the loader), interleaved round by round so that the machine's
load hits every setting alike; the JSON has the median wall and CPU seconds per step (the
first round, warm-up, left out) and the load average before and after.

    python tools/bench/bench_train_given.py [SHARDS] [--widths 24:24,24:16,32:32] [--rounds 6]
        [--batch 8] [--threads 2] [--out FILE]

Without SHARDS (as ``make bench`` runs it) a small real build is made first in a temporary
folder: ``../shared/data/faces_bulk/deepface``, one occluded copy per face, 128 px, deocc-face.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

try:
    import _common  # (puts the repository on sys.path)
except ImportError:  # imported as tools.bench.bench_train_given
    from tools.bench import _common

import torch
from torch.utils.data import DataLoader

from deocc_core.synth.manifest import read_manifest
from deocc_core.train.config import TrainConfig
from deocc_core.train.trainer import _Run


def _setting(shards: Path, out: Path, ngf: int, ndf: int, batch: int) -> tuple[_Run, dict]:
    """A given-mask run in stage 2 and one batch of its loader."""
    cfg = TrainConfig(
        shards=str(shards),
        out=str(out),
        size=read_manifest(shards)["resolution"],
        ngf=ngf,
        ndf=ndf,
        blend="given",
        l1_hole=10.0,
        batch_size=batch,
        device="cpu",
        workers=0,
        max_steps=2,
        stage2_steps=2,
    )
    run = _Run(cfg, resume=False)
    return run, next(iter(DataLoader(run.train_set, batch_size=batch)))


def _real_shards(out: Path) -> Path:
    """A small real-face build (deepface photos, one copy each, 128 px, deocc-face) in ``out``."""
    from deocc_core.synth.pipeline import BuildConfig, build

    photos = _common.SHARED / "faces_bulk" / "deepface"
    if not photos.is_dir():
        raise SystemExit(f"bench_train_given: {photos}: not found (pass SHARDS)")
    build(
        BuildConfig(
            source="folder",
            root=str(photos),
            out=str(out),
            size=128,
            model="deocc-face",
            workers=2,
            test_fraction=0.1,
        )
    )
    return out


def main() -> None:
    """Time the settings and print (and write) the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("shards", type=Path, nargs="?", help="[default: a small real build]")
    ap.add_argument("--widths", default="24:24,24:16,32:32", help="ngf:ndf,...")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    widths = [tuple(int(x) for x in w.split(":")) for w in a.widths.split(",")]
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        shards = a.shards or _real_shards(Path(tmp) / "shards")
        runs = {w: _setting(shards, Path(tmp) / f"{w[0]}_{w[1]}", *w, a.batch) for w in widths}
        times: dict[tuple[int, int], list[tuple[float, float]]] = {w: [] for w in widths}
        for _ in range(a.rounds):
            for w, (run, batch) in runs.items():
                t, c = time.perf_counter(), time.process_time()
                run.train_step(batch)
                times[w].append((time.perf_counter() - t, time.process_time() - c))
    result = {
        "what": "given-mask training step (stage 2: G + D_g + D_l), CPU, fixed batch",
        "shards": str(a.shards or "deepface, 1 copy per face, 128 px (built here)"),
        "batch": a.batch,
        "threads": a.threads,
        "rounds": a.rounds,
        "loadavg_before": load0,
        "loadavg_after": os.getloadavg(),
        "cpus": os.cpu_count(),
        "settings": {
            f"ngf{w[0]}_ndf{w[1]}": {
                "median_wall_s": statistics.median(x[0] for x in v[1:]),
                "median_cpu_s": statistics.median(x[1] for x in v[1:]),
            }
            for w, v in times.items()
        },
    }
    text = json.dumps(result, indent=1)
    if a.out is not None:
        a.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
