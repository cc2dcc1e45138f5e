"""The MuSe 2021 official baseline's regressor (``lstappen/MuSe2021``, ``model.py``), as the ``baseline`` family.

``x → Linear(d_in, d_rnn, no bias) → bidirectional LSTM (d_rnn cells, n layers, no dropout) → Linear(2 d_rnn,
d_fc_out) → ReLU → Linear(d_fc_out, 1)`` with the last bias initialised to 0, one output per step. Field names:
``hidden`` is the baseline's ``d_rnn``, ``lstm_layers`` its ``rnn_n_layers``, ``fc_hidden`` its ``d_fc_out``
(default 64); ``dropout`` (0 in the baseline's calls) sits after the ReLU, where its ``OutLayer`` has it.

One difference of mechanism, none of result: the baseline packs each batch (``pack_padded_sequence``) so the
backward direction starts at each sequence's own end; :class:`musefusion.models.layers.StackedBiLSTM` reverses
each sequence within its length instead, which computes the same outputs at every real step without the packed
backward pass that is very slow on the CPU.

The hyper-parameters the baseline's README gives per sub-challenge are in
:data:`musefusion.families.BASELINE_SETTINGS`.
"""

from __future__ import annotations

import torch
from torch import nn

from musefusion.config import ModelConfig
from musefusion.models.layers import StackedBiLSTM


class MuseBaseline(nn.Module):
    """Input projection → stacked bidirectional LSTM → two-layer output head (see the module docstring)."""

    def __init__(self, config: ModelConfig, d_in: int) -> None:
        super().__init__()
        assert d_in >= 1, "d_in must be >= 1"
        self.config = config
        self.inp = nn.Linear(d_in, config.hidden, bias=False)
        self.rnn = StackedBiLSTM(config.hidden, config.hidden, config.lstm_layers)
        self.fc_1 = nn.Sequential(nn.Linear(2 * config.hidden, config.fc_hidden), nn.ReLU(), nn.Dropout(config.dropout))
        self.fc_2 = nn.Linear(config.fc_hidden, 1)
        nn.init.constant_(self.fc_2.bias, 0.0)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x``: ``(batch, time, d_in)``, ``mask``: ``(batch, time)`` True on real steps → ``(batch, time)``."""
        return self.fc_2(self.fc_1(self.rnn(self.inp(x), mask))).squeeze(-1)
