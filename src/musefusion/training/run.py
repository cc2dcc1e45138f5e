"""One training run end to end: corpus → windows → one model per seed → predictions, metrics, plots.

Run directory::

    <out>/config.toml            resolved config, library versions, seeds, [inputs] digest of the corpus files
    <out>/metrics.json           per-seed and summary scores (written last: its presence means 'finished')
    <out>/checkpoint.pt          best seed's weights + config + normalisation statistics
    <out>/predictions/<partition>/<id>.csv   best seed's predictions (MuSe format)
    <out>/plots/*.png            learning curves, devel predictions against labels
    <out>/log.txt                the CLI's log (when run from the CLI)
    <out>/seed_<s>/{history.csv, checkpoint.pt, predictions/, result.json, last.pt while training}
"""

from __future__ import annotations

import dataclasses
import logging
import platform
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from musefusion import families, fsutil, rundir
from musefusion.config import ModelConfig, RunConfig
from musefusion.data import formats
from musefusion.data.corpus import CorpusData, Sequence, corpus_digest, load_corpus, resolve_data_config
from musefusion.data.segment import delay_later, labels_earlier, make_windows
from musefusion.errors import CheckpointError, ConfigError
from musefusion.evaluation.metrics import ccc_concatenated, ccc_per_sequence_mean
from musefusion.evaluation.uncertainty import ccc_interval
from musefusion.models import build_model
from musefusion.rundir import RunDir
from musefusion.training import checkpoint
from musefusion.training.loop import FitResult, Windows, check_precision, fit, predict_arrays, resolve_device
from musefusion.training.seeds import pick_best_seed, seed_everything
from musefusion.types import Partition

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class RunResult:
    """A finished run (unimodal or fusion): its scores, and its predictions and history as DataFrames.

    ``holder`` keeps a temporary run directory alive (the Python API's runs that were not asked to be written):
    the folder is removed when the result is garbage-collected.
    """

    run_dir: Path
    metrics: dict[str, Any]
    holder: Any = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def devel_ccc(self) -> float:
        """Best seed's devel CCC (concatenated); NaN for a run fitted on devel (a final model)."""
        return float(self.metrics.get("best", {}).get("devel_ccc", float("nan")))

    def predictions(self, partition: str = "devel") -> pd.DataFrame:
        """The kept seed's predictions of one partition: columns ``id``, ``timestamp`` (ms), ``prediction``."""
        frames = [pd.DataFrame({"id": sid, "timestamp": ts, "prediction": p})
                  for sid, (ts, p) in formats.read_predictions(RunDir(self.run_dir).predictions(partition)).items()]
        return (pd.concat(frames, ignore_index=True) if frames
                else pd.DataFrame(columns=["id", "timestamp", "prediction"]))

    def history(self) -> pd.DataFrame:
        """Every seed's per-epoch history (``seed``, ``epoch``, ``train_loss``, ``devel_ccc``, ``lr``, ...)."""
        frames = [pd.read_csv(d.history).assign(seed=int(d.path.name[5:]))
                  for d in RunDir(self.run_dir).seed_dirs() if d.history.is_file()]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["seed", "epoch"])


def versions() -> dict[str, str]:
    """Versions of Python and the libraries that decide the numbers."""
    # the package's __init__ (which sets __version__) may still be running when this module loads
    from musefusion import __version__

    return {"musefusion": __version__, "python": sys.version.split()[0], "torch": str(torch.__version__),
            "numpy": np.__version__, "pandas": pd.__version__, "platform": platform.platform()}


def family_input(x: np.ndarray, observed: np.ndarray, model: str) -> np.ndarray:
    """``x`` (steps, features) as the family ``model`` reads it: unchanged, or (``observed_inputs`` families)
    followed by one observed-mask column per feature set (``observed``: (steps, sets), 1 where the set had a row)."""
    if not families.family(model).observed_inputs:
        return x
    return np.concatenate([x, observed.astype(np.float32)], axis=1)


def model_inputs(data: CorpusData, model: str) -> CorpusData:
    """``data`` with every sequence's inputs as the family ``model`` reads them (:func:`family_input`)."""
    if not families.family(model).observed_inputs:
        return data
    return dataclasses.replace(data, sequences={
        p: [dataclasses.replace(s, x=family_input(s.x, s.observed, model)) for s in seqs]
        for p, seqs in data.sequences.items()})


def predict_delayed(model: torch.nn.Module, xs: list[np.ndarray], device: torch.device, delay: int
                    ) -> list[np.ndarray]:
    """The model's predictions of whole sequences, moved ``delay`` steps later (``DataConfig.label_delay``): what a
    run writes, ``predict`` and ``predict-recording`` give."""
    return [delay_later(p, delay) for p in predict_arrays(model, xs, device)]


def with_label_delay(data: CorpusData, delay: int) -> CorpusData:
    """``data`` with every label moved ``delay`` steps earlier (``DataConfig.label_delay``): a model fitted on it
    predicts at step t the label of step t + delay, and its outputs are moved back ``delay`` steps later when
    written, so the written predictions line up with the true labels again."""
    if not delay:
        return data
    return dataclasses.replace(data, sequences={p: [dataclasses.replace(s, y=labels_earlier(s.y, delay)) for s in seqs]
                                                for p, seqs in data.sequences.items()})


def make_train_windows(seqs: list[Sequence], win_len: int, hop_len: int) -> Windows:
    """Equal-length windows over the fitting sequences, with loss and padding masks."""
    x, y, label_mask, origin = make_windows([s.x for s in seqs], [s.y for s in seqs], win_len, hop_len)
    lengths = np.array([min(win_len, len(seqs[i]) - st) for i, st in origin])
    step_mask = np.arange(win_len)[None, :] < lengths[:, None]
    return Windows(x, y, label_mask, step_mask)


def _write_seed_outputs(seed_dir: RunDir, model: torch.nn.Module, result: FitResult, data: CorpusData,
                        cfg: RunConfig, device: torch.device) -> dict[str, Any]:
    model.load_state_dict(result.state_dict)
    checkpoint.save_checkpoint(seed_dir.checkpoint, checkpoint_payload(result, data, cfg))
    # epochs_run < epochs: stopped early; best_epoch == epochs_run == epochs: still improving when the budget ended
    scores: dict[str, Any] = {"seed": result.seed, "best_epoch": result.best_epoch,
                              "epochs_run": len(result.history), "epochs": cfg.train.epochs}
    for part in Partition:
        seqs = data.partition(part)
        if not seqs:
            continue
        preds = predict_delayed(model, [s.x for s in seqs], device, cfg.data.label_delay)
        formats.write_predictions(seed_dir.predictions(part.value),
                                  {s.id: (s.timestamps, p) for s, p in zip(seqs, preds, strict=True)})
        if part != Partition.TEST:
            ys = [s.y for s in seqs]
            # a partition the model was fitted on scores in-sample, and says so (a final model's devel)
            name = part.value + ("_in_sample" if part == Partition.DEVEL and part.value in cfg.data.train_partitions
                                 else "")
            scores[f"{name}_ccc"] = ccc_concatenated(preds, ys)
            scores[f"{name}_ccc_subject_mean"] = ccc_per_sequence_mean(preds, ys)
            scores[f"{name}_ccc_ci"] = ccc_interval(preds, ys).as_list()  # subject-level bootstrap, 95 %
    with fsutil.atomic_path(seed_dir.history) as tmp:
        pd.DataFrame(result.history).to_csv(tmp, index=False)
    fsutil.write_json(seed_dir.result, scores)
    return scores


def checkpoint_payload(result: FitResult, data: CorpusData, cfg: RunConfig) -> dict[str, Any]:
    """The checkpoint dict: weights, config, normalisation statistics, epoch, score, seed (no pickled objects)."""
    return {"model": result.state_dict, "config": cfg.to_dict(), "epoch": result.best_epoch,
            "best_score": float(result.best_score), "seed": result.seed, "d_in": data.d_in,
            "feature_dims": dict(data.feature_dims), "norm_mean": torch.from_numpy(data.mean),
            "norm_std": torch.from_numpy(data.std), "versions": versions()}


def load_model(path: Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild a model from a musefusion checkpoint (``weights_only=True``).

    Raises:
        CheckpointError: not a musefusion checkpoint, or weights that do not fit the stored config.
    """
    payload = checkpoint.load_checkpoint(path)
    for key in ("model", "config", "d_in"):
        if key not in payload:
            raise CheckpointError(f"'{path}' is not a musefusion model checkpoint (no '{key}' entry).")
    dims = tuple(int(v) for v in payload.get("feature_dims", {}).values()) or None
    model = build_model(ModelConfig.from_dict(payload["config"]["model"]), int(payload["d_in"]), dims)
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"Weights in '{path}' do not fit the model its config describes: "
                              f"{str(exc).splitlines()[0][:200]}") from None
    model.eval()
    return model, payload


def run_record(cfg: RunConfig, digest: str) -> dict[str, Any]:
    """What a run directory records about its run: the config sections and the digest of its inputs."""
    return {**cfg.to_dict(), rundir.INPUTS: {"corpus": digest}}


def resolve_run_config(cfg: RunConfig) -> RunConfig:
    """``cfg`` with its feature names as the corpus spells them (``RESP`` -> ``resp``, ``bio`` -> ``biosignals``)."""
    data = resolve_data_config(cfg.data)
    return cfg if data is cfg.data else dataclasses.replace(cfg, data=data)


def run_status(cfg: RunConfig, out: Path, digest: str | None = None, overwrite: bool = False) -> rundir.Status:
    """Whether ``out`` is new, resumable or finished for ``cfg`` (see :func:`musefusion.rundir.status`).

    Raises:
        ConfigError: ``out`` holds a run of another config or other corpus files (and not ``overwrite``).
    """
    cfg = resolve_run_config(cfg)
    digest = digest if digest is not None else corpus_digest(cfg.data)
    return rundir.status(Path(out), run_record(cfg, digest), overwrite=overwrite, defaults=RunConfig.record_defaults())


def train_run(cfg: RunConfig, out: Path, data: CorpusData | None = None,
              on_epoch: Callable[[int, dict[str, float]], None] | None = None, resume: bool = True,
              epochs: int | None = None, overwrite: bool = False, fit_as: str | None = None,
              parent: Path | None = None, plots: bool = True) -> RunResult:
    """Train one model per seed, keep the best seed on devel, write the run directory.

    Args:
        cfg: data, model and training configs.
        out: the run directory. A finished run there is returned as it is only when it records the same config
            and the same corpus files; a run of another config is refused (or replaced with ``overwrite``).
        data: an already loaded corpus for ``cfg.data`` (saves re-reading it).
        on_epoch: called as ``on_epoch(seed, row)`` after every epoch (progress bars, pruning).
        resume: reuse a finished run of the same config and continue an interrupted one from its per-epoch state;
            False starts over, replacing whatever ``out`` holds (like ``overwrite``).
        epochs: a fixed number of epochs instead of ``cfg.train.epochs`` (final train+devel models).
        overwrite: replace a run of another config in ``out`` instead of refusing it.
        fit_as: what the run is fitted on, recorded as ``fit`` in metrics.json (default: the fitting partitions,
            ``train`` or ``train+devel``); fold models say ``fold 2/5``.
        parent: the run this one belongs to (a fold or final model's unimodal run, a trial's sweep), recorded.
        plots: draw ``plots/`` (learning curves, devel predictions); fold models, which nobody looks at one by
            one, skip them (drawing was over half of a small reproduction's time).

    Returns:
        The run's metrics.

    Raises:
        ConfigError: the fitting partitions hold no labelled sequence, or the run dir holds another config.
    """
    out = Path(out)
    device = resolve_device(cfg.train.device)  # a device this machine lacks is refused before any work
    check_precision(cfg.train.precision, device)  # and so is bf16 where it would only be emulated
    cfg = resolve_run_config(cfg)
    digest = data.digest if data is not None and data.digest else corpus_digest(cfg.data)
    state = run_status(cfg, out, digest, overwrite=overwrite or not resume)
    if state is rundir.Status.FINISHED and resume:
        logger.info("run %s is finished with the same config and corpus; reusing it", out)
        return RunResult(out, RunDir(out).read_metrics())
    if state is not rundir.Status.NEW and not resume:
        rundir.clear(out)
    run = RunDir(out)
    out.mkdir(parents=True, exist_ok=True)
    fsutil.write_toml(run.config, {**run_record(cfg, digest), "versions": versions()})

    if cfg.train.num_threads > 0:
        torch.set_num_threads(cfg.train.num_threads)
    data = data if data is not None else load_corpus(cfg.data)
    data = model_inputs(data, cfg.model.name)
    fit_data = with_label_delay(data, cfg.data.label_delay)  # what the model fits; data keeps the true labels
    fit_seqs = [s for s in fit_data.fit_sequences() if not np.isnan(s.y).all()]
    if not fit_seqs:
        raise ConfigError(f"No labelled sequence in partitions {cfg.data.train_partitions} of '{data.corpus_dir}'.")
    windows = make_train_windows(fit_seqs, cfg.data.win_len, cfg.data.hop_len)
    devel = [] if "devel" in cfg.data.train_partitions else fit_data.partition(Partition.DEVEL)
    true_devel = [] if not devel else data.partition(Partition.DEVEL)  # the labels the reported CCC uses

    per_seed: dict[int, dict[str, Any]] = {}
    for seed in cfg.train.seeds:
        seed_dir = run.seed(seed)
        if resume and seed_dir.result.is_file():
            per_seed[seed] = fsutil.read_json(seed_dir.result)
            continue
        seed_dir.path.mkdir(parents=True, exist_ok=True)
        seed_everything(seed)
        model = build_model(cfg.model, data.d_in, tuple(data.feature_dims.values()))
        cb = (lambda row, s=seed: on_epoch(s, row)) if on_epoch else None
        result = fit(model, windows, [s.x for s in devel], [s.y for s in true_devel], cfg.train, seed,
                     state_path=seed_dir.last_state, on_epoch=cb, epochs=epochs, label_delay=cfg.data.label_delay,
                     name="/".join(out.parts[-2:]))
        per_seed[seed] = _write_seed_outputs(seed_dir, model, result, data, cfg, device)
        seed_dir.last_state.unlink(missing_ok=True)
        logger.info("%s seed %d: best epoch %d of %d, devel CCC %.4f", "/".join(out.parts[-2:]), seed,
                    result.best_epoch, len(result.history), per_seed[seed].get("devel_ccc", float("nan")))

    devel_scores = {s: float(r.get("devel_ccc", float("nan"))) for s, r in per_seed.items()}
    best_seed = pick_best_seed(devel_scores) if devel else cfg.train.seeds[0]
    best_dir = run.seed(best_seed)
    with fsutil.atomic_path(run.checkpoint) as tmp:
        shutil.copy2(best_dir.checkpoint, tmp)
    with fsutil.atomic_dir(run.predictions_root) as tmp:
        shutil.copytree(best_dir.predictions_root, tmp, dirs_exist_ok=True)

    vals = np.array([v for v in devel_scores.values()], dtype=float)
    baseline = _train_mean_baseline(data, devel)
    metrics = {
        "kind": "run", "task": cfg.data.task.value, "target": cfg.data.target, "features": list(cfg.data.features),
        "model": cfg.model.name, "fit": fit_as or "+".join(cfg.data.train_partitions),
        "seed_list": list(cfg.train.seeds), "parent": str(parent) if parent is not None else None,
        "seeds": {str(s): r for s, r in per_seed.items()},
        "best": {"seed": best_seed, **{k: v for k, v in per_seed[best_seed].items() if k != "seed"}},
        "devel_ccc_mean": float(np.nanmean(vals)) if devel else float("nan"),
        "devel_ccc_std": float(np.nanstd(vals)) if devel else float("nan"),
        "train_mean_devel_ccc": baseline,
        "n_train_windows": len(windows), "d_in": data.d_in, "feature_dims": data.feature_dims,
        "filled_steps": int(data.fill_report["n_filled"].sum()),
    }
    if not devel:
        metrics["notes"] = ("no devel scores: devel is part of the fitting data" if "devel" in cfg.data.train_partitions
                            else "no devel scores: the corpus lists no devel subject")
    try:
        if plots:
            # matplotlib: imported only when a plot is drawn
            from musefusion.evaluation.plots import plot_run

            plot_run(out, data, name=f"{'+'.join(cfg.data.features)} {cfg.model.name}, {cfg.data.target}, fit "
                     f"{metrics['fit']}", in_sample="devel" in cfg.data.train_partitions)
    except Exception as exc:  # plotting must never lose a finished run
        logger.warning("could not draw plots for %s: %s", out, exc)
    fsutil.write_json(run.metrics, metrics)
    return RunResult(out, metrics)


def _train_mean_baseline(data: CorpusData, devel: list[Sequence]) -> float:
    """Devel CCC of predicting the train-label mean everywhere (a constant: CCC 0 by definition)."""
    if not devel:
        return float("nan")
    mean = float(np.nanmean(np.concatenate([s.y for s in data.fit_sequences()])))
    return ccc_concatenated([np.full(len(s), mean) for s in devel], [s.y for s in devel])


def load_run_config(run_dir: Path) -> RunConfig:
    """The RunConfig saved in a run directory.

    Raises:
        MissingDataError: no config.toml there.
    """
    rec = RunDir(run_dir).read_record()
    rec.pop("versions", None)
    rec.pop(rundir.INPUTS, None)
    return RunConfig.from_dict(rec)

