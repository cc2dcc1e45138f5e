"""The jobs of ``reproduce`` and where they run: this machine's process pool, or a Dask cluster.

Every job is idempotent: it first asks its run directory whether its work is finished (same configuration,
same inputs; see ``musefusion.rundir``) and returns ``False`` without doing anything when it is. A job that
dies half-way (a killed worker, a machine that leaves) resumes from the per-epoch state it left on disk when it
runs again. So a cluster that reruns a lost job never trains anything twice, and every job writes one line
``<label> <did-work|already-finished> <host> <pid>`` to ``<out>/jobs.log`` when it ends.

Dask (``dask.distributed``) is the engine for many machines: a scheduler (``dask scheduler``) and workers
(``dask worker ADDRESS``, one per machine or core) that share the output folder and the corpus on a shared
filesystem; ``reproduce --cluster ADDRESS`` submits the jobs there instead of to the local pool. The scheduler
reschedules the jobs of a worker that dies or leaves; workers may join at any time. ``docs/cluster.md`` says
why Dask rather than Ray and how to start one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import logging
import logging.handlers
import multiprocessing
import os
import re
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from musefusion.config import RunConfig, SweepConfig
from musefusion.errors import ClusterError, ConfigError, MissingDependencyError, MuseFusionError
from musefusion.pipelines import tune
from musefusion.progress import BestSoFar
from musefusion.rundir import Status
from musefusion.workers import die_with_parent, log_to_parent, main_not_rerun, worker_logs

logger = logging.getLogger(__name__)

#: A job: the function, its arguments and a label for progress, errors and the ledger.
Job = tuple[Callable[..., bool], tuple[Any, ...], str]

CLUSTER_HINT = "pip install 'musefusion[cluster]' (dask.distributed) on this machine and on every worker"


#: Per-epoch progress of the jobs: INFO records with a ``progress`` dict (job, seed, epoch, epochs, ccc, best),
#: shown as one line each when redirected and as a row per running job in a terminal (``progress.JobDisplay``).
progress_log = logging.getLogger("musefusion.progress")
_current = threading.local()  # .label: the job this thread runs (set by _ledgered; Dask may run jobs in threads)


def epoch_reporter(epochs: int) -> Callable[[int, dict[str, float]], None]:
    """An ``on_epoch(seed, row)`` for ``train_run`` that logs each epoch of the current job, naming it."""
    best = BestSoFar()

    def on_epoch(seed: int, row: dict[str, float]) -> None:
        ccc, epoch = float(row.get("devel_ccc", float("nan"))), int(row["epoch"])
        top, at = best.update(seed, ccc, epoch) or (float("nan"), 0)
        label = getattr(_current, "label", "")
        progress_log.info("%s seed %d epoch %d/%d: devel CCC %.4f (best %.4f at epoch %d)", label,
                          seed, epoch, epochs, ccc, top, at,
                          extra={"progress": {"job": label, "seed": seed, "epoch": epoch,
                                              "epochs": epochs, "ccc": ccc, "best": top}})

    return on_epoch


def _init_worker(parent_pid: int, queue: Any, level: int) -> None:
    """A local pool worker: dies with the parent; its log records (progress included) go to the parent."""
    die_with_parent(parent_pid)
    log_to_parent(queue, level)


def _one_thread() -> None:
    import torch  # torch: imported on first use, so the CLI starts without it

    torch.set_num_threads(1)


def _finished(check: Callable[[], bool]) -> bool:
    """``check()``, False where it refuses a run of another configuration (the job itself then decides)."""
    try:
        return check()
    except ConfigError:
        return False


def job_train(cfg_dict: dict[str, Any], out: str) -> bool:
    """Train a unimodal row; False when the run is finished already."""
    # torch: imported on first use, so the CLI starts without it
    from musefusion.training.run import resolve_run_config, run_status, train_run

    cfg = resolve_run_config(RunConfig.from_dict(cfg_dict))
    if _finished(lambda: run_status(cfg, Path(out)) is Status.FINISHED):
        return False
    _one_thread()
    train_run(cfg, Path(out), on_epoch=epoch_reporter(cfg.train.epochs))
    return True


def job_fold(run: str, k: int, fold: int) -> bool:
    """Refit a fusion stream on fold ``fold`` of ``k`` (out-of-fold predictions); False when finished."""
    # torch: imported on first use, so the CLI starts without it
    from musefusion.fusion.oof import fold_config, fold_finished, train_fold

    if _finished(lambda: fold_finished(Path(run), k, fold)):
        return False
    _one_thread()
    train_fold(Path(run), k, fold, num_threads=1, on_epoch=epoch_reporter(fold_config(Path(run)).train.epochs))
    return True


def job_final(run: str) -> bool:
    """Retrain a fusion stream on train+devel; False when finished."""
    # torch: imported on first use, so the CLI starts without it
    from musefusion.fusion.oof import final_config, final_finished, train_final

    if _finished(lambda: final_finished(Path(run))):
        return False
    _one_thread()
    train_final(Path(run), num_threads=1, on_epoch=epoch_reporter(final_config(Path(run)).train.epochs))
    return True


def job_fuse(cfg_dict: dict[str, Any], out: str) -> bool:
    """Fit a fusion row; False when finished (``fuse`` itself reuses a finished run of the same config)."""
    # torch: imported on first use, so the CLI starts without it
    from musefusion.fusion.late import FusionConfig, fuse, fusion_record, fusion_status
    from musefusion.training.run import load_run_config

    cfg = FusionConfig.from_dict(cfg_dict)
    record = fusion_record(cfg, load_run_config(Path(cfg.streams[0])).data.to_dict())
    if _finished(lambda: fusion_status(Path(out), record) is Status.FINISHED):
        return False
    _one_thread()
    fuse(cfg, Path(out))
    return True


def job_tune(sweep_dict: dict[str, Any], worker_index: int = 0) -> bool:
    """Run trials of a row's study until it holds its budget; False when it does already.

    Several jobs may work on one study at once (``reproduce --tune-jobs``): Optuna hands each trial to one of
    them through the study's storage, and ``worker_index`` offsets the TPE seed so they do not propose alike.
    """
    # torch: imported on first use, so the CLI starts without it
    from musefusion.sweep.runner import quiet_optuna, run_worker

    quiet_optuna()
    sweep = SweepConfig.from_dict(sweep_dict)
    if tune.is_done(sweep):
        return False
    _one_thread()
    run_worker(sweep, worker_index)
    return True


def _ledgered(ledger: str, label: str, fn: Callable[..., bool], args: tuple[Any, ...]) -> bool:
    """Run one job and append its line to the ledger (one ``write`` of one line: atomic on POSIX appends)."""
    _current.label = label
    did = fn(*args)
    line = f"{label}\t{'did-work' if did else 'already-finished'}\t{socket.gethostname()}\t{os.getpid()}\n"
    fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    return did


def longest_first(jobs: list[Job], weights: list[float] | None) -> list[Job]:
    """``jobs`` in the order they should start: heaviest ``weights`` first (ties and ``None`` keep the given order).

    Longest-processing-time-first list scheduling: a pool that takes jobs in this order never starts the longest
    job last, so no worker idles at the end while one long job runs alone (Graham's bound: at most 4/3 of the best
    possible wall time, and close to it when there are many more jobs than workers).
    """
    if weights is None:
        return list(jobs)
    if len(weights) != len(jobs):
        raise ValueError(f"{len(weights)} weights for {len(jobs)} jobs")
    order = sorted(range(len(jobs)), key=lambda i: -weights[i])  # sorted is stable: equal weights keep their order
    return [jobs[i] for i in order]


def run_jobs(jobs: list[Job], ledger: Path, on_done: Callable[[str], None], workers: int = 1,
             cluster: str | None = None, weights: list[float] | None = None) -> None:
    """Run ``jobs`` on ``workers`` local processes (inline when 1) or on the Dask cluster at ``cluster``.

    Every job runs even when another fails; the first failure is raised at the end. With ``weights`` (a job's
    expected cost, any unit: ``musefusion.pipelines.cost.job_weights``) the heaviest jobs start first, on the
    pool as on the cluster (:func:`longest_first`; Dask gets them as task priorities).

    Raises:
        MissingDependencyError: ``cluster`` given but dask.distributed is not installed.
        ClusterError: the scheduler at ``cluster`` cannot be reached.
    """
    if not jobs:
        return
    jobs = longest_first(jobs, weights)
    ledger.parent.mkdir(parents=True, exist_ok=True)
    if cluster:
        _run_on_cluster(jobs, str(ledger), on_done, cluster)
        return
    if workers == 1:
        for fn, args, label in jobs:
            _ledgered(str(ledger), label, fn, args)
            on_done(label)
        return
    ctx = multiprocessing.get_context("spawn")
    with main_not_rerun(), worker_logs() as queue, cf.ProcessPoolExecutor(
            max_workers=workers, mp_context=ctx, initializer=_init_worker,
            initargs=(os.getpid(), queue, logging.getLogger().level)) as pool:
        futures = {pool.submit(_ledgered, str(ledger), label, fn, args): label for fn, args, label in jobs}
        _collect(futures, cf.as_completed(futures), on_done)


def _collect(futures: dict[Any, str], finished: Any, on_done: Callable[[str], None]) -> None:
    """Wait for every future as ``finished`` yields it; raise the first failure once all have ended."""
    errors = []
    for fut in finished:
        try:
            fut.result()
        except Exception as exc:  # keep the other jobs' work; report the first failure
            errors.append(exc)
            logger.error("job %s failed: %s", futures[fut], exc)
        on_done(futures[fut])
    if errors:
        raise errors[0]


#: A Dask scheduler address: an optional protocol, a host (name, IPv4 or [IPv6]) and a port.
_ADDRESS = re.compile(r"(?:(?:tcp|tls|ucx|ws|wss)://)?(?:[\w.-]+|\[[0-9a-fA-F:.]+\]):\d{1,5}")


_HINT = "give tcp://HOST:PORT of a running `dask scheduler`, with workers started by `dask worker tcp://HOST:PORT`"


def check_cluster_address(address: str) -> None:
    """Refuse a ``--cluster`` value that is not a scheduler address, before any output is made and before Dask
    starts its event loop ("host", "tcp//x:1", "x:port").

    Raises:
        ClusterError: one line naming ``--cluster`` and the form it takes.
    """
    if not _ADDRESS.fullmatch(address):
        raise ClusterError(f"--cluster {address}: no Dask scheduler answers there (not an address of the form "
                           f"tcp://HOST:PORT); {_HINT}.")


def _run_on_cluster(jobs: list[Job], ledger: str, on_done: Callable[[str], None], address: str) -> None:
    try:
        from dask.distributed import Client, as_completed  # optional: pip install musefusion[cluster]
    except ImportError:
        raise MissingDependencyError(f"--cluster needs Dask: {CLUSTER_HINT}.") from None
    hint = _HINT
    check_cluster_address(address)
    try:
        client = Client(address, timeout="20s")
    except (OSError, ValueError, TypeError) as exc:  # unreachable
        raise ClusterError(f"--cluster {address}: no Dask scheduler answers there ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''}); {hint}.") from None
    try:
        with client:
            if not client.scheduler_info().get("workers"):
                logger.warning("the Dask scheduler at %s has no workers yet: the jobs wait until one joins (start "
                               "`dask worker %s` on a machine that sees the corpus and --out)", address, address)
            # pure=False: a job is never served from the cache of an earlier identical call; priority: the jobs are
            # in the order they should start (longest first), and Dask starts higher priorities first
            futures = {client.submit(_ledgered, ledger, label, fn, args, pure=False,
                                     key=f"{label}-{os.urandom(4).hex()}", priority=len(jobs) - i): label
                       for i, (fn, args, label) in enumerate(jobs)}
            _collect(futures, as_completed(futures), on_done)
    except (MuseFusionError, KeyboardInterrupt):
        raise
    except (OSError, TimeoutError, cf.CancelledError, asyncio.CancelledError) as exc:  # the scheduler went away
        raise ClusterError(f"--cluster {address}: the Dask scheduler stopped answering mid-run "
                           f"({type(exc).__name__}); every finished job is kept: start the scheduler again and run "
                           "the same command to resume.") from None
