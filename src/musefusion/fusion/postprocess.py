"""Post-processing of prediction sequences chosen on devel, each step kept only when it helps (AVEC 2018).

Three steps, applied per subject in this order:

1. ``delay``: predictions shifted ``d`` steps later (``p'(t) = p(t - d)``, the first value held; the shift a run
   trained with ``label_delay`` applies to its outputs, ``data.segment.delay_later``), for labels
   that lag the signal (annotators react late; AVEC 2018 searched 0-9.6 s and kept 3.2-4.0 s);
2. ``window``: a centred moving average over ``w`` steps (edges use the nearest values);
3. ``affine``: bias and scale correction, ``p' = (p - mean_p) * std_y / std_p + mean_y`` with the moments of the
   devel predictions (after steps 1-2) and devel labels, so the predictions take the labels' level and spread (a
   CCC counts both).

Each step is chosen greedily on the devel predictions (delay from ``delays``, then window from ``windows``, then
the affine correction on or off) and kept only when it raises the devel CCC (one CCC over all devel subjects);
the chosen chain then applies unchanged to test. The devel CCC of a chain chosen on devel is optimistic, so
:func:`choose` also reports a subject-wise cross-validated CCC: for each of ``folds`` folds of devel subjects the
chain is chosen on the other folds and scored on the held-out one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from musefusion.data.segment import delay_later
from musefusion.errors import ConfigError
from musefusion.evaluation.metrics import ccc_concatenated, held_out_ccc

#: Default search: delays of 0-10 s (20 steps of 500 ms), moving-average windows in steps.
DELAYS = tuple(range(0, 21))
WINDOWS = (1, 3, 5, 9, 15, 21, 31)


@dataclasses.dataclass(frozen=True)
class PostProcess:
    """A chain of post-processing steps (the identity by default)."""

    delay: int = 0  # steps the predictions are shifted later (0: none)
    window: int = 1  # centred moving-average window in steps (1: none)
    affine: tuple[float, float, float, float] | None = None  # (mean_p, std_p, mean_y, std_y), or None

    def __post_init__(self) -> None:
        if self.delay < 0 or self.window < 1 or self.window % 2 == 0:
            raise ConfigError(f"PostProcess: delay {self.delay} must be >= 0 and window {self.window} an odd number "
                              ">= 1.")

    def apply(self, preds: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The chain applied to each subject's prediction sequence."""
        return [self._affine(smooth(delay_later(np.asarray(p, dtype=float), self.delay), self.window)) for p in preds]

    def _affine(self, p: np.ndarray) -> np.ndarray:
        if self.affine is None:
            return p
        mp, sp, my, sy = self.affine
        return (p - mp) * (sy / sp if sp > 0 else 1.0) + my

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"delay": self.delay, "delay_s": self.delay * 0.5, "window": self.window,
                "affine": list(self.affine) if self.affine is not None else None}


def smooth(p: np.ndarray, window: int) -> np.ndarray:
    """A centred moving average of ``window`` steps (``window`` odd; the edges padded with the nearest value)."""
    if window == 1 or len(p) == 0:
        return p
    half = window // 2
    padded = np.concatenate([np.full(half, p[0]), p, np.full(half, p[-1])])
    return np.convolve(padded, np.ones(window) / window, mode="valid")


def _affine_params(preds: Sequence[np.ndarray], ys: Sequence[np.ndarray]) -> tuple[float, float, float, float]:
    p, y = np.concatenate(preds), np.concatenate(ys)
    ok = np.isfinite(p) & np.isfinite(y)
    return float(p[ok].mean()), float(p[ok].std()), float(y[ok].mean()), float(y[ok].std())


def fit(preds: Sequence[np.ndarray], ys: Sequence[np.ndarray], delays: Sequence[int] = DELAYS,
        windows: Sequence[int] = WINDOWS, affine: bool = True) -> tuple[PostProcess, dict[str, float]]:
    """The chain chosen greedily on ``preds`` against ``ys``: each step kept only when it raises the CCC.

    Returns:
        The chain and the CCC after each stage (``none``, ``delay``, ``window``, ``affine``).
    """
    chain = PostProcess()
    score = {"none": ccc_concatenated(list(preds), list(ys))}
    best = score["none"]
    for d in delays:
        s = ccc_concatenated(PostProcess(delay=d).apply(preds), list(ys))
        if s > best + 1e-12:
            best, chain = s, PostProcess(delay=d)
    score["delay"] = best
    for w in windows:
        cand = dataclasses.replace(chain, window=w)
        s = ccc_concatenated(cand.apply(preds), list(ys))
        if s > best + 1e-12:
            best, chain = s, cand
    score["window"] = best
    if affine:
        cand = dataclasses.replace(chain, affine=_affine_params(chain.apply(preds), ys))
        s = ccc_concatenated(cand.apply(preds), list(ys))
        if s > best + 1e-12:
            best, chain = s, cand
    score["affine"] = best
    return chain, score


@dataclasses.dataclass(frozen=True)
class Choice:
    """What :func:`choose` found."""

    chain: PostProcess  # chosen on every devel subject
    devel_ccc: dict[str, float]  # the CCC on devel before and after each stage (optimistic: chosen there)
    cv_ccc: float  # the chain chosen on the other folds' subjects, scored on each held-out fold (one CCC)
    cv_ccc_before: float  # the raw predictions' CCC over the same subjects (equals devel_ccc["none"])


def choose(preds: Sequence[np.ndarray], ys: Sequence[np.ndarray], folds: Sequence[Sequence[int]],
           delays: Sequence[int] = DELAYS, windows: Sequence[int] = WINDOWS, affine: bool = True) -> Choice:
    """Choose a chain on devel and estimate what it is worth on subjects it was not chosen on.

    Args:
        preds: one devel prediction array per subject.
        ys: their labels, aligned.
        folds: the subject indices of each fold (k-fold over devel subjects).
        delays, windows: the delays and moving-average windows searched (in steps).
        affine: also search the bias and scale correction.
    """
    chain, score = fit(preds, ys, delays, windows, affine)

    def predict(rest: list[int], fold: Sequence[int]) -> list[np.ndarray]:
        sub, _ = fit([preds[i] for i in rest], [ys[i] for i in rest], delays, windows, affine)
        return sub.apply([preds[i] for i in fold])

    cv = held_out_ccc(ys, folds, predict)
    return Choice(chain, score, cv, score["none"])
