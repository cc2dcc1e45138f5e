"""Model name -> network, through the one table of model families (:mod:`musefusion.families`)."""

from __future__ import annotations

from torch import nn

from musefusion import families
from musefusion.config import ModelConfig


def build_model(config: ModelConfig, d_in: int, dims: tuple[int, ...] | None = None) -> nn.Module:
    """Build the network of the family ``config.name`` for inputs of ``d_in`` features (feature sets of widths
    ``dims``, for the families that read each set on its own).

    Raises:
        ConfigError: the family is not registered.
    """
    return families.family(config.name).build(config, d_in, dims)
