"""``reproduce``'s fusion selection: the paper's full fusion row against the best single row and weighted means
(:mod:`musefusion.fusion.select`), written as ``fusion/<target>/selected/``, the run the submission is made from.
Its ``metrics.json`` has every fuser's cross-validated score (``cv_devel_ccc``; the winner's is the best of four, so
optimistic), the chosen fuser fitted on every devel subject and scored there (``chosen_devel_ccc``, in-sample) and
what the selection as a whole is worth on subjects it never saw (``nested_cv_devel_ccc``).

The folder is rebuilt from the runs' prediction files every time (a few seconds of NumPy, nothing trained); it is
written to a temporary folder and renamed, so a crash never leaves half of it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from musefusion import fsutil
from musefusion.data import formats
from musefusion.data.corpus import load_labels
from musefusion.errors import ConfigError
from musefusion.fusion.oof import subject_folds
from musefusion.fusion.select import FUSERS, RULES, nested_cv, select
from musefusion.fusion.stack import load_stream, stack_streams
from musefusion.rundir import RunDir
from musefusion.types import Partition, Task


def joined_on_grid(dirs: dict[str, Path], ids: list[str], labels: dict[str, tuple[np.ndarray, np.ndarray]]
            ) -> tuple[list[np.ndarray], dict[str, list[np.ndarray]]]:
    """Every run's predictions of ``ids`` joined by timestamp: (timestamps per id, name -> values per id); devel
    predictions must lie on the label grid."""
    names = list(dirs)
    stacked = stack_streams([load_stream(d) for d in dirs.values()], names, ids)
    for sid in ids:
        if sid in labels and not np.array_equal(stacked[sid][0], labels[sid][0]):
            raise ConfigError(f"Predictions for subject '{sid}' ({', '.join(str(d) for d in dirs.values())}) are "
                              "not on its label grid; retrain those runs.")
    return ([stacked[sid][0] for sid in ids],
            {n: [stacked[sid][1][:, k] for sid in ids] for k, n in enumerate(names)})


def _same(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """The stored selection record and a new one agree (as JSON text; where they cannot be compared, they differ
    and the selection is written again)."""
    try:
        return json.dumps(old, sort_keys=True) == json.dumps(new, sort_keys=True)
    except (TypeError, ValueError):
        return False


def write_selection(fused: Path, pool: dict[str, Path], streams: dict[str, Path], out: Path, folds: int,
                    root: Path, task: Task, rule: str = RULES[0]) -> dict[str, Any]:
    """Choose the fuser for one target and write its run folder ``out``; returns its metrics.

    Args:
        fused: the paper's full fusion run (Bi-LSTM on out-of-fold train predictions).
        pool: every unimodal row's run, by row name.
        streams: the fusion streams' runs, by stream name (``A``, ``V``, ``B``, ...).
        out: the folder to write (replaced).
        folds: folds of devel subjects for the selection.
        root: the data root (the labels' corpus).
        task: its task.
        rule: how the CV scores make the choice (:data:`musefusion.fusion.select.RULES`).
    """
    data = RunDir(fused).read_record()["data"]
    labels, partition = load_labels(Path(root), task, data["target"])
    dev = sorted(s for s, p in partition.items() if p == Partition.DEVEL)
    test = sorted(s for s, p in partition.items() if p == Partition.TEST)

    def dirs(part: str) -> dict[str, Path]:
        test_dir = (lambda r: r.test_predictions()) if part == "test" else (lambda r: r.predictions(part))
        return {"fused": RunDir(fused).predictions(part),
                **{f"row:{n}": test_dir(RunDir(p)) for n, p in pool.items()},
                **{f"stream:{n}": test_dir(RunDir(p)) for n, p in streams.items()}}

    ts_dev, dv = joined_on_grid(dirs("devel"), dev, labels)
    ts_test, te = joined_on_grid(dirs("test"), test, labels) if test else ([], {k: [] for k in dv})
    ys = [labels[s][1] for s in dev]
    split = subject_folds(dev, min(folds, len(dev)))
    index = {s: i for i, s in enumerate(dev)}
    fold_idx = [[index[s] for s in f] for f in split]
    sel = select((dv["fused"], te["fused"]), {n: (dv[f"row:{n}"], te[f"row:{n}"]) for n in pool},
                 {n: (dv[f"stream:{n}"], te[f"stream:{n}"]) for n in streams}, ys, fold_idx, rule)
    nested = nested_cv(dv["fused"], {n: dv[f"row:{n}"] for n in pool}, {n: dv[f"stream:{n}"] for n in streams}, ys,
                       fold_idx, rule)
    metrics = {"kind": "fusion-selection", "target": data["target"], "task": data["task"], "chosen": sel.chosen,
               "fusers": list(FUSERS), "rule": sel.rule, "cv_devel_ccc": sel.cv_ccc,
               "cv_devel_ccc_ci": {f: iv.as_list() for f, iv in sel.cv_interval.items()},
               "cv_gain_over_bilstm": {f: {"delta": d.delta, "ci": d.interval.as_list()} for f, d in sel.gain.items()},
               "distinguishable": sel.distinguishable, "devel_ccc": sel.devel_ccc,
               "nested_cv_devel_ccc": nested,
               "chosen_devel_ccc": sel.devel_ccc[sel.chosen], "folds": len(split),
               "best_stream": sel.detail["best-stream"], "weights": sel.detail["weighted-mean"],
               "top_rows": sel.detail["top-rows-mean"],
               "runs": {"bilstm": str(fused), **{f"row {n}": str(p) for n, p in pool.items()}}}
    previous = RunDir(Path(out))
    if previous.finished and _same(previous.read_metrics(), metrics):
        return metrics  # a rerun of a finished reproduction: the same selection stays as it is (and stays tracked)
    with fsutil.atomic_dir(out) as tmp:
        run = RunDir(tmp)
        fsutil.write_toml(run.config, {"selection": {"fusers": list(FUSERS), "folds": len(split), "rule": sel.rule,
                                                     "fused": str(fused)}, "data": data})
        for part, ids, stamps, preds in ((Partition.DEVEL, dev, ts_dev, sel.devel),
                                         (Partition.TEST, test, ts_test, sel.test)):
            if ids:
                formats.write_predictions(run.predictions(part.value),
                                          {s: (t, p) for s, t, p in zip(ids, stamps, preds, strict=True)})
        fsutil.write_json(run.metrics, metrics)
    return metrics
