"""``reproduce --tune``: one Optuna study per unimodal row over its model family's Section 5.2 grid.

The paper picks each row's heads, attention layers, LSTM size and depth, channels, learning rate and batch size
from the grid of Sec. 5.2 but does not say how; here each row gets a study on devel CCC (the sweep machinery of
``musefusion.sweep``: TPE or the full grid, median pruning on intermediate devel CCC, resumable, shared storage),
each trial trains the row's profile configuration with one seed, and the best trial's parameters then train with
the profile's seeds. Studies live in ``--storage`` (default ``<out>/tune/study.db``); PostgreSQL lets trials of
many machines join the same studies.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

from musefusion.config import RunConfig, Sampler, SweepConfig
from musefusion.sweep.grid import apply_params, paper_space
from musefusion.sweep.runner import open_study, quiet_optuna, study_counts, target_trials


def study_name(target: str, features: str, model: str) -> str:
    """The study of one row, e.g. ``tune-arousal-egemaps-selfattn_lstm``."""
    return f"tune-{target}-{features}-{model}"


def row_sweep(base: RunConfig, target: str, features: str, model: str, *, storage: str, out: Path, trials: int,
              sampler: Sampler) -> SweepConfig:
    """The sweep of one row: ``base`` (the row's profile config) with one seed, over the family's paper grid.

    The sampler seed is the CRC-32 of the study name: fixed for a row, different between rows (one seed for all
    would give every row of a family the same first random trials).
    """
    one_seed = RunConfig(base.data, base.model, base.train.replace(seeds=base.train.seeds[:1]))
    name = study_name(target, features, model)
    quiet_optuna()
    return SweepConfig(base=one_seed, space=tuple(paper_space(model).items()), study=name, storage=storage, out=out,
                       trials=trials, sampler=sampler, seed=zlib.crc32(name.encode()), workers=1, threads=1)


def is_done(sweep: SweepConfig) -> bool:
    """Whether the row's study holds its trials (COMPLETE + PRUNED) already."""
    return study_counts(open_study(sweep, heartbeat=False)).done >= target_trials(sweep)


def best_params(sweep: SweepConfig) -> dict[str, Any] | None:
    """The best COMPLETE trial's parameters (None while the study has none)."""
    study = open_study(sweep, heartbeat=False)
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    return dict(study.best_trial.params) if complete else None


def tuned_config(base: RunConfig, params: dict[str, Any] | None) -> RunConfig:
    """The row's config with the study's best parameters (``base`` unchanged without any)."""
    return apply_params(base, params) if params else base


def summary(sweep: SweepConfig) -> dict[str, Any]:
    """What the report shows of a row's search: its size, outcome, best parameters and time."""
    study = open_study(sweep, heartbeat=False)
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.datetime_start and t.datetime_complete]
    busy_s = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in done)
    span_s = ((max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)).total_seconds()
              if done else 0.0)
    counts = study_counts(study)
    params = best_params(sweep)
    return {"study": sweep.study, "complete": counts.complete, "pruned": counts.pruned, "failed": counts.failed,
            "grid_size": _grid_size(sweep), "best_devel_ccc": study.best_value if params else float("nan"),
            "params": params or {}, "trial_seconds": busy_s, "wall_seconds": span_s}


def _grid_size(sweep: SweepConfig) -> int:
    n = 1
    for _, values in sweep.space:
        n *= len(values)
    return n
