"""The two-stage GAN trainer: CUDA (AMP, channels_last, compile, DDP) or CPU.

Stage 1 trains G with L1 + D_g + TV at ``lr_stage1``; stage 2 adds D_l on the face region
(M ⊙ image), drops TV and continues at ``lr_stage2``. One optimizer per network; D sees
``fake.detach()``; D's parameters are frozen during G's step. Rank 0 writes checkpoints,
TensorBoard scalars, JSON log lines and PNG sample grids.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from deocc_core.data.dataset import ShardDataset
from deocc_core.device import resolve_device
from deocc_core.errors import ConfigError, FormatError, InputError
from deocc_core.eval.metrics import masked_psnr
from deocc_core.nets.checkpoint import load_checkpoint, save_checkpoint
from deocc_core.nets.io import generator_input, tensor_to_images
from deocc_core.nets.networks import define_discriminator, define_generator
from deocc_core.synth.manifest import read_manifest
from deocc_core.synth.shards import FORMAT_VERSION as SHARD_FORMAT_VERSION
from deocc_core.train.checkpoint import rng_state, set_rng_state
from deocc_core.train.config import ARCH_FIELDS, TrainConfig
from deocc_core.train.losses import GANLoss, TVLoss, masked_l1
from deocc_core.viz import image_grid

__all__ = ["train", "TrainResult", "weights_sha256"]

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a run did: steps, time, where the checkpoints are, last losses and validation."""

    steps: int
    seconds: float
    run_dir: Path
    latest: Path | None
    best: Path | None
    last_losses: dict[str, float] = field(default_factory=dict)
    val: dict[str, float] = field(default_factory=dict)
    images_per_second: float = 0.0
    weights_sha256: str = ""


def _sum_psnr(out: torch.Tensor, gt: torch.Tensor, occ_mask: torch.Tensor) -> float:
    """Sum over the batch of deocc-eval's PSNR inside the occluder (uint8 images, capped at
    100 dB like ``score``; a sample with an empty mask counts 100 dB, as it always has).
    """
    outs, gts = tensor_to_images(out), tensor_to_images(gt)
    masks = (occ_mask[:, 0] > 0.5).cpu().numpy()
    total = 0.0
    for o, g, m in zip(outs, gts, masks, strict=True):
        p = masked_psnr(o, g, m)
        total += 100.0 if not math.isfinite(p) else min(p, 100.0)
    return total


def _face_only(x: torch.Tensor, face_mask: torch.Tensor) -> torch.Tensor:
    """M ⊙ image in the [-1, 1] domain (black outside the face)."""
    return (x + 1) * face_mask - 1


def _dist_env() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def _unwrap(m: nn.Module) -> nn.Module:
    m = m.module if isinstance(m, nn.parallel.DistributedDataParallel) else m
    return getattr(m, "_orig_mod", m)


class _Run:
    def __init__(self, cfg: TrainConfig, resume: bool) -> None:
        self.cfg = cfg
        self.rank, self.world, self.local_rank = _dist_env()
        self.device = resolve_device(cfg.device, self.local_rank)
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
            torch.backends.cudnn.benchmark = not cfg.deterministic
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        self.run_dir = Path(cfg.out)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.main = self.rank == 0
        manifest = read_manifest(Path(cfg.shards))
        if manifest["resolution"] != cfg.size:
            raise ConfigError(
                f"{cfg.shards}: shards are {manifest['resolution']} px but --size is {cfg.size}"
            )
        self.data_model = manifest.get("model", {})
        torch.manual_seed(cfg.seed)
        self.train_set = ShardDataset(
            cfg.shards,
            "train",
            subset="train",
            val_fraction=cfg.val_fraction,
            seed=cfg.seed,
            rank=self.rank,
            world_size=self.world,
        )
        try:
            self.val_set = ShardDataset(
                cfg.shards,
                "train",
                subset="val",
                val_fraction=cfg.val_fraction,
                augment=None,
                shuffle=False,
                limit=cfg.val_samples,
            )
        except ConfigError:
            self.val_set = None
            log.warning(
                "%s: no validation identities (dataset too small): best.pt tracks nothing",
                cfg.shards,
            )
        self.G = define_generator(cfg.size, no_render=cfg.no_render, ngf=cfg.ngf).to(self.device)
        self.Dg = define_discriminator(cfg.size, ndf=cfg.ndf).to(self.device)
        self.Dl = define_discriminator(cfg.size, ndf=cfg.ndf).to(self.device)
        if self.device.type == "cuda" and cfg.channels_last:
            for n in (self.G, self.Dg, self.Dl):
                n.to(memory_format=torch.channels_last)
        betas = (cfg.beta1, cfg.beta2)
        self.opt = {
            k: torch.optim.Adam(getattr(self, k).parameters(), lr=cfg.lr_stage1, betas=betas)
            for k in ("G", "Dg", "Dl")
        }
        self.amp_dtype = None
        if self.device.type == "cuda" and cfg.amp:
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.gan, self.tv = GANLoss().to(self.device), TVLoss()
        per_rank = len(self.train_set) // self.world
        self.drop_last = per_rank >= cfg.batch_size
        self.steps_per_epoch = max(
            1,
            per_rank // cfg.batch_size if self.drop_last else math.ceil(per_rank / cfg.batch_size),
        )
        if cfg.max_steps is not None:
            self.total = cfg.max_steps
            self.stage2_start = cfg.max_steps - (
                cfg.stage2_steps if cfg.stage2_steps is not None else cfg.max_steps // 10
            )
        else:
            self.total = self.steps_per_epoch * (cfg.epochs_stage1 + cfg.epochs_stage2)
            self.stage2_start = self.steps_per_epoch * cfg.epochs_stage1
        self.step, self.epoch, self.batches_in_epoch, self.best = 0, 0, 0, -math.inf
        self._prepare_run_dir(resume)
        if self.world > 1:
            ddp = dict(device_ids=[self.device.index] if self.device.type == "cuda" else None)
            self.G = nn.parallel.DistributedDataParallel(self.G, **ddp)
            self.Dg = nn.parallel.DistributedDataParallel(self.Dg, **ddp)
            self.Dl = nn.parallel.DistributedDataParallel(self.Dl, **ddp)
        if cfg.compile and self.device.type == "cuda":
            self.G = torch.compile(self.G)
        self.tb = None
        if self.main:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.run_dir / "tb"))

    def _prepare_run_dir(self, resume: bool) -> None:
        cfg_file = self.run_dir / "config.json"
        latest = self.ckpt_dir / "latest.pt"
        if resume:
            if not latest.is_file():
                raise InputError(f"{self.run_dir}: nothing to resume (no checkpoints/latest.pt)")
            state = load_checkpoint(latest, self.device)
            old = TrainConfig.from_dict(state["config"])
            clash = [f for f in ARCH_FIELDS if getattr(old, f) != getattr(self.cfg, f)]
            if clash:
                raise ConfigError(
                    f"{latest}: --resume with a different {', '.join(clash)} than the checkpoint ({', '.join(f'{f}={getattr(old, f)}' for f in clash)})"
                )
            self._restore(state)
            log.info("resumed %s at step %d (epoch %d)", latest, self.step, self.epoch)
        elif latest.is_file():
            raise ConfigError(
                f"{self.run_dir}: already holds a run (checkpoints/latest.pt); use --resume or another --out"
            )
        if self.main:
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "samples").mkdir(exist_ok=True)
            cfg_file.write_text(json.dumps(self.cfg.to_dict(), indent=1))

    def _restore(self, s: dict[str, Any]) -> None:
        path = self.ckpt_dir / "latest.pt"
        missing = [
            k for k in ("G", "Dg", "Dl", "opt_G", "opt_Dg", "opt_Dl", "scaler", "rng") if k not in s
        ]
        if missing:
            raise FormatError(f"{path}: cannot resume, checkpoint lacks {', '.join(missing)}")
        for k in ("G", "Dg", "Dl"):
            try:
                getattr(self, k).load_state_dict(s[k])
                self.opt[k].load_state_dict(s[f"opt_{k}"])
            except (RuntimeError, ValueError, KeyError) as e:
                raise FormatError(
                    f"{path}: {k} state does not match the network ({str(e)[:80]})"
                ) from None
        if "scaler" in s:
            self.scaler.load_state_dict(s["scaler"])
        self.step, self.epoch, self.batches_in_epoch = (
            s["step"],
            s["epoch"],
            s.get("batches_in_epoch", 0),
        )
        self.best = s.get("best", -math.inf)
        rng = s.get("rng", {}).get(str(self.rank))
        if rng is not None:
            set_rng_state(rng)

    def state(self) -> dict[str, Any]:
        s = {
            "config": self.cfg.to_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "batches_in_epoch": self.batches_in_epoch,
            "stage": self.stage,
            "best": self.best,
            "scaler": self.scaler.state_dict(),
            "data_model": self.data_model,
            "shard_format_version": SHARD_FORMAT_VERSION,
        }
        for k in ("G", "Dg", "Dl"):
            s[k] = _unwrap(getattr(self, k)).state_dict()
            s[f"opt_{k}"] = self.opt[k].state_dict()
        states = [None] * self.world
        if self.world > 1:
            dist.all_gather_object(states, rng_state())
        else:
            states = [rng_state()]
        s["rng"] = {str(i): st for i, st in enumerate(states)}
        return s

    @property
    def stage(self) -> int:
        return 2 if self.step >= self.stage2_start else 1

    def save(self, tag: str | None = None) -> Path | None:
        state = self.state()  # every rank joins the RNG gather
        if not self.main:
            return None
        path = save_checkpoint(self.ckpt_dir / f"step_{self.step:07d}.pt", state)
        tmp = self.ckpt_dir / "latest.pt.partial"
        shutil.copyfile(path, tmp)
        os.replace(tmp, self.ckpt_dir / "latest.pt")
        if tag == "best":
            shutil.copyfile(path, self.ckpt_dir / "best.pt.partial")
            os.replace(self.ckpt_dir / "best.pt.partial", self.ckpt_dir / "best.pt")
        kept = sorted(self.ckpt_dir.glob("step_*.pt"))
        for old in kept[: -self.cfg.keep_last]:
            old.unlink()
        return path

    def _autocast(self):
        return (
            torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)
            if self.amp_dtype is not None
            else nullcontext()
        )

    def _to(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        mf = (
            torch.channels_last
            if self.device.type == "cuda" and self.cfg.channels_last
            else torch.contiguous_format
        )
        return {
            k: (
                v.to(self.device, non_blocking=True, memory_format=mf)
                if v.ndim == 4
                else v.to(self.device)
            )
            for k, v in batch.items()
        }

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        cfg, stage = self.cfg, self.stage
        lr = cfg.lr_stage1 if stage == 1 else cfg.lr_stage2
        for o in self.opt.values():
            for g in o.param_groups:
                g["lr"] = lr
        b = self._to(batch)
        use_dl = stage == 2 and not cfg.no_dl
        with self._autocast():
            fake = self.G(generator_input(b, cfg.no_render))
        losses: dict[str, torch.Tensor] = {}
        for name, D, on, weight, view in (
            ("Dg", self.Dg, not cfg.no_dg, cfg.d_g, None),
            ("Dl", self.Dl, use_dl, cfg.d_l, b["face_mask"]),
        ):
            if not on:
                continue
            real_in = b["gt"] if view is None else _face_only(b["gt"], view)
            fake_in = fake.detach() if view is None else _face_only(fake.detach(), view)
            with self._autocast():
                loss_d = 0.5 * weight * (self.gan(D(real_in), True) + self.gan(D(fake_in), False))
            self.opt[name].zero_grad(set_to_none=True)
            self.scaler.scale(loss_d).backward()
            self.scaler.step(self.opt[name])
            losses[f"loss_{name}"] = loss_d.detach()
        for D in (self.Dg, self.Dl):
            D.requires_grad_(False)
        with self._autocast():
            loss_l1 = (fake.float() - b["gt"]).abs().mean()
            loss_g = cfg.l1 * loss_l1
            if not cfg.no_dg:
                losses["loss_G_adv_g"] = self.gan(self.Dg(fake), True)
                loss_g = loss_g + cfg.adv_g * losses["loss_G_adv_g"]
            if use_dl:
                losses["loss_G_adv_l"] = self.gan(self.Dl(_face_only(fake, b["face_mask"])), True)
                loss_g = loss_g + cfg.adv_l * losses["loss_G_adv_l"]
            if stage == 1 and cfg.tv > 0:
                losses["loss_tv"] = self.tv(fake.float())
                loss_g = loss_g + cfg.tv * losses["loss_tv"]
        self.opt["G"].zero_grad(set_to_none=True)
        self.scaler.scale(loss_g).backward()
        self.scaler.step(self.opt["G"])
        self.scaler.update()
        for D in (self.Dg, self.Dl):
            D.requires_grad_(True)
        self.last_batch = (b, fake.detach())
        losses["loss_l1"] = loss_l1.detach()
        losses["loss_G"] = loss_g.detach()
        return {k: float(v.detach()) for k, v in losses.items()}

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        if self.val_set is None:
            return {}
        G = _unwrap(self.G)
        G.eval()
        psnr_occ, l1_occ, n = 0.0, 0.0, 0
        first = None
        for batch in DataLoader(
            self.val_set, batch_size=self.cfg.batch_size, num_workers=0, generator=torch.Generator()
        ):
            b = self._to(batch)
            with self._autocast():
                out = G(generator_input(b, self.cfg.no_render)).float()
            psnr_occ += _sum_psnr(out, b["gt"], b["occ_mask"])
            l1_occ += float(masked_l1(out, b["gt"], b["occ_mask"])) * len(out)
            n += len(out)
            if first is None:
                first = (b, out)
        G.train()
        if first is not None:
            self.write_grid(*first, "val")
        return {"val_psnr_occ": psnr_occ / max(n, 1), "val_l1_occ": l1_occ / max(n, 1)}

    def write_grid(self, b: dict[str, torch.Tensor], out: torch.Tensor, tag: str) -> None:
        """PNG ``samples/<tag>_step_NNNNNNN.png``: rows of occluded | render | output | gt (rank 0)."""
        if not self.main:
            return
        rows = [
            [
                t[i].detach().float().cpu().numpy().transpose(1, 2, 0) * 0.5 + 0.5
                for t in (b["occluded"], b["render"], out, b["gt"])
            ]
            for i in range(min(4, len(out)))
        ]
        grid = image_grid(
            rows,
            labels=[f"{tag} step {self.step}: occluded | render | output | gt"]
            + [""] * (len(rows) - 1),
        )
        cv2.imwrite(
            str(self.run_dir / "samples" / f"{tag}_step_{self.step:07d}.png"), grid[:, :, ::-1]
        )

    def log(self, values: dict[str, float]) -> None:
        if not self.main:
            return
        for k, v in values.items():
            self.tb.add_scalar(k, v, self.step)
        with open(self.run_dir / "log.jsonl", "a") as f:
            stage = 2 if self.step - 1 >= self.stage2_start else 1  # of the step just taken
            f.write(
                json.dumps({"step": self.step, "epoch": self.epoch, "stage": stage, **values})
                + "\n"
            )

    def run(self, progress: Callable[..., None] | None) -> TrainResult:
        cfg = self.cfg
        t0, imgs, last, val = time.perf_counter(), 0, {}, {}
        best_path = None
        if progress:
            progress(self.step, total=self.total)
        try:
            while self.step < self.total:
                self.train_set.set_epoch(self.epoch, self.batches_in_epoch, cfg.batch_size)
                # own generator: creating a loader must not draw from the global RNG (exact resume)
                gen = torch.Generator().manual_seed(cfg.seed * 100003 + self.epoch)
                loader = DataLoader(
                    self.train_set,
                    batch_size=cfg.batch_size,
                    num_workers=cfg.workers,
                    drop_last=self.drop_last,
                    pin_memory=self.device.type == "cuda",
                    persistent_workers=False,
                    generator=gen,
                )
                for batch in loader:
                    last = self.train_step(batch)
                    self.step += 1
                    self.batches_in_epoch += 1
                    imgs += len(batch["gt"]) * self.world
                    if progress:
                        progress(1)
                    if self.step % cfg.sample_every == 0:
                        self.write_grid(*self.last_batch, "train")
                    if self.step % cfg.log_every == 0:
                        self.log({**last, "lr": self.opt["G"].param_groups[0]["lr"]})
                    if self.step % cfg.val_every == 0 or self.step == self.total:
                        val = self.validate()
                        self.log(val)
                        if val and val["val_psnr_occ"] > self.best:
                            self.best = val["val_psnr_occ"]
                            best_path = self.save("best") or best_path
                        elif self.step % cfg.checkpoint_every == 0 or self.step == self.total:
                            self.save()
                    elif self.step % cfg.checkpoint_every == 0:
                        self.save()
                    if self.step >= self.total:
                        break
                else:
                    self.epoch += 1
                    self.batches_in_epoch = 0
        except KeyboardInterrupt:
            self.save()
            log.warning("interrupted at step %d: saved %s", self.step, self.ckpt_dir / "latest.pt")
            raise
        finally:
            if self.tb is not None:
                self.tb.close()
        if self.world > 1:
            dist.barrier()
        secs = time.perf_counter() - t0
        latest = self.ckpt_dir / "latest.pt"
        best = self.ckpt_dir / "best.pt"
        return TrainResult(
            self.step,
            secs,
            self.run_dir,
            latest if latest.is_file() else None,
            best if best.is_file() else None,
            last,
            val,
            imgs / max(secs, 1e-9),
            weights_sha256(_unwrap(self.G)),
        )


def weights_sha256(net: nn.Module) -> str:
    """Hash of a network's parameters (bit-exact comparisons across runs / ranks; BatchNorm
    running statistics are per rank under DDP and left out).

    Example:
        >>> len(weights_sha256(torch.nn.Linear(2, 1)))
        64
    """
    import hashlib

    h = hashlib.sha256()
    for k, v in sorted(net.named_parameters()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def train(
    config: TrainConfig, progress: Callable[..., None] | None = None, resume: bool = False
) -> TrainResult:
    """Train (or resume) a run; see :class:`TrainConfig`.

    Raises:
        ConfigError: run folder holds another run, resume with another architecture,
            shards of another resolution. InputError / FormatError: missing or bad shards / checkpoints.
    """
    return _Run(config, resume).run(progress)
