r"""Subject-level uncertainty of a CCC: the interval every score carries and the paired test where two systems meet.

A MuSe score is one CCC over every subject's sequence concatenated (:func:`musefusion.evaluation.metrics.
ccc_concatenated`), and with 14 devel and 14 test subjects the subjects, not the steps, are the unit of sampling:
neighbouring 2 Hz steps are strongly correlated, so resampling steps would give intervals far too narrow. The
bootstrap here resamples **subjects** with replacement (``scipy.stats.bootstrap``, percentile method, 1000
resamples, 95 %, seeded), recomputes the concatenated CCC of each resample, and reports the 2.5 and 97.5
percentiles.

The concatenated CCC depends on the data only through six sums per subject (steps, Σŷ, Σy, Σŷ², Σy², Σŷy), so a
resample's CCC is the CCC of the summed sums: every resample costs one small matrix product, whatever the length of
the recordings. The paired form resamples the same subjects for two systems scored on the same labels and gives
the interval of their difference; it excludes 0 only where the difference is larger than subject sampling explains.

Percentile rather than BCa: BCa's jackknife needs the statistic on every leave-one-out subset, and with 2-3
subjects in a fold (a cross-validated estimate) or identical subjects it is undefined; the percentile interval is
always defined and is what the MuSe literature reports where it reports one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np

#: Resamples, confidence level and seed of every interval (``--bootstrap`` options are not offered: one protocol).
N_RESAMPLES = 1000
LEVEL = 0.95
SEED = 0


@dataclasses.dataclass(frozen=True)
class Interval:
    """A ``LEVEL`` bootstrap interval (NaN bounds where it is undefined: fewer than 2 subjects)."""

    low: float
    high: float

    @property
    def defined(self) -> bool:
        """Both bounds are numbers."""
        return not (math.isnan(self.low) or math.isnan(self.high))

    def excludes_zero(self) -> bool:
        """Whether 0 lies outside the interval (False where it is undefined).

        Examples:
            >>> Interval(0.01, 0.2).excludes_zero(), Interval(-0.1, 0.2).excludes_zero()
            (True, False)
        """
        return self.defined and (self.low > 0 or self.high < 0)

    def as_list(self) -> list[float | None]:
        """``[low, high]`` for JSON (None for NaN)."""
        return [None if math.isnan(v) else round(v, 6) for v in (self.low, self.high)]

    def __str__(self) -> str:
        return f"[{self.low:.3f}, {self.high:.3f}]" if self.defined else "[n/a]"

    @classmethod
    def from_json(cls, value: object) -> Interval:
        """From :meth:`as_list`'s output (anything else gives an undefined interval)."""
        if isinstance(value, (list, tuple)) and len(value) == 2:
            lo, hi = (float("nan") if v is None else float(v) for v in value)
            return cls(lo, hi)
        return UNDEFINED


UNDEFINED = Interval(float("nan"), float("nan"))


def subject_interval(statistic: Callable[[np.ndarray], np.ndarray], n: int, n_resamples: int = N_RESAMPLES,
                     level: float = LEVEL, seed: int = SEED) -> Interval:
    """The percentile bootstrap interval of ``statistic`` over ``n`` subjects resampled with replacement.

    Args:
        statistic: takes an integer array of subject indices of shape ``(..., n)`` (one resample per row) and
            returns one value per row (vectorised, as ``scipy.stats.bootstrap`` calls it).
        n: number of subjects.
        n_resamples: bootstrap resamples.
        level: the interval's confidence level.
        seed: seeds the resampling (the same seed gives the same interval).

    Examples:
        >>> values = np.arange(10.0)
        >>> iv = subject_interval(lambda idx: values[idx].mean(axis=-1), 10)
        >>> iv.low < 4.5 < iv.high
        True
    """
    if n < 2:
        return UNDEFINED
    from scipy import stats  # scipy.stats: imported on first use, so the CLI starts quickly

    def along_last(idx: np.ndarray, axis: int = -1) -> np.ndarray:  # scipy passes axis=-1: resamples are rows
        return statistic(np.asarray(idx, dtype=np.intp))

    res = stats.bootstrap((np.arange(n),), along_last, vectorized=True, n_resamples=n_resamples,
                          confidence_level=level, method="percentile", random_state=np.random.default_rng(seed))
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return Interval(lo, hi)


def _sums(preds: Sequence[np.ndarray], ys: Sequence[np.ndarray]) -> np.ndarray:
    """Per subject: (steps, Σŷ, Σy, Σŷ², Σy², Σŷy) over the steps where both are numbers; shape ``(n, 6)``."""
    out = np.zeros((len(ys), 6))
    for i, (p, y) in enumerate(zip(preds, ys, strict=True)):
        p = np.asarray(p, dtype=np.float64).ravel()
        y = np.asarray(y, dtype=np.float64).ravel()
        if p.shape != y.shape:
            raise ValueError(f"subject {i}: {p.size} predictions but {y.size} labels; they must match.")
        ok = ~(np.isnan(p) | np.isnan(y))
        p, y = p[ok], y[ok]
        out[i] = (p.size, p.sum(), y.sum(), (p * p).sum(), (y * y).sum(), (p * y).sum())
    return out


def _ccc_from_sums(s: np.ndarray) -> np.ndarray:
    """The concatenated CCC from summed per-subject sums (last axis the six sums; population moments)."""
    n = np.maximum(s[..., 0], 1.0)
    mp, my = s[..., 1] / n, s[..., 2] / n
    vp, vy = s[..., 3] / n - mp ** 2, s[..., 4] / n - my ** 2
    cov = s[..., 5] / n - mp * my
    return np.asarray(2 * cov / np.maximum(vp + vy + (mp - my) ** 2, 1e-12))


def concatenated_ccc(preds: Sequence[np.ndarray], ys: Sequence[np.ndarray]) -> float:
    """The concatenated CCC from the per-subject sums, in NumPy (what :func:`musefusion.evaluation.metrics.
    ccc_concatenated` gives, to rounding, without importing torch).

    Examples:
        >>> concatenated_ccc([np.array([0.0, 1.0])], [np.array([0.0, 1.0])])
        1.0
    """
    return float(_resampled_ccc(_sums(preds, ys))(np.arange(len(ys)))) if len(ys) else float("nan")


def _resampled_ccc(sums: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    def statistic(idx: np.ndarray) -> np.ndarray:
        return _ccc_from_sums(sums[idx].sum(axis=-2))
    return statistic


def ccc_interval(preds: Sequence[np.ndarray], ys: Sequence[np.ndarray], n_resamples: int = N_RESAMPLES,
                 level: float = LEVEL, seed: int = SEED) -> Interval:
    """The subject-level bootstrap interval of the concatenated CCC (one prediction and label array per subject).

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> ys = [rng.normal(size=50) for _ in range(14)]
        >>> iv = ccc_interval([y + rng.normal(size=50) for y in ys], ys)
        >>> 0.3 < iv.low < iv.high < 0.8
        True
    """
    return subject_interval(_resampled_ccc(_sums(preds, ys)), len(ys), n_resamples, level, seed)


@dataclasses.dataclass(frozen=True)
class Difference:
    """``ccc(a) - ccc(b)`` on the same subjects, with its paired bootstrap interval."""

    delta: float
    interval: Interval

    @property
    def verdict(self) -> str:
        """``a higher`` / ``b higher`` where the interval excludes 0, else ``indistinguishable``."""
        if not self.interval.excludes_zero():
            return "indistinguishable"
        return "a higher" if self.delta > 0 else "b higher"


def paired_difference(a: Sequence[np.ndarray], b: Sequence[np.ndarray], ys: Sequence[np.ndarray],
                      n_resamples: int = N_RESAMPLES, level: float = LEVEL, seed: int = SEED) -> Difference:
    """The CCC difference of two systems' predictions of the same subjects and its paired bootstrap interval
    (every resample draws the same subjects for both).

    Examples:
        >>> rng = np.random.default_rng(1)
        >>> ys = [rng.normal(size=40) for _ in range(14)]
        >>> good = [y + 0.3 * rng.normal(size=40) for y in ys]
        >>> noisy = [y + 2.0 * rng.normal(size=40) for y in ys]
        >>> paired_difference(good, noisy, ys).verdict, paired_difference(good, good, ys).verdict
        ('a higher', 'indistinguishable')
    """
    ccc_a, ccc_b = _resampled_ccc(_sums(a, ys)), _resampled_ccc(_sums(b, ys))

    def statistic(idx: np.ndarray) -> np.ndarray:
        return ccc_a(idx) - ccc_b(idx)

    delta = float(statistic(np.arange(len(ys)))) if len(ys) else float("nan")
    return Difference(delta, subject_interval(statistic, len(ys), n_resamples, level, seed))
