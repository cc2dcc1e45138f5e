"""Seeding for bit-identical CPU runs."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) and ask torch for deterministic algorithms."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def pick_best_seed(scores: dict[int, float]) -> int:
    """The seed with the highest devel score (ties: the smallest seed; NaN scores lose).

    Examples:
        >>> pick_best_seed({1: 0.4, 2: 0.6, 3: 0.6})
        2
    """
    def key(item: tuple[int, float]) -> tuple[float, int]:
        s, v = item
        return (-(v if v == v else -np.inf), s)

    return min(scores.items(), key=key)[0]
