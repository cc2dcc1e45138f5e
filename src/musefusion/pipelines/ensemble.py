"""``musefusion ensemble``: the mean of several runs' (or one run's seeds') predictions, as a run of its own.

The 2023 Ulm-TSST winners averaged the prediction files of 4-6 models. Members are the kept predictions of the
given runs, or with ``seeds`` every seed of each run; ``top`` keeps the ``k`` members with the best devel CCC
(ranked on devel: the ensemble's devel CCC is then optimistic by that choice, its test CCC is not; the subject-wise
cross-validated estimate ``cv_devel_ccc`` ranks the members on other devel subjects than it scores). Each step's
value is the plain mean of the members' values at that step (the members must share the label grid). The output
folder has ``config.toml``, ``metrics.json`` (members and their devel CCC, the ensemble's) and
``predictions/{devel,test}`` like every run, so it can be fused, post-processed, evaluated or submitted.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from musefusion import fsutil, rundir
from musefusion.data import formats
from musefusion.data.corpus import load_labels
from musefusion.errors import ConfigError
from musefusion.evaluation.metrics import ccc_concatenated
from musefusion.fusion.oof import subject_folds
from musefusion.fusion.select import cv_top_mean
from musefusion.fusion.stack import stack_streams
from musefusion.rundir import RunDir
from musefusion.types import Partition, Task

Stream = dict[str, tuple[np.ndarray, np.ndarray]]


def mean_streams(streams: list[Stream], names: list[str]) -> Stream:
    """Per subject of the first stream, the mean of the streams' values (joined by timestamp, see
    :func:`musefusion.fusion.stack.stack_streams`, which refuses a missing subject or other timestamps)."""
    stacked = stack_streams(streams, names, list(streams[0]))
    return {sid: (ts, vals.mean(axis=1)) for sid, (ts, vals) in stacked.items()}


def _members(runs: list[Path], seeds: bool) -> list[tuple[str, RunDir, float]]:
    """(name, folder with predictions/, devel CCC) of every member."""
    found = []
    for run in runs:
        r = RunDir(Path(run))
        if not r.finished:
            raise ConfigError(f"'{run}' is not a finished run (no {r.metrics.name}); give runs train, fuse or "
                              "reproduce finished.")
        m = r.read_metrics()
        if seeds and r.seed_dirs():
            for sd in r.seed_dirs():
                score = float(fsutil.read_json(sd.result).get("devel_ccc", float("nan"))) if sd.result.is_file() \
                    else float("nan")
                found.append((f"{r.path.name}/{sd.path.name}", sd, score))
        else:
            found.append((r.path.name, r, float(m.get("best", {}).get("devel_ccc", float("nan")))))
    return found


def ensemble_runs(runs: list[Path], out: Path, top: int | None = None, seeds: bool = False,
                  root: Path | None = None, overwrite: bool = False, folds: int = 3) -> dict[str, Any]:
    """Average the members' devel and test predictions into the run folder ``out``; returns its metrics.

    Args:
        runs: finished runs of one task and target.
        out: the folder to write.
        top: keep the ``top`` members with the best devel CCC (default: all).
        seeds: members are every seed of each run (else each run's kept predictions).
        root: the data root for the devel labels (default: the first run's).
        overwrite: replace an ensemble already in ``out``.
        folds: folds of devel subjects for the cross-validated estimate of a ``top`` ensemble (``cv_devel_ccc``;
            :func:`musefusion.fusion.select.cv_top_mean`).

    Raises:
        ConfigError: fewer than two members, runs of different targets, a bad ``top`` or ``folds``.
    """
    if not runs:
        raise ConfigError("ensemble needs at least one run (two members: two runs, or --seeds).")
    datas = [RunDir(Path(r)).read_record().get("data", {}) for r in runs]
    keys = {(d.get("task"), d.get("target")) for d in datas}
    if len(keys) != 1:
        raise ConfigError(f"The runs predict different tasks/targets {sorted(map(str, keys))}; ensemble runs of one "
                          "target.")
    if top is not None and folds < 2:
        raise ConfigError(f"--folds {folds}: the cross-validated estimate needs at least 2 folds of devel subjects.")
    members = _members([Path(r) for r in runs], seeds)
    if top is not None and not 2 <= top <= len(members):
        raise ConfigError(f"--top {top}: give a number from 2 to the {len(members)} members.")
    ranked = sorted(members, key=lambda m: -m[2] if m[2] == m[2] else float("inf"))
    kept = ranked[:top] if top else members
    if len(kept) < 2:
        raise ConfigError("An ensemble needs at least two members: give two runs, or --seeds for a run of several "
                          "seeds.")
    data = datas[0]
    read = functools.cache(formats.read_predictions)  # a top ensemble reads the kept members' devel twice
    preds = {}
    for part in ("devel", "test"):
        # test: a run's final (train+devel) model's predictions where it has one, as fuse and submit use
        dirs = [m[1].test_predictions() if part == "test" else m[1].predictions(part) for m in kept]
        if all(d.is_dir() and any(d.glob("*.csv")) for d in dirs):
            preds[part] = mean_streams([read(d) for d in dirs], [m[0] for m in kept])
    if "devel" not in preds:
        raise ConfigError("A member has no devel predictions; ensemble finished runs with devel predictions.")
    labels, _ = load_labels(Path(root or data["root"]), Task(data["task"]), str(data["target"]), (Partition.DEVEL,))
    ids = [s for s in sorted(preds["devel"]) if s in labels]
    devel_ccc = ccc_concatenated([preds["devel"][s][1] for s in ids], [labels[s][1] for s in ids])
    cv = {}
    if top and len(ids) >= 2:  # every member's devel predictions, ranked on other subjects than they are scored on
        stacked = stack_streams([read(m[1].predictions("devel")) for m in members],
                                [m[0] for m in members], ids)
        pool = {m[0]: [stacked[s][1][:, j] for s in ids] for j, m in enumerate(members)}
        split = subject_folds(ids, min(folds, len(ids)))
        index = {s: i for i, s in enumerate(ids)}
        cv = {"cv_devel_ccc": cv_top_mean(pool, [labels[s][1] for s in ids], [[index[s] for s in f] for f in split],
                                          top), "cv_folds": len(split)}
    metrics = {"kind": "ensemble", "task": data["task"], "target": data["target"],
               "members": {m[0]: m[2] for m in kept}, "left_out": {m[0]: m[2] for m in members if m not in kept},
               "top": top, "seeds": seeds, "features": sorted({f for d in datas for f in d.get("features", [])}),
               "model": "ensemble", "best": {"devel_ccc": devel_ccc},
               "best_member_devel_ccc": max(m[2] for m in kept), **cv}
    with rundir.guarded(Path(out), "run", overwrite, inputs=[Path(r) for r in runs], metrics_kinds=("ensemble",)):
        with fsutil.own_entries(Path(out)) as tmp:
            dest = RunDir(tmp)
            fsutil.write_toml(dest.config, {"ensemble": {"members": [str(m[1].path) for m in kept], "top": top or 0,
                                                         "seeds": seeds}, "data": data})
            for part, stream in preds.items():
                formats.write_predictions(dest.predictions(part), stream)
            fsutil.write_json(dest.metrics, metrics)
    return metrics
