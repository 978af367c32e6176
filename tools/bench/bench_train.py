"""Training img/s of the full-size model and the shard loader's samples/s. JSON.

ngf = ndf = 64 at 256x256, batch 5 (CPU here; CUDA with AMP when present); the loader
with 2 workers in the same run.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401
import torch
from torch.utils.data import DataLoader

from deocc_core.data.dataset import ShardDataset
from deocc_core.synth.pipeline import BuildConfig, build
from deocc_core.train.config import TrainConfig
from deocc_core.train.trainer import _Run


def main():
    """Time training steps of both stages and the loader; print JSON."""
    tmp = Path(tempfile.mkdtemp())
    try:
        build(
            BuildConfig(
                source="synthetic",
                out=str(tmp / "shards"),
                size=256,
                per_shard=40,
                n_synthetic=80,
                workers=2,
                test_fraction=0.1,
            )
        )
        ds = ShardDataset(tmp / "shards", "train")
        loader = DataLoader(ds, batch_size=5, num_workers=2)
        t = time.perf_counter()
        n = sum(len(b["gt"]) for b in loader)
        load_rate = n / (time.perf_counter() - t)
        cfg = TrainConfig(
            shards=str(tmp / "shards"),
            out=str(tmp / "run"),
            size=256,
            max_steps=1000,
            workers=0,
            val_fraction=0.0,
        )
        run = _Run(cfg, resume=False)
        batch = next(iter(DataLoader(ds, batch_size=5)))
        res = {}
        for stage_step in (0, cfg.max_steps):  # stage 1 (G + D_g + TV) and stage 2 (+ D_l)
            run.step = stage_step - 1 if stage_step else 0
            run.stage2_start = 0 if stage_step else 10**9
            run.train_step(batch)
            t = time.perf_counter()
            k = 3
            for _ in range(k):
                run.train_step(batch)
            if run.device.type == "cuda":
                torch.cuda.synchronize()
            res[f"stage{1 if not stage_step else 2}_img_per_s"] = round(
                5 * k / (time.perf_counter() - t), 2
            )
        res.update(
            device=str(run.device),
            amp=str(run.amp_dtype),
            loader_samples_per_s_2_workers=round(load_rate, 1),
            loader_to_train_ratio=round(load_rate / res["stage1_img_per_s"], 1),
            threads=torch.get_num_threads(),
        )
        print(json.dumps(res))
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
