"""Model name → builder."""

from __future__ import annotations

from torch import nn

from musefusion.config import ModelConfig
from musefusion.models.sequence import SequenceRegressor


def build_model(config: ModelConfig, d_in: int) -> nn.Module:
    """Build the model ``config.name`` for inputs of ``d_in`` features (all names share SequenceRegressor)."""
    return SequenceRegressor(config, d_in)
