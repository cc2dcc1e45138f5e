"""Out-of-fold train predictions: a unimodal run refitted in k folds by subject.

Fusing *in-sample* train predictions (as the MuSe 2021 baseline does) teaches the fusion to trust inputs that
are overfitted on exactly those subjects. Out-of-fold predictions of a train subject come from a model that
never saw that subject, so they look like devel/test predictions.

Layout inside the unimodal run directory::

    <run>/oof_k<K>/fold_<i>/        a run dir (train on the other folds, select the epoch on devel,
                                    predict the held-out subjects, written under predictions/test/)
    <run>/oof_k<K>/predictions/train/<id>.csv   the collected out-of-fold predictions
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from musefusion import fsutil
from musefusion.config import RunConfig
from musefusion.data.corpus import CorpusData, load_corpus
from musefusion.errors import ConfigError
from musefusion.rundir import RunDir, Status
from musefusion.training.run import load_run_config, run_status, train_run
from musefusion.types import Partition

logger = logging.getLogger(__name__)


def subject_folds(ids: list[str], k: int, seed: int = 0) -> list[list[str]]:
    """Split subject ids into ``k`` folds (seeded shuffle, round robin).

    Raises:
        ConfigError: fewer subjects than folds, or k < 2.

    Examples:
        >>> [len(f) for f in subject_folds([str(i) for i in range(7)], 3)]
        [3, 2, 2]
    """
    if k < 2:
        raise ConfigError(f"--folds {k}: out-of-fold predictions need at least 2 folds.")
    if len(ids) < k:
        raise ConfigError(f"--folds {k}: only {len(ids)} subjects to split.")
    order = np.random.default_rng(seed).permutation(sorted(ids))
    return [sorted(order[i::k].tolist()) for i in range(k)]


def _best_seed(run_dir: Path) -> int:
    return int(RunDir(run_dir).read_metrics()["best"]["seed"])


def fold_config(run_dir: Path, num_threads: int = 0) -> RunConfig:
    """The config of a finished run's fold models: the run's, with its best seed only."""
    cfg = load_run_config(run_dir)
    train_cfg = cfg.train.replace(seeds=(_best_seed(run_dir),), num_threads=num_threads or cfg.train.num_threads)
    return dataclasses.replace(cfg, train=train_cfg)


def fold_finished(run_dir: Path, k: int, fold: int) -> bool:
    """True when fold ``fold`` of ``k`` is trained for the run as it is now.

    Raises:
        ConfigError: the fold folder holds a run of another config.
    """
    return run_status(fold_config(run_dir), RunDir(run_dir).fold(k, fold).path) is Status.FINISHED


def train_fold(run_dir: Path, k: int, fold: int, data: CorpusData | None = None, num_threads: int = 0,
               on_epoch: Callable[[int, dict[str, float]], None] | None = None) -> Path:
    """Train fold ``fold`` of ``k`` for a finished unimodal run (skipped when already done).

    The fold model is trained on the other folds' train subjects with the run's best seed, its epoch chosen on
    devel, and predicts the held-out subjects. Normalisation statistics are the full train partition's
    (features only; no label of a held-out subject is used).
    """
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    fold_cfg = fold_config(run_dir, num_threads)
    out = RunDir(run_dir).fold(k, fold).path
    if run_status(fold_cfg, out, data.digest if data is not None else None) is Status.FINISHED:
        return out
    data = data if data is not None else load_corpus(cfg.data)
    train = data.partition(Partition.TRAIN)
    folds = subject_folds([s.id for s in train], k)
    held = set(folds[fold])
    fold_data = dataclasses.replace(data, sequences={
        Partition.TRAIN: [s for s in train if s.id not in held],
        Partition.DEVEL: data.partition(Partition.DEVEL),
        Partition.TEST: [dataclasses.replace(s, partition=Partition.TEST) for s in train if s.id in held],
    })
    train_run(fold_cfg, out, data=fold_data, fit_as=f"fold {fold + 1}/{k}", parent=run_dir, on_epoch=on_epoch,
              plots=False)
    return out


def collect_oof(run_dir: Path, k: int) -> Path:
    """Gather the held-out predictions of all folds into ``<run>/oof_k<K>/predictions/train``.

    Raises:
        ConfigError: a fold has not been trained yet.
    """
    run = RunDir(run_dir)
    target = run.oof_predictions(k)
    h = hashlib.blake2b(digest_size=16)
    sources = []
    for fold in range(k):
        if not run.fold(k, fold).finished:
            raise ConfigError(f"Fold {fold} of '{run_dir}' is not trained; run train_fold first.")
        for f in sorted(run.fold(k, fold).predictions("test").glob("*.csv")):
            h.update(f"{fold}/".encode())
            fsutil.file_digest(f, h)
            sources.append(f)
    digest = h.hexdigest()
    stamp = run.oof_digest(k)
    # Rewritten only when a fold's predictions changed (a retrained fold is never stale): several fusion jobs read
    # the same collected folder at once, and replacing it under them would pull files away mid-read.
    if target.is_dir() and stamp.is_file() and stamp.read_text(encoding="utf-8").strip() == digest:
        return target
    with fsutil.atomic_dir(target) as tmp:
        for f in sources:
            shutil.copy2(f, tmp / f.name)
    fsutil.write_text(stamp, digest + "\n")
    return target


def ensure_oof(run_dir: Path, k: int) -> Path:
    """Train every missing fold and collect the out-of-fold train predictions."""
    cfg = load_run_config(run_dir)
    data = None
    for fold in range(k):
        if not fold_finished(run_dir, k, fold):
            data = data or load_corpus(cfg.data)
            train_fold(run_dir, k, fold, data=data)
    return collect_oof(run_dir, k)


def final_config(run_dir: Path, num_threads: int = 0) -> RunConfig:
    """The config of a finished run's final model: train+devel, its best seed, for its best epoch count."""
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    metrics = RunDir(run_dir).read_metrics()
    return dataclasses.replace(
        cfg, data=cfg.data.replace(train_partitions=("train", "devel")),
        train=cfg.train.replace(seeds=(int(metrics["best"]["seed"]),), epochs=int(metrics["best"]["best_epoch"]),
                                num_threads=num_threads or cfg.train.num_threads))


def final_finished(run_dir: Path) -> bool:
    """True when ``<run>/final`` is trained for the run as it is now (raises ConfigError for another config)."""
    return run_status(final_config(run_dir), RunDir(run_dir).final.path) is Status.FINISHED


def train_final(run_dir: Path, num_threads: int = 0,
                on_epoch: Callable[[int, dict[str, float]], None] | None = None) -> Path:
    """Retrain a unimodal run on train+devel (paper Sec. 5.5) with its best seed for its best epoch count.

    Returns ``<run>/final`` whose ``predictions/test`` feed the test submission.
    """
    out = RunDir(run_dir).final.path
    train_run(final_config(run_dir, num_threads), out, parent=Path(run_dir), on_epoch=on_epoch)
    return out
