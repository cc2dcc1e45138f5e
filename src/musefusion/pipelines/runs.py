"""Find, list and compare the runs under a folder: what ``musefusion runs`` shows.

A run is any folder with a ``metrics.json`` (unimodal, fold, final, sweep-trial, fusion and fusion-selection runs);
its identity (kind, task, target, features, model, fit, seeds, parent) comes from that file, so runs made by
``train``, ``sweep``, ``fuse`` and ``reproduce`` list side by side. Runs written before the identity fields existed
get ``fit`` and ``parent`` from their place in the folder tree (``oof_k5/fold_0`` is a fold, ``final`` the
train+devel model).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from musefusion import rundir
from musefusion.data import formats
from musefusion.data.corpus import find_corpus_dir, hidden_label_path, join_by_timestamp, load_labels
from musefusion.errors import ConfigError, MissingDataError, MuseFusionError
from musefusion.evaluation.uncertainty import (
    UNDEFINED,
    Difference,
    Interval,
    ccc_interval,
    concatenated_ccc,
    paired_difference,
)
from musefusion.rundir import RunDir
from musefusion.types import Task

#: ``runs --sort`` keys: the column and whether larger sorts first.
SORT_KEYS = {"devel": ("devel_ccc", True), "mean": ("devel_ccc_mean", True), "path": ("path", False),
             "model": ("model", False), "target": ("target", False), "features": ("features", False),
             "kind": ("kind", False)}
#: The fields ``runs`` filters on (a glob each: ``--model 'selfattn*'``).
FILTER_FIELDS = ("kind", "task", "target", "features", "model", "fit")


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """What one run directory is and how it scored (one line of ``musefusion runs``)."""

    path: str  # relative to the listed root
    kind: str  # run | fusion | fusion-selection
    task: str
    target: str
    features: str  # feature sets joined with '+'; a fusion run's stream names
    model: str  # model family; bilstm for a fusion run; the chosen fuser of a selection
    fit: str  # train | train+devel | fold i/k | oof | in-sample | devel (a fusion's fitting data)
    seeds: tuple[int, ...]
    parent: str  # the run this one belongs to ('' when none)
    devel_ccc: float  # the kept (best) seed's devel CCC
    devel_ccc_mean: float  # mean over seeds
    devel_ccc_std: float
    best_epoch: int  # the kept seed's (0 when not recorded)
    epochs_run: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN becomes None)."""
        d = dataclasses.asdict(self)
        d["seeds"] = list(self.seeds)
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}


def _metrics_name() -> str:
    return RunDir(Path(".")).metrics.name


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def run_info(path: Path, root: Path | None = None) -> RunInfo:
    """The :class:`RunInfo` of the finished run at ``path``.

    Raises:
        MissingDataError: ``path`` holds no ``metrics.json``.
    """
    path = Path(path)
    run = RunDir(path)
    if not run.finished:
        raise MissingDataError(f"'{path}' is not a finished run: it has no {run.metrics.name}; give a run "
                               "directory (the folder train, fuse or reproduce wrote).")
    m = run.read_metrics()
    kind = str(m.get("kind", "run"))
    fit, parent_dir = run.place()
    parent = str(parent_dir) if parent_dir is not None else ""
    best = m.get("best", {}) if isinstance(m.get("best"), dict) else {}
    listed = m.get("seed_list") or m.get("seeds")  # an ensemble's "seeds" is its --seeds flag, not a list
    seeds = tuple(int(s) for s in listed) if isinstance(listed, list | tuple | dict) else ()
    features, model = "+".join(m.get("features", [])), str(m.get("model", ""))
    devel = _num(best.get("devel_ccc"))
    if kind == "fusion":
        features, model, fit = "+".join(m.get("streams", {})), "bilstm", str(m.get("train_on", ""))
    elif kind == "fusion-selection":
        model, fit = str(m.get("chosen", "")), "devel CV"
        devel, seeds = _num(m.get("chosen_devel_ccc")), ()
    elif kind == "postprocess":
        fit = "devel (post)"
    elif kind == "ensemble":
        fit = f"mean of {len(m.get('members', {}))}"
    else:
        fit = str(m.get("fit") or fit or "train")
    parent = str(m.get("parent") or parent or "")
    shown = str(path.relative_to(root)) if root is not None and path.is_relative_to(root) else str(path)
    return RunInfo(path=shown or ".", kind=kind, task=str(m.get("task", "")), target=str(m.get("target", "")),
                   features=features, model=model, fit=fit, seeds=seeds, parent=parent, devel_ccc=devel,
                   devel_ccc_mean=_num(m.get("devel_ccc_mean", devel)), devel_ccc_std=_num(m.get("devel_ccc_std")),
                   best_epoch=int(_num(best.get("best_epoch")) if best.get("best_epoch") is not None else 0),
                   epochs_run=int(_num(best.get("epochs_run")) if best.get("epochs_run") is not None else 0))


def find_runs(root: Path, **filters: str | None) -> list[RunInfo]:
    """Every finished run under ``root`` (``root`` itself included), optionally filtered.

    Args:
        root: a folder of runs (``runs/``, a reproduce output, a sweep folder) or one run.
        **filters: field name (:data:`FILTER_FIELDS`) -> glob pattern, e.g. ``model="selfattn*"``; None: any.

    Raises:
        MissingDataError: ``root`` is not a folder.
        ConfigError: an unknown filter field.
    """
    root = Path(root)
    if not root.is_dir():
        raise MissingDataError(f"'{root}' is not a folder; give the folder holding your runs (e.g. runs/ or a "
                               "reproduce output).")
    bad = sorted(set(filters) - set(FILTER_FIELDS))
    if bad:
        raise ConfigError(f"Unknown runs filter {bad}; use one of {list(FILTER_FIELDS)}.")
    found = sorted({p.parent for p in root.rglob(_metrics_name())})
    infos = []
    for p in found:
        try:
            info = run_info(p, root)
        except (OSError, ValueError, MuseFusionError):  # a half-deleted or foreign metrics.json is not a run
            continue
        if all(pat is None or fnmatch.fnmatchcase(str(getattr(info, k)), pat) for k, pat in filters.items()):
            infos.append(info)
    return infos


def sort_runs(infos: list[RunInfo], key: str = "devel") -> list[RunInfo]:
    """Sorted by a :data:`SORT_KEYS` key (scores best first, NaN last; names A-Z)."""
    if key not in SORT_KEYS:
        raise ConfigError(f"--sort {key!r}: use one of {list(SORT_KEYS)}.")
    field, descending = SORT_KEYS[key]
    if descending:
        return sorted(infos, key=lambda r: (math.isnan(getattr(r, field)), -getattr(r, field)
                                            if not math.isnan(getattr(r, field)) else 0.0, r.path))
    return sorted(infos, key=lambda r: (str(getattr(r, field)), r.path))


def runs_frame(infos: list[RunInfo]) -> pd.DataFrame:
    """The runs as a DataFrame, one row per run (for notebooks)."""
    return pd.DataFrame([r.to_dict() for r in infos], columns=[f.name for f in dataclasses.fields(RunInfo)])


def _flat(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in record.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "."))
        else:
            out[key] = v
    return out


@dataclasses.dataclass(frozen=True)
class Paired:
    """Two runs' devel CCCs on the subjects both predict, each with its interval, and their paired difference."""

    subjects: int
    ccc: tuple[float, float]
    intervals: tuple[Interval, Interval]
    difference: Difference  # first run minus second
    note: str = ""  # why there is no comparison ('' when there is one)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"subjects": self.subjects, "ccc": list(self.ccc), "ccc_ci": [iv.as_list() for iv in self.intervals],
                "difference": self.difference.delta, "difference_ci": self.difference.interval.as_list(),
                "verdict": self.difference.verdict, "note": self.note}


NO_PAIR = Paired(0, (float("nan"), float("nan")), (UNDEFINED, UNDEFINED), Difference(float("nan"), UNDEFINED))


def paired_runs(a: Path, b: Path, data: Path | None = None, test_labels: Path | None = None) -> Paired:
    """The paired subject-level bootstrap comparison of two runs' predictions of one target on the subjects both
    predict: devel against the labels of ``data`` (default the first run's data root), or, with ``test_labels``,
    test against the true test labels (scores nobody chose a seed or an epoch on).

    Never raises for a pair that cannot be compared (other targets, no predictions, labels not found): the
    result's ``note`` says why.
    """
    try:
        rec = [RunDir(Path(p)).read_record().get("data", {}) for p in (a, b)]
        if not all(isinstance(r, dict) and r.get("target") for r in rec):
            return dataclasses.replace(NO_PAIR, note="a run records no [data] target")
        if (rec[0]["target"], rec[0].get("task")) != (rec[1]["target"], rec[1].get("task")):
            return dataclasses.replace(NO_PAIR, note=f"other targets ({rec[0]['target']}, {rec[1]['target']})")
        part = "test" if test_labels is not None else "devel"
        folders = [RunDir(Path(p)).predictions(part) for p in (a, b)]
        root, task, target = Path(data or rec[0]["root"]), Task(rec[0].get("task", "stress")), rec[0]["target"]
    except (OSError, ValueError, MuseFusionError) as e:
        return dataclasses.replace(NO_PAIR, note=f"labels or predictions not readable ({str(e).splitlines()[0]})")
    return paired_folders(folders[0], folders[1], root, task, target, test_labels)


def paired_folders(a: Path, b: Path, root: Path, task: Task, target: str, test_labels: Path | None = None
                   ) -> Paired:
    """:func:`paired_runs` of two prediction folders (``<id>.csv`` files of one target, e.g. a run's
    ``predictions/test``): devel against the labels under ``root``, or test against ``test_labels``. Never raises:
    the result's ``note`` says why there is no comparison."""
    part = "test" if test_labels is not None else "devel"
    folders = [Path(a), Path(b)]
    try:
        if not all(f.is_dir() for f in folders):
            return dataclasses.replace(NO_PAIR, note=f"a run has no {part} predictions")
        preds = [formats.read_predictions(f) for f in folders]
        if test_labels is None:
            labels, _ = load_labels(root, task, target)
        else:
            corpus = find_corpus_dir(root, task)
            labels = {s: formats.read_label_csv(hidden_label_path(Path(test_labels), corpus.name, target, s))
                      for s in sorted(set(preds[0]) & set(preds[1]))}
    except (OSError, ValueError, MuseFusionError) as e:
        return dataclasses.replace(NO_PAIR, note=f"labels or predictions not readable ({str(e).splitlines()[0]})")
    ids = sorted(set(preds[0]) & set(preds[1]) & set(labels))
    if len(ids) < 2:
        return dataclasses.replace(NO_PAIR, note=f"{len(ids)} {part} subject(s) in common")
    ys: list[np.ndarray] = []
    joined: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    try:
        for sid in ids:
            for k, folder in enumerate(folders):
                p, y = join_by_timestamp(preds[k][sid], labels[sid], f"'{folder / (sid + '.csv')}'")
                joined[k].append(p)
            ys.append(y)  # the labelled steps, the same for both runs
    except MuseFusionError as e:
        return dataclasses.replace(NO_PAIR, note=str(e).splitlines()[0])
    ccc = (concatenated_ccc(joined[0], ys), concatenated_ccc(joined[1], ys))
    return Paired(len(ids), ccc, (ccc_interval(joined[0], ys), ccc_interval(joined[1], ys)),
                  paired_difference(joined[0], joined[1], ys))


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Runs side by side: the config fields that differ between them and their scores."""

    runs: list[RunInfo]
    differing: dict[str, list[Any]]  # 'section.key' -> one value per run (None where a run lacks the field)
    same: int  # how many fields all runs share
    paired: Paired = NO_PAIR  # two runs: the first against the second on their common devel subjects

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"runs": [r.to_dict() for r in self.runs], "differing": self.differing, "same_fields": self.same,
                "paired": self.paired.to_dict() if len(self.runs) == 2 else None}


def compare_runs(paths: list[Path], test_labels: Path | None = None) -> Comparison:
    """Compare finished runs: every config field (library versions included) whose value is not the same in all,
    and for two runs of one target the paired subject-level bootstrap interval of their devel CCC difference (test,
    with ``test_labels``).

    The data root and thread/device settings are left out, as in the reuse check (:data:`rundir.IGNORED_FIELDS`):
    they cannot change a result.

    Raises:
        ConfigError: fewer than two runs.
        MissingDataError: a path is not a finished run.
    """
    if len(paths) < 2:
        raise ConfigError("runs compare needs at least two run directories.")
    infos = [run_info(Path(p)) for p in paths]
    records = []
    for p in paths:
        rec = RunDir(Path(p)).read_record()
        versions = rec.get("versions", {})
        flat = _flat(rundir.comparable(rec))
        flat.update({f"versions.{k}": v for k, v in versions.items()} if isinstance(versions, dict) else {})
        records.append(flat)
    keys = sorted(set().union(*records))
    differing = {k: [r.get(k) for r in records] for k in keys
                 if len({repr(r.get(k)) for r in records}) > 1}
    paired = paired_runs(Path(paths[0]), Path(paths[1]), test_labels=test_labels) if len(paths) == 2 else NO_PAIR
    return Comparison(infos, differing, len(keys) - len(differing), paired)


def learning_curves(path: Path) -> pd.DataFrame:
    """The kept seed's per-epoch history (epoch, train_loss, devel_ccc, lr) of a unimodal run."""
    run = RunDir(Path(path))
    m = run.read_metrics()
    seed = m.get("best", {}).get("seed")
    hist = run.seed(int(seed)).history if seed is not None else None
    if hist is None or not hist.is_file():
        raise MissingDataError(f"'{path}' has no per-epoch history (seed_<s>/{run.history.name}); learning curves "
                               "exist for unimodal runs.")
    return pd.read_csv(hist)


def plot_compare(paths: list[Path], out: Path, labels: list[str] | None = None) -> Path:
    """``out`` (PNG): the kept seeds' devel CCC and train loss per epoch, one line per run, on fixed CCC axes."""
    # matplotlib: imported only when a plot is drawn
    from musefusion.evaluation.plots import plot_curve_overlay

    curves = {lab: learning_curves(p) for lab, p in zip(labels or [str(p) for p in paths], paths, strict=True)}
    return plot_curve_overlay(curves, Path(out))

