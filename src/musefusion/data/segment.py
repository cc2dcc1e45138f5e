"""Cut sequences into equal-length windows (train) and pad whole sequences (devel/test), with masks.

Equal-length windows keep the CPU backward pass fast: an LSTM over a packed batch of mixed lengths was measured
at 98 s per batch here, against about 2 s at equal lengths.
"""

from __future__ import annotations

from collections.abc import Sequence as Seq

import numpy as np

from musefusion.errors import ConfigError


def window_starts(n_steps: int, win_len: int, hop_len: int) -> list[int]:
    """Start steps of the windows that cover a sequence of ``n_steps``.

    Windows start every ``hop_len`` steps; one more window is aligned to the end so the tail is covered.
    A sequence shorter than ``win_len`` gives one window at 0 (padded by :func:`make_windows`).

    Raises:
        ConfigError: ``win_len`` or ``hop_len`` is below 1.

    Examples:
        >>> window_starts(10, 4, 3)
        [0, 3, 6]
        >>> window_starts(11, 4, 3)
        [0, 3, 6, 7]
        >>> window_starts(3, 4, 2)
        [0]
    """
    if win_len < 1 or hop_len < 1:
        raise ConfigError(f"win_len ({win_len}) and hop_len ({hop_len}) must be >= 1 (--win-len, --hop-len).")
    if n_steps <= win_len:
        return [0]
    starts = list(range(0, n_steps - win_len + 1, hop_len))
    if starts[-1] + win_len < n_steps:
        starts.append(n_steps - win_len)
    return starts


def make_windows(xs: Seq[np.ndarray], ys: Seq[np.ndarray], win_len: int, hop_len: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cut every sequence into windows of exactly ``win_len`` steps.

    Args:
        xs: inputs, each ``(T_i, d)``.
        ys: labels, each ``(T_i,)`` (NaN = unlabelled).
        win_len: window length in steps.
        hop_len: hop between window starts in steps.

    Returns:
        ``(x, y, mask, origin)``: float32 ``(n_win, win_len, d)``, float32 ``(n_win, win_len)`` (NaN→0),
        bool ``(n_win, win_len)`` that is True on real, labelled steps, and int64 ``(n_win, 2)`` holding
        (sequence index, start step) of each window.
    """
    d = xs[0].shape[1]
    starts = [(i, s) for i, x in enumerate(xs) for s in window_starts(len(x), win_len, hop_len)]
    x_out = np.zeros((len(starts), win_len, d), dtype=np.float32)
    y_out = np.zeros((len(starts), win_len), dtype=np.float32)
    m_out = np.zeros((len(starts), win_len), dtype=bool)
    for k, (i, s) in enumerate(starts):
        xw, yw = xs[i][s:s + win_len], ys[i][s:s + win_len]
        n = len(xw)
        x_out[k, :n] = xw
        labelled = ~np.isnan(yw)
        y_out[k, :n] = np.where(labelled, yw, 0.0)
        m_out[k, :n] = labelled
    return x_out, y_out, m_out, np.array(starts, dtype=np.int64).reshape(-1, 2)


def pad_sequences(xs: Seq[np.ndarray], ys: Seq[np.ndarray] | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pad whole sequences to the longest one.

    Returns:
        ``(x, y, mask)``: float32 ``(n, T_max, d)``, float32 ``(n, T_max)`` (NaN and padding → 0), and bool
        ``(n, T_max)`` True on real steps (and, when ``ys`` is given, labelled ones).
    """
    t_max = max(len(x) for x in xs)
    d = xs[0].shape[1]
    x_out = np.zeros((len(xs), t_max, d), dtype=np.float32)
    y_out = np.zeros((len(xs), t_max), dtype=np.float32)
    m_out = np.zeros((len(xs), t_max), dtype=bool)
    for i, x in enumerate(xs):
        x_out[i, :len(x)] = x
        m_out[i, :len(x)] = True
        if ys is not None:
            labelled = ~np.isnan(ys[i])
            y_out[i, :len(x)] = np.where(labelled, ys[i], 0.0)
            m_out[i, :len(x)] &= labelled
    return x_out, y_out, m_out


def delay_later(p: np.ndarray, delay: int) -> np.ndarray:
    """``p`` moved ``delay`` steps later (``p'(t) = p(t - delay)``), its first value held at the start.

    Examples:
        >>> delay_later(np.array([1.0, 2.0, 3.0, 4.0]), 2).tolist()
        [1.0, 1.0, 1.0, 2.0]
    """
    if delay == 0 or len(p) == 0:
        return p
    d = min(delay, len(p))
    return np.concatenate([np.full(d, p[0]), p[:len(p) - d]])


def labels_earlier(y: np.ndarray, delay: int) -> np.ndarray:
    """Labels moved ``delay`` steps earlier (``y'(t) = y(t + delay)``; the last ``delay`` steps unlabelled): what a
    model fits when annotations lag the signal by ``delay`` steps.

    Examples:
        >>> labels_earlier(np.array([1.0, 2.0, 3.0, 4.0]), 1).tolist()
        [2.0, 3.0, 4.0, nan]
    """
    if delay == 0 or len(y) == 0:
        return y
    d = min(delay, len(y))
    return np.concatenate([y[d:], np.full(d, np.nan, dtype=y.dtype)]).astype(y.dtype)
