"""synth-occ build throughput, per-stage cost and shard compression at 256x256. JSON on stdout.

Throughput: starter and Surrey models, 2 workers. Stages (one process): prepare_face
(align + fit + render) and occlude. Compression: size and read speed for none / lzf /
gzip 1 / gzip 4.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401
import numpy as np
from _common import SHARED

from deocc_core.face.prepare import FaceInputConfig, prepare_face
from deocc_core.morphable.model import load_model
from deocc_core.occluders.occlude import occlude_face
from deocc_core.occluders.scene import prepare_scene
from deocc_core.synth import shards as shards_mod
from deocc_core.synth.pipeline import BuildConfig, build, make_samples
from deocc_core.synth.shards import ShardReader, ShardWriter
from deocc_core.synth.sources import make_source


def stages(model_path, n=20):
    """Per-stage ms per sample in one process.

    prepare_face, the occluder scene (once per face: head geometry, light, photo
    statistics), occlude (the 3D default) and the source render.
    """
    m = load_model(model_path)
    src = make_source("synthetic", model=load_model("starter"), n=n, size=512)
    recs = [src.load(k)[0] for k in src.keys()]
    t = dict(source_render=0.0, prepare=0.0, scene=0.0, occlude=0.0)
    config = FaceInputConfig(size=256)
    rng = np.random.default_rng(0)
    make_samples(
        recs[0], BuildConfig(source="synthetic", out="x", size=256, model=str(model_path)), m, rng
    )  # warm
    for r in recs:
        t0 = time.perf_counter()
        face = prepare_face(r.image, r.landmarks, m, config)  # align + fit + render
        t1 = time.perf_counter()
        scene = prepare_scene(
            face.crop,
            face.landmarks,
            m,
            face.fit.params,
            face.render_result.depth,
            face.face_mask,
            raster=face.render_result.raster,
        )
        t2 = time.perf_counter()
        occlude_face(scene, rng)
        t3 = time.perf_counter()
        t["prepare"] += t1 - t0
        t["scene"] += t2 - t1
        t["occlude"] += t3 - t2
    t0 = time.perf_counter()
    for k in src.keys():
        src.load(k)
    t["source_render"] = time.perf_counter() - t0
    return {k: round(v / n * 1e3, 2) for k, v in t.items()}


def throughput(model_path, n=120):
    """Samples/s of a 2-worker build of ``n`` synthetic faces at 256 px."""
    out = Path(tempfile.mkdtemp())
    try:
        cfg = BuildConfig(
            source="synthetic",
            out=str(out),
            size=256,
            per_shard=30,
            n_synthetic=n,
            workers=2,
            model=str(model_path),
        )
        r = build(cfg)
        return {
            "samples": sum(r.samples.values()),
            "seconds": round(r.seconds, 2),
            "samples_per_s": round(sum(r.samples.values()) / r.seconds, 1),
        }
    finally:
        shutil.rmtree(out)


def compression():
    """Shard size and random-read speed per HDF5 compression setting."""
    rng = np.random.default_rng(0)
    src = make_source("synthetic", model=load_model("starter"), n=32, size=512)
    m = load_model("starter")
    cfg = BuildConfig(source="synthetic", out="x", size=256)
    samples = [s for k in src.keys() for s in make_samples(src.load(k)[0], cfg, m, rng)]
    res = {}
    for name, opts in (
        ("none", {}),
        ("lzf", {"compression": "lzf"}),
        ("gzip1", {"compression": "gzip", "compression_opts": 1}),
        ("gzip4", {"compression": "gzip", "compression_opts": 4}),
    ):
        shards_mod.COMPRESSION.clear()
        shards_mod.COMPRESSION.update(opts)
        d = Path(tempfile.mkdtemp())
        t = time.perf_counter()
        with ShardWriter(d / "train-00000.h5", 256, len(samples[0].params), len(samples)) as w:
            for s in samples:
                w.add(s)
        write_ms = (time.perf_counter() - t) / len(samples) * 1e3
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
            "write_ms_per_sample": round(write_ms, 2),
        }
        shutil.rmtree(d)
    shards_mod.COMPRESSION.clear()
    shards_mod.COMPRESSION.update({"compression": "lzf"})
    return res


def main():
    """Run the three measurements; print JSON."""
    sfm = SHARED / "3dmm" / "eos_sfm" / "share" / "sfm_shape_3448.bin"
    res = {
        "stage_ms_per_sample_1_process": {"starter": stages("starter"), "surrey": stages(sfm)},
        "build_2_workers_256px": {"starter": throughput("starter"), "surrey": throughput(sfm)},
        "compression_256px": compression(),
    }
    print(json.dumps(res))


if __name__ == "__main__":
    main()
