"""Post-processing chosen on devel: each step recovers what it is for, and is kept only when it helps."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from musefusion import fsutil
from musefusion.data import formats
from musefusion.data.segment import delay_later
from musefusion.errors import ConfigError
from musefusion.evaluation.metrics import ccc_concatenated
from musefusion.fusion.postprocess import PostProcess, choose, fit, smooth
from musefusion.fusion.select import select
from tests.cli_helpers import run_cli, the_error_line


def _signals(n_subjects: int = 6, length: int = 400, seed: int = 0) -> list[np.ndarray]:
    """Slow random curves (an emotion trace on the 2 Hz grid)."""
    rng = np.random.default_rng(seed)
    return [smooth(np.cumsum(rng.normal(size=length)) / 10, 15) for _ in range(n_subjects)]


def test_the_affine_correction_restores_a_known_distortion():
    ys = _signals()
    preds = [0.3 * y + 2.0 for y in ys]
    chain, score = fit(preds, ys, delays=(0,), windows=(1,))
    assert chain.affine is not None and chain.delay == 0 and chain.window == 1
    assert np.allclose(np.concatenate(chain.apply(preds)), np.concatenate(ys), atol=1e-9)
    assert score["none"] < 0.2 and score["affine"] == pytest.approx(1.0)


def test_a_known_label_delay_is_recovered():
    """Labels lagging the signal by 7 steps (3.5 s): the chosen delay is 7."""
    signal = _signals(length=500, seed=1)
    ys = [delay_later(s, 7) for s in signal]
    chain, score = fit(signal, ys, windows=(1,), affine=False)
    assert chain.delay == 7 and score["delay"] == pytest.approx(1.0) and score["none"] < score["delay"]


def test_smoothing_is_chosen_for_noisy_predictions_and_nothing_for_perfect_ones():
    ys = _signals(seed=2)
    rng = np.random.default_rng(3)
    noisy = [y + rng.normal(scale=0.5 * y.std(), size=len(y)) for y in ys]
    chain, score = fit(noisy, ys, delays=(0,), affine=False)
    assert chain.window > 1 and score["window"] > score["none"]
    same, _ = fit(ys, ys)
    assert same == PostProcess()  # nothing helps: the identity is kept


def test_the_cross_validated_estimate_chooses_on_other_subjects():
    ys = _signals(n_subjects=6, seed=4)
    preds = [0.5 * y - 1 for y in ys]
    got = choose(preds, ys, folds=[[0, 1], [2, 3], [4, 5]])
    assert got.cv_ccc_before == pytest.approx(ccc_concatenated(preds, ys))
    assert got.cv_ccc > got.cv_ccc_before and got.devel_ccc["affine"] >= got.cv_ccc - 1e-9


def test_the_mean_of_identical_streams_is_the_stream():
    ys = _signals(n_subjects=4, seed=5)
    stream = [0.8 * y for y in ys]
    sel = select(([s.copy() for s in stream], []), {"a": (stream, []), "b": (stream, [])},
                 {"A": (stream, []), "B": ([s.copy() for s in stream], [])}, ys, [[0, 1], [2, 3]])
    assert sel.detail["weighted-mean"] == pytest.approx({"A": 0.5, "B": 0.5})
    means = select(([np.zeros_like(s) for s in stream], []), {"a": (stream, [])},
                   {"A": (stream, []), "B": (stream, [])}, ys, [[0, 1], [2, 3]])
    assert means.devel_ccc["weighted-mean"] == pytest.approx(ccc_concatenated(stream, ys))


def test_bad_values_are_refused():
    with pytest.raises(ConfigError, match="window 4 an odd number"):
        PostProcess(window=4)
    with pytest.raises(ConfigError, match="delay -1"):
        PostProcess(delay=-1)


def test_postprocess_command_writes_a_run_that_scores_what_it_says(synth_stress, tmp_path, capsys):
    run = tmp_path / "run"
    with contextlib.redirect_stdout(io.StringIO()):
        assert run_cli(["train", "--data", synth_stress, "--epochs", "2", "--win-len", "40", "--hop-len", "20",
                        "--model", "lstm", "--out", run]) == 0
    out = tmp_path / "post"
    assert run_cli(["postprocess", run, "--out", out, "--max-delay-s", "3", "--windows", "1", "5", "--json"]) == 0
    m = fsutil.read_json(out / "metrics.json")
    assert m["kind"] == "postprocess" and m["best"]["devel_ccc"] >= m["devel_ccc_before"] - 1e-12
    assert m["devel_ccc_before"] == pytest.approx(fsutil.read_json(run / "metrics.json")["best"]["devel_ccc"],
                                                  abs=1e-6)
    chain = PostProcess(delay=m["chain"]["delay"], window=m["chain"]["window"],
                        affine=tuple(m["chain"]["affine"]) if m["chain"]["affine"] else None)
    src, got = formats.read_predictions(run / "predictions" / "test"), formats.read_predictions(out / "predictions"
                                                                                                 / "test")
    assert set(src) == set(got)
    for sid in src:
        assert np.allclose(got[sid][1], chain.apply([src[sid][1]])[0], atol=1e-5)
    assert run_cli(["evaluate", out]) == 0
    capsys.readouterr()
    for args, match in ((["--max-delay-s", "-1"], "--max-delay-s -1"), (["--windows", "4"], "--windows [4]")):
        assert run_cli(["postprocess", run, "--out", tmp_path / "bad", *args]) == 2
        assert match in the_error_line(capsys.readouterr().err)
    assert not (tmp_path / "bad").exists()
