"""What a reproduction will cost on this machine: its jobs per stage and their projected time.

Each distinct row (feature set and model) trains one epoch here, on one torch thread as the jobs do, with the
profile's window settings; every stage's time is projected from those measurements:

* seed runs: ``epochs x seeds`` epochs per row and target (a peer row such as the baseline at its own budget
  and windows; an early stop can end it sooner);
* folds: ``folds x epochs`` epochs of a fusion stream, each on ``(k-1)/k`` of the train subjects;
* final models: ``epochs`` epochs on train+devel (more windows in proportion);
* tuning: ``tune_trials x epochs`` epochs per tuned row and target at most (pruning stops weak trials earlier;
  trials at larger grid sizes cost more than the preset measured here);
* fusion: ``fusion_epochs x seeds`` epochs of the Bi-LSTM per fusion run, measured on stacked streams.

The wall time divides the total by the worker processes (never more than a stage has jobs). It is a projection
from one epoch, not a promise: it leaves out data loading (cached after the first run), evaluation outside the
epochs and the machine's other load.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from musefusion import families
from musefusion.config import TrainConfig
from musefusion.evaluation import paper


@dataclasses.dataclass
class StageCost:
    """One stage of a reproduction."""

    name: str
    jobs: int
    epochs: int  # training epochs of all its jobs together
    cpu_s: float  # projected seconds on one core
    wall_s: float  # projected seconds with the workers


def measure_epoch(rc: Any) -> tuple[float, int, int, int]:
    """Seconds of one training epoch of ``rc`` (a RunConfig) on one thread, with the train and devel sizes.

    Returns:
        ``(seconds, train windows, train subjects, devel subjects)``.
    """
    import torch  # torch: imported on first use, so the CLI starts without it

    # torch: imported on first use, so the CLI starts without it
    from musefusion.data.corpus import load_corpus
    from musefusion.models import build_model
    from musefusion.training.loop import fit
    from musefusion.training.run import make_train_windows, model_inputs
    from musefusion.training.seeds import seed_everything

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data = model_inputs(load_corpus(rc.data), rc.model.name)
        windows = make_train_windows(data.partition("train"), rc.data.win_len, rc.data.hop_len)
        devel = data.partition("devel")
        seed_everything(1)
        model = build_model(rc.model, data.d_in, tuple(data.feature_dims.values()))
        t0 = time.perf_counter()
        fit(model, windows, [s.x for s in devel], [s.y for s in devel], rc.train.replace(device="cpu"), 1, epochs=1)
        return time.perf_counter() - t0, len(windows), len(data.partition("train")), len(devel)
    finally:
        torch.set_num_threads(threads)


def measure_fusion_epoch(n_streams: int, n_windows: int, win_len: int, hidden: int = 32) -> float:
    """Seconds of one epoch of the fusion Bi-LSTM on ``n_windows`` windows of ``n_streams`` streams (one thread)."""
    import torch  # torch: imported on first use, so the CLI starts without it

    # torch: imported on first use, so the CLI starts without it
    from musefusion.models.fusion import LateFusion
    from musefusion.training.loop import Windows, fit

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((n_windows, win_len, n_streams)).astype(np.float32)
        y = rng.standard_normal((n_windows, win_len)).astype(np.float32)
        ones = np.ones((n_windows, win_len), bool)
        t0 = time.perf_counter()
        fit(LateFusion(n_streams, hidden), Windows(x, y, ones, ones), [], [], TrainConfig(device="cpu"), 1, epochs=1)
        return time.perf_counter() - t0
    finally:
        torch.set_num_threads(threads)


def plan(cfg: Any, rows: list[tuple[str, str, str]], run_config: Any, *, retrains: bool, tune: bool = False,
         tune_trials: int = 0, tune_jobs: int = 1, on_measured: Any = None) -> list[StageCost]:
    """The stages of a reproduction of ``cfg`` (a ReproduceConfig) with their projected cost on this machine.

    Args:
        cfg: the reproduction.
        rows: its unimodal rows ``(features, modality, model)``.
        run_config: ``run_config(cfg, features, model, target)`` -> the row's RunConfig.
        retrains: whether final models are trained.
        tune: whether the tuning stage runs, with ``tune_trials`` trials per row shared by ``tune_jobs`` jobs.
        on_measured: called with ``(features, model, seconds)`` after each measurement.
    """
    s = cfg.settings
    targets = cfg.task.default_targets
    n_seeds, epochs, k = len(s["seeds"]), s["epochs"], s["folds"]
    per_epoch: dict[tuple[str, str], float] = {}
    row_epochs: dict[tuple[str, str], int] = {}  # a peer row (the baseline) has its own epoch budget
    sizes: dict[tuple[str, str], tuple[int, int, int]] = {}
    for features, _mod, model in rows:
        if (features, model) not in per_epoch:
            rc = run_config(cfg, features, model, targets[0])
            sec, *size = measure_epoch(rc)
            per_epoch[(features, model)], sizes[(features, model)] = sec, (size[0], size[1], size[2])
            row_epochs[(features, model)] = rc.train.epochs
            if on_measured:
                on_measured(features, model, sec)
    stages = []

    def add(name: str, jobs: int, n_epochs: int, cpu_s: float) -> None:
        stages.append(StageCost(name, jobs, n_epochs, cpu_s, cpu_s / max(1, min(cfg.workers, jobs))))

    n_rows = len(rows) * len(targets)
    if tune:  # the peer rows keep their own settings and are not tuned
        tuned = [(f, m) for f, _mod, m in rows if not families.family(m).task_presets]
        n_tuned = len(tuned) * len(targets)
        tuned_s = sum(per_epoch[r] for r in tuned) * len(targets)
        add("tuning (at most)", n_tuned * tune_jobs, n_tuned * tune_trials * epochs, tuned_s * tune_trials * epochs)
    seed_epochs = sum(row_epochs[(f, m)] for f, _mod, m in rows) * len(targets) * n_seeds
    seed_s = sum(per_epoch[(f, m)] * row_epochs[(f, m)] for f, _mod, m in rows) * len(targets) * n_seeds
    add("seed runs", n_rows * n_seeds, seed_epochs, seed_s)
    streams = list(paper.STREAMS[cfg.task.value].values())
    stream_s = sum(per_epoch.get((f, m), 0.0) for f, m in streams) * len(targets)
    add("folds", len(streams) * len(targets) * k, len(streams) * len(targets) * k * epochs,
        stream_s * epochs * k * (k - 1) / k)
    if retrains:  # train+devel: more windows in proportion to the subjects
        _, n_train, n_devel = sizes[streams[0]]
        grow = (n_train + n_devel) / max(1, n_train)
        add("final models", len(streams) * len(targets), len(streams) * len(targets) * epochs, stream_s * epochs * grow)
    fusion_rows = list(paper.fusion_table(cfg.task))
    n_fusion = (len(fusion_rows) + 2) * len(targets)  # every row out-of-fold, the full row also in-sample and devel
    fusion_hop = s["fusion_hop"]
    n_win = max(1, sizes[streams[0]][0] * s["hop_len"] // fusion_hop)
    fuse_s = measure_fusion_epoch(len(streams), min(n_win, 4096), s.get("win_len", 300)) * n_win / min(n_win, 4096)
    add("fusion", n_fusion, n_fusion * n_seeds * s["fusion_epochs"], fuse_s * n_fusion * n_seeds * s["fusion_epochs"])
    return stages

