"""The paper's unimodal models (Sec. 4.1-4.2) as one configurable module.

Every model is ``[input projection] → [self-attention | gated conv] → [LSTM] → linear head`` with some stages
switched off, so all share ``forward(x, mask) -> (batch, time)``:

================  ===========  =============  =====  ========================================
name              projection   encoder        LSTM   paper
================  ===========  =============  =====  ========================================
``lstm``          yes          -              yes    Eq. 4-8 without attention ('LSTM' rows)
``selfattn``      yes          attention      -      'Self-Attn' rows
``selfattn_lstm`` yes          attention      yes    Eq. 1-8
``gcnn``          -            gated conv     -      Eq. 15 ('GCNN' rows)
``gcnn_lstm``     -            gated conv     yes    Eq. 15-18
``bio_lstm``      -            -              yes    Eq. 9-11 (ECG+RESP+BPM concatenated)
================  ===========  =============  =====  ========================================

Choices where the paper is silent:

* **Input projection.** The paper applies attention to the raw features with ``d_k = d_a / h``; that needs
  the feature dimension to be divisible by the heads (17 FAU columns or 1-d signals are not), so inputs are
  first projected linearly to ``d_model`` (default 128) and ``d_k = d_model / h``.
* **Positional information.** Fixed sinusoidal encodings are added before attention (order-blind otherwise).
* **Causality.** Attention and gated convolutions see the whole window (non-causal); LSTMs are
  unidirectional as the paper states; the label lag of annotators makes look-ahead useful.
* **Attention layer** = a pre-norm Transformer encoder layer (multi-head scaled dot-product attention +
  feed-forward 2×d_model, residuals, layer norm), padded keys masked (``layers.SelfAttentionLayer``).
* **Dropout** (default 0.1) on the attention layers' residual branches (not on the attention weights, which
  is slow on the CPU), after the encoder and between LSTM layers.
"""

from __future__ import annotations

import torch
from torch import nn

from musefusion.config import ModelConfig
from musefusion.models.layers import GatedConvBlock, SelfAttentionLayer, SinusoidalPositions


class SequenceRegressor(nn.Module):
    """A sequence-to-sequence regressor with one output per step; see the module docstring for the stages."""

    def __init__(self, config: ModelConfig, d_in: int) -> None:
        super().__init__()
        assert d_in >= 1, "d_in must be >= 1"
        self.config = config
        name = config.name
        use_proj = name in ("lstm", "selfattn", "selfattn_lstm")
        use_attn = name in ("selfattn", "selfattn_lstm")
        use_gcnn = name in ("gcnn", "gcnn_lstm")
        use_lstm = name in ("lstm", "selfattn_lstm", "gcnn_lstm", "bio_lstm")
        width = d_in
        self.proj = nn.Linear(d_in, config.d_model) if use_proj else None
        if use_proj:
            width = config.d_model
        self.pos = SinusoidalPositions(width) if use_attn else None
        self.attn = None
        if use_attn:
            self.attn = nn.ModuleList(SelfAttentionLayer(width, config.heads, config.dropout)
                                      for _ in range(config.attn_layers))
            self.attn_norm = nn.LayerNorm(width)
        self.gcnn = None
        if use_gcnn:
            blocks = []
            for _ in range(config.gcnn_blocks):
                blocks.append(GatedConvBlock(width, config.channels, config.kernel))
                width = config.channels
            self.gcnn = nn.ModuleList(blocks)
        self.lstm = None
        if use_lstm:
            layers = config.lstm_layers
            self.lstm = nn.LSTM(width, config.hidden, num_layers=layers, batch_first=True,
                                dropout=config.dropout if layers > 1 else 0.0)
            width = config.hidden
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Predict one value per step.

        Args:
            x: ``(batch, time, d_in)`` inputs.
            mask: ``(batch, time)`` bool, True on real steps (padding at the end is False).

        Returns:
            ``(batch, time)`` predictions (values at padded steps are meaningless).
        """
        h = x
        if self.proj is not None:
            h = self.proj(h)
        if self.attn is not None:
            assert self.pos is not None  # built together with the attention layers
            h = self.pos(h)
            for layer in self.attn:
                h = layer(h, mask)
            h = self.drop(self.attn_norm(h))
        if self.gcnn is not None:
            for block in self.gcnn:
                h = block(h, mask)
            h = self.drop(h)
        if self.lstm is not None:
            h, _ = self.lstm(h)
            h = self.drop(h)
        return self.head(h).squeeze(-1)
