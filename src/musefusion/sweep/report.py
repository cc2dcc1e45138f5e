"""The report of a sweep study: best-trials table, parameter importances, optimisation history, best config.

Written files (``<out>/``)::

    trials.csv               every trial: number, state, value, params, run dir
    best_trials.csv          the best COMPLETE trials by devel CCC
    importances.json         PED-ANOVA parameter importances (Optuna's default evaluator, named explicitly) (empty with < 2 complete trials or no variation)
    optimization_history.png devel CCC per trial and best so far (pruned trials marked)
    param_importances.png    importances as bars
    best_config.toml         the best trial's full RunConfig; ``musefusion train --config`` accepts it
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import Any

import pandas as pd

from musefusion import fsutil, rundir
from musefusion.config import RunConfig
from musefusion.errors import ConfigError, StorageError
from musefusion.sweep.grid import apply_params
from musefusion.sweep.runner import STUDY_ATTR, _optuna, check_storage_url, open_storage, redact_url

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class SweepReport:
    """What :func:`report_study` found and wrote."""

    out: Path
    trials: pd.DataFrame  # one row per trial
    best: pd.DataFrame  # the best complete trials, best first
    importances: dict[str, float]  # parameter -> importance (sums to 1), may be empty
    best_config: RunConfig | None  # None when no trial completed
    files: list[Path]


def load_sweep_study(study_name: str, storage_url: str) -> Any:
    """Load an existing sweep study.

    Raises:
        StorageError: the storage cannot be reached, or its SQLite file does not exist.
        ConfigError: no such study, or one not made by ``musefusion sweep``.
    """
    optuna = _optuna()
    if check_storage_url(storage_url) == "sqlite" and not Path(storage_url[len("sqlite:///"):]).is_file():
        raise StorageError(f"Study database '{storage_url[len('sqlite:///'):]}' not found; run 'musefusion sweep "
                           "run' first or pass the --storage it used.")
    storage = open_storage(storage_url)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        names = optuna.get_all_study_names(storage)
        raise ConfigError(f"No study '{study_name}' in '{redact_url(storage_url)}'; it holds "
                          f"{names or 'no study'} (--study).") from None
    if STUDY_ATTR not in study.user_attrs:
        raise ConfigError(f"Study '{study_name}' was not created by musefusion sweep (no '{STUDY_ATTR}' attribute).")
    return study


def trials_table(study: Any) -> pd.DataFrame:
    """One row per trial: number, state, devel CCC, duration, parameters, retry_of, run dir."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        dur = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and t.datetime_start \
            else float("nan")
        rows.append({"number": t.number, "state": t.state.name, "devel_ccc": t.value if t.value is not None
                     else float("nan"), "devel_ccc_std": t.user_attrs.get("devel_ccc_std", float("nan")),
                     "seconds": dur, **t.params, "retry_of": t.user_attrs.get("retry_of"),
                     "run_dir": t.user_attrs.get("run_dir", "")})
    return pd.DataFrame(rows)


def best_trials(table: pd.DataFrame, top: int = 10) -> pd.DataFrame:
    """The ``top`` COMPLETE trials by devel CCC, best first (ties: lower trial number first).

    Examples:
        >>> t = pd.DataFrame({"number": [0, 1, 2], "state": ["COMPLETE", "PRUNED", "COMPLETE"],
        ...                   "devel_ccc": [0.2, 0.9, 0.5]})
        >>> best_trials(t, top=1)["number"].tolist()
        [2]
    """
    if table.empty:
        return table
    done = table[table["state"] == "COMPLETE"]
    return done.sort_values(["devel_ccc", "number"], ascending=[False, True]).head(top).reset_index(drop=True)


#: The parameter-importance method (Optuna's ``PedAnovaImportanceEvaluator``), as plots and docs name it.
IMPORTANCE_METHOD = "PED-ANOVA"


def _importances(study: Any) -> dict[str, float]:
    optuna = _optuna()
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    if len(complete) < 2:
        return {}
    try:
        evaluator = optuna.importance.PedAnovaImportanceEvaluator()  # IMPORTANCE_METHOD
        return {k: float(v) for k, v in optuna.importance.get_param_importances(study, evaluator=evaluator).items()}
    except (RuntimeError, ValueError) as exc:  # e.g. no parameter varies
        logger.warning("no parameter importances: %s", exc)
        return {}


def _plot_history(table: pd.DataFrame, path: Path) -> Path:
    import matplotlib  # matplotlib: imported only when a plot is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # matplotlib: imported only when a plot is drawn

    fig, ax = plt.subplots(figsize=(7, 4))
    done = table[table["state"] == "COMPLETE"].sort_values("number")
    pruned = table[table["state"] == "PRUNED"]
    ax.scatter(done["number"], done["devel_ccc"], label="complete", color="tab:blue", s=18)
    if not pruned.empty:
        ax.scatter(pruned["number"], pruned["devel_ccc"], label="pruned (last value)", color="tab:gray",
                   marker="x", s=18)
    if not done.empty:
        ax.step(done["number"], done["devel_ccc"].cummax(), where="post", color="tab:red", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("devel CCC (mean over seeds)")
    ax.set_ylim(-0.1, 1.0)  # fixed: a change from 0.001 to 0.007 looks as small as it is
    ax.set_title("Optimisation history")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _plot_importances(importances: dict[str, float], path: Path) -> Path:
    import matplotlib  # matplotlib: imported only when a plot is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # matplotlib: imported only when a plot is drawn

    names = list(importances)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.4 * max(len(names), 1) + 1.2))
    ax.barh(names, [importances[n] for n in names], color="tab:blue")
    ax.set_xlabel(f"importance ({IMPORTANCE_METHOD}, sums to 1)")
    ax.set_title("Hyper-parameter importances" if names else "Hyper-parameter importances (too few trials)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def best_run_config(study: Any, data_root: Path | None = None) -> RunConfig | None:
    """The best trial's full RunConfig: the study's stored fixed part with the best parameters applied."""
    optuna = _optuna()
    if not any(t.state == optuna.trial.TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
        return None
    base = RunConfig.from_dict(study.user_attrs[STUDY_ATTR]["base"])
    if data_root is not None:
        base = RunConfig(base.data.replace(root=Path(data_root)), base.model, base.train)
    return apply_params(base, study.best_trial.params)


def report_study(study_name: str, storage_url: str, out: Path, top: int = 10,
                 data_root: Path | None = None) -> SweepReport:
    """Write the report of a sweep study (see the module docstring for the files).

    Args:
        study_name: the study (``--study``).
        storage_url: its storage (``--storage``).
        out: folder for the report files.
        top: rows in the best-trials table.
        data_root: data root for the best config (default: the one the sweep used).

    Returns:
        The tables, importances, best config and written paths.

    Raises:
        StorageError: the storage cannot be reached.
        ConfigError: no such sweep study; ``out`` refused by the output guard (:func:`musefusion.rundir.check_out`:
            inside the corpus, holding the study's database, or a folder of other files).
    """
    out = Path(out)
    db = storage_url[len("sqlite:///"):] if check_storage_url(storage_url) == "sqlite" else None
    rundir.check_out(out, "sweep report", can_overwrite=False, inputs=[Path(db)] if db else [])
    study = load_sweep_study(study_name, storage_url)
    out.mkdir(parents=True, exist_ok=True)
    table = trials_table(study)
    best = best_trials(table, top)
    files = [out / "trials.csv", out / "best_trials.csv"]
    with fsutil.atomic_path(files[0]) as tmp:
        table.to_csv(tmp, index=False)
    with fsutil.atomic_path(files[1]) as tmp:
        best.to_csv(tmp, index=False)
    importances = _importances(study)
    files.append(fsutil.write_json(out / "importances.json", importances))
    files.append(_plot_history(table, out / "optimization_history.png") if not table.empty
                 else out / "optimization_history.png")
    files.append(_plot_importances(importances, out / "param_importances.png"))
    cfg = best_run_config(study, data_root)
    if cfg is not None:
        best_t = study.best_trial
        files.append(fsutil.write_toml(out / "best_config.toml", cfg.to_dict()))
        logger.info("best trial %d: devel CCC %.4f", best_t.number, best_t.value)
    files = [f for f in files if f.exists()]
    return SweepReport(out, table, best, {k: v for k, v in importances.items() if not math.isnan(v)}, cfg, files)
