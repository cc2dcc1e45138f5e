"""Building blocks shared by the models: the paper's self-attention (Eq. 1-3), a Transformer encoder layer,
positional encoding, the gated conv block (Eq. 15), masked LSTM helpers."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn


class SinusoidalPositions(nn.Module):
    """Adds the fixed sine/cosine positional encoding of Vaswani et al. (2017).

    The paper is silent on positional information in its self-attention; without it attention is
    permutation-invariant and cannot use temporal order, so we add the standard fixed encoding.
    """

    def __init__(self, d_model: int, max_len: int = 20000) -> None:
        super().__init__()
        pos = torch.arange(max_len).unsqueeze(1)
        div = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)[:, : d_model // 2]
        self.pe: torch.Tensor
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(batch, time, d_model)``."""
        return x + self.pe[: x.shape[1]].unsqueeze(0)


class PaperSelfAttention(nn.Module):
    """The paper's self-attention (Eq. 1-3) over the raw feature sequence ``X`` of width ``d_a``.

    ``Q, K, V = X W_Q, X W_K, X W_V`` with ``W_* in R^{d_a x d_a}`` (Eq. 1: "mapped by the input sequence"),
    split into ``h`` heads of ``d_k = d_a / h``; each head computes ``softmax(Q K^T / sqrt(d_k)) V`` (Eq. 1) and the
    heads are concatenated, so ``C`` has width ``d_a`` (Eq. 2-3: ``C in R^{d_a}``). Nothing else: no output
    projection, residual, layer norm, feed-forward block or positional encoding, since Eq. 1 has none.

    Choices where the paper is silent: the three maps have biases (``nn.Linear``); padded keys are masked, so
    padding never changes the outputs at real steps. Fallback when ``d_a`` does not divide by ``h`` (17 FAU
    columns, 3 bio columns): ``gcd(d_a, h)`` heads, the largest head count not above ``h`` that divides ``d_a``
    (1 for a prime width), so ``C`` keeps width ``d_a`` and no parameter is added (``heads`` says what was used).
    """

    def __init__(self, d_a: int, heads: int) -> None:
        super().__init__()
        self.heads = math.gcd(d_a, heads)
        self.qkv = nn.Linear(d_a, 3 * d_a)  # [W_Q | W_K | W_V] of Eq. 1 in one matrix

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x``: ``(batch, time, d_a)``, ``mask``: ``(batch, time)`` True on real steps -> ``C``, same shape as x."""
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        # Eq. 1 per head: softmax(Q K^T / sqrt(d_k)) V, d_k = d_a / h (the last dimension of q: SDPA's default scale)
        c = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.bool()[:, None, None, :])
        return c.transpose(1, 2).reshape(b, t, d)  # heads concatenated: width d_a


class EncoderSelfAttention(nn.Module):
    """The paper's self-attention as its authors most likely ran it: one stock ``nn.TransformerEncoderLayer``
    with ``d_model = d_a`` on the raw features, PyTorch's 2021 defaults (post-norm, ReLU, ``dim_feedforward``
    2048, dropout 0.1 on the attention weights and both residual branches).

    Line by line: the layer's multi-head attention is Eq. 1 (``Q, K, V = X W_*``, ``h`` heads of
    ``d_k = d_a / h``, ``softmax(Q K^T / sqrt(d_k)) V``) with the heads concatenated and mixed by the output
    projection (Eq. 2-3, ``C in R^{d_a}``); the residual ``X + C``, the layer norms and the feed-forward block are
    where the paper is silent and the module is not. Padded keys are masked (``src_key_padding_mask``), so padding
    never changes the outputs at real steps. Heads: ``gcd(d_a, heads)`` where ``d_a`` does not divide by
    ``heads`` (``heads`` says what was used), as in :class:`PaperSelfAttention`.
    """

    def __init__(self, d_a: int, heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.heads = math.gcd(d_a, heads)
        self.layer = nn.TransformerEncoderLayer(d_model=d_a, nhead=self.heads, dim_feedforward=ff_dim,
                                                dropout=dropout, batch_first=True)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x``: ``(batch, time, d_a)``, ``mask``: ``(batch, time)`` True on real steps -> same shape as x (values
        at padded steps are meaningless)."""
        return self.layer(x, src_key_padding_mask=~mask.bool())


class SelfAttentionLayer(nn.Module):
    """A pre-norm Transformer encoder layer: multi-head self-attention (Eq. 1) and a feed-forward block.

    Built from ``F.scaled_dot_product_attention``; padded keys are masked, so padding never changes the outputs
    at real steps. Dropout acts on the residual branches but not on the attention weights: dropping entries of
    the ``(time x time)`` weight matrix cost more than the attention itself on the CPU (3.2 s against 1.4 s per
    batch of 64 x 300 steps, measured with ``nn.TransformerEncoderLayer``).
    """

    def __init__(self, d_model: int, heads: int, dropout: float) -> None:
        super().__init__()
        assert d_model % heads == 0, "d_model must be divisible by heads"
        self.heads = heads
        self.norm1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, 2 * d_model), nn.ReLU(), nn.Dropout(dropout),
                                nn.Linear(2 * d_model, d_model))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x``: ``(batch, time, d_model)``, ``mask``: ``(batch, time)`` True on real steps → same shape as x."""
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.bool()[:, None, None, :])
        x = x + self.drop(self.proj(att.transpose(1, 2).reshape(b, t, d)))
        return x + self.drop(self.ff(self.norm2(x)))


class GatedConvBlock(nn.Module):
    """``conv(X) ⊙ sigmoid(conv_gate(X))`` (paper Eq. 15), centred ('same') 1-d convolution over time.

    Padded steps are zeroed before the convolution, so they act exactly like the convolution's own zero
    padding and never change the outputs at real steps.
    """

    def __init__(self, d_in: int, channels: int, kernel: int) -> None:
        super().__init__()
        assert kernel % 2 == 1, "kernel must be odd"
        self.conv = nn.Conv1d(d_in, channels, kernel, padding=kernel // 2)
        self.gate = nn.Conv1d(d_in, channels, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x``: ``(batch, time, d_in)``, ``mask``: ``(batch, time)`` → ``(batch, time, channels)``."""
        h = (x * mask.unsqueeze(-1).to(x.dtype)).transpose(1, 2)
        return (self.conv(h) * torch.sigmoid(self.gate(h))).transpose(1, 2)


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence within its own length (padding stays at the end).

    Lets a bidirectional LSTM run on equal-length padded batches exactly as on unpadded sequences, without
    packing (packed backward passes are very slow on the CPU).
    """
    t = x.shape[1]
    idx = torch.arange(t, device=x.device).unsqueeze(0).expand(x.shape[0], t)
    rev = lengths.unsqueeze(1) - 1 - idx
    rev = torch.where(rev >= 0, rev, idx)
    return torch.gather(x, 1, rev.unsqueeze(-1).expand_as(x))


class MaskedBiLSTM(nn.Module):
    """A bidirectional LSTM (or, with ``cell=nn.GRU``, GRU) on padded batches whose backward direction never sees
    padding."""

    def __init__(self, d_in: int, hidden: int, num_layers: int = 1, cell: type[nn.LSTM] | type[nn.GRU] = nn.LSTM) -> None:
        super().__init__()
        self.fwd = cell(d_in, hidden, num_layers=num_layers, batch_first=True)
        self.bwd = cell(d_in, hidden, num_layers=num_layers, batch_first=True)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(batch, time, d_in)`` → ``(batch, time, 2 * hidden)``."""
        lengths = mask.sum(dim=1).clamp_min(1)
        h_f, _ = self.fwd(x)
        h_b, _ = self.bwd(reverse_padded(x, lengths))
        return torch.cat([h_f, reverse_padded(h_b, lengths)], dim=-1)


class StackedBiLSTM(nn.Module):
    """``num_layers`` bidirectional LSTM layers, each fed both directions of the one below (as
    ``nn.LSTM(bidirectional=True, num_layers=n)``), on padded batches whose backward directions never see padding.

    With packed sequences ``nn.LSTM`` computes the same (``tests/models/test_baseline.py`` checks it to 1e-5), but
    its packed backward pass is very slow on the CPU for batches of mixed lengths.
    """

    def __init__(self, d_in: int, hidden: int, num_layers: int, cell: type[nn.LSTM] | type[nn.GRU] = nn.LSTM) -> None:
        super().__init__()
        self.layers = nn.ModuleList(MaskedBiLSTM(d_in if i == 0 else 2 * hidden, hidden, cell=cell)
                                    for i in range(num_layers))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(batch, time, d_in)`` → ``(batch, time, 2 * hidden)``."""
        for layer in self.layers:
            x = layer(x, mask)
        return x
