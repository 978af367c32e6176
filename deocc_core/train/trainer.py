"""The two-stage GAN trainer: CUDA (AMP, channels_last, compile, DDP) or CPU.

Stage 1 trains G with L1 + D_g + TV at ``lr_stage1``; stage 2 adds D_l on the face region
(M ⊙ image), drops TV and continues at ``lr_stage2``. One optimizer per network; D sees
``fake.detach()``; D's parameters are frozen during G's step. With ``blend="mask"`` "fake"
is the blended output m̂·G + (1 − m̂)·I (L1, TV, D_g and D_l all judge it) and m̂ is
supervised by ``occ_mask`` (:class:`~deocc_core.train.losses.MaskLoss`). With
``blend="given"`` G refines the loader's ``prefill`` inside its ``given_mask`` (occ_mask
jittered like the segmenter's m̂): "fake" is mask·(prefill + G) + (1 − mask)·I, judged by
the whole-crop L1, ``l1_hole`` × the L1 inside the mask, D_g and D_l; no mask loss. Its
step 0 is the prefill itself, so a given run validates once before its first step (the
baseline it must beat).

Validation runs on the whole held-out split (shared out over ranks, sums all-reduced, so
every rank takes the same ``best.pt`` decision)::

    val_psnr     = mean over samples of PSNR(output, gt) on the whole crop (uint8, ≤ 100 dB)
    val_psnr_occ = mean over samples with an occluder of PSNR inside occ_mask > 0
    val_score    = (val_psnr + val_psnr_occ) / 2        → best.pt is the highest val_score

Rank 0 writes checkpoints (once per step, atomically; ``latest.pt`` / ``best.pt`` are hard
links), TensorBoard scalars, JSON log lines and PNG sample grids. Losses stay on the device
and are read only every ``log_every`` steps. SIGINT / SIGTERM stop the run at the next step
boundary with an exact checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import signal
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from deocc_core.data.dataset import ShardDataset, one_line_error
from deocc_core.device import resolve_device
from deocc_core.errors import ConfigError, DeoccError, FormatError, InputError
from deocc_core.eval.metrics import masked_psnr
from deocc_core.imageio import write_image
from deocc_core.nets.checkpoint import (
    BEST,
    CHECKPOINT_DIR,
    LATEST,
    find_checkpoint,
    link_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from deocc_core.nets.io import generator_input, tensor_to_images
from deocc_core.nets.networks import (
    GeneratorOutput,
    blend_output,
    define_discriminator,
    define_generator,
    refine_output,
)
from deocc_core.nets.packaged import SAFETENSORS_SUFFIX, read_safetensors
from deocc_core.synth.manifest import read_manifest
from deocc_core.synth.schema import FORMAT_VERSION as SHARD_FORMAT_VERSION
from deocc_core.synth.shards import file_sha256
from deocc_core.train.amp import amp_dtype, device_caps
from deocc_core.train.checkpoint import rng_state, set_rng_state
from deocc_core.train.config import ARCH_FIELDS, TrainConfig
from deocc_core.train.guards import RunLock, StopSignals
from deocc_core.train.losses import GANLoss, MaskLoss, TVLoss, masked_l1
from deocc_core.train.parallel import all_reduce_sum, any_rank, dist_env, unwrap, wrap
from deocc_core.viz import image_grid

__all__ = ["train", "TrainResult", "weights_sha256", "validation_sums", "STEP_KEYS"]

log = logging.getLogger(__name__)

NETWORKS = ("G", "Dg", "Dl")  # one optimizer each; checkpoint keys G, opt_G, ...
STEP_KEYS = ("occluded", "render", "gt", "face_mask", "occ_mask")  # what a step copies to device
GIVEN_KEYS = ("prefill", "given_mask")  # and for a given-mask G


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
    best_step: int | None = None
    interrupted: str = ""  # "SIGINT" / "SIGTERM" when a signal stopped the run early
    bad_samples: int = 0  # corrupt samples skipped (--skip-bad), this rank


VAL_SUMS = ("psnr", "n", "psnr_occ", "n_occ", "mask_iou", "n_iou")


def validation_sums(gen: GeneratorOutput, gt: torch.Tensor, occ_mask: torch.Tensor) -> torch.Tensor:
    """Per-batch sums behind the validation scores (summed over batches and ranks).

    PSNR is deocc-eval's, on uint8 images, capped at 100 dB: whole crop for every sample,
    inside ``occ_mask > 0`` for samples that have an occluder; the IoU of ``m̂ > 0.5`` with
    ``occ_mask > 0.5`` for a mask-aware G.

    Returns:
        float64 ``[6]``: :data:`VAL_SUMS` (``psnr``, ``n``, ``psnr_occ``, ``n_occ``,
        ``mask_iou``, ``n_iou``).
    """
    outs, gts = tensor_to_images(gen.output), tensor_to_images(gt)
    masks = (occ_mask[:, 0] > 0).cpu().numpy()
    sums = [0.0] * len(VAL_SUMS)
    whole = np.ones(masks.shape[1:], bool)
    for o, g, m in zip(outs, gts, masks, strict=True):
        sums[0] += _capped(masked_psnr(o, g, whole))
        sums[1] += 1
        if m.any():
            sums[2] += _capped(masked_psnr(o, g, m))
            sums[3] += 1
    if gen.mask_logit is not None:
        pred, true = gen.mask[:, 0] > 0.5, occ_mask[:, 0] > 0.5
        inter = (pred & true).flatten(1).sum(1).double()
        union = (pred | true).flatten(1).sum(1).double()
        iou = torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))
        sums[4], sums[5] = float(iou.sum()), float(len(iou))
    return torch.tensor(sums, dtype=torch.float64)


def _capped(p: float) -> float:
    return 100.0 if not math.isfinite(p) else min(p, 100.0)


def _worker_init(_: int) -> None:
    """Loader workers leave SIGINT to the trainer.

    A Ctrl-C reaches the whole foreground process group: a worker that died of it would fail
    the step the trainer finishes before it stops. SIGTERM keeps its default: the loader
    itself stops stuck workers with it (set here: a forked worker inherits the parent's
    Python handlers, which would only set a flag or raise in the worker).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _load_matching(net: nn.Module, src: dict[str, torch.Tensor]) -> tuple[int, int]:
    """Load the float tensors of ``src`` whose name and shape ``net`` has.

    Integer buffers (BatchNorm's 0-d step counters, which every network shares) are left
    alone: they would make any two networks "match".

    Returns:
        ``(loaded, net's float tensors)``.
    """
    own = {k: v for k, v in net.state_dict().items() if v.is_floating_point()}
    match = {
        k: v.to(own[k].dtype)
        for k, v in src.items()
        if k in own and tuple(own[k].shape) == tuple(v.shape)
    }
    net.load_state_dict(match, strict=False)
    return len(match), len(own)


def _face_only(x: torch.Tensor, face_mask: torch.Tensor) -> torch.Tensor:
    """M ⊙ image in the [-1, 1] domain (black outside the face)."""
    return (x + 1) * face_mask - 1


class _Stop(Exception):
    """A stop signal was honoured at a step boundary (the checkpoint is saved)."""


class _Run:
    """One training run (one per rank): built in named steps, driven by :meth:`run`."""

    def __init__(self, cfg: TrainConfig, resume: bool) -> None:
        if resume and cfg.init:
            raise ConfigError(
                f"--init {cfg.init} starts a new run from weights; --resume continues "
                f"{cfg.out}: give one of them"
            )
        self.cfg = cfg
        self.step_keys = STEP_KEYS + (GIVEN_KEYS if cfg.blend == "given" else ())
        self._setup_process()
        self.run_dir = Path(cfg.out)
        self.ckpt_dir = self.run_dir / CHECKPOINT_DIR
        self.data_model, self.data_config = self._check_shards()
        # before the datasets and networks: it seeds G's init (python and numpy too, so every
        # global RNG a run could draw from starts from the seed and resumes exactly)
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        self.train_set, self.val_set = self._make_datasets()
        self._make_networks()
        self.init_info = self._load_init(cfg.init) if cfg.init else {}
        self._plan_steps()
        self.step, self.epoch, self.batches_in_epoch, self.best = 0, 0, 0, -math.inf
        self.best_step: int | None = None
        self.saved_step: int | None = None  # a step is written once
        self._prepare_run_dir(resume)
        self._wrap_networks()
        self.tb = self._open_tensorboard()
        self.images_seen, self.last_val = 0, {}
        self.last_losses: dict[str, torch.Tensor] = {}
        self.stop = StopSignals()

    # --- setup steps ------------------------------------------------------------------------

    def _setup_process(self) -> None:
        """Rank, device, process group and the global torch flags of this run."""
        cfg = self.cfg
        self.rank, self.world, self.local_rank = dist_env()
        self.main = self.rank == 0
        self.device = resolve_device(cfg.device, self.local_rank)
        self.ctrl = None  # process group for small CPU messages (stop flag, RNG states)
        if self.world > 1:
            if not dist.is_initialized():
                dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
            if dist.get_backend() != "gloo":  # keep control traffic off the GPU stream
                self.ctrl = dist.new_group(backend="gloo")
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
            torch.backends.cudnn.benchmark = not cfg.deterministic
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)

    def _check_shards(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The shards' model (name, sha256) and build config, checked against ``size``.

        The build config is saved with the run: inference prepares faces the way they did.
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
        given = {"given_mask": cfg.blend == "given", "prefill_render": not cfg.no_render}
        train_set = ShardDataset(
            cfg.shards,
            "train",
            subset="train",
            val_fraction=cfg.val_fraction,
            augment=cfg.augment,
            seed=cfg.seed,
            rank=self.rank,
            world_size=self.world,
            skip_bad=cfg.skip_bad,
            **given,
        )
        try:  # the whole held-out split, shared out over the ranks
            val_set = ShardDataset(
                cfg.shards,
                "train",
                subset="val",
                val_fraction=cfg.val_fraction,
                augment=None,
                shuffle=False,
                limit=cfg.val_samples,
                rank=self.rank,
                world_size=self.world,
                skip_bad=cfg.skip_bad,
                **given,
            )
        except ConfigError:
            val_set = None
            log.warning(
                "%s: no validation identities (dataset too small): best.pt tracks nothing",
                cfg.shards,
            )
        return train_set, val_set

    def _make_networks(self) -> None:
        """G, D_g, D_l (bare, in ``self.nets``), one Adam each, AMP dtype and scaler, losses."""
        cfg = self.cfg
        G = define_generator(cfg.size, no_render=cfg.no_render, ngf=cfg.ngf, blend=cfg.blend)
        self.nets: dict[str, nn.Module] = {
            "G": G.to(self.device),
            "Dg": define_discriminator(cfg.size, ndf=cfg.ndf).to(self.device),
            "Dl": define_discriminator(cfg.size, ndf=cfg.ndf).to(self.device),
        }
        if self.device.type == "cuda" and cfg.channels_last:
            for n in self.nets.values():
                n.to(memory_format=torch.channels_last)
        self.G, self.Dg, self.Dl = (self.nets[k] for k in NETWORKS)  # wrapped later
        betas = (cfg.beta1, cfg.beta2)
        self.opt = {
            k: torch.optim.Adam(self.nets[k].parameters(), lr=cfg.lr_stage1, betas=betas)
            for k in NETWORKS
        }
        self.amp_dtype = amp_dtype(device_caps(self.device), cfg.amp)
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=self.amp_dtype == torch.float16
        )
        self.gan, self.tv = GANLoss().to(self.device), TVLoss()
        self.mask_loss = MaskLoss(cfg.mask_bce, cfg.mask_dice)

    def _load_init(self, path: str) -> dict[str, str]:
        """Weights from ``path`` where names and shapes match (G; D_g / D_l from a checkpoint).

        Returns:
            ``{"path", "sha256"}`` of the file read (saved in config.json and checkpoints).

        Raises:
            ConfigError: no generator tensor matches. InputError / FormatError: unreadable.
        """
        p = Path(path)
        if p.suffix == SAFETENSORS_SUFFIX:
            sources = {"G": read_safetensors(p)[0]}
        else:
            p = find_checkpoint(p)
            state = load_checkpoint(p, "cpu")
            sources = {k: state[k] for k in NETWORKS if isinstance(state.get(k), dict)}
        counts = {k: _load_matching(self.nets[k], v) for k, v in sources.items()}
        n, total = counts.get("G", (0, len(self.nets["G"].state_dict())))
        if not n:
            raise ConfigError(
                f"{p}: no generator tensor matches this run's G (other names or shapes): "
                "nothing to --init from"
            )
        log.info("init: %d of %d generator tensors from %s", n, total, p)
        return {"path": str(p), "sha256": file_sha256(p)}

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
            # on the CPU: RNG states must stay host tensors; load_state_dict moves the rest
            state = load_checkpoint(latest, "cpu")
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
            saved = {
                **self.cfg.to_dict(),
                **({"init_sha256": self.init_info["sha256"]} if self.init_info else {}),
            }
            (self.run_dir / "config.json").write_text(json.dumps(saved, indent=1))

    def _wrap_networks(self) -> None:
        """DDP over ranks, then torch.compile of G on CUDA if asked (:func:`parallel.wrap`)."""
        compile_g = self.cfg.compile and self.device.type == "cuda"
        for k in NETWORKS:
            setattr(self, k, wrap(self.nets[k], self.device, self.world, compile_g and k == "G"))

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
                self.nets[k].load_state_dict(s[k])
                self.opt[k].load_state_dict(s[f"opt_{k}"])
            except (RuntimeError, ValueError, KeyError) as e:
                raise FormatError(
                    f"{path}: {k} state does not match the network ({str(e)[:80]})"
                ) from None
        self.scaler.load_state_dict(s["scaler"])
        self.step, self.epoch = s["step"], s["epoch"]
        self.batches_in_epoch = s.get("batches_in_epoch", 0)
        self.best = s.get("best", -math.inf)
        self.best_step = s.get("best_step")
        self.saved_step = self.step
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
            "best_step": self.best_step,
            "scaler": self.scaler.state_dict(),
            "data_model": self.data_model,
            "data_config": self.data_config,
            "shard_format_version": SHARD_FORMAT_VERSION,
        }
        if self.init_info:
            s["init"] = self.init_info
        for k in NETWORKS:  # the bare networks: no "module." / "_orig_mod." in the keys
            s[k] = self.nets[k].state_dict()
            s[f"opt_{k}"] = self.opt[k].state_dict()
        states = [None] * self.world
        if self.world > 1:
            dist.all_gather_object(states, rng_state(), group=self.ctrl)
        else:
            states = [rng_state()]
        s["rng"] = {str(i): st for i, st in enumerate(states)}
        return s

    @property
    def stage(self) -> int:
        """1 before ``stage2_start``, then 2."""
        return 2 if self.step >= self.stage2_start else 1

    def save(self, best: bool = False) -> Path | None:
        """Write ``step_NNNNNNN.pt`` once, hard-link ``latest.pt`` (and ``best.pt``), prune.

        Every rank calls it at the same step (they take the same decisions): all join the
        RNG gather; rank 0 writes. A step already saved is not written again.
        """
        path = self.ckpt_dir / f"step_{self.step:07d}.pt"
        if self.saved_step != self.step:
            state = self.state()  # every rank joins the RNG gather
            if self.main:
                save_checkpoint(path, state)
                link_checkpoint(path, self.ckpt_dir / LATEST)
            self.saved_step = self.step
        if not self.main:
            return None
        if best:
            link_checkpoint(self.ckpt_dir / LATEST, self.ckpt_dir / BEST)
        kept = sorted(self.ckpt_dir.glob("step_*.pt"))
        for old in kept[: -self.cfg.keep_last]:
            old.unlink()  # latest.pt / best.pt are links: they keep their file
        return path

    # --- one optimizer step ---------------------------------------------------------------

    def _autocast(self) -> Any:
        return (
            torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)
            if self.amp_dtype is not None
            else nullcontext()
        )

    def _to(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The tensors a step uses (:data:`STEP_KEYS`), copied asynchronously (pinned memory)."""
        mf = (
            torch.channels_last
            if self.device.type == "cuda" and self.cfg.channels_last
            else torch.contiguous_format
        )
        return {
            k: batch[k].to(self.device, non_blocking=True, memory_format=mf) for k in self.step_keys
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

    def backward_G(
        self, b: dict[str, torch.Tensor], gen: GeneratorOutput
    ) -> dict[str, torch.Tensor]:
        """Update G: L1 + adversarial terms (D frozen) + TV in stage 1 + the blend's own term.

        The blend's term: m̂'s mask loss (``mask``), ``l1_hole`` × the L1 inside the given
        mask (``given``).

        Returns:
            the terms (``loss_G_adv_g``, ``loss_G_adv_l``, ``loss_tv``, ``loss_mask``,
            ``loss_l1_hole``, ``loss_l1``) and their weighted sum ``loss_G``, detached, on
            the device.
        """
        cfg = self.cfg
        fake = gen.output
        losses: dict[str, torch.Tensor] = {}
        for D in (self.Dg, self.Dl):
            D.requires_grad_(False)
        with self._autocast():
            loss_l1 = (fake.float() - b["gt"]).abs().mean()
            loss_g = cfg.l1 * loss_l1
            if cfg.l1_hole and gen.mask_logit is None and "given_mask" in b:
                losses["loss_l1_hole"] = masked_l1(fake.float(), b["gt"], b["given_mask"])
                loss_g = loss_g + cfg.l1_hole * losses["loss_l1_hole"]
            if not cfg.no_dg:
                losses["loss_G_adv_g"] = self.gan(self.Dg(fake), True)
                loss_g = loss_g + cfg.adv_g * losses["loss_G_adv_g"]
            if self._use_dl():
                losses["loss_G_adv_l"] = self.gan(self.Dl(_face_only(fake, b["face_mask"])), True)
                loss_g = loss_g + cfg.adv_l * losses["loss_G_adv_l"]
            if self.stage == 1 and cfg.tv > 0:
                losses["loss_tv"] = self.tv(fake.float())
                loss_g = loss_g + cfg.tv * losses["loss_tv"]
            if gen.mask_logit is not None and (cfg.mask_bce or cfg.mask_dice):
                losses["loss_mask"] = self.mask_loss(gen.mask_logit, b["occ_mask"])
                loss_g = loss_g + losses["loss_mask"]
        self.opt["G"].zero_grad(set_to_none=True)
        self.scaler.scale(loss_g).backward()
        self.scaler.step(self.opt["G"])
        for D in (self.Dg, self.Dl):
            D.requires_grad_(True)
        losses = {k: v.detach() for k, v in losses.items()}
        losses["loss_l1"] = loss_l1.detach()
        losses["loss_G"] = loss_g.detach()
        return losses

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One step of the paper's GAN: G forward, D step(s), G step.

        Returns:
            the losses as detached 0-d tensors on the device (nothing here waits for the
            GPU; :meth:`_after_step` reads them every ``log_every`` steps).
        """
        self._set_lr()
        b = self._to(batch)
        gen = self._generate(self.G, b)
        losses = self.backward_D(b, gen.output)
        losses.update(self.backward_G(b, gen))
        self.scaler.update()
        self.last_batch = (b, GeneratorOutput(*(t.detach() if t is not None else t for t in gen)))
        return losses

    def _generate(self, G: nn.Module, b: dict[str, torch.Tensor]) -> GeneratorOutput:
        """G's output: m̂-blended (``mask``), refined prefill (``given``) or G's own (``none``)."""
        blend = self.cfg.blend
        with self._autocast():
            g_out = G(generator_input(b, self.cfg.no_render, blend))
        if blend == "given":
            return refine_output(g_out, b["prefill"], b["occluded"], b["given_mask"])
        return blend_output(g_out, b["occluded"])

    # --- validation and logging -------------------------------------------------------------

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Scores on the whole held-out split (see the module docstring) + a sample grid.

        Each rank scores its share; the sums are all-reduced, so every rank returns the same
        numbers and takes the same ``best.pt`` decision.
        """
        if self.val_set is None:
            return {}
        G = unwrap(self.G)
        G.eval()
        sums = torch.zeros(len(VAL_SUMS), dtype=torch.float64)
        first = None
        loader = DataLoader(
            self.val_set, batch_size=self.cfg.batch_size, num_workers=0, generator=torch.Generator()
        )
        for batch in self._batches(loader):
            b = self._to(batch)
            gen = self._generate(G, b)
            sums += validation_sums(gen, b["gt"], b["occ_mask"])
            if first is None:
                first = (b, gen)
        G.train()
        if first is not None:
            self.write_grid(*first, "val")
        v = dict(zip(VAL_SUMS, all_reduce_sum(sums, self.ctrl).tolist(), strict=True))
        if not v["n"]:
            return {}
        out = {"val_psnr": v["psnr"] / v["n"]}
        out["val_psnr_occ"] = v["psnr_occ"] / v["n_occ"] if v["n_occ"] else out["val_psnr"]
        out["val_score"] = 0.5 * (out["val_psnr"] + out["val_psnr_occ"])
        if v["n_iou"]:
            out["val_mask_iou"] = v["mask_iou"] / v["n_iou"]
        return out

    def write_grid(self, b: dict[str, torch.Tensor], gen: GeneratorOutput, tag: str) -> None:
        """PNG ``samples/<tag>_step_NNNNNNN.png`` (rank 0), one row per sample.

        Columns: occluded | render | output | gt, and for a mask-aware G occluded | render |
        G | m̂ | output | gt (G's own RGB, the predicted mask, the blended output); for a
        given-mask G occluded | render | prefill | given mask | output | gt.
        """
        if not self.main:
            return
        if "given_mask" in b:
            m = b["given_mask"].expand(-1, 3, -1, -1) * 2 - 1
            cols = (b["occluded"], b["render"], b["prefill"], m, gen.output, b["gt"])
            names = "prefill | given mask | output"
        elif gen.mask_logit is None:
            cols, names = (b["occluded"], b["render"], gen.output, b["gt"]), "output"
        else:
            m = gen.mask.expand(-1, 3, -1, -1) * 2 - 1
            cols = (b["occluded"], b["render"], gen.raw, m, gen.output, b["gt"])
            names = "G | mask | output"
        rows = [
            [t[i].detach().float().cpu().numpy().transpose(1, 2, 0) * 0.5 + 0.5 for t in cols]
            for i in range(min(4, len(gen.output)))
        ]
        labels = [f"{tag} step {self.step}: occluded | render | {names} | gt"]
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
            worker_init_fn=_worker_init if cfg.workers else None,
        )

    def _batches(self, loader: DataLoader):
        """Iterate a loader; a worker's error is re-raised as the one line it was.

        Its workers are shut down when the iteration ends for any reason (not left to the
        garbage collector). If a stop signal arrived and the loader then failed (a signal
        sent to the whole process group also stops the workers), the iteration just ends:
        the last step was complete, so its boundary is where the run stops (one process;
        under torchrun the signal reaches the ranks, not their loader workers).
        """
        it = iter(loader)
        try:
            while True:
                try:
                    batch = next(it)
                except StopIteration:
                    return
                except DeoccError as e:
                    raise one_line_error(e) from None
                except RuntimeError:
                    if self.stop.requested and self.world == 1:
                        return
                    raise
                yield batch
        finally:
            shutdown = getattr(it, "_shutdown_workers", None)
            if shutdown is not None:
                shutdown()

    def _after_step(self) -> None:
        """Sample grid, scalars, validation and checkpoints due at the step just taken."""
        cfg, step = self.cfg, self.step
        if step % cfg.sample_every == 0:
            self.write_grid(*self.last_batch, "train")
        if step % cfg.log_every == 0:  # the only place losses leave the device
            values = {k: float(v) for k, v in self.last_losses.items()}
            values["lr"] = self.opt["G"].param_groups[0]["lr"]
            if cfg.skip_bad:
                values["bad_samples"] = self.train_set.bad_samples
            self.log(values)
        if step % cfg.val_every == 0 or step == self.total:
            self.last_val = self.validate()
            self.log(self.last_val)
            if self.last_val and self.last_val["val_score"] > self.best:
                self.best, self.best_step = self.last_val["val_score"], step
                self.save(best=True)
            elif step % cfg.checkpoint_every == 0 or step == self.total:
                self.save()
        elif step % cfg.checkpoint_every == 0:
            self.save()

    def _stop_requested(self) -> bool:
        """A SIGINT / SIGTERM reached this rank or any other (all ranks stop together)."""
        if self.world == 1:
            return self.stop.requested
        return any_rank(self.stop.requested, self.ctrl)

    def _train_epoch(self, progress: Callable[..., None] | None) -> None:
        """Steps over the rest of the current epoch (or until the last step).

        Raises:
            _Stop: a stop signal arrived; the step boundary's checkpoint is saved.
        """
        batches = self._batches(self._epoch_loader())
        for batch in batches:
            self.last_losses = self.train_step(batch)
            self.step += 1
            self.batches_in_epoch += 1
            self.images_seen += len(batch["gt"]) * self.world
            if progress:
                progress(1)
            self._after_step()
            if self.step >= self.total:
                return
            if self._stop_requested():
                batches.close()
                self.save()
                raise _Stop
        if self.stop.requested and self.world == 1:  # a signal ended the loader early
            self.save()
            raise _Stop
        self.epoch += 1
        self.batches_in_epoch = 0

    def run(self, progress: Callable[..., None] | None) -> TrainResult:
        """Train to ``total`` steps; SIGINT / SIGTERM stop at a step boundary, saved."""
        t0 = time.perf_counter()
        if progress:
            progress(self.step, total=self.total)
        interrupted = ""
        if self.step == 0 and self.cfg.blend == "given":
            self.last_val = self.validate()  # the prefill: the baseline (logged, not saved)
            self.log(self.last_val)
        try:
            with self.stop:
                while self.step < self.total:
                    self._train_epoch(progress)
        except _Stop:
            interrupted = self.stop.name or "stop"
            log.warning(
                "%s at step %d: saved %s (resume with --resume)",
                interrupted,
                self.step,
                self.ckpt_dir / LATEST,
            )
        except KeyboardInterrupt:
            log.warning(
                "second SIGINT during step %d: stopped without saving (last checkpoint: %s)",
                self.step + 1,
                self.ckpt_dir / LATEST,
            )
            raise
        finally:
            if self.tb is not None:
                self.tb.close()
        if self.world > 1:
            dist.barrier(group=self.ctrl)
        return self._result(time.perf_counter() - t0, interrupted)

    def _result(self, seconds: float, interrupted: str = "") -> TrainResult:
        latest, best = self.ckpt_dir / LATEST, self.ckpt_dir / BEST
        return TrainResult(
            self.step,
            seconds,
            self.run_dir,
            latest if latest.is_file() else None,
            best if best.is_file() else None,
            {k: float(v) for k, v in self.last_losses.items()},
            self.last_val,
            self.images_seen / max(seconds, 1e-9),
            weights_sha256(self.nets["G"]),
            self.best_step,
            interrupted,
            self.train_set.bad_samples,
        )


def weights_sha256(net: nn.Module) -> str:
    """Hash of a network's parameters (bit-exact comparisons across runs / ranks).

    BatchNorm running statistics are per rank under DDP and left out.

    Example:
        >>> len(weights_sha256(torch.nn.Linear(2, 1)))
        64
    """
    h = hashlib.sha256()
    for k, v in sorted(net.named_parameters()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def train(
    config: TrainConfig, progress: Callable[..., None] | None = None, resume: bool = False
) -> TrainResult:
    """Train (or resume) a run; see :class:`TrainConfig`.

    The run folder is locked while rank 0 trains (a second trainer into it fails). A
    SIGINT / SIGTERM returns early with ``TrainResult.interrupted`` set, after saving the
    step boundary's checkpoint (``--resume`` continues bit-exactly).

    Raises:
        ConfigError: run folder in use or holding another run, resume with another
            architecture, shards of another resolution.
        InputError: missing shards or checkpoint.
        FormatError: bad shards / checkpoints, a corrupt sample (without ``skip_bad``).
    """
    with RunLock(config.out, enabled=dist_env()[0] == 0):
        return _Run(config, resume).run(progress)
