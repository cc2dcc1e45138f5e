"""Fusion that never loses to its best stream: the paper's Bi-LSTM against simpler fusers, chosen by
cross-validation over devel subjects.

The paper finds that its late fusion beats every single stream (Tables 4-5); on data the defaults were not made
for that can fail (the fused devel CCC below the best unimodal row's), and nothing would notice. ``select``
compares four fusers on the same devel predictions:

* ``bilstm``: the paper's fusion row (the Bi-LSTM of Eq. 12-14, 19, as fitted: on out-of-fold train
  predictions, its seed and epoch chosen on devel);
* ``best-stream``: the one unimodal row (its best seed) with the highest devel CCC, from every row of the
  task's table (the baseline peers included);
* ``weighted-mean``: the fusion streams averaged per step with weights proportional to their devel CCC (a
  stream with CCC <= 0 gets weight 0);
* ``top-rows-mean``: the ``k`` rows of the table with the best devel CCC averaged with weights proportional to
  it, ``k`` from 2 to 6 chosen on the same subjects as the weights (the 2023 winners averaged 4-6 models'
  prediction files).

Selection data: ``k`` folds of devel subjects. For each held-out fold, ``best-stream`` and the means are fitted
on the other folds' subjects (which row; which rows and weights) and predict the held-out subjects; ``bilstm`` has
nothing to fit on devel. The score of a fuser is one CCC over all its held-out predictions (its CV devel CCC).

The rule (``rule``) that turns the scores into a choice:

* ``interval`` (default): a selection that knows its noise. Each candidate's CV gain over the paper's Bi-LSTM
  gets its paired subject-level bootstrap interval (:func:`musefusion.evaluation.uncertainty.paired_difference`,
  the same held-out subjects resampled for both); a candidate replaces the Bi-LSTM only when that interval lies
  above 0, and among such candidates the highest CV score wins. With 14 devel subjects a CV margin of a few
  hundredths is within subject sampling (measured: margins of 0.003 and 0.002 chose fusers that tested 0.029 and
  0.041 below the Bi-LSTM they beat), so by default the paper's fusion stands unless the data say otherwise.
* ``max``: the highest CV score wins, ties to the Bi-LSTM (musefusion before 0.2), an ablation.

The winner is then fitted on every devel subject for its devel and test predictions. The choice is made once per
target and recorded with every candidate's score, interval and gain.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from musefusion.evaluation.metrics import ccc_concatenated, held_out_ccc
from musefusion.evaluation.uncertainty import Difference, Interval, ccc_interval, paired_difference
from musefusion.types import SelectionRule

#: The fusers in order of preference on a tie: the paper's first.
FUSERS = ("bilstm", "best-stream", "weighted-mean", "top-rows-mean")
#: How the CV scores make a choice (see the module docstring); the first is the default.
RULES = tuple(r.value for r in SelectionRule)

Preds = Sequence[np.ndarray]  # one prediction array per subject, in a fixed subject order


@dataclasses.dataclass(frozen=True)
class Selection:
    """The outcome of :func:`select`."""

    chosen: str  # one of FUSERS
    cv_ccc: dict[str, float]  # each fuser's cross-validated devel CCC (the selection score)
    devel_ccc: dict[str, float]  # each fuser fitted on all devel subjects, scored on them
    detail: dict[str, Any]  # what the fitted fusers use: {"best-stream": row, "weighted-mean": {stream: weight},
    #                         "top-rows-mean": {row: weight}}
    devel: list[np.ndarray]  # the chosen fuser's devel predictions (fitted on all devel subjects)
    test: list[np.ndarray]  # its test predictions
    rule: str = RULES[0]  # how the choice was made
    cv_interval: dict[str, Interval] = dataclasses.field(default_factory=dict)  # each CV score's 95 % interval
    gain: dict[str, Difference] = dataclasses.field(default_factory=dict)  # each candidate's CV gain over bilstm

    @property
    def distinguishable(self) -> bool:
        """Whether some candidate's CV gain over the paper's Bi-LSTM has an interval above 0."""
        return any(d.interval.low > 0 for d in self.gain.values())


def choose(cv: dict[str, float], gain: dict[str, Difference], rule: str = RULES[0]) -> str:
    """The fuser a rule picks from the CV scores and the candidates' gains over ``bilstm``.

    Examples:
        >>> cv = {"bilstm": 0.50, "best-stream": 0.53}
        >>> choose(cv, {"best-stream": Difference(0.03, Interval(-0.01, 0.07))}, "interval")
        'bilstm'
        >>> choose(cv, {"best-stream": Difference(0.03, Interval(-0.01, 0.07))}, "max")
        'best-stream'
        >>> choose(cv, {"best-stream": Difference(0.03, Interval(0.01, 0.05))}, "interval")
        'best-stream'
    """
    if rule not in RULES:
        raise ValueError(f"Unknown selection rule '{rule}'; use one of {', '.join(RULES)}.")
    names = list(cv)
    pool = names if rule == "max" else ["bilstm", *(f for f in names if f in gain and gain[f].interval.low > 0)]
    return max(pool, key=lambda f: (cv[f], -names.index(f)))


def _cccs(preds: Mapping[str, Preds], ys: Preds, idx: Sequence[int]) -> dict[str, float]:
    """Each entry's CCC over the subjects ``idx``."""
    return {n: ccc_concatenated([p[i] for i in idx], [ys[i] for i in idx]) for n, p in preds.items()}


def _best_row(ccc: Mapping[str, float]) -> str:
    """The row with the highest CCC (the first of equals)."""
    names = list(ccc)
    return max(names, key=lambda n: (ccc[n], -names.index(n)))


def _weights(ccc: Mapping[str, float]) -> dict[str, float]:
    """Weights proportional to the CCC (0 for CCC <= 0); the plain mean when no entry carries anything."""
    raw = {n: max(c, 0.0) for n, c in ccc.items()}
    total = sum(raw.values())
    if total <= 0:
        return {n: 1.0 / len(raw) for n in raw}
    return {n: w / total for n, w in raw.items()}


def _top_rows(pool: Mapping[str, Preds], ccc: Mapping[str, float], ys: Preds, idx: Sequence[int], most: int = 6
              ) -> dict[str, float]:
    """Weights of the best ``k`` rows on ``idx`` (proportional to their CCC), ``k`` in 2..most chosen on ``idx``."""
    names = list(pool)
    ranked = sorted((n for n in names if ccc[n] > 0), key=lambda n: (-ccc[n], names.index(n)))
    if not ranked:
        return {n: 1.0 / len(names) for n in names}
    if len(ranked) == 1:
        return {n: float(n == ranked[0]) for n in names}
    best: tuple[float, dict[str, float]] = (-np.inf, {})
    for k in range(2, min(most, len(ranked)) + 1):
        total = sum(ccc[n] for n in ranked[:k])
        w = {n: (ccc[n] / total if n in ranked[:k] else 0.0) for n in names}
        score = ccc_concatenated(_mean(pool, w, len(ys), idx), [ys[i] for i in idx])
        if score > best[0]:
            best = (score, w)
    return best[1]


def _fit(pool: Mapping[str, Preds], streams: Mapping[str, Preds], ys: Preds, idx: Sequence[int]
         ) -> tuple[str, dict[str, float], dict[str, float]]:
    """What the fitted fusers use, fitted on the subjects ``idx``: the best row, the streams' weights, the top
    rows' weights."""
    row_ccc = _cccs(pool, ys, idx)
    return _best_row(row_ccc), _weights(_cccs(streams, ys, idx)), _top_rows(pool, row_ccc, ys, idx)


def _mean(streams: Mapping[str, Preds], weights: Mapping[str, float], n: int,
          idx: Sequence[int] | None = None) -> list[np.ndarray]:
    """The weighted mean per subject (all ``n`` subjects, or those in ``idx``)."""
    return [np.sum([weights[k] * np.asarray(streams[k][i], dtype=np.float64) for k in streams if weights[k]], axis=0)
            for i in (range(n) if idx is None else idx)]


def select(bilstm: tuple[Preds, Preds], pool: Mapping[str, tuple[Preds, Preds]],
           streams: Mapping[str, tuple[Preds, Preds]], ys: Preds, folds: Sequence[Sequence[int]],
           rule: str = RULES[0], intervals: bool = True) -> Selection:
    """Choose a fuser by its cross-validated devel CCC under ``rule`` (see the module docstring).

    Args:
        bilstm: the paper's fused (devel, test) predictions.
        pool: every unimodal row's (devel, test) predictions, by row name (for ``best-stream``).
        streams: the fusion streams' (devel, test) predictions, by stream name (for ``weighted-mean``).
        ys: devel labels, one array per devel subject (NaN where unlabelled), the order of every devel list.
        folds: devel subject indices per fold (every index in exactly one fold).
        rule: one of :data:`RULES`.
        intervals: compute the CV scores' intervals (the gains' are always computed under ``interval``).
    """
    n = len(ys)
    pool_dev, stream_dev = {k: v[0] for k, v in pool.items()}, {k: v[0] for k, v in streams.items()}
    held: dict[str, dict[int, np.ndarray]] = {f: {} for f in FUSERS}
    for fold in folds:
        rest = [i for i in range(n) if i not in set(fold)]
        row, w, tw = _fit(pool_dev, stream_dev, ys, rest)
        mean, top = _mean(stream_dev, w, n, fold), _mean(pool_dev, tw, n, fold)
        for j, i in enumerate(fold):
            held["bilstm"][i] = np.asarray(bilstm[0][i])
            held["best-stream"][i] = np.asarray(pool[row][0][i])
            held["weighted-mean"][i] = mean[j]
            held["top-rows-mean"][i] = top[j]
    ordered = {f: [held[f][i] for i in range(n)] for f in FUSERS}  # each fuser's held-out predictions
    cv = {f: ccc_concatenated(ordered[f], list(ys)) for f in FUSERS}
    gain = ({f: paired_difference(ordered[f], ordered["bilstm"], ys) for f in FUSERS if f != "bilstm"}
            if intervals or rule == "interval" else {})
    chosen = choose(cv, gain, rule)
    row, w, tw = _fit(pool_dev, stream_dev, ys, list(range(n)))
    n_test = len(bilstm[1])
    fitted = {"bilstm": (list(bilstm[0]), list(bilstm[1])),
              "best-stream": (list(pool[row][0]), list(pool[row][1])),
              "weighted-mean": (_mean(stream_dev, w, n), _mean({k: v[1] for k, v in streams.items()}, w, n_test)),
              "top-rows-mean": (_mean(pool_dev, tw, n), _mean({k: v[1] for k, v in pool.items()}, tw, n_test))}
    devel_ccc = {f: ccc_concatenated(fitted[f][0], list(ys)) for f in FUSERS}
    return Selection(chosen, cv, devel_ccc, {"best-stream": row, "weighted-mean": w,
                                             "top-rows-mean": {k: v for k, v in tw.items() if v}},
                     [np.asarray(p) for p in fitted[chosen][0]], [np.asarray(p) for p in fitted[chosen][1]],
                     rule, {f: ccc_interval(ordered[f], ys) for f in FUSERS} if intervals else {}, gain)


def nested_cv(bilstm: Preds, pool: Mapping[str, Preds], streams: Mapping[str, Preds], ys: Preds,
              folds: Sequence[Sequence[int]], rule: str = RULES[0]) -> float:
    """What :func:`select` as a whole is worth on subjects it never saw (nested cross-validation): for each held-out
    fold, the whole selection (its own inner folds over the other subjects, the winner fitted on them) predicts the
    fold; one CCC over all held-out predictions. The winner's own score in :attr:`Selection.cv_ccc` is the best
    of four estimates, so it is optimistic; this one is not (beyond the rows' seeds and epochs, which were kept on
    the same devel subjects). Arguments as :func:`select` (devel predictions only); NaN where a fold leaves
    fewer than 2 other subjects (no inner folds).

    Examples:
        >>> y = [np.array([0.0, 1.0, 0.0, 1.0]) * (i + 1) for i in range(4)]
        >>> round(nested_cv(y, {"r": y}, {"s": y}, y, [[0, 1], [2, 3]]), 4)  # every fuser is the truth
        1.0
    """

    def predict(rest: list[int], fold: Sequence[int]) -> list[np.ndarray]:
        n_inner = min(len(folds), len(rest))
        inner = [[j for j in range(len(rest)) if j % n_inner == f] for f in range(n_inner)]

        def split(p: Preds) -> tuple[Preds, Preds]:
            return [p[i] for i in rest], [p[i] for i in fold]

        return select(split(bilstm), {k: split(v) for k, v in pool.items()}, {k: split(v) for k, v in streams.items()},
                      [ys[i] for i in rest], inner, rule, intervals=False).test

    return held_out_ccc(ys, folds, predict, least=2)  # fewer than 2 other subjects: no inner folds


def cv_top_mean(pool: Mapping[str, Preds], ys: Preds, folds: Sequence[Sequence[int]], k: int) -> float:
    """Subject-wise cross-validated devel CCC of the plain mean of the ``k`` rows best on devel (``ensemble
    --top``, beyond's ``top4-rows``): on each fold the rows are ranked by their CCC over the other folds' subjects,
    and the mean of the best ``k`` predicts the fold's subjects; one CCC over all held-out predictions. Without it
    that ensemble's devel CCC is optimistic: its rows were ranked on the same subjects. (It removes the ranking's
    optimism only: each row's seed and epoch were still kept on all devel subjects.)

    Examples:
        >>> y = [np.array([0.0, 1.0, 0.0, 1.0]), np.array([1.0, 0.0, 1.0, 0.0])]
        >>> pool = {"good": y, "bad": [-a for a in y], "ok": [a + 0.5 for a in y]}
        >>> round(cv_top_mean(pool, y, [[0], [1]], 2), 4)  # "good" and "ok" ranked first on either subject
        0.8889
    """
    names = list(pool)

    def predict(rest: list[int], fold: Sequence[int]) -> list[np.ndarray]:
        ccc = _cccs(pool, ys, rest)
        best = sorted(names, key=lambda n: (-ccc[n] if not np.isnan(ccc[n]) else np.inf, names.index(n)))[:k]
        return _mean(pool, {n: (1.0 / k if n in best else 0.0) for n in names}, len(ys), fold)

    return held_out_ccc(ys, folds, predict)
