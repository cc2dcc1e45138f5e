"""Sequence regressors of the paper: every model maps ``(batch, time, feat)`` + mask to ``(batch, time)``."""

from musefusion.models.registry import build_model

__all__ = ["build_model"]
