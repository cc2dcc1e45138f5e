"""Late fusion (paper Eq. 12-14, 19): unimodal prediction streams → Bi-LSTM (32 cells) → linear, CCC loss.

What the fusion is fitted on (``FusionConfig.train_on``):

* ``oof`` (default): out-of-fold predictions of the train subjects (unimodal models refitted in k folds by
  subject); the epoch is chosen on devel. The fusion sees train inputs that behave like test inputs.
* ``in-sample``: the unimodal models' own train predictions (the MuSe 2021 baseline's practice); these are
  overfitted, so the fusion learns to trust them too much.
* ``devel``: fitted on devel predictions with k-fold cross-validation by devel subject (the reported devel
  score is the cross-validated one); the test model is fitted on all devel subjects.

Test inputs come from each stream's ``final/`` model (retrained on train+devel) when it exists and
``final_streams`` is on (the default), else from the stream's own test predictions. With ``refit`` the kept
fusion seed is fitted again on the train and devel streams together for its best epoch count, and that model
makes the test predictions (Sec. 5.5 retrains the unimodal models on train+devel; it does not say whether the
fusion model was). Test labels are never opened.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musefusion import fsutil, rundir
from musefusion.config import ConfigBase, DataConfig, TrainConfig, enum_field
from musefusion.data import formats
from musefusion.data.corpus import Sequence, load_corpus, load_labels
from musefusion.errors import ConfigError
from musefusion.evaluation.metrics import ccc_concatenated, ccc_per_sequence_mean
from musefusion.evaluation.uncertainty import ccc_interval
from musefusion.fusion.oof import ensure_oof, subject_folds
from musefusion.fusion.stack import load_stream, stack_streams
from musefusion.models.fusion import LateFusion
from musefusion.rundir import RunDir
from musefusion.training import checkpoint
from musefusion.training.loop import Windows, fit, predict_arrays, resolve_device
from musefusion.training.run import load_run_config, make_train_windows, versions
from musefusion.training.seeds import pick_best_seed, seed_everything
from musefusion.types import FusionTrain, Partition

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class FusionConfig(ConfigBase):
    """A late-fusion run (defaults: paper Sec. 5.2)."""

    streams: tuple[str, ...]  # unimodal run directories, one prediction stream each
    names: tuple[str, ...] = ()  # a short name per stream (default: the run dir names)
    train_on: FusionTrain = FusionTrain.OOF  # oof | in-sample | devel
    folds: int = 5  # k for out-of-fold predictions and devel cross-validation
    hidden: int = 32  # Bi-LSTM cells (Sec. 5.2)
    epochs: int = 20  # at most 20 epochs (Sec. 5.2)
    lr: float = 1e-3  # Adam (Sec. 5.2)
    batch_size: int = 64  # Sec. 5.2
    win_len: int = 300  # train windows in steps
    hop_len: int = 25  # train window hop: finer than the unimodal default, the small fusion model needs the updates
    seeds: tuple[int, ...] = (1,)  # one fusion model per seed, best on devel kept
    final_streams: bool = True  # test inputs from the streams' final/ (train+devel) models where they exist
    refit: bool = False  # refit the kept seed on train+devel streams (its best epoch count) for the test predictions
    reliability: bool = False  # beyond the paper: the Bi-LSTM also reads each stream's observed share per step

    def __post_init__(self) -> None:
        object.__setattr__(self, "streams", tuple(str(s) for s in self.streams))
        object.__setattr__(self, "train_on", enum_field("FusionConfig", "train_on", self.train_on, FusionTrain))
        if not self.streams:
            raise ConfigError("FusionConfig.streams: give at least one unimodal run directory (--streams).")
        names = tuple(self.names) or tuple(Path(s).name for s in self.streams)
        if len(names) != len(self.streams):
            raise ConfigError(f"FusionConfig.names: {len(names)} names for {len(self.streams)} streams.")
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        if self.folds < 2:
            raise ConfigError(f"FusionConfig.folds: {self.folds} must be >= 2 (--folds).")
        if self.epochs < 1 or self.hidden < 1 or self.batch_size < 1:
            raise ConfigError("FusionConfig: epochs, hidden and batch_size must be >= 1.")
        if self.refit and self.train_on == FusionTrain.DEVEL:
            raise ConfigError("FusionConfig.refit: a fusion fitted on devel (--train-on devel) has no train+devel "
                              "refit; use --train-on oof or in-sample, or drop --refit.")


#: How a fusion run's devel plot is titled, per fit (the devel predictions of a devel fit are k-fold CV ones).
_FIT_TITLE = {"oof": "devel (fitted on out-of-fold train predictions)",
              "in-sample": "devel (fitted on in-sample train predictions)",
              "devel": "devel (held-out folds of a subject-wise CV on devel)"}

def _train_cfg(cfg: FusionConfig) -> TrainConfig:
    return TrainConfig(epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size, seeds=cfg.seeds)




def _xy(stacked: dict[str, tuple[np.ndarray, np.ndarray]], labels: dict[str, tuple[np.ndarray, np.ndarray]],
        ids: list[str]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    xs, ys = [], []
    for sid in ids:
        ts, x = stacked[sid]
        lts, y = labels[sid]
        if not np.array_equal(ts, lts):
            raise ConfigError(f"Predictions of subject '{sid}' are not on its label grid; retrain the streams.")
        xs.append(x)
        ys.append(y)
    return xs, ys


def _windows(xs: list[np.ndarray], ys: list[np.ndarray], cfg: FusionConfig) -> Windows:
    seqs = [Sequence(str(i), Partition.TRAIN, np.arange(len(x)), x, y, np.ones((len(x), 1), bool))
            for i, (x, y) in enumerate(zip(xs, ys, strict=True))]
    return make_train_windows(seqs, cfg.win_len, cfg.hop_len)


def n_inputs(cfg: FusionConfig) -> int:
    """The fusion model's input width: one column per stream, and with ``reliability`` one more per stream."""
    return len(cfg.streams) * (2 if cfg.reliability else 1)


def observed_shares(run_cfgs: list[Any]) -> list[dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Per stream: subject -> (timestamps, the share of the stream's feature sets with a real row at each step).

    A stream of one feature set gives 1 where it had a row and 0 where the step was filled (a missing face); the
    bio stream's three signals give thirds. Read from the streams' corpora (the cache makes this cheap).
    """
    out = []
    for rc in run_cfgs:
        data = load_corpus(rc.data)
        out.append({s.id: (s.timestamps, s.observed.mean(axis=1).astype(np.float32))
                    for seqs in data.sequences.values() for s in seqs})
    return out


def with_reliability(stack: dict[str, tuple[np.ndarray, np.ndarray]],
                     shares: list[dict[str, tuple[np.ndarray, np.ndarray]]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``stack`` (id -> (timestamps, (T, n_streams))) with each stream's observed share appended as a column.

    Raises:
        ConfigError: a subject's predictions lie off its corpus grid.
    """
    out = {}
    for sid, (ts, x) in stack.items():
        cols = []
        for k, share in enumerate(shares):
            sts, vals = share[sid]
            if not np.array_equal(sts, ts):
                raise ConfigError(f"Stream {k + 1}'s predictions of subject '{sid}' are not on its corpus grid; "
                                  "retrain the stream.")
            cols.append(vals)
        out[sid] = (ts, np.concatenate([x, np.stack(cols, axis=1)], axis=1).astype(np.float32))
    return out


def _fit_one(cfg: FusionConfig, xs, ys, dev_xs, dev_ys, seed: int, epochs: int | None = None):
    seed_everything(seed)
    model = LateFusion(n_inputs(cfg), cfg.hidden)
    result = fit(model, _windows(xs, ys, cfg), dev_xs, dev_ys, _train_cfg(cfg), seed, epochs=epochs)
    model.load_state_dict(result.state_dict)
    return model, result


def stream_digest(run: Path) -> str:
    """A digest of what a stream contributes: its run's and its final model's metrics (they change on retraining)."""
    h = hashlib.blake2b(digest_size=12)
    for f in (RunDir(run).metrics, RunDir(run).final.metrics):
        if f.is_file():
            fsutil.file_digest(f, h)
    return h.hexdigest()


def fusion_record(cfg: FusionConfig, data: dict[str, Any]) -> dict[str, Any]:
    """What a fusion run directory records: the fusion config, the streams' data config and their digests."""
    return {"fusion": cfg.to_dict(), "data": data,
            "inputs": {n: stream_digest(Path(r)) for n, r in zip(cfg.names, cfg.streams, strict=True)}}


def stored_streams(streams: tuple[str, ...], out: Path) -> list[str]:
    """The streams as a fusion run records them: relative to the run's folder where they lie near it (in the same
    reproduction or project: at most four levels up), so the whole tree can be moved or copied and still be used;
    else resolved. Which spelling was given (relative, absolute, through a link) does not matter: the streams are
    compared by their digests (``inputs``), never by path (:data:`musefusion.rundir.IGNORED_FIELDS`).

    Examples:
        >>> stored_streams(("/p/rep/runs/a",), Path("/p/rep/fusion/x"))
        ['../../runs/a']
    """
    base = Path(out).resolve()
    out_streams = []
    for s in streams:
        p = Path(s).resolve()
        rel = Path(os.path.relpath(p, base))
        out_streams.append(rel.as_posix() if rel.parts[:5].count("..") <= 4 else str(p))
    return out_streams


def fusion_status(out: Path, record: dict[str, Any], overwrite: bool = False) -> rundir.Status:
    """Whether the fusion run folder ``out`` is new, resumable or finished for ``record`` (:func:`fusion_record`).

    Raises:
        ConfigError: ``out`` holds a fusion run of another config (and not ``overwrite``).
    """
    return rundir.status(Path(out), record, what="fusion run", overwrite=overwrite,
                         defaults={"fusion": FusionConfig.field_defaults(), "data": DataConfig.field_defaults()})


def fuse(cfg: FusionConfig, out: Path, resume: bool = True, overwrite: bool = False) -> dict[str, Any]:
    """Fit the late-fusion model and write a run directory like a unimodal run's.

    Args:
        cfg: streams and training settings.
        out: run directory (config.toml, metrics.json, checkpoint.pt, predictions/{train,devel,test}).
        resume: return the stored metrics when ``out`` is finished with the same config and stream runs.
        overwrite: replace a fusion run of another config (or the same one) in ``out``.

    Returns:
        The metrics dict (devel CCC of the kept seed, per-seed scores, ...).

    Raises:
        ConfigError: streams for different tasks/targets, or missing unimodal runs.
        MissingDataError / DataFormatError: missing or misaligned prediction streams.
    """
    out = Path(out)
    t0 = time.perf_counter()
    runs = [RunDir(Path(s)) for s in cfg.streams]
    for r in runs:
        if not r.finished:
            raise ConfigError(f"Stream '{r.path}' is not a finished run (no {r.metrics.name}); train it first "
                              "(musefusion train) or check --streams.")
    run_cfgs = [load_run_config(r.path) for r in runs]
    tasks = {(c.data.task, c.data.target) for c in run_cfgs}
    if len(tasks) != 1:
        raise ConfigError(f"Streams mix tasks/targets {sorted((t.value, g) for t, g in tasks)}; fuse streams of one "
                          "target only.")
    data_cfg = run_cfgs[0].data
    record = fusion_record(cfg, data_cfg.to_dict())
    state = fusion_status(out, record, overwrite=overwrite)
    if state is rundir.Status.FINISHED and resume and not overwrite:
        return RunDir(out).read_metrics()
    if state is not rundir.Status.NEW:
        rundir.clear(out)
    labels, partition = load_labels(data_cfg.root, data_cfg.task, data_cfg.target)
    ids = {p: [s for s, q in partition.items() if q == p] for p in Partition}
    names = list(cfg.names)

    devel_stack = stack_streams([load_stream(r.predictions("devel")) for r in runs], names, ids[Partition.DEVEL])
    test_dirs = [r.test_predictions() if cfg.final_streams else r.predictions("test") for r in runs]
    test_stack = stack_streams([load_stream(d) for d in test_dirs], names, ids[Partition.TEST])
    shares = observed_shares(run_cfgs) if cfg.reliability else []
    if cfg.reliability:
        devel_stack, test_stack = with_reliability(devel_stack, shares), with_reliability(test_stack, shares)
    dev_xs, dev_ys = _xy(devel_stack, labels, ids[Partition.DEVEL])
    device = resolve_device("auto")
    per_seed: dict[int, dict[str, Any]] = {}
    models: dict[int, torch.nn.Module] = {}
    train_pred: dict[int, list[np.ndarray]] = {}
    dev_pred: dict[int, list[np.ndarray]] = {}
    if cfg.train_on == FusionTrain.DEVEL:
        folds = subject_folds(ids[Partition.DEVEL], cfg.folds)
        for seed in cfg.seeds:
            cv = {}
            for fold in folds:
                tr = [i for i, s in enumerate(ids[Partition.DEVEL]) if s not in fold]
                te = [i for i, s in enumerate(ids[Partition.DEVEL]) if s in fold]
                m, _ = _fit_one(cfg, [dev_xs[i] for i in tr], [dev_ys[i] for i in tr], [], [], seed)
                for i, p in zip(te, predict_arrays(m, [dev_xs[i] for i in te], device), strict=True):
                    cv[i] = p
            dev_pred[seed] = [cv[i] for i in range(len(dev_xs))]
            models[seed], res = _fit_one(cfg, dev_xs, dev_ys, [], [], seed)
            per_seed[seed] = {"devel_ccc": ccc_concatenated(dev_pred[seed], dev_ys), "best_epoch": res.best_epoch,
                              "devel_ccc_subject_mean": ccc_per_sequence_mean(dev_pred[seed], dev_ys)}
        train_xs = train_ys = None
    else:
        if cfg.train_on == FusionTrain.OOF:
            train_dirs = [ensure_oof(r.path, cfg.folds) for r in runs]
        else:
            train_dirs = [r.predictions("train") for r in runs]
        train_stack = stack_streams([load_stream(d) for d in train_dirs], names, ids[Partition.TRAIN])
        if cfg.reliability:
            train_stack = with_reliability(train_stack, shares)
        train_xs, train_ys = _xy(train_stack, labels, ids[Partition.TRAIN])
        for seed in cfg.seeds:
            models[seed], res = _fit_one(cfg, train_xs, train_ys, dev_xs, dev_ys, seed)
            dev_pred[seed] = predict_arrays(models[seed], dev_xs, device)
            train_pred[seed] = predict_arrays(models[seed], train_xs, device)
            per_seed[seed] = {"devel_ccc": res.best_score, "best_epoch": res.best_epoch,
                              "devel_ccc_subject_mean": ccc_per_sequence_mean(dev_pred[seed], dev_ys),
                              "train_ccc": ccc_concatenated(train_pred[seed], train_ys)}

    for seed, scores in per_seed.items():  # the subject-level bootstrap interval of each seed's devel CCC
        scores["devel_ccc_ci"] = ccc_interval(dev_pred[seed], dev_ys).as_list()
    best = pick_best_seed({s: r["devel_ccc"] for s, r in per_seed.items()})
    model = models[best]
    test_model = model
    if cfg.refit and train_xs is not None and train_ys is not None:  # the kept seed again, on train + devel, for its best epoch count
        test_model, _ = _fit_one(cfg, [*train_xs, *dev_xs], [*train_ys, *dev_ys], [], [], best,
                                 epochs=max(1, int(per_seed[best]["best_epoch"])))
    out.mkdir(parents=True, exist_ok=True)
    run = RunDir(out)
    fsutil.write_toml(run.config, {**record, "fusion": {**record["fusion"], "streams": stored_streams(cfg.streams, out)},
                                   "versions": versions()})
    checkpoint.save_checkpoint(run.checkpoint, {"model": test_model.state_dict(), "config": cfg.to_dict(),
                                                "n_streams": len(cfg.streams), "n_inputs": n_inputs(cfg), "seed": best,
                                                "best_score": float(per_seed[best]["devel_ccc"])})
    test_xs = [test_stack[s][1] for s in ids[Partition.TEST]]
    preds = {Partition.DEVEL: (ids[Partition.DEVEL], dev_pred[best]),
             Partition.TEST: (ids[Partition.TEST], predict_arrays(test_model, test_xs, device) if test_xs else [])}
    if train_xs is not None:
        preds[Partition.TRAIN] = (ids[Partition.TRAIN], train_pred[best])
    stacks = {Partition.DEVEL: devel_stack, Partition.TEST: test_stack}
    if train_xs is not None:
        stacks[Partition.TRAIN] = train_stack
    for part, (pids, part_preds) in preds.items():
        if pids:
            formats.write_predictions(run.predictions(part.value),
                                      {s: (stacks[part][s][0], v) for s, v in zip(pids, part_preds, strict=True)})
    stream_scores = {n: ccc_concatenated([x[:, k] for x in dev_xs], dev_ys) for k, n in enumerate(names)}  # predictions only
    vals = np.array([r["devel_ccc"] for r in per_seed.values()])
    metrics = {"kind": "fusion", "streams": dict(zip(names, cfg.streams, strict=True)),
               "best": {"seed": best, **per_seed[best]}, "seeds": {str(s): r for s, r in per_seed.items()},
               "devel_ccc_mean": float(np.mean(vals)), "devel_ccc_std": float(np.std(vals)),
               "stream_devel_ccc": stream_scores, "train_on": cfg.train_on.value, "task": data_cfg.task.value,
               "test_from": {"streams": ("train+devel models" if cfg.final_streams and any(r.final.finished for r in runs)
                                         else "devel-selected models"),
                             "fusion": "refit on train+devel" if cfg.refit else "kept seed"},
               "target": data_cfg.target, "seconds": time.perf_counter() - t0}  # the fit, every seed (and refit)
    try:
        # matplotlib: imported only when a plot is drawn
        from musefusion.evaluation.plots import plot_predictions

        plot_predictions(run.predictions("devel"), {s: labels[s] for s in ids[Partition.DEVEL]},
                         run.plot("devel_predictions.png"),
                         title=f"fused {_FIT_TITLE[cfg.train_on.value]}: {data_cfg.target} "
                               f"({' + '.join(names)}, Bi-LSTM)")
    except Exception as exc:  # plots never lose a finished run
        logger.warning("could not plot %s: %s", out, exc)
    fsutil.write_json(run.metrics, metrics)
    logger.info("fusion %s (%s): devel CCC %.4f (streams: %s)", " + ".join(names), cfg.train_on.value,
                per_seed[best]["devel_ccc"], ", ".join(f"{n} {v:.4f}" for n, v in stream_scores.items()))
    return metrics
