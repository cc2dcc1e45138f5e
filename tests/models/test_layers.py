"""Building blocks: reverse_padded, the masked Bi-LSTM, gated convolution, self-attention, positions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from musefusion.models.layers import (
    EncoderSelfAttention,
    GatedConvBlock,
    MaskedBiLSTM,
    PaperSelfAttention,
    SelfAttentionLayer,
    SinusoidalPositions,
    reverse_padded,
)


def _mask(lengths: list[int]) -> torch.Tensor:
    return torch.arange(max(lengths))[None, :] < torch.tensor(lengths)[:, None]


def test_reverse_padded_reverses_within_each_length():
    x = torch.arange(1, 6, dtype=torch.float32).repeat(3, 1).unsqueeze(-1)  # 3 x [1..5]
    out = reverse_padded(x, torch.tensor([5, 3, 1])).squeeze(-1)
    expected = torch.tensor([[5, 4, 3, 2, 1], [3, 2, 1, 4, 5], [1, 2, 3, 4, 5]], dtype=torch.float32)
    assert torch.equal(out, expected)


def test_reverse_padded_is_its_own_inverse():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 9, 3, generator=g)
    lengths = torch.tensor([9, 5, 1, 7])
    assert torch.equal(reverse_padded(reverse_padded(x, lengths), lengths), x)


def test_reverse_padded_leaves_padding_in_place():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 6, 2, generator=g)
    lengths = torch.tensor([6, 4])
    out = reverse_padded(x, lengths)
    assert torch.equal(out[1, 4:], x[1, 4:])
    assert torch.equal(out[1, :4], x[1, :4].flip(0))
    assert torch.equal(out[0], x[0].flip(0))


def test_masked_bilstm_ignores_padding_in_both_directions():
    torch.manual_seed(0)
    rnn = MaskedBiLSTM(3, 8).eval()
    lengths = [12, 7, 3]
    mask = _mask(lengths)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 12, 3, generator=g) * mask.unsqueeze(-1)
    noisy = torch.where(mask.unsqueeze(-1), x, 5 * torch.randn(x.shape, generator=g))
    with torch.no_grad():
        a, b = rnn(x, mask), rnn(noisy, mask)
        assert a.shape == (3, 12, 16)
        assert torch.equal(a[mask], b[mask])
        for i, n in enumerate(lengths):  # same as running each sequence alone
            torch.testing.assert_close(a[i, :n], rnn(x[i:i + 1, :n], mask[i:i + 1, :n])[0], atol=1e-6, rtol=1e-5)


def test_masked_bilstm_backward_half_sees_the_future():
    """The backward direction at step t depends on later real steps (it is really bidirectional)."""
    torch.manual_seed(0)
    rnn = MaskedBiLSTM(2, 4).eval()
    mask = _mask([10])
    x = torch.randn(1, 10, 2)
    later = x.clone()
    later[0, 8] += 1.0
    with torch.no_grad():
        a, b = rnn(x, mask), rnn(later, mask)
    assert torch.equal(a[0, :8, :4], b[0, :8, :4])  # forward half: causal
    assert not torch.equal(a[0, :8, 4:], b[0, :8, 4:])  # backward half: sees step 8


def test_gated_conv_is_conv_times_sigmoid_gate():
    torch.manual_seed(0)
    block = GatedConvBlock(3, 4, 3)
    x = torch.randn(2, 10, 3)
    mask = torch.ones(2, 10, dtype=torch.bool)
    h = x.transpose(1, 2)
    expected = (block.conv(h) * torch.sigmoid(block.gate(h))).transpose(1, 2)
    torch.testing.assert_close(block(x, mask), expected)


def test_gated_conv_treats_padding_as_zeros():
    torch.manual_seed(0)
    block = GatedConvBlock(3, 4, 5)
    mask = _mask([10, 6])
    x = torch.randn(2, 10, 3)
    with torch.no_grad():
        out = block(x, mask)
        alone = block(x[1:, :6], mask[1:, :6])
    torch.testing.assert_close(out[1, :6], alone[0])


@pytest.mark.parametrize("make", [lambda: SelfAttentionLayer(8, 2, dropout=0.0), lambda: PaperSelfAttention(8, 2),
                                  lambda: EncoderSelfAttention(8, 2, 16, dropout=0.0)],
                         ids=["transformer", "literal", "encoder"])
def test_self_attention_masks_padded_keys(make):
    torch.manual_seed(0)
    layer = make().eval()
    mask = _mask([9, 4])
    x = torch.randn(2, 9, 8)
    noisy = torch.where(mask.unsqueeze(-1), x, torch.randn(x.shape) * 50)
    with torch.no_grad():
        a, b = layer(x, mask), layer(noisy, mask)
        alone = layer(x[1:, :4], mask[1:, :4])
    assert torch.equal(a[mask], b[mask])
    torch.testing.assert_close(a[1, :4], alone[0], atol=1e-6, rtol=1e-5)


def test_self_attention_mixes_information_across_steps():
    torch.manual_seed(0)
    layer = SelfAttentionLayer(8, 2, dropout=0.0).eval()
    mask = _mask([6])
    x = torch.randn(1, 6, 8)
    later = x.clone()
    later[0, 5] = torch.randn(8)  # not a constant shift: the pre-norm LayerNorm would remove that
    with torch.no_grad():
        a, b = layer(x, mask), layer(later, mask)
    assert (a[0, :5] - b[0, :5]).abs().max() > 1e-3  # non-causal: earlier steps see step 5


def _eq1(x: np.ndarray, wq, wk, wv, bq, bk, bv, h: int) -> np.ndarray:
    """Eq. 1 written out in NumPy for one unpadded sequence ``x`` (T x d_a): per head softmax(Q K^T / sqrt(d_k)) V."""
    d_a = x.shape[1]
    d_k = d_a // h
    q, k, v = x @ wq.T + bq, x @ wk.T + bk, x @ wv.T + bv
    heads = []
    for j in range(h):
        cols = slice(j * d_k, (j + 1) * d_k)
        scores = q[:, cols] @ k[:, cols].T / np.sqrt(d_k)
        weights = np.exp(scores - scores.max(axis=1, keepdims=True))
        heads.append((weights / weights.sum(axis=1, keepdims=True)) @ v[:, cols])
    return np.concatenate(heads, axis=1)


@pytest.mark.parametrize("d_a, heads", [(88, 4), (128, 8), (12, 4)])
def test_paper_attention_is_eq1_with_output_width_d_a(d_a, heads):
    torch.manual_seed(0)
    layer = PaperSelfAttention(d_a, heads).double().eval()
    x = torch.randn(1, 7, d_a, dtype=torch.float64)
    with torch.no_grad():
        out = layer(x, _mask([7]))
    w, b = layer.qkv.weight.detach().numpy(), layer.qkv.bias.detach().numpy()
    want = _eq1(x[0].numpy(), w[:d_a], w[d_a:2 * d_a], w[2 * d_a:], b[:d_a], b[d_a:2 * d_a], b[2 * d_a:], heads)
    assert out.shape == (1, 7, d_a) and layer.heads == heads
    np.testing.assert_allclose(out[0].numpy(), want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("d_a, heads, used", [(17, 4, 1), (3, 4, 1), (18, 4, 2), (12, 8, 4)])
def test_paper_attention_falls_back_to_the_largest_dividing_head_count(d_a, heads, used):
    layer = PaperSelfAttention(d_a, heads)
    assert layer.heads == used
    with torch.no_grad():
        assert layer(torch.randn(2, 5, d_a), _mask([5, 3])).shape == (2, 5, d_a)


@pytest.mark.parametrize("d_model", [4, 6, 16])
def test_sinusoidal_positions(d_model):
    pos = SinusoidalPositions(d_model, max_len=50)
    out = pos(torch.zeros(1, 7, d_model))
    assert out.shape == (1, 7, d_model)
    t, i = 3, 1
    assert float(out[0, t, 2 * i]) == pytest.approx(math.sin(t / 10000 ** (2 * i / d_model)), abs=1e-6)
    assert float(out[0, t, 2 * i + 1]) == pytest.approx(math.cos(t / 10000 ** (2 * i / d_model)), abs=1e-6)
    assert "pe" not in pos.state_dict()  # fixed, not saved in checkpoints
