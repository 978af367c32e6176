"""Mixed precision: which autocast dtype a device gets, as a pure function of its capabilities.

bf16 autocast only where the GPU computes bf16 natively (Ampere and later: A100, H100, RTX
30xx/40xx). GPUs that only emulate it (Pascal / Volta / Turing: 1080 Ti, V100, T4) run bf16
slower than fp32, so they get fp16 with a GradScaler. ``torch.cuda.is_bf16_supported()``
without ``including_emulation=False`` answers True on them; :func:`device_caps` asks the
strict question. The CPU trains in float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["DeviceCaps", "device_caps", "amp_dtype"]


@dataclass(frozen=True)
class DeviceCaps:
    """What the AMP choice depends on.

    Attributes:
        type: torch device type (``"cuda"``, ``"cpu"``, ...).
        bf16_native: the device computes bf16 in hardware (not emulated).
    """

    type: str
    bf16_native: bool = False


def device_caps(device: torch.device) -> DeviceCaps:
    """The capabilities of ``device`` (for CUDA: the current device, set by the trainer).

    Example:
        >>> device_caps(torch.device("cpu"))
        DeviceCaps(type='cpu', bf16_native=False)
    """
    if device.type != "cuda":
        return DeviceCaps(device.type)
    return DeviceCaps("cuda", bool(torch.cuda.is_bf16_supported(including_emulation=False)))


def amp_dtype(caps: DeviceCaps, enabled: bool = True) -> torch.dtype | None:
    """The autocast dtype for a device, or None for float32 (AMP off, or not a GPU).

    fp16 needs a GradScaler (``scaler = dtype == torch.float16``); bf16 does not.

    Example:
        >>> amp_dtype(DeviceCaps("cuda", bf16_native=True)), amp_dtype(DeviceCaps("cuda"))
        (torch.bfloat16, torch.float16)
        >>> amp_dtype(DeviceCaps("cpu")), amp_dtype(DeviceCaps("cuda", True), enabled=False)
        (None, None)
    """
    if not enabled or caps.type != "cuda":
        return None
    return torch.bfloat16 if caps.bf16_native else torch.float16
