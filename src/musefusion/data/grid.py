"""Put feature rows onto the 500 ms label grid by timestamp (never by row position)."""

from __future__ import annotations

import numpy as np

from musefusion.types import STEP_MS, FillPolicy


def align_to_grid(grid_ms: np.ndarray, ts_ms: np.ndarray, values: np.ndarray,
                  step_ms: int = STEP_MS) -> tuple[np.ndarray, np.ndarray]:
    """Average the feature rows that fall in each grid step's bin ``[t - step/2, t + step/2)``.

    A row with any NaN counts as missing (e.g. no face found). Files that start at 0 or 500 ms, end early or
    late, or miss rows all align the same way; rows outside every bin are ignored.

    Args:
        grid_ms: label timestamps, int ms, increasing, shape ``(T,)``.
        ts_ms: feature timestamps, int ms, increasing, shape ``(n,)``.
        values: feature rows, shape ``(n, d)``.
        step_ms: grid step (500 ms in MuSe).

    Returns:
        ``(aligned, observed)``: float32 ``(T, d)`` with NaN rows where no feature row fell in the bin, and
        bool ``(T,)`` telling which steps had at least one real row.

    Examples:
        >>> a, m = align_to_grid(np.array([0, 500, 1000]), np.array([500, 1000]), np.array([[1.0], [2.0]]))
        >>> a[:, 0].tolist(), m.tolist()
        ([nan, 1.0, 2.0], [False, True, True])
    """
    grid_ms = np.asarray(grid_ms, dtype=np.int64)
    ts_ms = np.asarray(ts_ms, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    half = step_ms / 2.0
    valid = ~np.isnan(values).any(axis=1)
    ts_v, val_v = ts_ms[valid], values[valid]
    lo = np.searchsorted(ts_v, grid_ms - half, side="left")
    hi = np.searchsorted(ts_v, grid_ms + half, side="left")
    counts = hi - lo
    out = np.full((len(grid_ms), values.shape[1]), np.nan, dtype=np.float64)
    single = counts == 1
    out[single] = val_v[lo[single]]  # exact copy where one row per step (the usual 2 Hz case)
    multi = counts > 1
    if multi.any():
        csum = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(val_v, axis=0)])
        out[multi] = (csum[hi[multi]] - csum[lo[multi]]) / counts[multi, None]
    return out.astype(np.float32), counts > 0


def fill_missing(x: np.ndarray, observed: np.ndarray, policy: FillPolicy) -> np.ndarray:
    """Fill unobserved steps of an aligned (already normalised) block in place and return it.

    Args:
        x: shape ``(T, d)``; rows where ``observed`` is False are replaced.
        observed: bool ``(T,)``.
        policy: ``zero`` puts 0 (the train mean after normalisation); ``ffill`` carries the last observed row
            forward and the first observed row backward over a leading gap (0 if nothing was observed).

    Examples:
        >>> x = np.array([[np.nan], [1.0], [np.nan]], dtype=np.float32)
        >>> fill_missing(x.copy(), np.array([False, True, False]), FillPolicy.FFILL)[:, 0].tolist()
        [1.0, 1.0, 1.0]
    """
    if observed.all():
        return x
    if policy == FillPolicy.ZERO or not observed.any():
        x[~observed] = 0.0
        return x
    idx = np.where(observed, np.arange(len(observed)), -1)
    np.maximum.accumulate(idx, out=idx)
    first = int(np.flatnonzero(observed)[0])
    idx[idx < 0] = first
    return x[idx]


def step_grid(duration_s: float, step_ms: int = STEP_MS) -> np.ndarray:
    """The label grid of a recording: ``0, step, 2*step, ...`` ms up to its duration (inclusive).

    Examples:
        >>> step_grid(1.6).tolist()
        [0, 500, 1000, 1500]
    """
    n = int(np.floor(max(duration_s, 0.0) * 1000.0 / step_ms + 1e-9)) + 1
    return np.arange(n, dtype=np.int64) * step_ms
