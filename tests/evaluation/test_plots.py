"""Plots are drawn from the files of a run directory."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from musefusion.data import formats
from musefusion.evaluation import plots
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


def _drawn(monkeypatch) -> list:
    """The figures the plot functions save (kept open for inspection)."""
    figs = []
    real = plots._save

    def keep(fig, path):
        figs.append((fig, path))
        return real(plt.figure(), path)  # the file is still written (from an empty figure)

    monkeypatch.setattr(plots, "_save", keep)
    return figs


def _history(run: Path, devel: list[float]) -> None:
    (run / "seed_1").mkdir(parents=True)
    pd.DataFrame({"epoch": np.arange(1, len(devel) + 1), "train_loss": np.linspace(0.99, 0.9, len(devel)),
                  "devel_ccc": devel}).to_csv(run / "seed_1" / "history.csv", index=False)


def test_ccc_axes_are_fixed_and_the_title_names_the_run(tmp_path, monkeypatch):
    """A devel CCC creeping from 0.001 to 0.007 is drawn on the fixed [-0.1, 1] axis, not blown up to fill it."""
    figs = _drawn(monkeypatch)
    _history(tmp_path, [0.001, 0.004, 0.007])
    plot_learning_curves(tmp_path, title="egemaps lstm, arousal, fit train")
    fig, _ = figs[-1]
    loss_ax, ccc_ax = fig.axes
    assert ccc_ax.get_ylim() == plots.CCC_LIMITS
    assert fig._suptitle.get_text() == "egemaps lstm, arousal, fit train"


def test_a_run_without_devel_scores_has_no_devel_panel(tmp_path, monkeypatch):
    """A final (train+devel) model: its learning curves show the train loss only."""
    figs = _drawn(monkeypatch)
    _history(tmp_path, [np.nan, np.nan])
    plot_learning_curves(tmp_path)
    fig, _ = figs[-1]
    assert len(fig.axes) == 1 and fig.axes[0].get_ylabel().startswith("train loss")


def test_an_in_sample_devel_plot_says_so(tmp_path, monkeypatch):
    figs = _drawn(monkeypatch)
    ts = np.arange(20) * 500
    formats.write_predictions(RunDir(tmp_path).predictions("devel"), {"1": (ts, np.sin(ts / 1e3))})
    seq = SimpleNamespace(id="1", timestamps=ts, y=np.sin(ts / 1e3))
    data = SimpleNamespace(partition=lambda part: [seq] if part == "devel" else [],
                           config=SimpleNamespace(target="arousal", features=("egemaps",)))
    plots.plot_run(tmp_path, data, name="egemaps lstm, arousal, fit train+devel", in_sample=True)
    titles = [ax.get_title() for fig, path in figs if path.name == "devel_predictions.png" for ax in fig.axes]
    assert titles[0] == "devel, in-sample (devel is in the fitting data): egemaps lstm, arousal, fit train+devel"
