"""Seeding and picking the best seed."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from musefusion.training.seeds import pick_best_seed, seed_everything


@pytest.mark.parametrize("scores, best", [
    ({1: 0.4, 2: 0.6, 3: 0.5}, 2),
    ({3: 0.6, 1: 0.6, 2: 0.1}, 1),  # ties: the smallest seed
    ({1: float("nan"), 2: -0.2}, 2),  # NaN loses even against a negative score
    ({5: float("nan"), 4: float("nan")}, 4),
    ({7: 0.1}, 7),
])
def test_pick_best_seed(scores, best):
    assert pick_best_seed(scores) == best


def test_pick_best_seed_is_the_argmax_on_random_scores():
    rng = np.random.default_rng(0)
    for _ in range(20):
        seeds = rng.choice(1000, size=5, replace=False).tolist()
        scores = dict(zip(seeds, rng.normal(size=5).tolist(), strict=True))
        assert pick_best_seed(scores) == max(scores, key=scores.get)


def test_pick_best_seed_of_nothing_raises():
    with pytest.raises(ValueError):
        pick_best_seed({})


def test_seed_everything_repeats_every_generator():
    def draw():
        return random.random(), np.random.rand(), torch.rand(3)

    seed_everything(5)
    a = draw()
    seed_everything(5)
    b = draw()
    seed_everything(6)
    c = draw()
    assert a[:2] == b[:2] and torch.equal(a[2], b[2])
    assert a[:2] != c[:2]
    assert torch.are_deterministic_algorithms_enabled()
