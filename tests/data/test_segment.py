"""Windowing for training (equal-length windows) and padding for evaluation, with masks."""

from __future__ import annotations

import numpy as np
import pytest

from musefusion.data.segment import make_windows, pad_sequences, window_starts
from musefusion.errors import ConfigError

CASES = [(10, 4, 3), (11, 4, 3), (3, 4, 2), (4, 4, 1), (300, 300, 50), (301, 300, 50), (1000, 300, 50),
         (777, 100, 100), (50, 7, 7), (1, 1, 1), (2, 1, 1)]


@pytest.mark.parametrize(("n_steps", "win_len", "hop_len"), CASES)
def test_window_starts_cover_every_step_once_in_order(n_steps, win_len, hop_len):
    starts = window_starts(n_steps, win_len, hop_len)
    assert starts[0] == 0
    assert starts == sorted(set(starts))
    covered = np.zeros(n_steps, dtype=int)
    for s in starts:
        covered[s:s + win_len] += 1
    assert (covered >= 1).all()
    if n_steps >= win_len:
        assert all(s + win_len <= n_steps for s in starts)  # no window runs past the end
        assert starts[-1] == n_steps - win_len  # the tail is covered by an end-aligned window
        assert all(b - a <= hop_len for a, b in zip(starts, starts[1:], strict=False))
        assert all(b - a == hop_len for a, b in zip(starts[:-2], starts[1:-1], strict=True))
    else:
        assert starts == [0]


@pytest.mark.parametrize(("win_len", "hop_len"), [(0, 1), (5, 0), (-1, -1)])
def test_window_starts_rejects_bad_lengths(win_len, hop_len):
    with pytest.raises(ConfigError, match=r"win_len .* and hop_len .* must be >= 1"):
        window_starts(10, win_len, hop_len)


def _sequences(rng, lengths, d=3, nan_at=()):
    xs = [rng.normal(size=(n, d)).astype(np.float32) for n in lengths]
    ys = [rng.normal(size=n).astype(np.float32) for n in lengths]
    for i, steps in nan_at:
        ys[i][steps] = np.nan
    return xs, ys


def test_make_windows_copies_the_right_steps_and_masks_only_labelled_real_ones():
    rng = np.random.default_rng(0)
    lengths = [23, 7, 10, 31]
    xs, ys = _sequences(rng, lengths, nan_at=[(0, slice(4, 9)), (3, slice(29, 31))])
    win, hop = 10, 4
    x, y, mask, origin = make_windows(xs, ys, win, hop)
    expected_origin = [(i, s) for i, n in enumerate(lengths) for s in window_starts(n, win, hop)]
    assert origin.tolist() == [list(o) for o in expected_origin]
    assert x.shape == (len(expected_origin), win, 3) and x.dtype == np.float32
    assert y.shape == mask.shape == (len(expected_origin), win)
    assert y.dtype == np.float32 and mask.dtype == bool
    seen = [np.zeros(n, dtype=bool) for n in lengths]
    for k, (i, s) in enumerate(origin):
        n = min(win, lengths[i] - s)
        np.testing.assert_array_equal(x[k, :n], xs[i][s:s + n])
        labelled = ~np.isnan(ys[i][s:s + n])
        np.testing.assert_array_equal(mask[k, :n], labelled)
        np.testing.assert_array_equal(y[k, :n][labelled], ys[i][s:s + n][labelled])
        assert (y[k, :n][~labelled] == 0).all()  # NaN labels become 0 under a False mask
        assert not mask[k, n:].any() and (x[k, n:] == 0).all() and (y[k, n:] == 0).all()  # padding
        seen[i][s:s + n] = True
    assert all(s.all() for s in seen)  # every step of every sequence is in some window
    assert not np.isnan(y).any() and not np.isnan(x).any()


def test_make_windows_pads_a_short_sequence_into_one_window():
    rng = np.random.default_rng(1)
    xs, ys = _sequences(rng, [5], d=2)
    x, y, mask, origin = make_windows(xs, ys, win_len=8, hop_len=2)
    assert x.shape == (1, 8, 2) and origin.tolist() == [[0, 0]]
    np.testing.assert_array_equal(x[0, :5], xs[0])
    np.testing.assert_array_equal(y[0, :5], ys[0])
    assert mask[0].tolist() == [True] * 5 + [False] * 3
    assert (x[0, 5:] == 0).all() and (y[0, 5:] == 0).all()


def test_make_windows_of_an_unlabelled_sequence_masks_everything():
    rng = np.random.default_rng(2)
    xs, ys = _sequences(rng, [12], nan_at=[(0, slice(None))])
    x, y, mask, _ = make_windows(xs, ys, win_len=5, hop_len=5)
    assert x.shape == (3, 5, 3) and not mask.any() and (y == 0).all()
    assert np.abs(x).sum() > 0


def test_pad_sequences_shapes_and_masks():
    rng = np.random.default_rng(3)
    lengths = [4, 9, 1]
    xs, ys = _sequences(rng, lengths, d=2, nan_at=[(1, [0, 5])])
    x, y, mask = pad_sequences(xs, ys)
    assert x.shape == (3, 9, 2) and y.shape == mask.shape == (3, 9)
    assert x.dtype == y.dtype == np.float32 and mask.dtype == bool
    for i, n in enumerate(lengths):
        np.testing.assert_array_equal(x[i, :n], xs[i])
        assert (x[i, n:] == 0).all() and (y[i, n:] == 0).all() and not mask[i, n:].any()
        labelled = ~np.isnan(ys[i])
        np.testing.assert_array_equal(mask[i, :n], labelled)
        np.testing.assert_array_equal(y[i, :n], np.where(labelled, ys[i], 0))
    assert mask[1].tolist() == [False, True, True, True, True, False, True, True, True]


def test_pad_sequences_without_labels_masks_the_real_steps():
    rng = np.random.default_rng(4)
    xs, _ = _sequences(rng, [3, 6], d=4)
    x, y, mask = pad_sequences(xs)
    assert mask.tolist() == [[True] * 3 + [False] * 3, [True] * 6]
    assert (y == 0).all()
    np.testing.assert_array_equal(x[0, :3], xs[0])
