"""Fusion selection: the chosen fuser is never worse than another on the selection data, and each candidate is
fitted only on the folds it is not scored on."""

from __future__ import annotations

import math

import numpy as np
import pytest

from musefusion.evaluation.metrics import ccc_concatenated
from musefusion.fusion.select import FUSERS, cv_top_mean, nested_cv, select


def _subjects(rng, n=8, t=120):
    return [np.cumsum(rng.normal(0, 0.1, t)) for _ in range(n)]


def _noisy(rng, ys, noise):
    return [y + rng.normal(0, noise, len(y)) for y in ys]


FOLDS = [[0, 1, 2], [3, 4, 5], [6, 7]]


@pytest.mark.parametrize("seed", range(6))
def test_under_max_the_chosen_fuser_has_the_best_selection_score(seed):
    rng = np.random.default_rng(seed)
    ys = _subjects(rng)
    tests = _subjects(rng, 3)
    noise = rng.uniform(0.05, 1.0, 5)
    pool = {f"row{k}": (_noisy(rng, ys, noise[k]), _noisy(rng, tests, noise[k])) for k in range(3)}
    streams = {"A": pool["row0"], "B": pool["row1"]}
    bilstm = (_noisy(rng, ys, noise[3]), _noisy(rng, tests, noise[3]))
    sel = select(bilstm, pool, streams, ys, FOLDS, rule="max")
    assert set(sel.cv_ccc) == set(FUSERS) and sel.rule == "max"
    assert sel.cv_ccc[sel.chosen] == max(sel.cv_ccc.values())
    # the chosen fuser's devel and test predictions are the fitted fuser's, one per subject
    assert len(sel.devel) == len(ys) and len(sel.test) == len(tests)
    assert ccc_concatenated(sel.devel, ys) == pytest.approx(sel.devel_ccc[sel.chosen])


def test_a_single_strong_row_beats_a_weak_bilstm_and_is_the_test_source():
    rng = np.random.default_rng(0)
    ys, tests = _subjects(rng), _subjects(rng, 3)
    strong = (_noisy(rng, ys, 0.02), _noisy(rng, tests, 0.02))
    weak = (_noisy(rng, ys, 2.0), _noisy(rng, tests, 2.0))
    sel = select(weak, {"weak": weak, "strong": strong}, {"A": weak, "B": weak}, ys, FOLDS)
    assert sel.chosen == "best-stream" and sel.detail["best-stream"] == "strong"
    np.testing.assert_array_equal(sel.test[0], strong[1][0])


@pytest.mark.parametrize("seed", range(6))
def test_under_interval_a_fuser_replaces_the_bilstm_only_with_a_gain_above_its_noise(seed):
    rng = np.random.default_rng(seed)
    ys, tests = _subjects(rng, 14), _subjects(rng, 3)
    folds = [list(range(k, 14, 3)) for k in range(3)]
    noise = rng.uniform(0.05, 1.0, 4)
    pool = {f"row{k}": (_noisy(rng, ys, noise[k]), _noisy(rng, tests, noise[k])) for k in range(3)}
    bilstm = (_noisy(rng, ys, noise[3]), _noisy(rng, tests, noise[3]))
    sel = select(bilstm, pool, {"A": pool["row0"], "B": pool["row1"]}, ys, folds)
    assert sel.rule == "interval" and set(sel.gain) == set(FUSERS) - {"bilstm"}
    eligible = ["bilstm", *(f for f, d in sel.gain.items() if d.interval.low > 0)]
    assert sel.chosen == max(eligible, key=lambda f: (sel.cv_ccc[f], -FUSERS.index(f)))
    assert sel.distinguishable == (len(eligible) > 1)
    for f, d in sel.gain.items():  # the gain is the CV score difference, its interval around it
        assert d.delta == pytest.approx(sel.cv_ccc[f] - sel.cv_ccc["bilstm"], abs=1e-6)
        assert sel.cv_interval[f].low <= sel.cv_ccc[f] + 1e-9


def test_a_gain_within_the_noise_keeps_the_papers_bilstm_which_max_would_drop():
    """A row better than the Bi-LSTM on half the subjects and worse on the others, a little better overall (CV gain
    0.014, interval about [-0.03, 0.06]): max takes it, interval keeps the Bi-LSTM."""
    rng = np.random.default_rng(2)
    ys, tests = _subjects(rng, 14), _subjects(rng, 3)
    folds = [list(range(k, 14, 3)) for k in range(3)]
    base = (_noisy(rng, ys, 0.5), _noisy(rng, tests, 0.5))
    row = ([0.7 * p + 0.3 * y if i % 2 else p + rng.normal(0, 0.3, len(p))
            for i, (p, y) in enumerate(zip(base[0], ys, strict=True))], base[1])
    streams = {"A": base, "B": base}
    loose, strict = (select(base, {"r": row}, streams, ys, folds, rule=r) for r in ("max", "interval"))
    assert loose.cv_ccc["best-stream"] > loose.cv_ccc["bilstm"] and loose.chosen != "bilstm"
    assert strict.chosen == "bilstm" and not strict.gain["best-stream"].interval.excludes_zero()
    with pytest.raises(ValueError, match="Unknown selection rule"):
        select(base, {"r": row}, streams, ys, folds, rule="vote")


def test_ties_go_to_the_papers_bilstm():
    rng = np.random.default_rng(1)
    ys, tests = _subjects(rng), _subjects(rng, 3)
    same = (_noisy(rng, ys, 0.3), _noisy(rng, tests, 0.3))
    sel = select(same, {"r": same}, {"A": same}, ys, FOLDS)
    assert sel.cv_ccc["bilstm"] == sel.cv_ccc["best-stream"] == pytest.approx(sel.cv_ccc["weighted-mean"])
    assert sel.chosen == "bilstm"


def test_the_best_row_is_chosen_on_the_other_folds_only():
    """A row perfect on fold 0 and random elsewhere: for fold 0's subjects the row is picked on folds 1-2 only (the
    replay below), so its fold-0 perfection cannot pick it for fold 0."""
    rng = np.random.default_rng(2)
    ys, tests = _subjects(rng), _subjects(rng, 3)
    cheat = [y.copy() if i in FOLDS[0] else rng.normal(0, 1, len(y)) for i, y in enumerate(ys)]
    fair = _noisy(rng, ys, 0.5)
    pool = {"cheat": (cheat, tests), "fair": (fair, tests)}
    sel = select((fair, tests), pool, {"A": (fair, tests)}, ys, FOLDS)
    held_out_best = []  # replay: on each fold, the row with the better CCC on the other folds
    for fold in FOLDS:
        rest = [i for i in range(len(ys)) if i not in fold]
        pick = max(pool, key=lambda n: ccc_concatenated([pool[n][0][i] for i in rest], [ys[i] for i in rest]))
        held_out_best += [(i, pool[pick][0][i]) for i in fold]
    held_out_best.sort(key=lambda kv: kv[0])
    assert sel.cv_ccc["best-stream"] == pytest.approx(ccc_concatenated([p for _, p in held_out_best], ys))


def test_weights_follow_the_streams_devel_ccc_and_ignore_negative_ones():
    rng = np.random.default_rng(3)
    ys, tests = _subjects(rng), _subjects(rng, 3)
    good = (_noisy(rng, ys, 0.1), _noisy(rng, tests, 0.1))
    anti = ([-y for y in ys], [-y for y in tests])
    sel = select(good, {"g": good}, {"A": good, "B": anti}, ys, FOLDS)
    assert sel.detail["weighted-mean"] == {"A": 1.0, "B": 0.0}


def test_averaging_rows_with_independent_errors_beats_the_best_of_them():
    """Four rows, each the label plus its own noise: their mean has a quarter of the noise variance, so the
    top-rows mean wins the selection, with at least two rows weighted, fitted without the held-out subjects."""
    rng = np.random.default_rng(4)
    ys, tests = _subjects(rng, n=9), _subjects(rng, 3)
    pool = {f"r{k}": (_noisy(rng, ys, 0.6), _noisy(rng, tests, 0.6)) for k in range(4)}
    weak = (_noisy(rng, ys, 3.0), _noisy(rng, tests, 3.0))
    sel = select(weak, pool, {"A": pool["r0"]}, ys, [[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    assert sel.chosen == "top-rows-mean"
    assert sel.cv_ccc["top-rows-mean"] > sel.cv_ccc["best-stream"]
    weights = sel.detail["top-rows-mean"]
    assert len(weights) >= 2 and sum(weights.values()) == pytest.approx(1.0)
    expected = sum(w * pool[n][1][0] for n, w in weights.items())
    np.testing.assert_allclose(sel.test[0], expected)


def test_the_top_k_mean_is_ranked_on_other_subjects_than_it_is_scored_on():
    rng = np.random.default_rng(3)
    ys = _subjects(rng, n=4)
    # each row is right on half the subjects and inverted on the other half: on devel as a whole the best row
    # looks fine, but a row ranked first on one half is the wrong one for the other
    pool = {"first-half": [y if i < 2 else -y for i, y in enumerate(ys)],
            "second-half": [-y if i < 2 else y for i, y in enumerate(ys)]}
    folds = [[0, 1], [2, 3]]
    wrong = ccc_concatenated([-y for y in ys], ys)  # each fold predicted by the row ranked first on the other
    assert cv_top_mean(pool, ys, folds, 1) == pytest.approx(wrong) and wrong < 0
    # with every row kept there is nothing to rank: the estimate is the plain mean's CCC
    pool["noisy"] = _noisy(rng, ys, 0.2)
    every = [np.mean([p[i] for p in pool.values()], axis=0) for i in range(len(ys))]
    assert cv_top_mean(pool, ys, folds, 3) == pytest.approx(ccc_concatenated(every, ys))


def test_the_nested_estimate_is_not_the_winners_score():
    """Rows of pure noise: the selection's winner scores above zero on its own folds (the best of four), the nested
    estimate sees the selection on subjects it never chose on."""
    rng = np.random.default_rng(5)
    ys = _subjects(rng, n=9)
    noise = {f"r{k}": [rng.normal(0, 1, len(y)) for y in ys] for k in range(8)}
    streams = dict(list(noise.items())[:3])
    folds = [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    bilstm = [rng.normal(0, 1, len(y)) for y in ys]
    sel = select((bilstm, bilstm), {k: (v, v) for k, v in noise.items()}, {k: (v, v) for k, v in streams.items()},
                 ys, folds)
    nested = nested_cv(bilstm, noise, streams, ys, folds)
    assert nested < sel.cv_ccc[sel.chosen]
    # where every candidate is the truth, there is nothing to be optimistic about
    assert nested_cv(ys, {"a": ys, "b": ys}, {"s": ys}, ys, folds) == pytest.approx(1.0)
    # a fold leaving one other subject has no inner folds: no estimate rather than one over some subjects
    assert math.isnan(nested_cv(ys[:3], {"a": ys[:3]}, {"s": ys[:3]}, ys[:3], [[0, 1], [2]]))
