"""Emotion curves for a new recording: extract the features a trained (fused) model needs, run it, plot.

``predict_recording`` accepts unimodal run directories (``musefusion train``) and fusion run directories
(``musefusion fuse``/``reproduce``); a fusion run's unimodal streams are run first. Features are extracted once
per recording and put on one 500 ms grid starting at 0; each model normalises them with the statistics saved in
its checkpoint and fills steps without data (no face) with its training fill policy.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from musefusion import fsutil
from musefusion.data.corpus import normalise_recording
from musefusion.data.grid import align_to_grid
from musefusion.errors import CheckpointError, ConfigError, MissingDataError
from musefusion.features.extract import extract_file
from musefusion.rundir import Kind, RunDir
from musefusion.training import checkpoint
from musefusion.types import STEP_MS

logger = logging.getLogger(__name__)


def _is_fusion(run: Path) -> bool:
    return RunDir(run).kind is Kind.FUSION


def _is_run(p: Path) -> bool:
    return RunDir(p).config.is_file()


def _stream_dirs(fusion_run: Path) -> list[Path]:
    """A fusion run's unimodal run directories (as saved: relative to the fusion run's folder, or absolute; a
    record of an older version may be relative to the folder it was trained from)."""
    out = []
    for s in RunDir(fusion_run).read_record()["fusion"]["streams"]:
        p = Path(s)
        if not _is_run(p) and not p.is_absolute():
            p = next((c for c in (fusion_run / p, fusion_run.parent / p) if _is_run(c)), p)
        if not _is_run(p):
            raise MissingDataError(f"Fusion run '{fusion_run}' uses stream '{s}', which is not a run directory "
                                   "(no config.toml); run from the folder the fusion was trained in.")
        out.append(p)
    return out


def _unimodal_runs(models: list[Path]) -> list[Path]:
    runs: list[Path] = []
    for m in models:
        if not _is_run(m):
            raise MissingDataError(f"'{m}' is not a run directory (no config.toml); give a folder made by "
                                   "musefusion train, fuse or reproduce.")
        runs += _stream_dirs(m) if _is_fusion(m) else [m]
    return list(dict.fromkeys(runs))


def _predict_unimodal(run: Path, feats: dict[str, tuple[np.ndarray, np.ndarray]], grid: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The run's prediction on ``grid`` and, per step, the share of its feature sets observed there (a step of 0
    was predicted from fill values only)."""
    import torch  # torch: imported on first use, so the CLI starts without it

    # torch: imported on first use, so the CLI starts without it
    from musefusion.training.run import family_input, load_model, load_run_config, predict_delayed

    cfg = load_run_config(run)
    model, payload = load_model(RunDir(run).checkpoint)
    aligned, observed = [], []
    by_lower = {k.lower(): v for k, v in feats.items()}  # a run may spell a folder RESP where extraction says resp
    for f in cfg.data.features:
        if f.lower() not in by_lower:
            raise ConfigError(f"Model '{run}' needs feature '{f}', which these recordings cannot give.")
        a, m = align_to_grid(grid, *by_lower[f.lower()])
        if not m.any():  # a curve made of fill values only would look measured
            raise MissingDataError(f"This recording gives no '{f}' data at any step (e.g. no face found in the "
                                   f"video, or silence), and model '{run}' needs it: give a recording where it is "
                                   "observed, or a model that does not read it.")
        aligned.append(a)
        observed.append(m)
    dims = [a.shape[1] for a in aligned]
    if sum(dims) != int(payload["d_in"]):
        raise CheckpointError(f"Model '{run}' was trained on {payload['d_in']} input columns, the extracted "
                              f"{'+'.join(cfg.data.features)} give {sum(dims)}.")
    x = normalise_recording(np.concatenate(aligned, axis=1), observed, np.cumsum([0, *dims]),
                            payload["norm_mean"].numpy(), payload["norm_std"].numpy(), cfg.data)
    x = family_input(x, np.stack(observed, axis=1), cfg.model.name)
    share = np.stack(observed, axis=1).mean(axis=1)
    return predict_delayed(model, [x], torch.device("cpu"), cfg.data.label_delay)[0], share


def _predict_fusion(run: Path, stream_preds: dict[Path, np.ndarray]) -> np.ndarray:
    import torch  # torch: imported on first use, so the CLI starts without it

    # torch: imported on first use, so the CLI starts without it
    from musefusion.models.fusion import LateFusion

    # torch: imported on first use, so the CLI starts without it
    from musefusion.training.loop import predict_arrays

    payload = checkpoint.load_checkpoint(RunDir(run).checkpoint)
    cfg = payload["config"]
    if cfg.get("reliability"):
        raise ConfigError(f"'{run}' is a fusion that reads the streams' observed shares (reliability = true); "
                          "predict-recording fuses prediction streams only: use a fusion run without it.")
    model = LateFusion(int(payload["n_streams"]), int(cfg.get("hidden", 32)))
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"'{RunDir(run).checkpoint}' does not fit a late-fusion model: "
                              f"{str(exc).splitlines()[0][:160]}") from None
    x = np.stack([stream_preds[s] for s in _stream_dirs(run)], axis=1).astype(np.float32)
    return predict_arrays(model, [x], torch.device("cpu"))[0]


def predict_recording(models: list[Path], audio: Path | None = None, video: Path | None = None,
                      bio: Path | None = None, extract_config: Any = None) -> pd.DataFrame:
    """Emotion curves of one recording.

    Args:
        models: unimodal or fusion run directories (e.g. one per target).
        audio: audio file (or a video whose audio track to use).
        video: video file.
        bio: CSV with a time column and ecg/resp columns, WFDB ``.hea`` record, or EDF/BDF file.
        extract_config: a :class:`musefusion.features.extract.ExtractConfig` (weights files, options).

    Returns:
        A frame with ``timestamp`` (ms, 500 ms grid from 0), one column per model (its target; the run
        directory name is appended when two models share a target) and beside each ``<column> observed``: the
        share (0-1) of the features the model reads that the recording gave at that step (a fusion: over all its
        streams); where it is below 1 the value leans on fill values, where it is 0 on nothing measured.

    Raises:
        ConfigError: a model needs a feature the inputs cannot give.
        CheckpointError / MissingDataError: a model directory or its weights cannot be loaded, or the recording
            has no data of a feature a model needs at any step.
    """
    models = [Path(m) for m in models]
    if not models:
        raise ConfigError("Give at least one trained model directory (--model RUN_DIR).")
    runs = _unimodal_runs(models)
    # torch: imported on first use, so the CLI starts without it
    from musefusion.training.run import load_run_config

    needed = list(dict.fromkeys(f for r in runs for f in load_run_config(r).data.features))
    feats = extract_file(audio=audio, video=video, bio=bio, features=needed, config=extract_config)
    end = max(int(ts[-1]) for ts, _ in feats.values() if len(ts))
    grid = np.arange(0, end + 1, STEP_MS, dtype=np.int64)
    predicted = {r: _predict_unimodal(r, feats, grid) for r in runs}
    stream_preds = {r: pred for r, (pred, _) in predicted.items()}
    out = pd.DataFrame({"timestamp": grid})
    for m in models:
        target = RunDir(m).read_record()["data"]["target"]
        col = target if target not in out.columns else f"{target} ({m.name})"
        fused = _is_fusion(m)
        out[col] = _predict_fusion(m, stream_preds) if fused else stream_preds[m]
        shares = [predicted[r][1] for r in (_stream_dirs(m) if fused else [m])]
        out[f"{col} {OBSERVED}"] = np.mean(shares, axis=0).round(4)
    return out


#: The suffix of a curve's observed-share column in ``curves.csv``.
OBSERVED = "observed"


def plot_curves(curves: pd.DataFrame, path: Path, title: str = "") -> Path:
    """A PNG of the predicted curves over time; steps where a curve's features were not all observed are shaded."""
    import matplotlib  # matplotlib: imported only when a plot is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # matplotlib: imported only when a plot is drawn

    fig, ax = plt.subplots(figsize=(10, 3.2))
    t = curves["timestamp"].to_numpy() / 1000.0
    values = [c for c in curves.columns[1:] if not c.endswith(f" {OBSERVED}")]
    for col in values:
        ax.plot(t, curves[col].to_numpy(), lw=1.4, label=col)
    shares = [curves[f"{c} {OBSERVED}"].to_numpy() for c in values if f"{c} {OBSERVED}" in curves]
    if shares:
        partial = np.min(shares, axis=0) < 1
        if partial.any():
            ax.fill_between(t, 0, 1, where=partial, transform=ax.get_xaxis_transform(), color="gray", alpha=0.2,
                            step="mid", label="features not all observed")
    ax.axhline(0, color="gray", lw=0.6)
    ax.set(xlabel="time (s)", ylabel="predicted value", title=title or "predicted emotion curves")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    with fsutil.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return Path(path)
