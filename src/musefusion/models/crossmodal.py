"""Cross-modal temporal attention (``model = crossmodal``): one branch per feature set, attention across the
branches at every step, then an LSTM over time within each branch, and a learned modality gate.

In the spirit of the MuSe 2022 winners' multimodal temporal attention (He et al.), built so a model does not lean
on one modality; this is musefusion's own design, not their exact model. For a step ``t`` and feature sets
``1..n`` (widths ``d_1..d_n``):

1. each set is projected to ``d`` (``d_model``) and given a learned modality embedding; a set that has no real
   row at ``t`` (a missing face: its observed mask is 0) is replaced by a learned "missing" vector of its branch,
   so whatever the fill policy wrote there never reaches the network;
2. multi-head attention across the ``n`` branch vectors of step ``t`` (queries, keys and values from the same
   step; missing branches are masked as keys), with a residual connection and layer norm;
3. a unidirectional LSTM (``hidden``, ``lstm_layers``) over time within each branch (causal: a padded step after
   the sequence end cannot reach an earlier step);
4. a gate: softmax over the branches of a linear map of their concatenated LSTM states, missing branches masked
   out; the gated sum of the branch states goes through a linear head to one value per step.

Inputs: the features of the sets side by side, followed by one observed-mask column per set (the family's
``observed_inputs``; ``musefusion.training.run.model_inputs`` appends them).
"""

from __future__ import annotations

import torch
from torch import nn

from musefusion.config import ModelConfig


class CrossModal(nn.Module):
    """The network; ``forward(x, mask)`` with ``x`` ``(B, T, sum(dims) + n)`` and ``mask`` ``(B, T)``."""

    def __init__(self, dims: tuple[int, ...], d_model: int = 64, heads: int = 4, hidden: int = 64,
                 lstm_layers: int = 1, dropout: float = 0.1) -> None:
        super().__init__()
        self.dims = tuple(int(d) for d in dims)
        n = len(self.dims)
        self.proj = nn.ModuleList(nn.Linear(d, d_model) for d in self.dims)
        self.modality = nn.Parameter(torch.zeros(n, d_model))
        self.missing = nn.Parameter(torch.zeros(n, d_model))
        self.cross = nn.MultiheadAttention(d_model, heads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(d_model)
        self.temporal = nn.ModuleList(nn.LSTM(d_model, hidden, lstm_layers, batch_first=True,
                                              dropout=dropout if lstm_layers > 1 else 0.0) for _ in self.dims)
        self.gate = nn.Linear(n * hidden, n)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, 1)
        nn.init.normal_(self.modality, std=0.02)
        nn.init.normal_(self.missing, std=0.02)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """One prediction per step, ``(B, T)``."""
        n = len(self.dims)
        feats, observed = x[..., :-n], x[..., -n:] > 0.5
        observed = observed & mask.bool().unsqueeze(-1)  # (B, T, n)
        parts = torch.split(feats, list(self.dims), dim=-1)
        h = torch.stack([p(part) for p, part in zip(self.proj, parts, strict=True)], dim=2)  # (B, T, n, d)
        h = torch.where(observed.unsqueeze(-1), h, self.missing.to(h.dtype)) + self.modality.to(h.dtype)
        b, t, _, d = h.shape
        flat = h.reshape(b * t, n, d)
        pad = ~observed.reshape(b * t, n)
        pad = pad & ~pad.all(dim=-1, keepdim=True)  # a step with no observed set attends over all (its missing vectors)
        attended, _ = self.cross(flat, flat, flat, key_padding_mask=pad, need_weights=False)
        h = self.norm(flat + self.drop(attended)).reshape(b, t, n, d)
        states = torch.stack([lstm(h[:, :, j])[0] for j, lstm in enumerate(self.temporal)], dim=2)  # (B, T, n, H)
        logits = self.gate(states.reshape(b, t, -1))
        logits = logits.masked_fill(~observed & observed.any(dim=-1, keepdim=True), float("-inf"))
        weights = torch.softmax(logits, dim=-1).unsqueeze(-1)
        return self.head(self.drop((weights * states).sum(dim=2))).squeeze(-1)


def build(config: ModelConfig, d_in: int, dims: tuple[int, ...] | None = None) -> CrossModal:
    """The family's builder: one branch per feature set of widths ``dims`` (one branch of ``d_in`` without)."""
    return CrossModal(tuple(dims) if dims else (d_in,), d_model=config.d_model, heads=config.heads,
                      hidden=config.hidden, lstm_layers=config.lstm_layers, dropout=config.dropout)
