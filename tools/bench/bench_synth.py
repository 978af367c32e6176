"""synth-occ build throughput and where its time goes, at 256 px. JSON on stdout.

Photo sources with their landmarks given (the AFLW2000-3D and 300W-LP layouts and a
``folder`` with sidecars; the shared photos repeated into trees of ~200 inputs), the
Surrey model, 3D occluders, HDF5 written:

- ``stages_one_process``: the CPU milliseconds per sample of each stage of the sample path
  (``deocc_core.timing``, process CPU: other processes on a loaded machine barely change
  them), in one warm process (a first shard of 13 inputs loads the numba caches and
  imports); ``cpu_bound_samples_per_s`` = 2 cores / CPU per sample: what 2 warm workers
  reach on a quiet 2-core machine;
- ``build_2_workers``: the whole ``build`` with 2 workers: samples/s of wall time (worker
  start and the workers' warm-up included: small builds pay them), and its stage CPU.

Separately: the default ``--fit-landmarks detected`` (a landmark detection, a refit and a
light estimate per occluded copy), the synthetic source (starter and Surrey), and shard
compression.

    python tools/bench/bench_synth.py [--quick] [--skip compression,synthetic,detected]
"""

from __future__ import annotations

# ruff: noqa: E402 (the thread environment is set before numpy loads OpenBLAS)
import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

# one thread per library, as in the build's workers (set before numpy / OpenBLAS load)
for _k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_k] = "1"

import _common  # noqa: F401
import numpy as np
from _common import SHARED, load_average

from deocc_core.landmarks.detect import make_detector
from deocc_core.morphable.model import load_model
from deocc_core.synth import shards as shards_mod
from deocc_core.synth.pipeline import BuildConfig, build, make_samples
from deocc_core.synth.schema import Sample
from deocc_core.synth.shards import ShardReader, ShardWriter, content_sha256, file_sha256
from deocc_core.synth.sources import make_source
from deocc_core.timing import collect, stage

SFM = SHARED / "3dmm" / "eos_sfm" / "share" / "sfm_shape_3448.bin"
AFLW = SHARED / "faces" / "PRNet_AFLW2000"
LP = SHARED / "faces" / "face3d_300WLP"
WORKERS = 2


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(src, dst)


def photo_trees(root: Path, copies: int) -> dict[str, tuple[str, Path]]:
    """The shared annotated photos repeated into the three layouts (symlinks).

    AFLW2000-3D: ``imageNNNNN_k.jpg`` + ``.mat``; 300W-LP: the IBUG sample as views of
    photos in the four sets (``<SET>/<SET>_image_<p>_1_<k>.jpg`` + ``.mat``); folder: the
    AFLW photos in sub-folders (identities) with their ``.mat`` sidecars.
    """
    aflw, lp, folder = root / "aflw", root / "300w_lp", root / "folder"
    for k in range(copies):
        for jpg in sorted(AFLW.glob("*.jpg")):
            for base in (aflw / f"{jpg.stem}_{k}", folder / f"id{k:03d}" / jpg.stem):
                _link(jpg, base.with_suffix(".jpg"))
                _link(jpg.with_suffix(".mat"), base.with_suffix(".mat"))
    jpg = next(LP.glob("*.jpg"))
    n = copies * len(list(AFLW.glob("*.jpg")))
    for i in range(n):
        s = ("AFW", "HELEN", "IBUG", "LFPW")[i % 4]
        base = lp / s / f"{s}_image_{i // 16:03d}_1_{i % 16}"
        _link(jpg, base.with_suffix(".jpg"))
        _link(jpg.with_suffix(".mat"), base.with_suffix(".mat"))
    return {
        "aflw2000-3d": ("aflw2000-3d", aflw),
        "300w3d": ("300w3d", lp),
        "folder": ("folder", folder),
    }


def measure(cfg: BuildConfig) -> dict[str, object]:
    """Build ``cfg`` into a temp folder: throughput, CPU per stage, load before and after."""
    out = Path(tempfile.mkdtemp())
    try:
        load0 = load_average()
        r = build(BuildConfig(**{**cfg.__dict__, "out": str(out)}))
        n = sum(r.samples.values())
        cpu = sum(r.stage_seconds.values())
        return {
            "samples": n,
            "skipped_inputs": dict(r.skipped_inputs),
            "wall_s": round(r.seconds, 2),
            "samples_per_s": round(n / r.seconds, 1),
            "cpu_ms_per_sample": round(cpu / max(n, 1) * 1e3, 2),
            "cpu_bound_samples_per_s": round(WORKERS / max(cpu / max(n, 1), 1e-9), 1),
            "stage_ms_per_sample": {
                k: round(v / max(n, 1) * 1e3, 2)
                for k, v in sorted(r.stage_seconds.items(), key=lambda kv: -kv[1])
            },
            "load_1min_before_after": [load0, load_average()],
        }
    finally:
        shutil.rmtree(out, ignore_errors=True)


def stages_one_process(cfg: BuildConfig, warmup: int = 13) -> dict[str, object]:
    """Stage CPU per sample in this process, after ``warmup`` inputs.

    The build's sample path: load, make_samples, ShardWriter.add, the writer's close.
    """
    model = load_model(cfg.model)
    detector = make_detector(cfg.backend) if cfg.fit_landmarks == "detected" else None
    src = make_source(cfg.source, cfg.root, model=model, dataset_params=cfg.dataset_params)
    keys = src.keys()
    out = Path(tempfile.mkdtemp())
    n_params = model.n_id + model.n_exp + 6

    def run(ks, path):
        made = 0
        with stage("write"), ShardWriter(path, cfg.size, n_params, 2 * len(ks)) as w:
            for pos, key in enumerate(ks):
                with stage("other"):
                    try:
                        with stage("decode"):
                            recs = src.load(key)
                        rng = np.random.default_rng([cfg.seed, pos])
                        for s in make_samples(recs[0], cfg, model, rng, None, detector):
                            with stage("write"):
                                w.add(s)
                            made += 1
                    except Exception:  # noqa: BLE001 - a skipped input, as the build counts it
                        continue
        with stage("hash"):  # the build's sidecar checksums
            file_sha256(path), content_sha256(path)
        return made

    try:
        run(keys[:warmup], out / "train-00000.h5")
        t = time.process_time()
        with collect() as st:
            n = run(keys[warmup:], out / "train-00001.h5")
        cpu = time.process_time() - t
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {
        "samples": n,
        "cpu_ms_per_sample": round(cpu / max(n, 1) * 1e3, 2),
        "cpu_bound_samples_per_s": round(WORKERS / max(cpu / max(n, 1), 1e-9), 1),
        "stage_ms_per_sample": {
            k: round(v / max(n, 1) * 1e3, 2) for k, v in sorted(st.items(), key=lambda kv: -kv[1])
        },
        "load_1min": load_average(),
    }


def photo_builds(trees, fit_landmarks: str, which=None) -> dict[str, object]:
    """Each photo layout at 256 px, Surrey, 3D occluders: one warm process, then 2 workers."""
    res = {}
    for name, (source, root) in trees.items():
        if which and name not in which:
            continue
        cfg = BuildConfig(
            source=source,
            root=str(root),
            out="-",
            model=str(SFM),
            size=256,
            per_shard=64,
            workers=WORKERS,
            test_fraction=0.0,
            max_yaw=90,
            fit_landmarks=fit_landmarks,
        )
        res[name] = {"stages_one_process": stages_one_process(cfg), "build_2_workers": measure(cfg)}
    return res


def synthetic(n: int) -> dict[str, object]:
    """The synthetic source (faces rendered from the starter model), starter and Surrey fits."""
    res = {}
    for name, model in (("starter", "starter"), ("surrey", str(SFM))):
        cfg = BuildConfig(
            source="synthetic",
            out="-",
            model=model,
            size=256,
            per_shard=max(n // 4, 1),
            n_synthetic=n,
            workers=WORKERS,
            fit_landmarks="annotated",
        )
        res[name] = measure(cfg)
    return res


def compression(n: int = 24) -> dict[str, object]:
    """Shard size and random-read speed per HDF5 compression setting (real AFLW samples)."""
    rng = np.random.default_rng(0)
    src = make_source("aflw2000-3d", AFLW)
    m = load_model(SFM)
    cfg = BuildConfig(source="aflw2000-3d", out="x", size=256, fit_landmarks="annotated")
    samples: list[Sample] = []
    for k in src.keys():
        try:
            samples += make_samples(src.load(k)[0], cfg, m, rng)
        except Exception:  # noqa: BLE001 - a skipped face: the others are enough
            continue
    samples = (samples * (n // max(len(samples), 1) + 1))[:n]
    res = {}
    for name, opts in (
        ("none", {}),
        ("lzf", {"compression": "lzf"}),
        ("gzip1", {"compression": "gzip", "compression_opts": 1}),
    ):
        shards_mod.COMPRESSION.clear()
        shards_mod.COMPRESSION.update(opts)
        d = Path(tempfile.mkdtemp())
        t = time.process_time()
        with ShardWriter(d / "train-00000.h5", 256, len(samples[0].params), len(samples)) as w:
            for s in samples:
                w.add(s)
        write_ms = (time.process_time() - t) / len(samples) * 1e3
        size = (d / "train-00000.h5").stat().st_size
        with ShardReader(d / "train-00000.h5") as r:
            t = time.perf_counter()
            for i in np.random.default_rng(1).permutation(len(r)):
                r.sample(int(i))
            read = len(r) / (time.perf_counter() - t)
        res[name] = {
            "kb_per_sample": round(size / len(samples) / 1024, 1),
            "gb_per_100k": round(size / len(samples) * 1e5 / 1e9, 1),
            "random_read_samples_per_s": round(read, 1),
            "write_cpu_ms_per_sample": round(write_ms, 2),
        }
        shutil.rmtree(d)
    shards_mod.COMPRESSION.clear()
    shards_mod.COMPRESSION.update({"compression": "lzf"})
    return res


def main() -> None:
    """Run the measurements; print JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller trees (trials)")
    ap.add_argument("--skip", default="", help="comma list of: detected,synthetic,compression")
    args = ap.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    copies = 4 if args.quick else 16
    tmp = Path(tempfile.mkdtemp())
    try:
        trees = photo_trees(tmp, copies)
        res: dict[str, object] = {
            "machine": {"cpu_count": os.cpu_count(), "load_1min_start": load_average()},
            "note": (
                "stage_ms_per_sample: process CPU per written sample (skipped inputs' time "
                "included); stages_one_process: one warm process; build_2_workers: summed over "
                "the workers, their warm-up included; samples_per_s: wall time of the whole "
                "build, worker start included; cpu_bound_samples_per_s: 2 cores / CPU per "
                "sample"
            ),
            "photo_landmarks_given_surrey_256px_2_workers": photo_builds(trees, "annotated"),
        }
        if "detected" not in skip:
            res["photo_fit_landmarks_detected_surrey_256px_2_workers"] = photo_builds(
                trees, "detected", which={"aflw2000-3d"}
            )
        if "synthetic" not in skip:
            res["synthetic_source_256px_2_workers"] = synthetic(48 if args.quick else 160)
        if "compression" not in skip:
            res["compression_256px"] = compression()
        res["machine"]["load_1min_end"] = load_average()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
