"""Loss modules: GAN loss with logits, total variation."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["GANLoss", "TVLoss", "masked_l1"]


class GANLoss(nn.Module):
    """Binary cross-entropy on logits against all-real / all-fake targets.

    Example:
        >>> GANLoss()(torch.full((4, 1), 20.0), True).item() < 1e-6
        True
    """

    def __init__(self) -> None:
        super().__init__()
        self.bce = nn.BCEWithLogitsLoss()

    def forward(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        """Mean BCE of ``logits`` against all-ones (``real``) or all-zeros targets."""
        target = torch.ones_like(logits) if real else torch.zeros_like(logits)
        return self.bce(logits, target)


class TVLoss(nn.Module):
    """Anisotropic total variation, mean absolute neighbour difference of ``[B, C, H, W]``.

    Example:
        >>> TVLoss()(torch.zeros(1, 3, 8, 8)).item()
        0.0
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scalar TV of ``x``."""
        return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (
            x[..., :, 1:] - x[..., :, :-1]
        ).abs().mean()


def masked_l1(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean |a - b| over pixels where ``mask`` ``[B, 1, H, W]`` > 0.5 (0 if empty).

    Example:
        >>> m = torch.zeros(1, 1, 2, 2); m[..., 0, 0] = 1
        >>> float(masked_l1(torch.ones(1, 3, 2, 2), torch.zeros(1, 3, 2, 2), m))
        1.0
    """
    m = (mask > 0.5).to(a.dtype).expand_as(a)
    return ((a - b).abs() * m).sum() / m.sum().clamp_min(1.0)
