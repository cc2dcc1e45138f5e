"""Run tracking (``--track mlflow``): finished run directories logged to an MLflow tracking store.

A run is logged from its folder, after it finished, so ``train``, ``fuse``, ``reproduce`` and sweep trials are
logged alike and a crash never leaves a half-logged run: the config as params (``data.target``,
``model.hidden``, ...), its identity as tags, each seed's history as per-epoch metrics (``seed_1/devel_ccc``,
``seed_1/train_loss``, ``seed_1/lr`` with the epoch as the step), the summary scores as metrics
(``devel_ccc``, ``devel_ccc_mean``, ``devel_ccc_std``) and the whole run directory (plots, predictions, config,
metrics, checkpoint) as artifacts. A reproduction or a sweep is a parent MLflow run (a reproduction's report as
its artifacts) with one nested run per run directory below it.

Logging is idempotent: ``tracked.json`` in a run directory records the tracking URI and MLflow run id, and a
run already logged to the same URI is not logged again (a resumed ``reproduce`` logs only what is new).

The default store is ``sqlite:///mlruns/mlflow.db`` with artifacts in ``mlruns/artifacts`` (MLflow 3's file
store is in maintenance mode); any tracking URI (``http://host:5000``, ``sqlite:///path``) or
``$MLFLOW_TRACKING_URI`` works. Open it with ``mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from musefusion import fsutil
from musefusion.errors import ConfigError, MissingDependencyError, MuseFusionError, TrackingError
from musefusion.pipelines.runs import find_runs, run_info
from musefusion.rundir import ReproduceDir, RunDir
from musefusion.sweep.runner import redact_url

logger = logging.getLogger(__name__)

TRACK_HINT = "pip install 'musefusion[track]' (mlflow-skinny)"
#: The experiment every run is logged under unless another is named.
EXPERIMENT = "musefusion"
#: MLflow's HTTP client against a remote store: few retries, short timeouts (its defaults retry for minutes); the
#: user's own settings of these variables win
HTTP_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
               "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}


@contextlib.contextmanager
def _store(uri: str) -> Iterator[None]:
    """Any failure of the store as one :class:`TrackingError` line that names the (password-masked) URI and holds
    no secret; the runs were finished before logging began, so nothing is lost."""
    try:
        yield
    except (MuseFusionError, KeyboardInterrupt):
        raise
    except Exception as exc:
        password = urlsplit(uri).password if "://" in uri else None
        first = (str(exc).strip().splitlines() or [""])[0]
        if password:
            first = first.replace(password, "***")
        raise TrackingError(f"--track-uri {redact_url(uri)}: the MLflow store could not be used "
                            f"({type(exc).__name__}: {first[:300]}); the runs are finished and kept: run the same "
                            "command again with a reachable store to log them.") from None


def default_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, else a SQLite store in ``./mlruns``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(Path('mlruns') / 'mlflow.db').resolve()}"


def _client(uri: str) -> Any:
    try:
        from mlflow.tracking import MlflowClient  # optional: pip install musefusion[track]
    except ImportError:
        raise MissingDependencyError(f"--track mlflow needs MLflow: {TRACK_HINT}.") from None
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    if uri.startswith(("http://", "https://")):
        for key, value in HTTP_LIMITS.items():
            os.environ.setdefault(key, value)
    for name in ("mlflow", "alembic"):  # their INFO lines (database migrations) are not ours
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # its retry warnings: the one error line says it all
    return MlflowClient(tracking_uri=uri)


def _experiment(client: Any, uri: str, name: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return str(exp.experiment_id)
    location = None
    if uri.startswith("sqlite:///"):  # artifacts beside the database, not in the working folder
        location = (Path(uri[len("sqlite:///"):]).parent / "artifacts").resolve().as_uri()
    return str(client.create_experiment(name, artifact_location=location))


def _flat(record: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in record.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif v is not None:
            out[f"{prefix}{k}"] = str(v)[:6000]  # MLflow's limit on a param value
    return out


def _already(path: Path, uri: str, client: Any) -> str | None:
    """The MLflow run id ``path`` (a ``tracked.json``) records for ``uri`` and that the store still holds, or None
    (log again: a store deleted or replaced since is not trusted to hold it)."""
    if not path.is_file():
        return None
    try:
        got = fsutil.read_json(path)
    except (OSError, ValueError, MuseFusionError):  # an unreadable marker: log again
        return None
    if got.get("uri") != redact_url(uri) or not got.get("run_id"):
        return None
    try:
        client.get_run(str(got["run_id"]))
    except Exception:  # not in this store (any more): log again
        return None
    return str(got["run_id"])


def _holds_runs(folder: Path) -> bool:
    """``folder`` is a finished run, or holds one directly (``oof_k5/fold_0``)."""
    return RunDir(folder).finished or any(RunDir(p).finished for p in folder.iterdir() if p.is_dir())


def log_run(run_dir: Path, uri: str | None = None, experiment: str = EXPERIMENT, parent_id: str | None = None,
            artifacts: bool = True) -> str:
    """Log one finished run directory (unimodal, fold, final, fusion or selection); returns its MLflow run id.

    Raises:
        MissingDependencyError: MLflow is not installed.
        MissingDataError: ``run_dir`` is not a finished run.
    """
    uri = uri or default_uri()
    with _store(uri):
        client = _client(uri)
        return _log_one(client, _experiment(client, uri, experiment), uri, experiment, Path(run_dir), parent_id,
                        artifacts)


def _log_one(client: Any, experiment_id: str, uri: str, experiment: str, run_dir: Path, parent_id: str | None,
             artifacts: bool) -> str:
    """:func:`log_run` with the store opened (a tree logs all its runs through one client)."""
    run = RunDir(run_dir)
    done = _already(run.tracked, uri, client)
    if done:
        return done
    info = run_info(run.path)
    tags = {"mlflow.runName": "/".join(run.path.parts[-2:]), "musefusion.kind": info.kind,
            "musefusion.run_dir": str(run.path.resolve()), "musefusion.fit": info.fit,
            "musefusion.model": info.model, "musefusion.features": info.features, "musefusion.target": info.target,
            "musefusion.seeds": " ".join(map(str, info.seeds))}
    if parent_id:
        tags["mlflow.parentRunId"] = parent_id
    rid = client.create_run(experiment_id, tags=tags).info.run_id
    try:
        _log_contents(client, rid, run, info, artifacts)
    except BaseException:  # an interrupted upload is marked FAILED in MLflow and logged anew next time
        client.set_terminated(rid, "FAILED")
        raise
    client.set_terminated(rid)
    fsutil.write_json(run.tracked, {"uri": redact_url(uri), "run_id": rid, "experiment": experiment})
    return str(rid)


def _log_contents(client: Any, rid: str, run: RunDir, info: Any, artifacts: bool) -> None:
    """Params, metrics and artifacts of ``run`` into the MLflow run ``rid``."""
    # mlflow: imported on first use (optional)
    from mlflow.entities import Metric, Param

    record = run.read_record()
    params = _flat({k: v for k, v in record.items() if k != "versions"})
    params.update({f"versions.{k}": str(v) for k, v in record.get("versions", {}).items()})
    now = int(time.time() * 1000)
    metrics = [Metric(k, float(v), now, 0) for k, v in (("devel_ccc", info.devel_ccc),
                                                        ("devel_ccc_mean", info.devel_ccc_mean),
                                                        ("devel_ccc_std", info.devel_ccc_std)) if not math.isnan(v)]
    for seed_dir in run.seed_dirs():
        if seed_dir.history.is_file():
            hist = pd.read_csv(seed_dir.history)
            for col in ("train_loss", "devel_ccc", "lr"):
                if col in hist:
                    metrics += [Metric(f"{seed_dir.path.name}/{col}", float(v), now, int(e))
                                for e, v in zip(hist["epoch"], hist[col], strict=True) if v == v]
    items = list(params.items())
    for i in range(0, len(items), 100):  # MLflow takes at most 100 params and 1000 metrics per batch
        client.log_batch(rid, params=[Param(k, v) for k, v in items[i:i + 100]])
    for i in range(0, len(metrics), 1000):
        client.log_batch(rid, metrics=metrics[i:i + 1000])
    if artifacts:  # the run's own files; its nested runs (folds, final model) are logged as runs of their own
        for entry in sorted(run.path.iterdir()):
            if entry.is_file():
                client.log_artifact(rid, str(entry))
            elif not _holds_runs(entry):
                client.log_artifacts(rid, str(entry), entry.name)


def log_tree(root: Path, kind: str, uri: str | None = None, experiment: str = EXPERIMENT) -> str:
    """Log a folder of runs (a reproduction, a sweep): a parent run and every finished run below it nested in it;
    a reproduction's report and plots go to the parent's artifacts.

    Returns:
        The parent MLflow run id.
    """
    uri = uri or default_uri()
    root = Path(root)
    rep = ReproduceDir(root)
    if kind == "reproduce" and not rep.report_md.is_file():
        raise ConfigError(f"'{root}' holds no {rep.report_md.name}: only a finished reproduction is logged.")
    with _store(uri):
        return _log_tree(_client(uri), root, kind, uri, experiment)


def _log_tree(client: Any, root: Path, kind: str, uri: str, experiment: str) -> str:
    """:func:`log_tree` with the store opened."""
    rep = ReproduceDir(root)
    experiment_id = _experiment(client, uri, experiment)
    parent = _already(rep.tracked, uri, client)
    if parent is None:
        created = client.create_run(experiment_id,
                                    tags={"mlflow.runName": f"{kind} {root.name}", "musefusion.kind": kind,
                                          "musefusion.run_dir": str(root.resolve())})
        parent = str(created.info.run_id)
        fsutil.write_json(rep.tracked, {"uri": redact_url(uri), "run_id": parent, "experiment": experiment})
    children = find_runs(root)
    for child in children:
        _log_one(client, experiment_id, uri, experiment, root / child.path, parent, artifacts=True)
    client.set_tag(parent, "musefusion.runs", str(len(children)))
    for f in (rep.report_md, rep.report_html):
        if f.is_file():
            client.log_artifact(parent, str(f))
    plots = rep.plot("x").parent
    if plots.is_dir():
        client.log_artifacts(parent, str(plots), plots.name)
    client.set_terminated(parent)
    return parent
