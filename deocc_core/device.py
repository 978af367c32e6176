"""The one place a device name (``auto`` | ``cpu`` | ``cuda``) becomes a ``torch.device``."""

from __future__ import annotations

import torch

from deocc_core.errors import ConfigError

__all__ = ["resolve_device", "DEVICES"]

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` → GPU ``local_rank``.

    Args:
        name: ``auto``, ``cpu`` or ``cuda`` (``cuda:N`` is accepted; the rank picks the GPU).
        local_rank: the GPU index of this process (DDP's ``LOCAL_RANK``).

    Raises:
        ConfigError: ``cuda`` without a GPU, or an unknown name.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda but no CUDA GPU is available (use --device cpu)")
        return torch.device("cuda", local_rank)
    if name != "cpu":
        raise ConfigError(f"unknown device {name!r} (auto, cpu or cuda)")
    return torch.device("cpu")
