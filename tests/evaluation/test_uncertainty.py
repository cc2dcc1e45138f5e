"""The subject-level bootstrap: against closed forms, deterministic under its seed, paired where two systems meet."""

from __future__ import annotations

import numpy as np
import pytest

from musefusion.evaluation.metrics import ccc_concatenated
from musefusion.evaluation.uncertainty import (
    Interval,
    ccc_interval,
    concatenated_ccc,
    paired_difference,
    subject_interval,
)


def _subjects(n: int, steps: int, noise: float, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    ys = [np.cumsum(rng.normal(size=steps)) * 0.1 + rng.normal() for _ in range(n)]
    return [y + noise * rng.normal(size=steps) for y in ys], ys


def test_the_interval_of_a_mean_matches_the_normal_closed_form():
    """Percentile bootstrap of a mean over 400 subjects: mean ± 1.96 s / sqrt(n) to within a few per cent."""
    values = np.random.default_rng(3).exponential(size=400)
    iv = subject_interval(lambda idx: values[idx].mean(axis=-1), len(values), n_resamples=4000)
    half = 1.96 * values.std() / np.sqrt(len(values))
    assert iv.low == pytest.approx(values.mean() - half, abs=0.15 * half)
    assert iv.high == pytest.approx(values.mean() + half, abs=0.15 * half)


def test_identical_subjects_give_a_point_interval_at_the_ccc():
    """Every resample of identical subjects is the same concatenation up to order: the interval is the point."""
    p, y = _subjects(1, 60, 0.5)
    preds, ys = p * 8, y * 8
    iv = ccc_interval(preds, ys)
    assert iv.low == pytest.approx(ccc_concatenated(preds, ys), abs=1e-9)
    assert iv.high == pytest.approx(iv.low, abs=1e-9)


def test_the_ccc_from_sums_is_the_challenge_score_and_nan_steps_are_skipped():
    preds, ys = _subjects(9, 80, 0.7, seed=5)
    ys[2][:10] = np.nan
    assert concatenated_ccc(preds, ys) == pytest.approx(ccc_concatenated(preds, ys), abs=1e-9)


def test_the_interval_holds_the_score_is_seeded_and_narrows_with_subjects():
    preds, ys = _subjects(14, 100, 1.0)
    a, b = ccc_interval(preds, ys), ccc_interval(preds, ys)
    assert a == b  # same seed, same interval
    assert ccc_interval(preds, ys, seed=1) != a
    assert a.low < ccc_concatenated(preds, ys) < a.high
    many_p, many_y = _subjects(120, 100, 1.0)
    wide, narrow = a.high - a.low, ccc_interval(many_p, many_y).high - ccc_interval(many_p, many_y).low
    assert narrow < wide / 1.8  # ~ 1 / sqrt(subjects)


def test_paired_difference_of_a_system_with_itself_is_exactly_zero_and_clear_gains_exclude_zero():
    preds, ys = _subjects(14, 100, 0.5)
    same = paired_difference(preds, preds, ys)
    assert same.delta == 0 and same.interval == Interval(0.0, 0.0) and same.verdict == "indistinguishable"
    worse = [p + np.random.default_rng(9).normal(size=p.shape) * 2 for p in preds]
    d = paired_difference(preds, worse, ys)
    assert d.delta == pytest.approx(ccc_concatenated(preds, ys) - ccc_concatenated(worse, ys))
    assert d.interval.low > 0 and d.verdict == "a higher"
    assert paired_difference(worse, preds, ys).verdict == "b higher"


def test_pairing_sees_what_two_unpaired_intervals_cannot():
    """Two systems that differ by a small but consistent amount on every subject: their own intervals overlap,
    the paired interval of the difference excludes 0."""
    preds, ys = _subjects(14, 100, 0.8)
    rng = np.random.default_rng(4)
    better = [0.9 * p + 0.1 * y + 0.02 * rng.normal(size=y.shape) for p, y in zip(preds, ys, strict=True)]
    ia, ib = ccc_interval(better, ys), ccc_interval(preds, ys)
    assert ia.low < ib.high  # overlapping
    assert paired_difference(better, preds, ys).interval.low > 0


def test_fewer_than_two_subjects_have_no_interval():
    p, y = _subjects(1, 50, 0.3)
    assert not ccc_interval(p, y).defined and str(ccc_interval(p, y)) == "[n/a]"
    assert Interval.from_json([None, 0.2]).defined is False and Interval.from_json([0.1, 0.2]) == Interval(0.1, 0.2)
