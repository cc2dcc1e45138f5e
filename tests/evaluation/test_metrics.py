"""CCC against an independent NumPy reference, its edge cases, and the two MuSe aggregations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musefusion.evaluation.metrics import ccc, ccc_concatenated, ccc_masked, ccc_per_sequence_mean, pcc, rmse


def _reference_ccc(pred: np.ndarray, target: np.ndarray) -> float:
    """Paper Eq. 21 with population moments, written out independently of the library."""
    pred, target = np.asarray(pred, dtype=np.float64), np.asarray(target, dtype=np.float64)
    mp, mt = pred.mean(), target.mean()
    cov = ((pred - mp) * (target - mt)).mean()
    return 2 * cov / (pred.var() + target.var() + (mp - mt) ** 2)


def _random_pair(seed: int, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    target = rng.normal(rng.normal(), rng.uniform(0.2, 2.0), n)
    pred = rng.uniform(-1, 1) * target + rng.normal(rng.normal(), rng.uniform(0.1, 1.5), n)
    return pred, target


@pytest.mark.parametrize("seed", range(5))
def test_ccc_matches_numpy_reference(seed):
    pred, target = _random_pair(seed)
    expected = _reference_ccc(pred, target)
    assert ccc(pred, target) == pytest.approx(expected, abs=1e-9)
    # the differentiable definition gives the same number (float64 and float32)
    assert float(ccc_masked(torch.from_numpy(pred), torch.from_numpy(target))) == pytest.approx(expected, abs=1e-12)
    assert float(ccc_masked(torch.from_numpy(pred).float(), torch.from_numpy(target).float())) == pytest.approx(
        expected, abs=1e-5)


def test_ccc_is_symmetric_and_uses_population_moments():
    pred, target = _random_pair(11, n=5)
    assert ccc(pred, target) == pytest.approx(ccc(target, pred), abs=1e-12)
    # with sample moments (ddof=1) the result would differ on 5 points
    mp, mt = pred.mean(), target.mean()
    sample = 2 * np.cov(pred, target)[0, 1] / (pred.var(ddof=1) + target.var(ddof=1) + (mp - mt) ** 2)
    assert abs(ccc(pred, target) - sample) > 1e-6
    assert ccc(pred, target) == pytest.approx(_reference_ccc(pred, target), abs=1e-9)


def test_ccc_with_itself_is_one():
    pred, _ = _random_pair(3)
    assert ccc(pred, pred) == pytest.approx(1.0, abs=1e-12)
    assert float(ccc_masked(torch.from_numpy(pred), torch.from_numpy(pred))) == pytest.approx(1.0, abs=1e-12)


def test_ccc_with_negation_is_minus_one_for_zero_mean_data():
    x, _ = _random_pair(4)
    x = x - x.mean()
    assert ccc(-x, x) == pytest.approx(-1.0, abs=1e-12)
    assert float(ccc_masked(torch.from_numpy(-x), torch.from_numpy(x))) == pytest.approx(-1.0, abs=1e-12)


def test_ccc_with_negation_of_nonzero_mean_data_is_above_minus_one():
    """cov = -var and the means differ by 2 mu, so CCC = -var / (var + 2 mu^2)."""
    x = np.array([1.0, 2.0, 3.0, 4.0])
    expected = -x.var() / (x.var() + 2 * x.mean() ** 2)
    assert ccc(-x, x) == pytest.approx(expected, abs=1e-9)  # ccc() rounds to 10 decimals
    assert float(ccc_masked(torch.from_numpy(-x), torch.from_numpy(x))) == pytest.approx(expected, abs=1e-15)
    assert -1.0 < ccc(-x, x) < 0.0


def test_ccc_penalises_offset_and_scale_unlike_pearson():
    _, target = _random_pair(5)
    assert pcc(target + 3.0, target) == pytest.approx(1.0)
    assert ccc(target + 3.0, target) < 0.5
    assert ccc(2.0 * target, target) < 1.0
    assert ccc(2.0 * target, target) == pytest.approx(_reference_ccc(2.0 * target, target), abs=1e-9)


@pytest.mark.parametrize("value", [0.0, 0.7, -3.0])
def test_constant_prediction_gives_zero(value):
    _, target = _random_pair(6)
    assert ccc(np.full_like(target, value), target) == 0.0


def test_constant_prediction_of_constant_target_gives_zero_not_nan():
    assert ccc(np.ones(10), np.ones(10)) == 0.0
    assert float(ccc_masked(torch.zeros(4), torch.zeros(4))) == 0.0


def test_nan_pairs_are_ignored():
    pred, target = _random_pair(7)
    pred_nan, target_nan = pred.copy(), target.copy()
    pred_nan[::7] = np.nan
    target_nan[3::11] = np.nan
    keep = ~(np.isnan(pred_nan) | np.isnan(target_nan))
    assert ccc(pred_nan, target_nan) == pytest.approx(_reference_ccc(pred[keep], target[keep]), abs=1e-9)
    assert rmse(pred_nan, target_nan) == pytest.approx(np.sqrt(np.mean((pred[keep] - target[keep]) ** 2)))
    assert pcc(pred_nan, target_nan) == pytest.approx(np.corrcoef(pred[keep], target[keep])[0, 1])


def test_all_nan_gives_nan():
    assert np.isnan(ccc(np.full(4, np.nan), np.arange(4.0)))
    assert np.isnan(ccc_concatenated([], []))
    assert np.isnan(ccc_per_sequence_mean([np.full(3, np.nan)], [np.arange(3.0)]))
    assert np.isnan(rmse(np.full(2, np.nan), np.ones(2)))


@pytest.mark.parametrize("func", [ccc, pcc, rmse])
def test_size_mismatch_raises(func):
    with pytest.raises(ValueError, match="pred has 3 values but target 4; they must match"):
        func(np.zeros(3), np.zeros(4))


def test_concatenated_and_per_sequence_mean_match_their_definitions():
    pairs = [_random_pair(s, n=50 + 10 * s) for s in range(4)]
    preds, targets = [p for p, _ in pairs], [t for _, t in pairs]
    assert ccc_concatenated(preds, targets) == pytest.approx(
        _reference_ccc(np.concatenate(preds), np.concatenate(targets)), abs=1e-9)
    assert ccc_per_sequence_mean(preds, targets) == pytest.approx(
        np.mean([_reference_ccc(p, t) for p, t in pairs]), abs=1e-9)


def test_concatenated_and_per_sequence_mean_differ_as_expected():
    """Predicting each subject's own mean level: no within-subject agreement (every per-subject CCC is 0),
    but the concatenated CCC rewards getting the between-subject levels right."""
    rng = np.random.default_rng(8)
    targets = [level + rng.normal(0, 0.3, 60) for level in (-1.0, 0.0, 1.5)]
    preds = [np.full(60, t.mean()) for t in targets]
    assert ccc_per_sequence_mean(preds, targets) == 0.0
    cat = ccc_concatenated(preds, targets)
    assert cat == pytest.approx(_reference_ccc(np.concatenate(preds), np.concatenate(targets)), abs=1e-9)
    assert cat > 0.8
    # the other way round: right within subjects, wrong offsets between them
    shifted = [t - t.mean() + 2.0 * k for k, t in enumerate(targets)]
    assert ccc_per_sequence_mean(shifted, targets) < ccc_concatenated(targets, targets)
    assert ccc_concatenated(shifted, targets) != pytest.approx(ccc_per_sequence_mean(shifted, targets), abs=0.05)


def test_per_sequence_mean_skips_sequences_without_labels():
    p, t = _random_pair(9)
    assert ccc_per_sequence_mean([p, p], [t, np.full_like(t, np.nan)]) == pytest.approx(_reference_ccc(p, t))


def test_per_sequence_mean_refuses_a_different_number_of_sequences():
    with pytest.raises(ValueError):
        ccc_per_sequence_mean([np.zeros(3)], [np.zeros(3), np.zeros(3)])


def test_ccc_masked_ignores_masked_elements():
    pred, target = _random_pair(10)
    mask = np.random.default_rng(0).random(pred.shape) < 0.6
    masked = ccc_masked(torch.from_numpy(pred), torch.from_numpy(target), torch.from_numpy(mask))
    assert float(masked) == pytest.approx(_reference_ccc(pred[mask], target[mask]), abs=1e-12)


def test_ccc_masked_reduces_along_a_dimension():
    rng = np.random.default_rng(12)
    pred, target = rng.normal(size=(3, 30)), rng.normal(size=(3, 30))
    mask = np.ones((3, 30), dtype=bool)
    mask[1, 20:] = False
    per_row = ccc_masked(torch.from_numpy(pred), torch.from_numpy(target), torch.from_numpy(mask), dim=1)
    assert per_row.shape == (3,)
    expected = [_reference_ccc(pred[i][mask[i]], target[i][mask[i]]) for i in range(3)]
    np.testing.assert_allclose(per_row.numpy(), expected, atol=1e-12)
    assert ccc_masked(torch.from_numpy(pred), torch.from_numpy(target), dim=(0, 1)).shape == ()


def test_ccc_masked_with_nothing_valid_gives_zero():
    out = ccc_masked(torch.ones(2, 5), torch.arange(10.0).view(2, 5), torch.zeros(2, 5, dtype=torch.bool), dim=1)
    assert torch.equal(out, torch.zeros(2))
