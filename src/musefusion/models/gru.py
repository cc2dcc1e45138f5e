"""The MuSe 2023 baseline's regressor (``EIHW/MuSe-2023``, ``model.py``) as the ``gru`` family.

``x → Linear(d_in, hidden, no bias) → GRU (hidden cells, lstm_layers layers, bidirectional optional, dropout
between layers) → Linear(·, fc_hidden) → ReLU → Dropout → Linear(fc_hidden, 1) → Tanh (optional)``, one output per
step; the last bias starts at 0. Field names: ``hidden`` is the baseline's ``model_dim``, ``lstm_layers`` its
``rnn_n_layers``, ``bidirectional`` its ``rnn_bi``, ``fc_hidden`` its ``d_fc_out``; ``tanh_output`` is its
personalisation task's final Tanh (labels lie in [-1, 1]).

Like the ``baseline`` family it does not pack batches: the forward direction never sees the padding at a window's
end, and a bidirectional GRU runs its backward direction within each window's own length
(:class:`musefusion.models.layers.StackedBiLSTM` with GRU cells), so real steps get the packed model's outputs.
With ``bidirectional`` the layers are stacked one by one and the dropout between them is applied to the encoder's
output only (the baseline's ``nn.GRU(dropout=...)`` drops between layers); with one direction it is the same.
"""

from __future__ import annotations

import torch
from torch import nn

from musefusion.config import ModelConfig
from musefusion.models.layers import StackedBiLSTM


class GRURegressor(nn.Module):
    """Input projection → GRU → two-layer head → optional Tanh (see the module docstring)."""

    def __init__(self, config: ModelConfig, d_in: int) -> None:
        super().__init__()
        assert d_in >= 1, "d_in must be >= 1"
        self.config = config
        h = config.hidden
        self.inp = nn.Linear(d_in, h, bias=False)
        self.bi = StackedBiLSTM(h, h, config.lstm_layers, cell=nn.GRU) if config.bidirectional else None
        self.rnn = None if config.bidirectional else nn.GRU(
            h, h, num_layers=config.lstm_layers, batch_first=True,
            dropout=config.dropout if config.lstm_layers > 1 else 0.0)
        self.drop = nn.Dropout(config.dropout if config.bidirectional else 0.0)
        width = 2 * h if config.bidirectional else h
        self.fc_1 = nn.Sequential(nn.Linear(width, config.fc_hidden), nn.ReLU(), nn.Dropout(config.dropout))
        self.fc_2 = nn.Linear(config.fc_hidden, 1)
        nn.init.constant_(self.fc_2.bias, 0.0)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x``: ``(batch, time, d_in)``, ``mask``: ``(batch, time)`` True on real steps → ``(batch, time)``."""
        h = self.inp(x)
        h = self.drop(self.bi(h, mask)) if self.bi is not None else self.rnn(h)[0]  # type: ignore[misc]
        y = self.fc_2(self.fc_1(h)).squeeze(-1)
        return torch.tanh(y) if self.config.tanh_output else y
