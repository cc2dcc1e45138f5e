"""What a reproduction will cost on this machine: its jobs per stage and their projected time.

Each distinct row (feature sets and model) trains one epoch here, on one torch thread as the jobs do, with the
profile's window settings (:class:`Projector`, shared by the stages of one projection); every stage of
``reproduce.STAGES`` projects its jobs' seconds from those measurements (its ``project`` function says how), so a
stage cannot run without being costed, and :func:`plan` has no stage list of its own.

A row's job trains all its seeds, one after the other. The wall time of a stage is that of its jobs on the
worker processes, started longest first as ``reproduce`` starts them (:func:`makespan`). It is a projection
from one epoch, not a promise: it leaves out data loading (cached after the first run), evaluation outside the
epochs, the early stops that end jobs sooner and the machine's other load.
"""

from __future__ import annotations

import dataclasses
import heapq
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from musefusion import families
from musefusion.config import RunConfig, TrainConfig
from musefusion.pipelines.experiment import ReproduceConfig
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


class Projector:
    """What the stages of one projection share: the reproduction (``cfg``, a ReproduceConfig), its rows'
    RunConfigs (``run_config(cfg, features, model, target)``) and one measured epoch per distinct feature sets and
    model, timed once whichever stage asks first (``on_measured(features, model, seconds)`` is told of each)."""

    def __init__(self, cfg: ReproduceConfig, run_config: Callable[[ReproduceConfig, str, str, str], RunConfig],
                 on_measured: Callable[[str, str, float], None] | None = None) -> None:
        self.cfg, self.run_config, self.on_measured = cfg, run_config, on_measured
        self._epochs: dict[tuple[tuple[str, ...], str], tuple[float, int, int, int]] = {}
        self._fusion: dict[tuple[int, int, int], float] = {}

    def config(self, features: str, model: str) -> Any:
        """A row's RunConfig for the task's first target (the targets of a task cost alike)."""
        return self.run_config(self.cfg, features, model, self.cfg.task.default_targets[0])

    def measured(self, rc: Any, label: str | None = None) -> tuple[float, int, int, int]:
        """:func:`measure_epoch` of ``rc``, once per feature sets and model (``label``: the features as the
        caller names them, for ``on_measured``)."""
        key = (tuple(rc.data.features), rc.model.name)
        if key not in self._epochs:
            self._epochs[key] = measure_epoch(rc)
            if self.on_measured:
                self.on_measured(label or "+".join(rc.data.features), rc.model.name, self._epochs[key][0])
        return self._epochs[key]

    def row_epoch_s(self, features: str, model: str) -> float:
        """Seconds of one epoch of a table row."""
        return self.measured(self.config(features, model), features)[0]

    def run_s(self, rc: Any) -> float:
        """Seconds of a whole seed run of ``rc``: every epoch of its budget, for each of its seeds."""
        return self.measured(rc)[0] * rc.train.epochs * len(rc.train.seeds)

    def fusion_run_s(self, features: str, model: str, n_streams: int) -> float:
        """Seconds of one fusion run (every seed and epoch of the profile's fusion budget) over ``n_streams``
        streams, its windows counted on the train set of the row ``features``/``model`` at the fusion's hop."""
        s = self.cfg.settings
        n_win = max(1, self.measured(self.config(features, model), features)[1] * s.hop_len // s.fusion_hop)
        key = (n_streams, min(n_win, 4096), s.win_len)
        if key not in self._fusion:
            self._fusion[key] = measure_fusion_epoch(*key)
        return self._fusion[key] * n_win / min(n_win, 4096) * len(s.seeds) * s.fusion_epochs


def plan(stages: Sequence[Any], projector: Projector) -> list[StageCost]:
    """The projected cost of the ``stages`` (``reproduce.STAGES``) that apply to the projector's reproduction and
    train something, in the order they run: each stage's ``project(projector)`` gives its jobs' seconds and the
    epochs they train, so the plan has no stage list of its own."""
    cfg = projector.cfg
    costs = []
    for st in stages:
        if st.project is None or not st.applies(cfg):
            continue
        durations, n_epochs = st.project(projector)
        costs.append(StageCost(st.planned(cfg), len(durations), n_epochs, sum(durations),
                               makespan(durations, cfg.workers), tuple(sorted(durations, reverse=True))))
    return costs


def makespan(durations: list[float], workers: int) -> float:
    """The wall time of jobs of ``durations`` on ``workers`` processes that each take the next job when free, the
    jobs started longest first as ``reproduce`` starts them (``jobs.longest_first``)."""
    free = [0.0] * max(1, min(workers, len(durations)))
    for d in sorted(durations, reverse=True):
        heapq.heapreplace(free, free[0] + d)
    return max(free) if durations else 0.0

