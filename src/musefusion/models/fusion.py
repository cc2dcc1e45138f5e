"""The late-fusion model (paper Eq. 12-14, 19): unimodal prediction streams → Bi-LSTM(32) → linear."""

from __future__ import annotations

import torch
from torch import nn

from musefusion.models.layers import MaskedBiLSTM


class LateFusion(nn.Module):
    """Bidirectional LSTM over the concatenated prediction streams (Sec. 5.2: 32 cells), then a linear output."""

    def __init__(self, n_streams: int, hidden: int = 32) -> None:
        super().__init__()
        assert n_streams >= 1, "need at least one stream"
        self.rnn = MaskedBiLSTM(n_streams, hidden)
        self.head = nn.Linear(2 * hidden, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x``: ``(batch, time, n_streams)``, ``mask``: ``(batch, time)`` → ``(batch, time)``."""
        return self.head(self.rnn(x, mask)).squeeze(-1)
