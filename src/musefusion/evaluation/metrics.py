r"""Concordance correlation coefficient (CCC), defined once, and the two ways MuSe aggregates it.

.. math::
    \mathrm{CCC} = \frac{2\rho\sigma_{\hat y}\sigma_y}{\sigma_{\hat y}^2 + \sigma_y^2 + (\mu_{\hat y}-\mu_y)^2}
    = \frac{2\,\mathrm{cov}(\hat y, y)}{\sigma_{\hat y}^2 + \sigma_y^2 + (\mu_{\hat y}-\mu_y)^2}

(paper Eq. 21). Variances and covariance are *population* moments (ddof=0), as in the MuSe loss.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

#: Lower bound of the CCC denominator so a constant prediction of a constant target gives 0, not NaN.
EPS = 1e-12


def ccc_masked(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
               dim: int | tuple[int, ...] | None = None) -> torch.Tensor:
    """CCC over the masked elements of ``pred`` and ``target`` (the single definition; differentiable).

    Args:
        pred: predictions, any shape.
        target: labels, same shape.
        mask: bool/0-1 weights of the same shape; False elements are ignored (default: all used).
        dim: dimension(s) to reduce; None reduces everything to a scalar.

    Returns:
        CCC with ``dim`` reduced. With no valid element, or zero variance in both, the result is 0.

    Examples:
        >>> y = torch.tensor([0.1, 0.4, 0.2, 0.9])
        >>> round(float(ccc_masked(y, y)), 4), round(float(ccc_masked(-y + 1.2, y)), 4) < 0
        (1.0, True)
    """
    if mask is None:
        w = torch.ones_like(pred)
    else:
        w = mask.to(pred.dtype)
    n = w.sum(dim=dim, keepdim=True).clamp_min(1.0)
    mu_p = (pred * w).sum(dim=dim, keepdim=True) / n
    mu_t = (target * w).sum(dim=dim, keepdim=True) / n
    dp, dt = (pred - mu_p) * w, (target - mu_t) * w
    var_p = (dp * dp).sum(dim=dim, keepdim=True) / n
    var_t = (dt * dt).sum(dim=dim, keepdim=True) / n
    cov = (dp * dt).sum(dim=dim, keepdim=True) / n
    out = 2 * cov / (var_p + var_t + (mu_p - mu_t) ** 2).clamp_min(EPS)
    if dim is None:
        return out.reshape(())
    return out.squeeze(dim) if isinstance(dim, int) else out.reshape([s for i, s in enumerate(out.shape)
                                                                     if i not in dim])


def _valid(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64).ravel()
    target = np.asarray(target, dtype=np.float64).ravel()
    if pred.shape != target.shape:
        raise ValueError(f"pred has {pred.size} values but target {target.size}; they must match.")
    ok = ~(np.isnan(pred) | np.isnan(target))
    return pred[ok], target[ok]


def ccc(pred: np.ndarray, target: np.ndarray) -> float:
    """CCC of two arrays (NaN pairs ignored), computed by :func:`ccc_masked` in float64.

    Raises:
        ValueError: the arrays have different sizes.

    Examples:
        >>> ccc(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]))
        1.0
        >>> ccc(np.array([1.0, 2.0, 3.0]), np.array([-1.0, -2.0, -3.0])) < 0
        True
    """
    p, t = _valid(pred, target)
    if p.size == 0:
        return float("nan")
    return float(round(float(ccc_masked(torch.from_numpy(p), torch.from_numpy(t))), 10))


def ccc_concatenated(preds: Sequence[np.ndarray], targets: Sequence[np.ndarray]) -> float:
    """The MuSe challenge score: one CCC over all sequences concatenated.

    Examples:
        >>> ccc_concatenated([np.array([0.0, 1.0])], [np.array([0.0, 1.0])])
        1.0
    """
    if len(preds) == 0:
        return float("nan")
    return ccc(np.concatenate([np.ravel(p) for p in preds]), np.concatenate([np.ravel(t) for t in targets]))


def held_out_ccc(ys: Sequence[np.ndarray], folds: Sequence[Sequence[int]],
                 predict: Callable[[list[int], Sequence[int]], Sequence[np.ndarray]], least: int = 1) -> float:
    """Subject-wise cross-validated CCC: for each fold, ``predict(rest, fold)`` fits on the other subjects ``rest``
    and returns the fold's predictions (in its order); one :func:`ccc_concatenated` over every held-out prediction.
    NaN where a fold leaves fewer than ``least`` other subjects (an estimate over some folds only would not be
    comparable).

    Examples:
        >>> ys = [np.array([0.0, 1.0]), np.array([1.0, 0.0])]
        >>> held_out_ccc(ys, [[0], [1]], lambda rest, fold: [ys[i] for i in fold])
        1.0
        >>> held_out_ccc(ys, [[0, 1]], lambda rest, fold: [ys[i] for i in fold])
        nan
    """
    held_p: list[np.ndarray] = []
    held_y: list[np.ndarray] = []
    for fold in folds:
        inside = set(fold)
        rest = [i for i in range(len(ys)) if i not in inside]
        if len(rest) < least:
            return float("nan")
        held_p += list(predict(rest, fold))
        held_y += [ys[i] for i in fold]
    return ccc_concatenated(held_p, held_y)


def ccc_per_sequence_mean(preds: Sequence[np.ndarray], targets: Sequence[np.ndarray]) -> float:
    """The mean of per-sequence (per-subject) CCCs, reported beside the challenge score.

    Examples:
        >>> ccc_per_sequence_mean([np.array([0.0, 1.0]), np.array([1.0, 0.0])], [np.array([0.0, 1.0])] * 2)
        0.0
    """
    vals = [ccc(p, t) for p, t in zip(preds, targets, strict=True)]
    vals = [v for v in vals if not np.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def pcc(pred: np.ndarray, target: np.ndarray) -> float:
    """Pearson correlation (NaN pairs ignored; 0 when either side is constant)."""
    p, t = _valid(pred, target)
    if p.size < 2 or p.std() == 0 or t.std() == 0:
        return 0.0
    return float(np.corrcoef(p, t)[0, 1])


def rmse(pred: np.ndarray, target: np.ndarray) -> float:
    """Root mean squared error (NaN pairs ignored)."""
    p, t = _valid(pred, target)
    return float(np.sqrt(np.mean((p - t) ** 2))) if p.size else float("nan")
