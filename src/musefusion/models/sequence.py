"""The paper's unimodal models (Sec. 4.1-4.2) as one configurable module.

Every model is ``[input projection] → [self-attention | gated conv] → [LSTM] → linear head`` with some stages
switched off, so all share ``forward(x, mask) -> (batch, time)``:

================  ===========  =============  =====  ========================================
name              projection   encoder        LSTM   paper
================  ===========  =============  =====  ========================================
``lstm``          option       -              yes    Eq. 4-8 without attention ('LSTM' rows)
``selfattn``      option       attention      -      Eq. 1-3 + Eq. 7 ('Self-Attn' rows)
``selfattn_lstm`` option       attention      yes    Eq. 1-8
``gcnn``          -            gated conv     -      Eq. 15 ('GCNN' rows)
``gcnn_lstm``     -            gated conv     yes    Eq. 15-18
``bio_lstm``      -            -              yes    Eq. 9-11 (ECG+RESP+BPM concatenated)
================  ===========  =============  =====  ========================================

``ModelConfig.attention`` chooses the attention:

* ``encoder`` (default): what the authors most likely ran. The paper's Sec. 5.2 grid ("number of heads 4 or 8,
  number of layers 1, 2 or 4") is the vocabulary of PyTorch's ``nn.TransformerEncoderLayer`` /
  ``nn.TransformerEncoder``, and ``d_k = d_a / h`` with ``C in R^{d_a}`` (Eq. 1-3) is what that module gives with
  ``d_model = d_a``. So: ``attn_layers`` stock encoder layers with the 2021 defaults (post-norm, ReLU,
  feed-forward width ``ff_dim`` = 2048, dropout 0.1 incl. on the attention weights) on the raw features, no
  projection, no positions unless ``positions``. Eq. 1 is the layer's multi-head attention; the residual,
  layer norm and feed-forward block are where the paper is silent and the module is not.
* ``literal``: Eq. 1-3 and nothing else (``layers.PaperSelfAttention``), an ablation. A bare attention layer is a
  convex average of its value vectors; at initialisation it is nearly uniform, so two stacked layers make the
  output constant within a window, which a per-window CCC scores 0 with a vanishing gradient
  (``tests/models/test_collapse.py`` measures it). Its ``selfattn`` preset is therefore one layer.
* ``transformer`` (musefusion before 0.1): inputs projected to ``d_model`` (default 128), fixed sinusoidal
  positions added, pre-norm Transformer encoder layers (attention + feed-forward 2×d_model, residuals, layer
  norm; ``layers.SelfAttentionLayer``), a final layer norm.

Where ``d_a`` does not divide by ``heads`` (17 FAU columns, 3 bio columns), ``encoder`` and ``literal`` use
``gcd(d_a, heads)`` heads, the largest count not above ``heads`` that divides ``d_a`` (1 for a prime width): the
output keeps width ``d_a`` and no parameter is added.

``project_input`` (default off, as the paper describes none) puts a linear projection to ``d_model`` before the
``lstm`` family's LSTM or the ``encoder`` / ``literal`` attention.

Choices where the paper is silent:

* **Positional information.** None in the ``encoder`` / ``literal`` attention by default (Eq. 1 has none; the
  LSTM after it sees order; ``positions`` adds the fixed sinusoidal encoding); always in ``transformer``.
* **Causality.** Attention and gated convolutions see the whole window (non-causal); LSTMs are
  unidirectional as the paper states; the label lag of annotators makes look-ahead useful.
* **Dropout** (default 0.1) after the encoder and between LSTM layers, and on the transformer layers' residual
  branches (not on their attention weights, which is slow on the CPU); the ``encoder`` layers drop the attention
  weights too, as the stock module does.
"""

from __future__ import annotations

import torch
from torch import nn

from musefusion.config import Attention, ModelConfig
from musefusion.models.layers import (
    EncoderSelfAttention,
    GatedConvBlock,
    PaperSelfAttention,
    SelfAttentionLayer,
    SinusoidalPositions,
)


class SequenceRegressor(nn.Module):
    """A sequence-to-sequence regressor with one output per step; see the module docstring for the stages."""

    def __init__(self, config: ModelConfig, d_in: int) -> None:
        super().__init__()
        assert d_in >= 1, "d_in must be >= 1"
        self.config = config
        name = config.name
        use_attn = name in ("selfattn", "selfattn_lstm")
        transformer = config.attention == Attention.TRANSFORMER
        projectable = name in ("lstm", "selfattn", "selfattn_lstm")
        use_proj = (use_attn and transformer) or (config.project_input and projectable)
        use_gcnn = name in ("gcnn", "gcnn_lstm")
        use_lstm = name in ("lstm", "selfattn_lstm", "gcnn_lstm", "bio_lstm")
        width = d_in
        self.proj = nn.Linear(d_in, config.d_model) if use_proj else None
        if use_proj:
            width = config.d_model
        self.pos = SinusoidalPositions(width) if use_attn and (transformer or config.positions) else None
        self.attn: nn.ModuleList | None = None
        self.attn_norm: nn.Module = nn.Identity()
        if use_attn and config.attention == Attention.ENCODER:  # Eq. 1-3 inside stock encoder layers
            self.attn = nn.ModuleList(EncoderSelfAttention(width, config.heads, config.ff_dim, config.dropout)
                                      for _ in range(config.attn_layers))
        elif use_attn and config.attention == Attention.LITERAL:  # Eq. 1-3, stacked: C = ATT(... ATT(X))
            self.attn = nn.ModuleList(PaperSelfAttention(width, config.heads) for _ in range(config.attn_layers))
        elif use_attn:
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
            if self.pos is not None:  # transformer variant, or positions
                h = self.pos(h)
            for layer in self.attn:
                h = layer(h, mask)
            h = self.drop(self.attn_norm(h))
        if self.gcnn is not None:
            for block in self.gcnn:
                h = block(h, mask)
            h = self.drop(h)
        if self.lstm is not None:  # Eq. 4-6 (Eq. 10 for bio, Eq. 16-17 after the gated convolutions)
            h, _ = self.lstm(h)
            h = self.drop(h)
        return self.head(h).squeeze(-1)  # Eq. 7-8: Y = H W + b
