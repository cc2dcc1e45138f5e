"""The CCC loss (paper Eq. 20): ``1 − CCC``, masked; CCC itself comes from evaluation.metrics."""

from __future__ import annotations

import torch
from torch import nn

from musefusion.config import LossMode, TrainConfig
from musefusion.evaluation.metrics import ccc_masked


class CCCLoss(nn.Module):
    """``1 − CCC`` over the masked steps of a batch (Eq. 20-21).

    Args:
        mode: ``batch`` (one CCC over every labelled step of the batch, all windows pooled) or ``sequence`` (the
            mean of per-window CCCs, which is what the MuSe 2021 baseline's ``loss.py`` computes). The paper does
            not say which; ``TrainConfig.loss`` chooses, and its default is this class's default (one default,
            stated once in ``TrainConfig``): ``sequence``, better on 5 of 6 stream models of both tasks
            (``bench/loss_modes.py``, 3 seeds).
    """

    def __init__(self, mode: str | LossMode = TrainConfig.loss) -> None:
        super().__init__()
        if str(mode) not in ("batch", "sequence"):
            raise ValueError(f"CCCLoss mode '{mode}' must be 'batch' or 'sequence'.")
        self.mode = str(mode)

    def forward(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``pred``, ``target``, ``mask``: ``(batch, time)`` → scalar loss."""
        if self.mode == "batch":
            return 1.0 - ccc_masked(pred, target, mask)
        return 1.0 - ccc_masked(pred, target, mask, dim=1).mean()
