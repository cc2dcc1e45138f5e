"""The late-fusion Bi-LSTM: shapes, padding never leaks into real steps (both directions), it can fit."""

from __future__ import annotations

import pytest
import torch

from musefusion.evaluation.metrics import ccc_masked
from musefusion.models.fusion import LateFusion
from musefusion.training.losses import CCCLoss


def _batch(lengths: list[int], n_streams: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mask = torch.arange(max(lengths))[None, :] < torch.tensor(lengths)[:, None]
    x = torch.randn(len(lengths), max(lengths), n_streams, generator=g)
    return x * mask.unsqueeze(-1), mask


@pytest.mark.parametrize("n_streams", [1, 3])
def test_output_shape(n_streams):
    torch.manual_seed(0)
    model = LateFusion(n_streams, hidden=8).eval()
    x, mask = _batch([15, 4, 9], n_streams)
    with torch.no_grad():
        assert model(x, mask).shape == (3, 15)


def test_paper_size_is_32_cells_per_direction():
    model = LateFusion(4)
    assert model.rnn.fwd.hidden_size == 32 and model.rnn.bwd.hidden_size == 32
    assert model.head.in_features == 64


@pytest.mark.parametrize("pad_value", ["noise", "large", "copy"])
def test_changing_padding_never_changes_real_outputs(pad_value):
    """The tricky case: a plain nn.LSTM(bidirectional=True) would read padding first in its backward pass."""
    torch.manual_seed(0)
    model = LateFusion(3, hidden=8).eval()
    lengths = [20, 11, 3, 20]
    x, mask = _batch(lengths)
    g = torch.Generator().manual_seed(7)
    fill = {"noise": torch.randn(x.shape, generator=g), "large": torch.full(x.shape, 1e3),
            "copy": x.flip(1)}[pad_value]
    other = torch.where(mask.unsqueeze(-1), x, fill)
    assert not torch.equal(other, x)
    with torch.no_grad():
        a, b = model(x, mask), model(other, mask)
    assert torch.equal(a[mask], b[mask])


def test_padded_batch_equals_each_sequence_alone():
    torch.manual_seed(0)
    model = LateFusion(3, hidden=8).eval()
    lengths = [20, 11, 3]
    x, mask = _batch(lengths)
    with torch.no_grad():
        out = model(x, mask)
        for i, n in enumerate(lengths):
            torch.testing.assert_close(out[i, :n], model(x[i:i + 1, :n], mask[i:i + 1, :n])[0],
                                       atol=1e-6, rtol=1e-5)


def test_a_plain_bidirectional_lstm_would_leak_padding():
    """Guards the test above: the check is sensitive to exactly the bug MaskedBiLSTM avoids."""
    torch.manual_seed(0)
    rnn = torch.nn.LSTM(3, 8, batch_first=True, bidirectional=True).eval()
    x, mask = _batch([20, 11])
    other = torch.where(mask.unsqueeze(-1), x, torch.ones_like(x))
    with torch.no_grad():
        assert not torch.equal(rnn(x)[0][mask], rnn(other)[0][mask])


def test_padding_gets_no_gradient_through_real_steps():
    torch.manual_seed(0)
    model = LateFusion(2, hidden=8)
    x, mask = _batch([12, 5], n_streams=2)
    x.requires_grad_(True)
    out = model(x, mask)
    out[mask].sum().backward()
    assert torch.equal(x.grad[~mask], torch.zeros_like(x.grad[~mask]))
    assert (x.grad[mask].abs().sum(-1) > 0).all()


def test_fusion_fits_better_than_any_single_stream():
    """Target seen through two noisy streams; fitted on them, the fused output beats each stream alone."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    t = torch.linspace(0, 12, 60)
    y = torch.stack([torch.sin(t + k) for k in range(4)])  # 4 sequences
    streams = torch.stack([y + 0.6 * torch.randn(y.shape, generator=g) for _ in range(2)], dim=-1)
    mask = torch.ones_like(y, dtype=torch.bool)
    model = LateFusion(2, hidden=8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        opt.zero_grad()
        CCCLoss()(model(streams, mask), y, mask).backward()
        opt.step()
    with torch.no_grad():
        fused = float(ccc_masked(model.eval()(streams, mask), y, mask))
    single = max(float(ccc_masked(streams[..., k], y, mask)) for k in range(2))
    assert fused > single
    assert fused > 0.9
