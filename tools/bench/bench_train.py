"""Training throughput (img/s) of the full-size model and the shard loader's rate, one JSON.

On the CPU (no GPU, or ``--device cpu``): 256 px, batch 5, float32, stage 1 and stage 2,
and the loader with 2 workers; the JSON says that the GPU matrix was not run.

On CUDA (``--device cuda``), at 256 px with ngf = ndf = 64:

- batch 5 (the paper's) for every AMP dtype (fp16 + GradScaler; bf16 where the GPU has it
  natively; fp32), channels_last on / off and torch.compile on / off (stage 1: G + D_g);
- for the fastest setting: stage 2 (+ D_l) and the largest batch that fits (doubling, then
  bisection on CUDA out-of-memory);
- the shard loader with 2 .. CPU-count workers against the step rate (``loader_to_step``
  above 1: the loader keeps up);
- N GPUs: under ``torchrun`` the batch-5 runs use DDP over all ranks (img/s summed); when
  started plainly on a machine with several GPUs (or ``--gpus N``), the script re-launches
  itself with ``torch.distributed.run`` and adds those figures;
- the projected wall time of the paper's 110 epochs (100 stage 1 + 10 stage 2) for
  ``--paper-samples`` training images (default: 300W-LP's 122,450).

    python tools/bench/bench_train.py [--device auto|cpu|cuda] [--gpus N] [--steps 20]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

try:
    import _common  # noqa: F401  (puts the repository on sys.path)
except ImportError:  # imported as tools.bench.bench_train
    from tools.bench import _common  # noqa: F401

import torch
from torch.utils.data import DataLoader

from deocc_core.data.dataset import ShardDataset
from deocc_core.synth.pipeline import BuildConfig, build
from deocc_core.train.amp import amp_dtype, device_caps
from deocc_core.train.config import TrainConfig
from deocc_core.train.parallel import dist_env
from deocc_core.train.trainer import _Run

PAPER_EPOCHS = (100, 10)
DTYPES = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}


def largest_batch(img_per_s: Callable[[int], float], start: int = 5, cap: int = 4096) -> int:
    """The largest batch for which ``img_per_s(batch)`` runs without CUDA out-of-memory.

    Doubles from ``start`` until a batch fails (or ``cap``), then bisects. ``start`` itself
    must fit (returns 0 if not).

    Example:
        >>> def fits(b):
        ...     if b > 37:
        ...         raise torch.cuda.OutOfMemoryError("fake")
        ...     return float(b)
        >>> largest_batch(fits)
        37
    """
    ok, bad = 0, None
    b = start
    while b <= cap:
        try:
            img_per_s(b)
        except torch.cuda.OutOfMemoryError:
            bad = b
            break
        ok, b = b, b * 2
    if bad is None or ok == 0:
        return ok
    while bad - ok > 1:
        mid = (ok + bad) // 2
        try:
            img_per_s(mid)
            ok = mid
        except torch.cuda.OutOfMemoryError:
            bad = mid
    return ok


class Bench:
    """Shards on disk and a factory of trainer runs with one setting each."""

    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args, self.tmp = args, tmp
        self.shards = tmp / "shards"
        self.rank, self.world, _ = dist_env()
        self.n_runs = 0

    def build_shards(self) -> None:
        """Synthetic 256 px shards (rank 0 builds; the others wait for the manifest)."""
        if self.rank == 0:
            build(
                BuildConfig(
                    source="synthetic",
                    out=str(self.shards),
                    size=self.args.size,
                    per_shard=40,
                    n_synthetic=self.args.samples,
                    workers=min(os.cpu_count() or 1, 8),
                    test_fraction=0.1,
                )
            )
        while not (self.shards / "manifest.json").exists():
            time.sleep(0.5)

    def run(self, dtype: str, channels_last: bool, compile: bool) -> _Run:
        """A trainer with this setting (AMP dtype forced, as ``--amp`` would pick it)."""
        a = self.args
        self.n_runs += 1
        cfg = TrainConfig(
            shards=str(self.shards),
            out=str(self.tmp / f"run{self.n_runs}"),
            size=a.size,
            ngf=a.ngf,
            ndf=a.ngf,
            max_steps=10**6,
            workers=0,
            val_fraction=0.0,
            device=a.device,
            channels_last=channels_last,
            compile=compile,
            amp=dtype != "fp32",
        )
        run = _Run(cfg, resume=False)
        if run.device.type == "cuda":
            run.amp_dtype = DTYPES[dtype]
            run.scaler = torch.amp.GradScaler("cuda", enabled=run.amp_dtype == torch.float16)
        return run

    def batch(self, run: _Run, size: int) -> dict[str, torch.Tensor]:
        """A fixed batch of ``size`` real shard samples (repeated if the shards hold fewer)."""
        ds = ShardDataset(self.shards, "train", augment=None, shuffle=False)
        samples = [ds.read(int(si), int(i), None) for si, i in ds.items[: min(size, len(ds))]]
        samples = (samples * (size // len(samples) + 1))[:size]
        return {k: torch.stack([s[k] for s in samples]) for k in samples[0]}

    def img_per_s(self, run: _Run, batch_size: int, stage: int = 1) -> float:
        """Training images per second (all ranks) over ``--steps`` steps after warm-up."""
        b = self.batch(run, batch_size)
        if run.device.type == "cuda":
            b = {k: v.pin_memory() for k, v in b.items()}
        run.step, run.stage2_start = (1, 0) if stage == 2 else (0, 10**9)
        for _ in range(self.args.warmup):
            run.train_step(b)
        _sync(run.device)
        t = time.perf_counter()
        for _ in range(self.args.steps):
            run.train_step(b)
        _sync(run.device)
        return batch_size * self.args.steps * self.world / (time.perf_counter() - t)

    def loader_rate(self, workers: int, batch_size: int = 5) -> float:
        """Samples per second the augmenting shard loader delivers (3 epochs, warm workers)."""
        ds = ShardDataset(self.shards, "train", rank=self.rank, world_size=self.world)
        loader = DataLoader(
            ds, batch_size=batch_size, num_workers=workers, persistent_workers=workers > 0
        )
        next(iter(loader))
        t, n = time.perf_counter(), 0
        for epoch in range(3):
            ds.set_epoch(epoch)
            n += sum(len(b["gt"]) for b in loader)
        return n / (time.perf_counter() - t)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _free() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def cpu_bench(bench: Bench) -> dict[str, object]:
    """The CPU figures: float32, batch 5, stage 1 and 2, loader with 2 workers."""
    run = bench.run("fp32", channels_last=False, compile=False)
    s1 = bench.img_per_s(run, 5, stage=1)
    s2 = bench.img_per_s(run, 5, stage=2)
    load = bench.loader_rate(2)
    return {
        "note": "CPU only (no CUDA device or --device cpu): float32, batch 5; the GPU matrix "
        "(fp16/bf16, channels_last, compile, largest batch, DDP) needs --device cuda",
        "stage1_img_per_s": round(s1, 2),
        "stage2_img_per_s": round(s2, 2),
        "loader_samples_per_s_2_workers": round(load, 1),
        "loader_to_train_ratio": round(load / s1, 1),
        "threads": torch.get_num_threads(),
    }


def cuda_matrix(bench: Bench) -> tuple[list[dict[str, object]], dict[str, object]]:
    """Batch-5 img/s for every dtype × channels_last × compile (stage 1); the fastest."""
    caps = device_caps(torch.device("cuda", torch.cuda.current_device()))
    dtypes = ["fp32", "fp16"] + (["bf16"] if caps.bf16_native else [])
    rows = []
    for dtype in dtypes:
        for cl in (True, False):
            for comp in (False, True) if bench.args.compile else (False,):
                run = bench.run(dtype, cl, comp)
                t = time.perf_counter()
                try:
                    rate = round(bench.img_per_s(run, 5), 2)
                except Exception as e:  # a compile failure must not lose the other figures
                    rate = f"failed: {type(e).__name__}: {str(e)[:80]}"
                rows.append(
                    {"dtype": dtype, "channels_last": cl, "compile": comp, "batch": 5,
                     "img_per_s": rate, "seconds": round(time.perf_counter() - t, 1)}
                )  # fmt: skip
                del run
                _free()
    best = max((r for r in rows if isinstance(r["img_per_s"], float)), key=lambda r: r["img_per_s"])
    return rows, best


def cuda_bench(bench: Bench) -> dict[str, object]:
    """Everything the CUDA path measures (see the module docstring)."""
    rows, best = cuda_matrix(bench)
    out: dict[str, object] = {
        "gpu": torch.cuda.get_device_name(),
        "bf16_native": device_caps(torch.device("cuda")).bf16_native,
        "autocast_default": str(amp_dtype(device_caps(torch.device("cuda")))),
        "world_size": bench.world,
        "batch5": rows,
        "fastest": best,
    }
    setting = (best["dtype"], best["channels_last"], best["compile"])
    run = bench.run(*setting)
    out["fastest_stage2_img_per_s"] = round(bench.img_per_s(run, 5, stage=2), 2)
    if bench.world == 1:

        def try_batch(b: int, run: _Run = run) -> float:
            try:
                return bench.img_per_s(run, b)
            finally:
                _free()  # an out-of-memory batch leaves cached blocks behind

        torch.cuda.reset_peak_memory_stats()
        biggest = largest_batch(try_batch, start=5, cap=bench.args.cap)
        torch.cuda.reset_peak_memory_stats()
        out["largest_batch"] = biggest
        out["largest_batch_img_per_s"] = round(bench.img_per_s(run, biggest), 2)
        out["largest_batch_peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 1)
    del run
    _free()
    step = float(best["img_per_s"])
    cpus = os.cpu_count() or 2
    loaders = {w: round(bench.loader_rate(w), 1) for w in sorted({2, min(4, cpus), cpus // 2})}
    out["loader_samples_per_s"] = loaders
    out["loader_to_step"] = {w: round(r * bench.world / step, 2) for w, r in loaders.items()}
    n = bench.args.paper_samples
    s1, s2 = step, float(out["fastest_stage2_img_per_s"])
    hours = n * (PAPER_EPOCHS[0] / s1 + PAPER_EPOCHS[1] / s2) / 3600
    out["paper_110_epochs_hours"] = round(hours, 1)
    out["paper_samples"] = n
    return out


def launch_ddp(args: argparse.Namespace, gpus: int) -> dict[str, object]:
    """Re-run this script under torchrun on ``gpus`` GPUs; its rank 0's JSON."""
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "ddp.json"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={gpus}", __file__, "--device", "cuda",
               "--steps", str(args.steps), "--json-out", str(out), "--no-ddp-launch",
               "--workdir", str(Path(d) / "work"), "--size", str(args.size),
               "--ngf", str(args.ngf), "--samples", str(args.samples),
               *(["--compile"] if args.compile else ["--no-compile"])]  # fmt: skip
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode or not out.exists():
            return {"failed": p.stderr.strip().splitlines()[-1:] or [f"exit {p.returncode}"]}
        return json.loads(out.read_text())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--size", type=int, default=256, help="crop side (px)")
    ap.add_argument("--ngf", type=int, default=64, help="generator / discriminator width")
    ap.add_argument("--samples", type=int, default=80, help="synthetic shard samples")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (CPU 3, CUDA 20)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps (CPU 1, CUDA 5)")
    ap.add_argument("--cap", type=int, default=512, help="largest batch tried")
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--gpus", type=int, default=None, help="GPUs for the DDP run (default all)")
    ap.add_argument("--paper-samples", type=int, default=122_450, help="training images")
    ap.add_argument("--json-out", type=Path, default=None, help="also write the JSON here")
    ap.add_argument(
        "--workdir", type=Path, default=None, help="scratch folder shared by the ranks (removed)"
    )
    ap.add_argument("--no-ddp-launch", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    cuda = args.device == "cuda"
    args.steps = args.steps or (20 if cuda else 3)
    args.warmup = args.warmup if args.warmup is not None else (5 if cuda else 1)
    return args


def _workdir(args: argparse.Namespace) -> Path:
    """Scratch folder: given, or one per torchrun job (same path on every rank), or new."""
    if args.workdir is not None:
        return args.workdir
    if dist_env()[1] > 1:
        job = os.environ.get("TORCHELASTIC_RUN_ID") or os.environ.get("MASTER_PORT", "0")
        return Path(tempfile.gettempdir()) / f"deocc_bench_train_{job}"
    return Path(tempfile.mkdtemp())


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark for the chosen device and print one JSON object (rank 0)."""
    args = parse_args(argv)
    tmp = _workdir(args)
    bench = Bench(args, tmp)
    try:
        bench.build_shards()
        res: dict[str, object] = {"device": args.device, "size": args.size, "ngf": args.ngf}
        res.update(cuda_bench(bench) if args.device == "cuda" else cpu_bench(bench))
        gpus = args.gpus or (torch.cuda.device_count() if args.device == "cuda" else 0)
        if bench.world == 1 and gpus > 1 and not args.no_ddp_launch:
            res["ddp"] = launch_ddp(args, gpus)
        elif args.device == "cuda" and bench.world == 1:
            res["ddp"] = "one GPU visible: run with --gpus N or under torchrun for N GPUs"
        if bench.rank == 0:
            text = json.dumps(res)
            if args.json_out:
                args.json_out.write_text(text)
            print(text)
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()
        if bench.rank == 0:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
