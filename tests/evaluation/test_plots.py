"""Plots are drawn from the files of a run directory."""

from __future__ import annotations

import numpy as np
import pandas as pd

from musefusion.data import formats
from musefusion.evaluation.plots import plot_learning_curves, plot_predictions
from musefusion.rundir import RunDir

PNG = b"\x89PNG\r\n\x1a\n"


def test_learning_curves_from_history_files(tmp_path):
    for seed in (1, 2):
        (tmp_path / f"seed_{seed}").mkdir()
        pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [0.9, 0.7, 0.6], "devel_ccc": [0.1, np.nan, 0.4]}).to_csv(
            tmp_path / f"seed_{seed}" / "history.csv", index=False)
    path = plot_learning_curves(tmp_path)
    assert path == tmp_path / "plots" / "learning_curves.png"
    assert path.read_bytes().startswith(PNG)
    assert not list((tmp_path / "plots").glob("*.tmp*"))


def test_no_history_no_plot(tmp_path):
    assert plot_learning_curves(tmp_path) is None
    assert not (tmp_path / "plots").exists()


def test_prediction_plot_draws_only_subjects_with_labels(tmp_path):
    ts = np.arange(20) * 500
    formats.write_predictions(RunDir(tmp_path).predictions("devel"), {"1": (ts, np.sin(ts / 1e3)), "2": (ts, np.cos(ts / 1e3))})
    out = tmp_path / "p.png"
    assert plot_predictions(tmp_path / "predictions" / "devel", {"1": (ts, np.sin(ts / 1e3))}, out) == out
    assert out.read_bytes().startswith(PNG)
    assert plot_predictions(tmp_path / "predictions" / "devel", {"9": (ts, ts)}, tmp_path / "q.png") is None
    assert plot_predictions(tmp_path / "nothing", {"1": (ts, ts)}, tmp_path / "r.png") is None
    assert not (tmp_path / "q.png").exists() and not (tmp_path / "r.png").exists()
