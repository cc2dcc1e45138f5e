"""The resumable sweep runner: an Optuna study in a database, worker loops that train one run dir per trial.

Guarantees (see docs/sweep.md):

* ``trials`` counts COMPLETE + PRUNED trials of the whole study, never 'this many more'. A worker stops when the
  study holds that many; a trial that another worker started concurrently past the budget is handed back
  (state WAITING) before it trains, so nothing is counted twice.
* A trial whose worker died (``kill -9``, power loss) is failed and its parameters are enqueued again: at once
  when the dead worker ran on this machine (its pid is gone), else once its heartbeat is older than three
  heartbeat intervals. The retry continues in the interrupted trial's run dir (renamed to the new trial number),
  so per-epoch state is reused.
* Each trial writes ``<out>/trials/<number>/`` (a run dir of :func:`musefusion.training.run.train_run` plus
  ``trial.json``); the fixed part of the config is stored in the study's user attributes for the report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import logging
import math
import multiprocessing as mp
import os
import signal
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from musefusion import fsutil
from musefusion.config import RunConfig, Sampler, SweepConfig
from musefusion.data.corpus import corpus_digest, load_corpus
from musefusion.errors import (
    ConfigError,
    MissingDependencyError,
    MuseFusionError,
    StorageError,
    SweepError,
    TrainingError,
)
from musefusion.rundir import RunDir
from musefusion.sweep.grid import apply_params, check_space, grid_points
from musefusion.workers import die_with_parent, main_not_rerun

logger = logging.getLogger(__name__)

#: Study user attribute holding the sweep's fixed config and space (compared by every worker that joins).
STUDY_ATTR = "musefusion_sweep"
#: Fields that may differ between machines sharing a study (paths, devices), left out of the comparison.
_MACHINE_FIELDS = {"data": ("root", "cache", "cache_dir"), "train": ("device", "num_threads")}
#: Errors of two workers creating the tables of a fresh database at once (retried).
_CREATE_RACE = ("UniqueViolation", "IntegrityError", "already exists", "duplicate key", "database is locked")
#: A trial is retried at most this many times (a trial that keeps killing its worker is given up).
MAX_RETRIES = 3

EventFn = Callable[[dict[str, Any]], None]


def _optuna() -> Any:
    try:
        import optuna  # optional: pip install musefusion[sweep]
    except ImportError:  # pragma: no cover - optuna is in the 'sweep' extra
        raise MissingDependencyError("Sweeps need Optuna: pip install 'musefusion[sweep]'.") from None
    return optuna


def quiet_optuna() -> None:
    """Optuna's own INFO lines ("A new study created", "Using an existing study") off; warnings stay."""
    _optuna().logging.set_verbosity(_optuna().logging.WARNING)


@dataclasses.dataclass(frozen=True)
class StudyCounts:
    """How many trials of a study are in each state."""

    complete: int = 0
    pruned: int = 0
    running: int = 0
    waiting: int = 0
    failed: int = 0

    @property
    def done(self) -> int:
        """Trials that count towards the budget (COMPLETE + PRUNED)."""
        return self.complete + self.pruned


# ----------------------------------------------------------------------------------------------- storage


def redact_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (for messages and logs).

    Examples:
        >>> redact_url("postgresql://me:secret@db.lan:5432/sweeps")
        'postgresql://me:***@db.lan:5432/sweeps'
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def check_storage_url(url: str) -> str:
    """Validate a storage URL (SQLite file or PostgreSQL) and return its SQLAlchemy dialect.

    Raises:
        ConfigError: another scheme, or a URL without a database.

    Examples:
        >>> check_storage_url("sqlite:///sweeps/study.db")
        'sqlite'
        >>> check_storage_url("postgresql://me@localhost/sweeps")
        'postgresql'
    """
    scheme = url.split("://", 1)[0] if "://" in url else ""
    dialect = scheme.split("+", 1)[0]
    hint = "use sqlite:///path/to/study.db or postgresql://user:password@host[:port]/database"
    if dialect not in ("sqlite", "postgresql"):
        raise ConfigError(f"Storage URL '{redact_url(url)}' is not supported (--storage); {hint}.")
    if dialect == "sqlite" and not url.startswith("sqlite:///"):
        raise ConfigError(f"Storage URL '{url}' names no file (--storage); {hint}.")
    if dialect == "postgresql" and not urlsplit(url).path.strip("/"):
        raise ConfigError(f"Storage URL '{redact_url(url)}' names no database (--storage); {hint}.")
    return dialect


def _postgres_driver_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 to SQLAlchemy >= 2.1; use psycopg2 (pinned in the sweep extra) if
    psycopg 3 is not installed."""
    if not url.startswith("postgresql://"):
        return url

    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


def open_storage(url: str, heartbeat_s: int | None = None) -> Any:
    """Open (and create the tables of) an Optuna RDB storage.

    Args:
        url: ``sqlite:///file.db`` or ``postgresql://user:password@host[:port]/database``.
        heartbeat_s: trial heartbeat interval in seconds (None: no heartbeat, e.g. for reports).

    Returns:
        An ``optuna.storages.RDBStorage``.

    Raises:
        ConfigError: an unsupported URL.
        StorageError: the database cannot be reached or opened.
    """
    optuna = _optuna()
    dialect = check_storage_url(url)
    shown = redact_url(url)
    engine: dict[str, Any] = {"pool_pre_ping": True}
    if dialect == "sqlite":
        path = Path(url[len("sqlite:///"):])
        if str(path) not in ("", ":memory:"):
            if path.is_dir():
                raise ConfigError(f"Storage URL '{url}' names a folder; name a file, e.g. {url}/study.db.")
            path.parent.mkdir(parents=True, exist_ok=True)
        engine["connect_args"] = {"timeout": 60}  # several local workers write; wait for the lock
    else:
        engine["connect_args"] = {"connect_timeout": 10}
        url = _postgres_driver_url(url)
    kwargs: dict[str, Any] = {}
    if heartbeat_s is not None:
        kwargs = {"heartbeat_interval": heartbeat_s, "grace_period": 3 * heartbeat_s,
                  "heartbeat_stale_trial_callback": retry_trial}
    for attempt in range(5):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # heartbeat arguments are 'experimental'
                return optuna.storages.RDBStorage(url, engine_kwargs=engine, **kwargs)
        except Exception as exc:  # sqlalchemy/psycopg2 raise many types; all mean 'cannot use this database'
            text = f"{type(exc).__name__} {exc}"
            if attempt < 4 and any(m in text for m in _CREATE_RACE):
                time.sleep(0.2 + 0.3 * attempt)  # another worker is creating the tables right now
                continue
            first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
            raise StorageError(f"Cannot open study storage '{shown}': {first[:200]}. Check that the database "
                               "server runs and the URL (--storage) is right.") from None
    raise AssertionError("unreachable")


def study_record(sweep: SweepConfig, digest: str | None = None) -> dict[str, Any]:
    """What a study stores about its sweep (user attribute ``musefusion_sweep``): the base config, space and
    sampler, and (``digest``) the :func:`~musefusion.data.corpus.corpus_digest` of the corpus its trials read, so a
    study is never resumed on changed files."""
    record = {"version": 1, "base": sweep.base.to_dict(), "space": {k: list(v) for k, v in sweep.space},
              "sampler": sweep.sampler.value, "objective": "devel_ccc_mean", "direction": "maximize"}
    return {**record, "inputs": {"corpus": digest}} if digest is not None else record


def _comparable(record: dict[str, Any]) -> dict[str, Any]:
    base = {sec: {k: v for k, v in vals.items() if k not in _MACHINE_FIELDS.get(sec, ())}
            for sec, vals in record.get("base", {}).items()}
    return {**record, "base": base}


def _describe_difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    diffs = []
    if old.get("inputs") != new.get("inputs"):
        diffs.append("the corpus files it read have changed since")
    if old.get("sampler") != new.get("sampler"):
        diffs.append(f"sampler {old.get('sampler')} vs {new.get('sampler')}")
    if old.get("space") != new.get("space"):
        diffs.append(f"space {old.get('space')} vs {new.get('space')}")
    for sec in ("data", "model", "train"):
        a, b = old.get("base", {}).get(sec, {}), new.get("base", {}).get(sec, {})
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                diffs.append(f"{sec}.{k} {a.get(k)!r} vs {b.get(k)!r}")
    return "; ".join(diffs[:4]) or "format version"


def _grid_sampler_class() -> type:
    optuna = _optuna()

    class GridSampler(optuna.samplers.GridSampler):  # type: ignore[name-defined]  # optuna is imported lazily
        """Optuna's grid sampler without its ``study.stop()`` (only valid inside ``optimize``; the worker loop
        stops at the budget, which is capped at the grid size)."""

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            return None

    return GridSampler


def make_sampler(sweep: SweepConfig, worker_index: int = 0) -> Any:
    """TPE seeded with ``seed`` (worker 0) or a hash of (seed, worker) (parallel workers must not propose the same
    points), or the grid.

    The grid sampler shuffles its points with the seed, so every worker uses the same seed there.
    """
    optuna = _optuna()
    if sweep.sampler == Sampler.GRID:
        return _grid_sampler_class()({k: list(v) for k, v in sweep.space}, seed=sweep.seed)
    seed = sweep.seed
    if worker_index:  # nearby MT19937 seeds share draws (RandomState(0) and (1) agree on the 2nd): mix them

        seed = int(np.random.SeedSequence([sweep.seed, worker_index]).generate_state(1)[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant_liar is 'experimental'
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def make_pruner(sweep: SweepConfig) -> Any:
    """MedianPruner on intermediate devel CCC (step = seed index x epochs + epoch), or none."""
    optuna = _optuna()
    if not sweep.prune:
        return optuna.pruners.NopPruner()
    warmup = sweep.prune_warmup or max(1, sweep.base.train.epochs // 4)
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=warmup)


def open_study(sweep: SweepConfig, worker_index: int = 0, heartbeat: bool = True) -> Any:
    """Create the sweep's study or join it, checking that it was created for the same model, space and data.

    Raises:
        StorageError: the storage cannot be reached.
        ConfigError: the study exists for another model, space, sampler or fixed config.
    """
    optuna = _optuna()
    url = sweep.storage_url
    storage = open_storage(url, sweep.heartbeat_s if heartbeat else None)
    mine = study_record(sweep, corpus_digest(sweep.base.data))
    try:
        study = optuna.create_study(study_name=sweep.study, storage=storage, load_if_exists=True,
                                    direction="maximize", sampler=make_sampler(sweep, worker_index),
                                    pruner=make_pruner(sweep))
    except ValueError as exc:  # an existing study with other directions
        raise ConfigError(f"Study '{sweep.study}' in '{redact_url(url)}' cannot be used: {exc}. Pass another "
                          "--study.") from None
    stored = study.user_attrs.get(STUDY_ATTR)
    if stored is None:
        if study.trials:
            raise ConfigError(f"Study '{sweep.study}' in '{redact_url(url)}' was not created by musefusion sweep; "
                              "pass another --study.")
        study.set_user_attr(STUDY_ATTR, mine)
        stored = optuna.load_study(study_name=sweep.study, storage=storage).user_attrs[STUDY_ATTR]
    old, new = _comparable(stored), _comparable(json.loads(json.dumps(mine)))
    if "inputs" not in old:  # a study begun before 0.4 recorded no corpus digest: its files are taken on trust
        new.pop("inputs", None)
    if old != new:
        raise ConfigError(
            f"Study '{sweep.study}' in '{redact_url(url)}' was created for model "
            f"'{stored.get('base', {}).get('model', {}).get('name')}' with another setup "
            f"({_describe_difference(old, new)}); pass the same options as before or another --study.")
    return study


def study_counts(study: Any) -> StudyCounts:
    """Count the study's trials by state (one storage query)."""
    state = _optuna().trial.TrialState
    trials = study.get_trials(deepcopy=False)
    n = {s: 0 for s in state}
    for t in trials:
        if t.state == state.FAIL and "duplicate_of" in t.user_attrs:
            continue  # a proposal that repeated a finished configuration: not run, not a failure
        n[t.state] += 1
    return StudyCounts(n[state.COMPLETE], n[state.PRUNED], n[state.RUNNING], n[state.WAITING], n[state.FAIL])


def target_trials(sweep: SweepConfig) -> int:
    """The budget: ``trials``, capped at the grid size with the grid sampler."""
    if sweep.sampler == Sampler.GRID:
        return min(sweep.trials, len(grid_points(sweep.space_dict)))
    return sweep.trials


def space_exhausted(study: Any, sweep: SweepConfig) -> bool:
    """True when every configuration of the (finite) space has a COMPLETE or PRUNED trial."""
    state = _optuna().trial.TrialState
    seen = {tuple(sorted(t.params.items())) for t in study.get_trials(deepcopy=False,
                                                                      states=(state.COMPLETE, state.PRUNED))}
    return len(seen) >= len(grid_points(sweep.space_dict))


def finished_twin(study: Any, params: dict[str, Any], exclude: set[int]) -> int | None:
    """The number of a COMPLETE or PRUNED trial with exactly ``params`` (None when there is none)."""
    state = _optuna().trial.TrialState
    for t in study.get_trials(deepcopy=False, states=(state.COMPLETE, state.PRUNED)):
        if t.number not in exclude and t.params == params:
            return int(t.number)
    return None


# ----------------------------------------------------------------------------------------------- stale trials


def worker_identity() -> dict[str, Any]:
    """This process as recorded on its trials: host (+ boot id, so pids are comparable) and pid."""
    host = socket.gethostname()
    with contextlib.suppress(OSError):
        host += ":" + Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    return {"host": host, "pid": os.getpid()}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def retry_trial(study: Any, trial: Any) -> None:
    """Enqueue a failed trial's parameters again (WAITING), up to :data:`MAX_RETRIES` times.

    Also the storage's heartbeat-stale callback. The new trial remembers ``retry_of`` (the failed number) so it
    continues in that trial's run dir.
    """
    optuna = _optuna()
    retries = int(trial.user_attrs.get("retries", 0)) + 1
    if retries > MAX_RETRIES:
        logger.warning("trial %d failed %d times; not retrying it again", trial.number, retries)
        return
    system = {k: v for k, v in trial.system_attrs.items() if k in ("grid_id", "search_space")}
    study.add_trial(optuna.trial.create_trial(
        state=optuna.trial.TrialState.WAITING, params=trial.params, distributions=trial.distributions,
        user_attrs={"retry_of": trial.number, "retries": retries}, system_attrs=system))
    logger.info("trial %d was interrupted; its parameters are queued again", trial.number)


def recover_stale_trials(study: Any, me: dict[str, Any] | None = None, grace_s: float = 60.0) -> list[int]:
    """Fail and re-enqueue RUNNING trials whose worker is dead.

    A trial run by a worker on this machine whose pid no longer exists is recovered at once; others once their
    heartbeat is stale (Optuna ``fail_stale_trials``), or, when they never recorded a worker, ``grace_s`` after
    they started.

    Returns:
        The numbers of the trials failed here.
    """
    optuna = _optuna()
    state = optuna.trial.TrialState
    me = me or worker_identity()
    storage = study._storage
    failed = []
    now = time.time()
    for t in study.get_trials(deepcopy=False, states=(state.RUNNING,)):
        w = t.user_attrs.get("worker")
        dead = (w is not None and w.get("host") == me["host"] and w.get("pid") != me["pid"]
                and not _pid_alive(int(w["pid"])))
        orphan = w is None and t.datetime_start is not None and now - t.datetime_start.timestamp() > 3 * grace_s
        if not (dead or orphan):
            continue
        try:
            if storage.set_trial_state_values(t._trial_id, state=state.FAIL):
                failed.append(t.number)
                retry_trial(study, storage.get_trial(t._trial_id))
        except (optuna.exceptions.UpdateFinishedTrialError, optuna.exceptions.StorageInternalError):
            continue  # another worker got there first
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optuna.storages.fail_stale_trials(study)
    return failed


@contextlib.contextmanager
def _heartbeat(storage: Any, trial_id: int, interval_s: float) -> Iterator[None]:
    stop = threading.Event()

    def beat() -> None:
        while True:
            with contextlib.suppress(Exception):  # a missed beat is harmless; the next one may succeed
                storage.record_heartbeat(trial_id)
            if stop.wait(interval_s):
                return

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


# ----------------------------------------------------------------------------------------------- one worker


def trial_dir(out: Path, number: int) -> Path:
    """The run dir of trial ``number``."""
    return Path(out) / "trials" / str(number)


def _is_surplus(study: Any, number: int, target: int) -> bool:
    """True when ``target`` trials numbered below ``number`` already run or count (a concurrent over-ask)."""
    state = _optuna().trial.TrialState
    busy = (state.COMPLETE, state.PRUNED, state.RUNNING)
    return sum(1 for t in study.get_trials(deepcopy=False, states=busy) if t.number < number) >= target


def _run_trial(study: Any, trial: Any, sweep: SweepConfig, data: Any, me: dict[str, Any],
               on_event: EventFn | None) -> str:
    optuna = _optuna()
    # torch: imported on first use, so the CLI starts without it
    from musefusion.training.run import train_run

    number = trial.number
    retry_of = trial.user_attrs.get("retry_of")
    params = {name: trial.suggest_categorical(name, list(values)) for name, values in sweep.space}
    enqueued = "fixed_params" in study._storage.get_trial(trial._trial_id).system_attrs  # asked for explicitly
    twin = None if enqueued else finished_twin(study, params, {number})
    if twin is not None:  # the sampler repeated a finished configuration: never evaluated twice
        trial.set_user_attr("duplicate_of", twin)
        _tell(study, trial, state=optuna.trial.TrialState.FAIL)
        logger.info("trial %d would repeat finished trial %d %s; skipped, not counted", number, twin, _fmt(params))
        return "duplicate"
    cfg: RunConfig = apply_params(sweep.base, params)
    run_dir = trial_dir(sweep.out, number)
    if retry_of is not None and not run_dir.exists() and trial_dir(sweep.out, retry_of).is_dir():
        trial_dir(sweep.out, retry_of).rename(run_dir)  # continue from the interrupted trial's epoch state
    run_dir.mkdir(parents=True, exist_ok=True)
    fsutil.write_json(RunDir(run_dir).trial, {"study": sweep.study, "number": number, "params": params,
                                              "retry_of": retry_of})
    trial.set_user_attr("run_dir", str(run_dir))
    epochs = sweep.base.train.epochs
    seed_index = {s: i for i, s in enumerate(cfg.train.seeds)}
    if on_event:
        on_event({"kind": "trial_start", "number": number, "params": params})

    def on_epoch(seed: int, row: dict[str, float]) -> None:
        step = seed_index[seed] * epochs + int(row["epoch"])
        ccc = float(row.get("devel_ccc", float("nan")))
        if on_event:
            on_event({"kind": "epoch", "number": number, "seed": seed, "epoch": int(row["epoch"]), "ccc": ccc})
        if math.isfinite(ccc):
            trial.report(ccc, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"devel CCC {ccc:.4f} at seed {seed} epoch {int(row['epoch'])}")

    t0 = time.perf_counter()
    try:
        result = train_run(cfg, run_dir, data=data, on_epoch=on_epoch, parent=Path(run_dir).parent)
    except optuna.TrialPruned as exc:
        _tell(study, trial, state=optuna.trial.TrialState.PRUNED)
        logger.info("trial %d pruned (%s) %s in %.1f s", number, exc, _fmt(params), time.perf_counter() - t0)
        return "pruned"
    except (KeyboardInterrupt, SystemExit):
        _tell(study, trial, state=optuna.trial.TrialState.FAIL)
        retry_trial(study, study._storage.get_trial(trial._trial_id))
        raise
    except TrainingError as exc:  # e.g. a NaN loss at a too-large learning rate: this trial fails, the sweep goes on
        trial.set_user_attr("error", str(exc)[:300])
        _tell(study, trial, state=optuna.trial.TrialState.FAIL)
        logger.warning("trial %d failed: %s %s", number, exc, _fmt(params))
        return "failed"
    except Exception as exc:
        trial.set_user_attr("error", f"{type(exc).__name__}: {str(exc)[:300]}")
        _tell(study, trial, state=optuna.trial.TrialState.FAIL)
        raise
    value = float(result.metrics["devel_ccc_mean"])
    for key in ("devel_ccc_std",):
        trial.set_user_attr(key, float(result.metrics[key]))
    trial.set_user_attr("best_seed", int(result.metrics["best"]["seed"]))
    if not math.isfinite(value):
        trial.set_user_attr("error", "devel CCC is not finite")
        _tell(study, trial, state=optuna.trial.TrialState.FAIL)
        logger.warning("trial %d failed: devel CCC is %s %s", number, value, _fmt(params))
        return "failed"
    _tell(study, trial, values=value)
    logger.info("trial %d complete: devel CCC %.4f %s in %.1f s", number, value, _fmt(params),
                time.perf_counter() - t0)
    return "complete"


def _fmt(params: dict[str, Any]) -> str:
    return "(" + ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()) + ")"


def _tell(study: Any, trial: Any, **kwargs: Any) -> None:
    optuna = _optuna()
    try:
        study.tell(trial, **kwargs)
    except optuna.exceptions.UpdateFinishedTrialError:
        logger.warning("trial %d was given up by another worker (stale heartbeat); its run dir is kept",
                       trial.number)


def run_worker(sweep: SweepConfig, worker_index: int = 0, on_event: EventFn | None = None) -> StudyCounts:
    """Run trials until the study holds ``sweep.trials`` COMPLETE + PRUNED trials.

    Args:
        sweep: the sweep (its study must exist or is created).
        worker_index: local worker number (offsets the TPE seed).
        on_event: called with ``{"kind": "trial_start" | "epoch" | "trial_end" | "counts", ...}`` for progress.

    Returns:
        The study's counts when this worker stopped.

    Raises:
        StorageError: the storage cannot be reached.
        ConfigError: the study belongs to another sweep, or a trial's config is invalid.
    """
    optuna = _optuna()
    import torch  # torch: imported on first use, so the CLI starts without it

    torch.set_num_threads(sweep.threads)
    study = open_study(sweep, worker_index)
    me = worker_identity()
    target = target_trials(sweep)
    data = None
    poll_s = min(2.0, float(sweep.heartbeat_s))
    repeats = 0  # proposals in a row that repeated a finished configuration
    while True:
        recover_stale_trials(study, me, grace_s=3 * sweep.heartbeat_s)
        counts = study_counts(study)
        if on_event:
            on_event({"kind": "counts", "counts": counts, "target": target})
        if counts.done >= target:
            return counts
        if space_exhausted(study, sweep):  # TPE on a small space: every configuration is done, none is repeated
            logger.info("every configuration of the space is evaluated (%d); stopping at %d of %d trials",
                        len(grid_points(sweep.space_dict)), counts.done, target)
            return counts
        if counts.done + counts.running >= target:
            time.sleep(poll_s)  # the rest is running elsewhere; stay to take over if one of them dies
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # 'heartbeat is supposed to be used with Study.optimize'
            trial = study.ask()
        with _heartbeat(study._storage, trial._trial_id, sweep.heartbeat_s):
            trial.set_user_attr("worker", me)
            if _is_surplus(study, trial.number, target):
                study._storage.set_trial_state_values(trial._trial_id, state=optuna.trial.TrialState.WAITING)
                continue
            if data is None:
                data = load_corpus(sweep.base.data)
            outcome = _run_trial(study, trial, sweep, data, me, on_event)
        repeats = repeats + 1 if outcome == "duplicate" else 0
        if repeats >= max(50, 2 * target):
            logger.warning("the sampler proposed only finished configurations %d times in a row; stopping with %d "
                           "of %d trials", repeats, study_counts(study).done, target)
            return study_counts(study)
        if on_event:
            on_event({"kind": "trial_end", "number": trial.number, "outcome": outcome})


# ----------------------------------------------------------------------------------------------- many workers


def _interrupt_on_term() -> None:
    """SIGTERM behaves like Ctrl-C: the running trial is failed and queued again before the process exits."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _worker_entry(sweep_dict: dict[str, Any], index: int, parent_pid: int,
                  init: Callable[[int], None] | None) -> None:
    die_with_parent(parent_pid)
    _interrupt_on_term()
    if init is not None:
        init(index)
    try:
        run_worker(SweepConfig.from_dict(sweep_dict), index)
    except MuseFusionError as exc:
        logger.error("worker %d: %s", index, exc)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None


def run_sweep(sweep: SweepConfig, on_event: EventFn | None = None,
              worker_init: Callable[[int], None] | None = None) -> StudyCounts:
    """Create or join the study, then run ``sweep.workers`` workers until it holds ``sweep.trials`` trials.

    With one worker, trials run in this process; with more, in spawned processes (one torch thread each by
    default) while this process reports the counts.

    Args:
        sweep: what to sweep and where to store it.
        on_event: progress callback (see :func:`run_worker`).
        worker_init: called first in every spawned worker with its index (e.g. to set up logging); picklable.

    Returns:
        The study's final counts.

    Raises:
        ConfigError: invalid space, or a study made for another sweep.
        StorageError: the storage cannot be reached.
        SweepError: a worker stopped with an error.
    """
    check_space(sweep)
    sweep.out.mkdir(parents=True, exist_ok=True)
    study = open_study(sweep, heartbeat=False)  # create it once here, so workers only join
    if sweep.workers == 1:
        return run_worker(sweep, 0, on_event)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker_entry, args=(sweep.to_dict(), i, os.getpid(), worker_init),
                         name=f"sweep-worker-{i}") for i in range(sweep.workers)]
    with main_not_rerun():
        for p in procs:
            p.start()
    target = target_trials(sweep)
    try:
        while any(p.is_alive() for p in procs):
            if on_event:
                on_event({"kind": "counts", "counts": study_counts(study), "target": target})
            for p in procs:
                p.join(timeout=1.0 / len(procs))
    except KeyboardInterrupt:
        for p in procs:
            p.join(timeout=30)
        raise
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
    counts = study_counts(study)
    bad = [(i, p.exitcode) for i, p in enumerate(procs) if p.exitcode != 0]
    if bad:
        raise SweepError(f"Sweep worker(s) {[i for i, _ in bad]} stopped with exit code(s) {[c for _, c in bad]} "
                         f"(see the messages above); {counts.done}/{target} trials are done. Run the same command "
                         "again to continue.")
    return counts
