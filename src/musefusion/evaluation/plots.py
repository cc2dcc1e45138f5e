"""Plots drawn from the files of a run directory (never from in-memory training state)."""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from musefusion import fsutil  # noqa: E402
from musefusion.data import formats  # noqa: E402
from musefusion.rundir import RunDir  # noqa: E402

logger = logging.getLogger(__name__)

#: The fixed CCC axis of every CCC plot: a change from 0.001 to 0.007 looks as small as it is.
CCC_LIMITS = (-0.1, 1.0)


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with fsutil.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_learning_curves(run_dir: Path, title: str = "") -> Path | None:
    """``plots/learning_curves.png``: train loss and devel CCC per epoch, one line per seed.

    A run fitted without a devel score (a final train+devel model) gets the train-loss panel only.
    """
    run_dir = Path(run_dir)
    files = [s.history for s in RunDir(run_dir).seed_dirs() if s.history.is_file()]
    if not files:
        return None
    hists = {f.parent.name.replace("_", " "): pd.read_csv(f) for f in files}
    with_devel = any(h["devel_ccc"].notna().any() for h in hists.values())
    fig, axes = plt.subplots(1, 2 if with_devel else 1, figsize=(10 if with_devel else 5.5, 3.5), squeeze=False)
    ax1 = axes[0, 0]
    for label, h in hists.items():
        ax1.plot(h["epoch"], h["train_loss"], label=label)
        if with_devel and h["devel_ccc"].notna().any():
            axes[0, 1].plot(h["epoch"], h["devel_ccc"], label=label)
    ax1.set(xlabel="epoch", ylabel="train loss (1 - CCC)", title="training loss")
    if with_devel:
        axes[0, 1].set(xlabel="epoch", ylabel="devel CCC", title="devel CCC (concatenated)", ylim=CCC_LIMITS)
    for ax in axes[0]:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, RunDir(run_dir).plot("learning_curves.png"))


def plot_predictions(pred_dir: Path, labels: dict[str, tuple[np.ndarray, np.ndarray]], path: Path,
                     title: str = "devel predictions", max_subjects: int = 4) -> Path | None:
    """Prediction against label curves for up to ``max_subjects`` subjects.

    Args:
        pred_dir: folder of prediction CSVs (``<id>.csv``).
        labels: id -> (timestamps ms, values).
        path: PNG to write.
        title: figure title.
        max_subjects: how many subjects to draw.
    """
    preds = formats.read_predictions(pred_dir) if Path(pred_dir).is_dir() else {}
    ids = [i for i in preds if i in labels][:max_subjects]
    if not ids:
        return None
    fig, axes = plt.subplots(len(ids), 1, figsize=(10, 2.2 * len(ids)), sharex=False, squeeze=False)
    for ax, sid in zip(axes[:, 0], ids, strict=True):
        ts, p = preds[sid]
        lts, y = labels[sid]
        ax.plot(lts / 1000.0, y, color="black", lw=1.2, label="label")
        ax.plot(ts / 1000.0, p, color="tab:red", lw=1.0, label="prediction")
        ax.set_ylabel(f"subject {sid}")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(loc="upper right", fontsize=8)
    axes[0, 0].set_title(title)
    axes[-1, 0].set_xlabel("time (s)")
    return _save(fig, path)


def plot_run(run_dir: Path, data, name: str = "", in_sample: bool = False) -> None:  # noqa: ANN001 - CorpusData
    """Learning curves and devel predictions of a finished run, titled with ``name`` (features, model, target,
    fit); ``in_sample``: devel was part of the fitting data, so its plot says so."""
    run_dir = Path(run_dir)
    plot_learning_curves(run_dir, title=name)
    labels = {s.id: (s.timestamps, s.y) for s in data.partition("devel")}
    what = "devel, in-sample (devel is in the fitting data)" if in_sample else "devel"
    if labels:
        plot_predictions(RunDir(run_dir).predictions("devel"), labels, RunDir(run_dir).plot("devel_predictions.png"),
                         title=f"{what}: {name or data.config.target}")


def plot_curve_overlay(curves: dict[str, pd.DataFrame], path: Path) -> Path:
    """Devel CCC and train loss per epoch of several runs, one line each (``musefusion runs compare --plot``).

    Args:
        curves: label -> history (columns epoch, train_loss, devel_ccc).
        path: PNG to write.
    """
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for label, h in curves.items():
        ax1.plot(h["epoch"], h["devel_ccc"], label=label)
        ax2.plot(h["epoch"], h["train_loss"], label=label)
    ax1.set(xlabel="epoch", ylabel="devel CCC", title="devel CCC (kept seed)", ylim=CCC_LIMITS)
    ax2.set(xlabel="epoch", ylabel="train loss (1 - CCC)", title="training loss (kept seed)")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    ax1.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def plot_personal_gains(table: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Per-subject CCC of the general and the personalised model (devel, and test where scored): bars per subject,
    on the fixed CCC axis; a subject where the general model was kept is marked."""
    parts = [p for p in ("devel", "test") if f"general_{p}_ccc" in table]
    fig, axes = plt.subplots(1, len(parts), figsize=(max(6.0, 0.6 * len(table) + 2) * len(parts) / 1.4, 3.6),
                             squeeze=False)
    x = np.arange(len(table))
    for ax, part in zip(axes[0], parts, strict=True):
        general = table[f"general_{part}_ccc"].to_numpy(float)
        personal = table[f"{part}_ccc"].to_numpy(float)
        ax.bar(x - 0.2, general, 0.4, label="general", color="#9e9e9e")
        ax.bar(x + 0.2, personal, 0.4, label="personalised", color="#1f77b4")
        for i, kept in enumerate(table["personalised"].to_numpy(bool)):
            if not kept:
                ax.annotate("G", (x[i] + 0.2, max(personal[i], 0) + 0.02), ha="center", fontsize=7)
        ax.set_xticks(x, table["subject"].astype(str), rotation=90 if len(table) > 12 else 0, fontsize=8)
        ax.set_ylim(*CCC_LIMITS)
        ax.set_ylabel(f"{part} CCC")
        ax.set_xlabel("subject (G: general model kept)")
        gain = np.nanmean(personal - general)
        ax.set_title(f"{part}: mean gain {gain:+.3f}", fontsize=9)
        ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(title or "personalisation: per-subject CCC", fontsize=10)
    return _save(fig, path)


def plot_subject_gains(gains: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Grouped bars: per subject (rows of ``gains``), the CCC gain of personalisation for each stream (columns)."""
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(gains) * len(gains.columns) / 2 + 2), 3.6))
    x = np.arange(len(gains))
    width = 0.8 / max(len(gains.columns), 1)
    for k, col in enumerate(gains.columns):
        ax.bar(x + (k - (len(gains.columns) - 1) / 2) * width, gains[col].to_numpy(float), width, label=str(col))
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(x, [str(s) for s in gains.index], rotation=90 if len(gains) > 12 else 0, fontsize=8)
    ax.set_xlabel("subject")
    ax.set_ylabel("CCC gain (personalised - general)")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def plot_beyond(rows: dict[str, list[dict]], reference: dict[str, dict[str, float | None]], path: Path) -> Path:
    """``reproduce --beyond``: bars per method (devel: its mean with its std, or for a row chosen on devel its
    cross-validated estimate ``devel_cv`` where it has one; test) per target, with the paper pipeline's rows
    (``reference``: target -> name -> test CCC, the Bi-LSTM's and the selected fuser's) as lines."""
    fig, axes = plt.subplots(1, len(rows), figsize=(6.5 * len(rows), 3.8), squeeze=False)
    for ax, (target, rs) in zip(axes[0], rows.items(), strict=True):
        x = np.arange(len(rs))
        cv = [r.get("devel_cv", np.nan) for r in rs]
        ax.bar(x - 0.2, [r["devel_mean"] if np.isnan(c) else c for r, c in zip(rs, cv, strict=True)], 0.4,
               yerr=[np.nan_to_num(r["devel_std"]) for r in rs], label="devel (its CV estimate where it has one)",
               color="#9ecae1")
        ax.bar(x + 0.2, [np.nan if r["test"] is None else r["test"] for r in rs], 0.4, label="test", color="#3182bd")
        for (name, value), style in zip(reference.get(target, {}).items(), ("--", ":"), strict=False):
            if value is not None:
                ax.axhline(value, ls=style, color="black", lw=1, label=f"{name} (test)")
        ax.set_xticks(x, [r["method"] for r in rs], rotation=35, ha="right", fontsize=8)
        ax.set_ylim(*CCC_LIMITS)
        ax.set_ylabel("CCC")
        ax.set_title(f"{target}: beyond the paper", fontsize=10)
        ax.legend(fontsize=7, loc="upper left", ncol=2)
    return _save(fig, path)
