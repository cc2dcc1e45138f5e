"""What a reproduction will cost on this machine: its jobs per stage and their projected time.

Each distinct row (feature set and model) trains one epoch here, on one torch thread as the jobs do, with the
profile's window settings; every stage's time is projected from those measurements:

* seed runs: ``epochs x seeds`` epochs per row and target (a peer row such as the baseline at its own budget
  and windows; an early stop can end it sooner);
* folds: ``folds x epochs`` epochs of a fusion stream, each on ``(k-1)/k`` of the train subjects, and the final
  models (``epochs`` epochs on train+devel, more windows in proportion) in the same stage, as ``reproduce`` runs them;
* tuning: ``tune_trials x epochs`` epochs per tuned row and target at most (pruning stops weak trials earlier;
  trials at larger grid sizes cost more than the preset measured here);
* fusion: ``fusion_epochs x seeds`` epochs of the Bi-LSTM per fusion run, measured on stacked streams.

A row's job trains all its seeds, one after the other. The wall time of a stage is that of its jobs on the
worker processes, started longest first as ``reproduce`` starts them (:func:`makespan`). It is a projection
from one epoch, not a promise: it leaves out data loading (cached after the first run), evaluation outside the
epochs, the early stops that end jobs sooner and the machine's other load.
"""

from __future__ import annotations

import dataclasses
import heapq
import time
from typing import Any

import numpy as np

from musefusion import families
from musefusion.config import TrainConfig
from musefusion.evaluation import paper
from musefusion.types import known_feature


@dataclasses.dataclass
class StageCost:
    """One stage of a reproduction."""

    name: str
    jobs: int
    epochs: int  # training epochs of all its jobs together
    cpu_s: float  # projected seconds on one core
    wall_s: float  # projected seconds with the workers
    job_s: tuple[float, ...] = ()  # each job's projected seconds, longest first (the order the jobs start in)


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


def window_seconds(rc: Any, n_windows: int = 8) -> float:
    """Seconds one training step takes per window for the model of ``rc`` (a RunConfig): the loop's own epoch
    (``training.loop.fit``: forward, CCC loss, backward, Adam, at the row's precision) over one batch of
    ``n_windows`` random windows of the row's width and window length, one torch thread; the second of two such
    epochs (the first warms up).

    Enough to rank jobs by cost without reading the corpus: the width comes from the known feature dimensions
    (``types.KNOWN_FEATURES``; 64 for an unknown folder). The torch RNG and thread count are restored after.
    """
    import torch  # torch: imported on first use, so the CLI starts without it

    # torch: imported on first use, so the CLI starts without it
    from musefusion.models import build_model
    from musefusion.training.loop import Windows, fit

    dims = tuple(known_feature(f)[0] or 64 for f in rc.data.features)
    width = sum(dims) + (len(dims) if families.family(rc.model.name).observed_inputs else 0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            model = build_model(rc.model, width, dims)
            rng = np.random.default_rng(0)
            x = rng.standard_normal((n_windows, rc.data.win_len, width)).astype(np.float32)
            y = rng.standard_normal((n_windows, rc.data.win_len)).astype(np.float32)
            ones = np.ones((n_windows, rc.data.win_len), bool)
            result = fit(model, Windows(x, y, ones, ones), [], [],
                         rc.train.replace(device="cpu", batch_size=n_windows), 1, epochs=2)
        return float(result.history[-1]["seconds"]) / n_windows
    finally:
        torch.set_num_threads(threads)


def job_weights(configs: list[Any], scale: list[float] | None = None) -> list[float]:
    """The expected cost of training each RunConfig of ``configs`` (any unit: for ordering jobs, longest first).

    ``epochs x seeds x seconds per window (:func:`window_seconds`, measured once per distinct model, width,
    window and precision) / hop`` (a corpus has about ``steps / hop`` windows), times ``scale[i]`` (a fold model
    fits ``(k-1)/k`` of the subjects). An early stop can end a job sooner; the order is an estimate.
    """
    measured: dict[str, float] = {}
    weights = []
    for i, rc in enumerate(configs):
        key = repr((rc.model.to_dict(), rc.data.features, rc.data.win_len, rc.train.precision, rc.train.loss))
        if key not in measured:
            measured[key] = window_seconds(rc)
        w = rc.train.epochs * len(rc.train.seeds) * measured[key] / rc.data.hop_len
        weights.append(w * (scale[i] if scale is not None else 1.0))
    return weights


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
    row_seeds: dict[tuple[str, str], int] = {}  # and seeds
    sizes: dict[tuple[str, str], tuple[int, int, int]] = {}
    for features, _mod, model in rows:
        if (features, model) not in per_epoch:
            rc = run_config(cfg, features, model, targets[0])
            sec, *size = measure_epoch(rc)
            per_epoch[(features, model)], sizes[(features, model)] = sec, (size[0], size[1], size[2])
            row_epochs[(features, model)] = rc.train.epochs
            row_seeds[(features, model)] = len(rc.train.seeds)
            if on_measured:
                on_measured(features, model, sec)
    stages = []

    def add(name: str, durations: list[float], n_epochs: int) -> None:
        stages.append(StageCost(name, len(durations), n_epochs, sum(durations), makespan(durations, cfg.workers),
                                tuple(sorted(durations, reverse=True))))

    row_s = {(f, m): per_epoch[(f, m)] * row_epochs[(f, m)] * row_seeds[(f, m)] for f, _mod, m in rows}  # all seeds
    if tune:  # the peer rows keep their own settings and are not tuned; a study's trials share its tune jobs
        tuned = [(f, m) for f, _mod, m in rows if not families.family(m).task_presets]
        add("tuning (at most)", [per_epoch[r] * tune_trials * epochs / tune_jobs for r in tuned for _t in targets
                                 for _j in range(tune_jobs)], len(tuned) * len(targets) * tune_trials * epochs)
    add("seed runs", [row_s[(f, m)] for f, _mod, m in rows for _t in targets],
        sum(row_epochs[(f, m)] * row_seeds[(f, m)] for f, _mod, m in rows) * len(targets))
    streams = list(paper.STREAMS[cfg.task.value].values())
    durations = [per_epoch.get(r, 0.0) * epochs * (k - 1) / k for r in streams for _t in targets for _f in range(k)]
    n_epochs = len(streams) * len(targets) * k * epochs
    if retrains:  # train+devel: more windows in proportion to the subjects; one stage with the folds, as reproduce
        _, n_train, n_devel = sizes[streams[0]]
        grow = (n_train + n_devel) / max(1, n_train)
        durations += [per_epoch.get(r, 0.0) * epochs * grow for r in streams for _t in targets]
        n_epochs += len(streams) * len(targets) * epochs
    add("folds + final models" if retrains else "folds", durations, n_epochs)
    fusion_rows = list(paper.fusion_table(cfg.task))
    n_fusion = (len(fusion_rows) + 2) * len(targets)  # every row out-of-fold, the full row also in-sample and devel
    fusion_hop = s["fusion_hop"]
    n_win = max(1, sizes[streams[0]][0] * s["hop_len"] // fusion_hop)
    fuse_s = measure_fusion_epoch(len(streams), min(n_win, 4096), s.get("win_len", 300)) * n_win / min(n_win, 4096)
    add("fusion", [fuse_s * n_seeds * s["fusion_epochs"]] * n_fusion, n_fusion * n_seeds * s["fusion_epochs"])
    return stages


def makespan(durations: list[float], workers: int) -> float:
    """The wall time of jobs of ``durations`` on ``workers`` processes that each take the next job when free, the
    jobs started longest first as ``reproduce`` starts them (``jobs.longest_first``)."""
    free = [0.0] * max(1, min(workers, len(durations)))
    for d in sorted(durations, reverse=True):
        heapq.heapreplace(free, free[0] + d)
    return max(free) if durations else 0.0

