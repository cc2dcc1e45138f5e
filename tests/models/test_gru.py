"""The ``gru`` family against the MuSe 2023 baseline's regressor (EIHW/MuSe-2023 model.py): a packed
``nn.GRU(bidirectional=True)`` on sequences of mixed length gives the same outputs, the Tanh bounds them."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from musefusion.config import model_preset
from musefusion.errors import ConfigError
from musefusion.models import build_model


def packed_reference(model: nn.Module, x: torch.Tensor, lengths: torch.Tensor, layers: int) -> torch.Tensor:
    """The same weights run as the 2023 baseline runs them: one packed bidirectional ``nn.GRU``."""
    h = model.config.hidden
    gru = nn.GRU(h, h, num_layers=layers, bidirectional=True, batch_first=True)
    with torch.no_grad():
        for k in range(layers):
            for direction, suffix in (("fwd", ""), ("bwd", "_reverse")):
                ours = getattr(model.bi.layers[k], direction)
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(gru, f"{name}_l{k}{suffix}").copy_(getattr(ours, f"{name}_l0"))
        packed = pack_padded_sequence(model.inp(x), lengths, batch_first=True, enforce_sorted=False)
        enc = pad_packed_sequence(gru(packed)[0], batch_first=True, total_length=x.shape[1])[0]
        return torch.tanh(model.fc_2(model.fc_1(enc)).squeeze(-1))


def test_bidirectional_gru_matches_the_packed_baseline_at_real_steps():
    torch.manual_seed(0)
    model = build_model(model_preset("gru", hidden=8, lstm_layers=2, dropout=0.0), 5).eval()
    x = torch.randn(3, 12, 5)
    lengths = torch.tensor([12, 7, 4])
    mask = torch.arange(12)[None, :] < lengths[:, None]
    ours = model(x, mask)
    ref = packed_reference(model, x, lengths, 2)
    for i, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(ours[i, :n], ref[i, :n], atol=1e-5, rtol=1e-4)
    assert ours.abs().max() < 1  # the Tanh output


def test_gru_switches_are_refused_where_unused_and_tanh_is_optional():
    with pytest.raises(ConfigError, match="bidirectional"):
        model_preset("selfattn_lstm", bidirectional=True)
    torch.manual_seed(1)
    plain = build_model(model_preset("gru", hidden=4, tanh_output=False, bidirectional=False), 3).eval()
    with torch.no_grad():
        plain.fc_2.bias.fill_(5.0)  # far outside [-1, 1] without the Tanh
    assert plain(torch.randn(2, 6, 3), torch.ones(2, 6, dtype=torch.bool)).min() > 1.5
