"""Loss modules: GAN loss with logits, total variation, the occlusion-mask losses."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["GANLoss", "TVLoss", "MaskLoss", "dice_loss", "masked_l1"]


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
        """Mean BCE of ``logits`` against all ones (``real``) or all zeros."""
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


def dice_loss(prob: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft Dice loss ``1 − (2Σpt + ε) / (Σp + Σt + ε)`` per sample, averaged over the batch.

    Args:
        prob: predicted mask ``[B, 1, H, W]`` in [0, 1].
        target: soft target ``[B, 1, H, W]`` in [0, 1].
        eps: smoothing (pixels): a sample with an empty target and an empty prediction
            scores 0.

    Example:
        >>> t = torch.zeros(1, 1, 4, 4); t[..., :2, :] = 1
        >>> float(dice_loss(t, t)), round(float(dice_loss(1 - t, t)), 3)
        (0.0, 0.941)
    """
    p, t = prob.float().flatten(1), target.float().flatten(1)
    dice = (2 * (p * t).sum(1) + eps) / (p.sum(1) + t.sum(1) + eps)
    return (1 - dice).mean()


class MaskLoss(nn.Module):
    """Supervision of the predicted occlusion mask m̂ by the shard's occluder mask.

    ``bce · BCE(logit, t) + dice · Dice(sigmoid(logit), t)``, t = ``occ_mask`` in [0, 1]
    (soft at blended occluder edges). BCE is per pixel (what m̂ = 0 outside the occluder
    needs, so those pixels come back exact); Dice is per sample and does not let small
    occluders vanish under the many unoccluded pixels.

    Example:
        >>> t = torch.zeros(2, 1, 8, 8); t[..., 2:5, 2:5] = 1
        >>> good, bad = (t * 2 - 1) * 20, -(t * 2 - 1) * 20
        >>> loss = MaskLoss(bce=1.0, dice=1.0)
        >>> float(loss(good, t)) < 0.01 < 1.0 < float(loss(bad, t))
        True
    """

    def __init__(self, bce: float = 1.0, dice: float = 1.0) -> None:
        super().__init__()
        self.bce_weight, self.dice_weight = bce, dice

    def forward(self, logit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Weighted BCE + Dice of mask logits ``[B, 1, H, W]`` against ``target`` in [0, 1]."""
        logit = logit.float()
        loss = logit.new_zeros(())
        if self.bce_weight:
            bce = nn.functional.binary_cross_entropy_with_logits(logit, target.float())
            loss = loss + self.bce_weight * bce
        if self.dice_weight:
            loss = loss + self.dice_weight * dice_loss(torch.sigmoid(logit), target)
        return loss
