"""DDP in one place: rank, wrapping (DDP, then torch.compile), unwrapping, reductions.

The cross-rank reductions are the ones the trainer's decisions depend on (stop, best.pt).

Order: ``torch.compile(DDP(net))``, so the compiled graph sees DDP's bucketing hooks (the
order the PyTorch DDP + compile notes recommend). Saving and loading always use the bare
network (:func:`unwrap`), so keys carry neither ``module.`` nor ``_orig_mod.``.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["dist_env", "wrap", "unwrap", "all_reduce_sum", "any_rank"]


def dist_env() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's environment (``(0, 1, 0)`` alone)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def wrap(net: nn.Module, device: torch.device, world: int, compile: bool) -> nn.Module:
    """The module the training step calls: DDP over ranks (when ``world > 1``), then compiled.

    Args:
        net: the bare network, already on ``device``.
        device: this rank's device (DDP gets ``device_ids`` on CUDA).
        world: number of ranks.
        compile: ``torch.compile`` the (DDP-wrapped) network.
    """
    m = net
    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        m = nn.parallel.DistributedDataParallel(m, device_ids=ids)
    if compile:
        m = torch.compile(m)
    return m


def unwrap(m: nn.Module) -> nn.Module:
    """The bare network under any nesting of torch.compile and DDP wrappers.

    Example:
        >>> net = nn.Linear(2, 1)
        >>> unwrap(torch.compile(net, backend="eager")) is net
        True
    """
    while True:
        if isinstance(m, nn.parallel.DistributedDataParallel):
            m = m.module
        elif hasattr(m, "_orig_mod"):  # torch._dynamo OptimizedModule
            m = m._orig_mod
        else:
            return m


def all_reduce_sum(values: torch.Tensor, group: object | None = None) -> torch.Tensor:
    """Sum ``values`` over ranks in place (identity for one process); returns it."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size(group) > 1:
        dist.all_reduce(values, op=dist.ReduceOp.SUM, group=group)
    return values


def any_rank(flag: bool, group: object | None = None) -> bool:
    """True on every rank if ``flag`` is True on any (a CPU tensor: use a gloo ``group``)."""
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size(group) > 1):
        return flag
    t = torch.tensor([int(flag)], dtype=torch.int32)
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=group)
    return bool(t.item())
