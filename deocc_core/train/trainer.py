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

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from deocc_core.data.dataset import ShardDataset
from deocc_core.device import resolve_device
from deocc_core.errors import ConfigError, FormatError, InputError
from deocc_core.eval.metrics import masked_psnr
from deocc_core.imageio import write_image
from deocc_core.nets.checkpoint import (
    BEST,
    CHECKPOINT_DIR,
    LATEST,
    load_checkpoint,
    save_checkpoint,
)
from deocc_core.nets.io import generator_input, tensor_to_images
from deocc_core.nets.networks import define_discriminator, define_generator
from deocc_core.synth.manifest import read_manifest
from deocc_core.synth.schema import FORMAT_VERSION as SHARD_FORMAT_VERSION
from deocc_core.train.checkpoint import rng_state, set_rng_state
from deocc_core.train.config import ARCH_FIELDS, TrainConfig
from deocc_core.train.losses import GANLoss, TVLoss, masked_l1
from deocc_core.viz import image_grid

__all__ = ["train", "TrainResult", "weights_sha256"]

log = logging.getLogger(__name__)

NETWORKS = ("G", "Dg", "Dl")  # one optimizer each; checkpoint keys G, opt_G, ...


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
    """Sum over the batch of deocc-eval's PSNR inside the occluder.

    Scored on uint8 images and capped at 100 dB like ``score``; a sample with an empty mask
    counts 100 dB, as it always has.
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
    """One training run (one per rank): built in named steps, driven by :meth:`run`."""

    def __init__(self, cfg: TrainConfig, resume: bool) -> None:
        self.cfg = cfg
        self._setup_process()
        self.run_dir = Path(cfg.out)
        self.ckpt_dir = self.run_dir / CHECKPOINT_DIR
        self.data_model, self.data_config = self._check_shards()
        torch.manual_seed(cfg.seed)  # before the datasets and networks: it seeds G's init
        self.train_set, self.val_set = self._make_datasets()
        self._make_networks()
        self._plan_steps()
        self.step, self.epoch, self.batches_in_epoch, self.best = 0, 0, 0, -math.inf
        self._prepare_run_dir(resume)
        self._wrap_networks()
        self.tb = self._open_tensorboard()
        self.images_seen, self.last_losses, self.last_val = 0, {}, {}

    # --- setup steps ------------------------------------------------------------------------

    def _setup_process(self) -> None:
        """Rank, device, process group and the global torch flags of this run."""
        cfg = self.cfg
        self.rank, self.world, self.local_rank = _dist_env()
        self.main = self.rank == 0
        self.device = resolve_device(cfg.device, self.local_rank)
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
            torch.backends.cudnn.benchmark = not cfg.deterministic
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)

    def _check_shards(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The shards' model (name, sha256) and build config.

        Both are saved with the run (inference prepares faces the way the shards did).
        Raises ConfigError if the shards' resolution is not ``size``.
        """
        cfg = self.cfg
        manifest = read_manifest(Path(cfg.shards))
        if manifest["resolution"] != cfg.size:
            raise ConfigError(
                f"{cfg.shards}: shards are {manifest['resolution']} px but --size is {cfg.size}"
            )
        data_config = {k: manifest.get(k) for k in ("config", "config_hash")}
        return manifest.get("model", {}), data_config

    def _make_datasets(self) -> tuple[ShardDataset, ShardDataset | None]:
        """This rank's training stream and the held-out validation identities (or None)."""
        cfg = self.cfg
        train_set = ShardDataset(
            cfg.shards,
            "train",
            subset="train",
            val_fraction=cfg.val_fraction,
            augment=cfg.augment,
            seed=cfg.seed,
            rank=self.rank,
            world_size=self.world,
        )
        try:
            val_set = ShardDataset(
                cfg.shards,
                "train",
                subset="val",
                val_fraction=cfg.val_fraction,
                augment=None,
                shuffle=False,
                limit=cfg.val_samples,
            )
        except ConfigError:
            val_set = None
            log.warning(
                "%s: no validation identities (dataset too small): best.pt tracks nothing",
                cfg.shards,
            )
        return train_set, val_set

    def _make_networks(self) -> None:
        """G, D_g, D_l, one Adam each, the AMP dtype and scaler, the loss modules."""
        cfg = self.cfg
        self.G = define_generator(cfg.size, no_render=cfg.no_render, ngf=cfg.ngf).to(self.device)
        self.Dg = define_discriminator(cfg.size, ndf=cfg.ndf).to(self.device)
        self.Dl = define_discriminator(cfg.size, ndf=cfg.ndf).to(self.device)
        if self.device.type == "cuda" and cfg.channels_last:
            for n in (self.G, self.Dg, self.Dl):
                n.to(memory_format=torch.channels_last)
        betas = (cfg.beta1, cfg.beta2)
        self.opt = {
            k: torch.optim.Adam(getattr(self, k).parameters(), lr=cfg.lr_stage1, betas=betas)
            for k in NETWORKS
        }
        self.amp_dtype = None
        if self.device.type == "cuda" and cfg.amp:
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.gan, self.tv = GANLoss().to(self.device), TVLoss()

    def _plan_steps(self) -> None:
        """Steps per epoch, the total step count and the first step of stage 2."""
        cfg = self.cfg
        per_rank = len(self.train_set) // self.world
        self.drop_last = per_rank >= cfg.batch_size
        per_epoch = per_rank // cfg.batch_size if self.drop_last else -(-per_rank // cfg.batch_size)
        self.steps_per_epoch = max(1, per_epoch)
        if cfg.max_steps is not None:
            self.total = cfg.max_steps
            stage2 = cfg.stage2_steps if cfg.stage2_steps is not None else cfg.max_steps // 10
            self.stage2_start = cfg.max_steps - stage2
        else:
            self.total = self.steps_per_epoch * (cfg.epochs_stage1 + cfg.epochs_stage2)
            self.stage2_start = self.steps_per_epoch * cfg.epochs_stage1

    def _prepare_run_dir(self, resume: bool) -> None:
        """Resume from ``latest.pt`` or refuse to overwrite a run; write ``config.json``."""
        latest = self.ckpt_dir / LATEST
        if resume:
            if not latest.is_file():
                raise InputError(f"{self.run_dir}: nothing to resume (no checkpoints/latest.pt)")
            state = load_checkpoint(latest, self.device)
            old = TrainConfig.from_dict(state["config"])
            clash = [f for f in ARCH_FIELDS if getattr(old, f) != getattr(self.cfg, f)]
            if clash:
                was = ", ".join(f"{f}={getattr(old, f)}" for f in clash)
                raise ConfigError(
                    f"{latest}: --resume with a different {', '.join(clash)} than the "
                    f"checkpoint ({was})"
                )
            self._restore(state)
            log.info("resumed %s at step %d (epoch %d)", latest, self.step, self.epoch)
        elif latest.is_file():
            raise ConfigError(
                f"{self.run_dir}: already holds a run (checkpoints/latest.pt); "
                "use --resume or another --out"
            )
        if self.main:
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "samples").mkdir(exist_ok=True)
            (self.run_dir / "config.json").write_text(json.dumps(self.cfg.to_dict(), indent=1))

    def _wrap_networks(self) -> None:
        """DDP over ranks (the one place), then torch.compile of G on CUDA if asked."""
        if self.world > 1:
            ddp = dict(device_ids=[self.device.index] if self.device.type == "cuda" else None)
            self.G = nn.parallel.DistributedDataParallel(self.G, **ddp)
            self.Dg = nn.parallel.DistributedDataParallel(self.Dg, **ddp)
            self.Dl = nn.parallel.DistributedDataParallel(self.Dl, **ddp)
        if self.cfg.compile and self.device.type == "cuda":
            self.G = torch.compile(self.G)

    def _open_tensorboard(self) -> Any:
        """A TensorBoard writer on rank 0, None elsewhere."""
        if not self.main:
            return None
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(self.run_dir / "tb"))

    # --- checkpoints ------------------------------------------------------------------------

    def _restore(self, s: dict[str, Any]) -> None:
        """Networks, optimizers, scaler, position and this rank's RNG from a checkpoint."""
        path = self.ckpt_dir / LATEST
        parts = (*NETWORKS, *(f"opt_{k}" for k in NETWORKS), "scaler", "rng")
        missing = [k for k in parts if k not in s]
        if missing:
            raise FormatError(f"{path}: cannot resume, checkpoint lacks {', '.join(missing)}")
        for k in NETWORKS:
            try:
                getattr(self, k).load_state_dict(s[k])
                self.opt[k].load_state_dict(s[f"opt_{k}"])
            except (RuntimeError, ValueError, KeyError) as e:
                raise FormatError(
                    f"{path}: {k} state does not match the network ({str(e)[:80]})"
                ) from None
        self.scaler.load_state_dict(s["scaler"])
        self.step, self.epoch = s["step"], s["epoch"]
        self.batches_in_epoch = s.get("batches_in_epoch", 0)
        self.best = s.get("best", -math.inf)
        rng = s["rng"].get(str(self.rank))
        if rng is not None:
            set_rng_state(rng)

    def state(self) -> dict[str, Any]:
        """Everything an exact resume needs (every rank joins the RNG gather)."""
        s = {
            "config": self.cfg.to_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "batches_in_epoch": self.batches_in_epoch,
            "stage": self.stage,
            "best": self.best,
            "scaler": self.scaler.state_dict(),
            "data_model": self.data_model,
            "data_config": self.data_config,
            "shard_format_version": SHARD_FORMAT_VERSION,
        }
        for k in NETWORKS:
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
        """1 before ``stage2_start``, then 2."""
        return 2 if self.step >= self.stage2_start else 1

    def save(self, tag: str | None = None) -> Path | None:
        """Write ``step_NNNNNNN.pt``, point ``latest.pt`` (and ``best.pt``) at it, prune."""
        state = self.state()  # every rank joins the RNG gather
        if not self.main:
            return None
        path = save_checkpoint(self.ckpt_dir / f"step_{self.step:07d}.pt", state)
        _replace_copy(path, self.ckpt_dir / LATEST)
        if tag == "best":
            _replace_copy(path, self.ckpt_dir / BEST)
        kept = sorted(self.ckpt_dir.glob("step_*.pt"))
        for old in kept[: -self.cfg.keep_last]:
            old.unlink()
        return path

    # --- one optimizer step ---------------------------------------------------------------

    def _autocast(self) -> Any:
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

    def _set_lr(self) -> None:
        lr = self.cfg.lr_stage1 if self.stage == 1 else self.cfg.lr_stage2
        for o in self.opt.values():
            for g in o.param_groups:
                g["lr"] = lr

    def _use_dl(self) -> bool:
        return self.stage == 2 and not self.cfg.no_dl

    def backward_D(self, b: dict[str, torch.Tensor], fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """Update D_g (whole image) and, in stage 2, D_l (M ⊙ image) on real vs ``fake.detach()``.

        Returns:
            ``loss_Dg`` / ``loss_Dl`` (detached) for the discriminators that stepped.
        """
        cfg = self.cfg
        losses: dict[str, torch.Tensor] = {}
        for name, D, on, weight, view in (
            ("Dg", self.Dg, not cfg.no_dg, cfg.d_g, None),
            ("Dl", self.Dl, self._use_dl(), cfg.d_l, b["face_mask"]),
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
        return losses

    def backward_G(self, b: dict[str, torch.Tensor], fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """Update G: L1 + adversarial terms (D frozen) + TV in stage 1.

        Returns:
            the terms (``loss_G_adv_g``, ``loss_G_adv_l``, ``loss_tv``, ``loss_l1``) and
            their weighted sum ``loss_G``.
        """
        cfg = self.cfg
        losses: dict[str, torch.Tensor] = {}
        for D in (self.Dg, self.Dl):
            D.requires_grad_(False)
        with self._autocast():
            loss_l1 = (fake.float() - b["gt"]).abs().mean()
            loss_g = cfg.l1 * loss_l1
            if not cfg.no_dg:
                losses["loss_G_adv_g"] = self.gan(self.Dg(fake), True)
                loss_g = loss_g + cfg.adv_g * losses["loss_G_adv_g"]
            if self._use_dl():
                losses["loss_G_adv_l"] = self.gan(self.Dl(_face_only(fake, b["face_mask"])), True)
                loss_g = loss_g + cfg.adv_l * losses["loss_G_adv_l"]
            if self.stage == 1 and cfg.tv > 0:
                losses["loss_tv"] = self.tv(fake.float())
                loss_g = loss_g + cfg.tv * losses["loss_tv"]
        self.opt["G"].zero_grad(set_to_none=True)
        self.scaler.scale(loss_g).backward()
        self.scaler.step(self.opt["G"])
        for D in (self.Dg, self.Dl):
            D.requires_grad_(True)
        losses["loss_l1"] = loss_l1.detach()
        losses["loss_G"] = loss_g.detach()
        return losses

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One step of the paper's GAN: G forward, D step(s), G step. Returns the losses."""
        self._set_lr()
        b = self._to(batch)
        with self._autocast():
            fake = self.G(generator_input(b, self.cfg.no_render))
        losses = self.backward_D(b, fake)
        losses.update(self.backward_G(b, fake))
        self.scaler.update()
        self.last_batch = (b, fake.detach())
        return {k: float(v.detach()) for k, v in losses.items()}

    # --- validation and logging -------------------------------------------------------------

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """PSNR and L1 inside the occluder on the held-out identities (+ a sample grid)."""
        if self.val_set is None:
            return {}
        G = _unwrap(self.G)
        G.eval()
        psnr_occ, l1_occ, n = 0.0, 0.0, 0
        first = None
        loader = DataLoader(
            self.val_set, batch_size=self.cfg.batch_size, num_workers=0, generator=torch.Generator()
        )
        for batch in loader:
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
        """PNG ``samples/<tag>_step_NNNNNNN.png``: occluded | render | output | gt (rank 0)."""
        if not self.main:
            return
        rows = [
            [
                t[i].detach().float().cpu().numpy().transpose(1, 2, 0) * 0.5 + 0.5
                for t in (b["occluded"], b["render"], out, b["gt"])
            ]
            for i in range(min(4, len(out)))
        ]
        labels = [f"{tag} step {self.step}: occluded | render | output | gt"]
        grid = image_grid(rows, labels=labels + [""] * (len(rows) - 1))
        write_image(self.run_dir / "samples" / f"{tag}_step_{self.step:07d}.png", grid)

    def log(self, values: dict[str, float]) -> None:
        """Scalars to TensorBoard and one JSON line in ``log.jsonl`` (rank 0)."""
        if not self.main:
            return
        for k, v in values.items():
            self.tb.add_scalar(k, v, self.step)
        stage = 2 if self.step - 1 >= self.stage2_start else 1  # of the step just taken
        line = {"step": self.step, "epoch": self.epoch, "stage": stage, **values}
        with open(self.run_dir / "log.jsonl", "a") as f:
            f.write(json.dumps(line) + "\n")

    # --- the loop ---------------------------------------------------------------------------

    def _epoch_loader(self) -> DataLoader:
        """The loader of the current epoch, resuming after the batches already consumed."""
        cfg = self.cfg
        self.train_set.set_epoch(self.epoch, self.batches_in_epoch, cfg.batch_size)
        # own generator: creating a loader must not draw from the global RNG (exact resume)
        gen = torch.Generator().manual_seed(cfg.seed * 100003 + self.epoch)
        return DataLoader(
            self.train_set,
            batch_size=cfg.batch_size,
            num_workers=cfg.workers,
            drop_last=self.drop_last,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
            generator=gen,
        )

    def _after_step(self) -> None:
        """Sample grid, scalars, validation and checkpoints due at the step just taken."""
        cfg, step = self.cfg, self.step
        if step % cfg.sample_every == 0:
            self.write_grid(*self.last_batch, "train")
        if step % cfg.log_every == 0:
            self.log({**self.last_losses, "lr": self.opt["G"].param_groups[0]["lr"]})
        if step % cfg.val_every == 0 or step == self.total:
            self.last_val = self.validate()
            self.log(self.last_val)
            if self.last_val and self.last_val["val_psnr_occ"] > self.best:
                self.best = self.last_val["val_psnr_occ"]
                self.save("best")
            elif step % cfg.checkpoint_every == 0 or step == self.total:
                self.save()
        elif step % cfg.checkpoint_every == 0:
            self.save()

    def _train_epoch(self, progress: Callable[..., None] | None) -> None:
        """Steps over the rest of the current epoch (or until the last step)."""
        for batch in self._epoch_loader():
            self.last_losses = self.train_step(batch)
            self.step += 1
            self.batches_in_epoch += 1
            self.images_seen += len(batch["gt"]) * self.world
            if progress:
                progress(1)
            self._after_step()
            if self.step >= self.total:
                return
        self.epoch += 1
        self.batches_in_epoch = 0

    def run(self, progress: Callable[..., None] | None) -> TrainResult:
        """Train to ``total`` steps; an interrupt saves ``latest.pt`` first."""
        t0 = time.perf_counter()
        if progress:
            progress(self.step, total=self.total)
        try:
            while self.step < self.total:
                self._train_epoch(progress)
        except KeyboardInterrupt:
            self.save()
            log.warning("interrupted at step %d: saved %s", self.step, self.ckpt_dir / LATEST)
            raise
        finally:
            if self.tb is not None:
                self.tb.close()
        if self.world > 1:
            dist.barrier()
        return self._result(time.perf_counter() - t0)

    def _result(self, seconds: float) -> TrainResult:
        latest, best = self.ckpt_dir / LATEST, self.ckpt_dir / BEST
        return TrainResult(
            self.step,
            seconds,
            self.run_dir,
            latest if latest.is_file() else None,
            best if best.is_file() else None,
            self.last_losses,
            self.last_val,
            self.images_seen / max(seconds, 1e-9),
            weights_sha256(_unwrap(self.G)),
        )


def _replace_copy(src: Path, dst: Path) -> None:
    """Copy ``src`` over ``dst`` atomically (temp copy + rename)."""
    tmp = dst.with_name(dst.name + ".partial")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def weights_sha256(net: nn.Module) -> str:
    """Hash of a network's parameters, for bit-exact comparisons across runs and ranks.

    BatchNorm running statistics are per rank under DDP and left out.

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
            shards of another resolution.
        InputError: missing shards or checkpoint.
        FormatError: bad shards or checkpoint.
    """
    return _Run(config, resume).run(progress)
