"""``musefusion postprocess``: a run's predictions with delay, smoothing and bias/scale correction chosen on devel.

The output is a run folder like a fusion selection's (``config.toml``, ``metrics.json``, ``predictions/devel``
and ``predictions/test``), so ``evaluate``, ``submit`` and ``runs`` read it as any other run. What was chosen
and what each step bought is in its ``metrics.json`` (see :mod:`musefusion.fusion.postprocess`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from musefusion import fsutil, rundir
from musefusion.data import formats
from musefusion.data.corpus import load_labels
from musefusion.errors import ConfigError
from musefusion.fusion.oof import subject_folds
from musefusion.fusion.postprocess import WINDOWS, choose
from musefusion.pipelines.selection import joined_on_grid
from musefusion.rundir import RunDir
from musefusion.types import Partition, Task


def postprocess_run(run: Path, out: Path, root: Path | None = None, folds: int = 3, max_delay_s: float = 10.0,
                    windows: Sequence[int] = WINDOWS, affine: bool = True, overwrite: bool = False
                    ) -> dict[str, Any]:
    """Choose a post-processing chain on ``run``'s devel predictions and write the processed run to ``out``.

    Args:
        run: a finished run with devel predictions (unimodal, fusion or a selection).
        out: the folder to write (a new run folder).
        root: the data root for the devel labels (default: the one the run recorded).
        folds: folds of devel subjects for the cross-validated estimate.
        max_delay_s: the longest delay searched, in seconds (0: no delay step).
        windows: moving-average windows searched, in steps (odd; ``(1,)``: no smoothing step).
        affine: search the bias and scale correction.
        overwrite: replace a post-processed run already in ``out``.

    Raises:
        ConfigError: a bad option value, ``out`` holds something else, or predictions off the label grid.
    """
    if not 0 <= max_delay_s <= 60:
        raise ConfigError(f"--max-delay-s {max_delay_s}: give seconds between 0 and 60.")
    if not windows or any(w < 1 or w % 2 == 0 for w in windows):
        raise ConfigError(f"--windows {list(windows)}: give odd window lengths in steps (1 = no smoothing).")
    src = RunDir(Path(run))
    if not src.finished:
        raise ConfigError(f"'{run}' is not a finished run (no {src.metrics.name}); post-process a run that train, "
                          "fuse or reproduce finished.")
    data = src.read_record().get("data")
    if not isinstance(data, dict):
        raise ConfigError(f"'{src.config}' has no [data] section; give a run written by train, fuse or reproduce.")
    task, target = Task(data["task"]), str(data["target"])
    labels, partition = load_labels(Path(root or data["root"]), task, target, (Partition.DEVEL,))
    dev = sorted(s for s, p in partition.items() if p == Partition.DEVEL and s in labels)
    split = subject_folds(dev, min(folds, len(dev)))
    index = {s: i for i, s in enumerate(dev)}
    dev_preds = joined_on_grid({src.path.name: src.predictions("devel")}, dev, labels)[1][src.path.name]
    ys = [labels[s][1] for s in dev]
    delays = range(0, int(round(max_delay_s * 2)) + 1)
    choice = choose(dev_preds, ys, [[index[s] for s in f] for f in split], delays, windows, affine)
    chain = choice.chain
    test_dir = src.test_predictions()
    test = formats.read_predictions(test_dir) if test_dir.is_dir() and any(test_dir.glob("*.csv")) else {}
    src_metrics = src.read_metrics()
    metrics = {"kind": "postprocess", "task": task.value, "target": target, "source": str(src.path),
               "features": src_metrics.get("features", list(src_metrics.get("streams", {}))),
               "model": f"{src_metrics.get('model', src_metrics.get('chosen', 'bilstm'))}+post",
               "chain": chain.to_dict(), "devel_ccc_before": choice.devel_ccc["none"],
               "stages": choice.devel_ccc, "cv_devel_ccc": choice.cv_ccc, "cv_devel_ccc_before": choice.cv_ccc_before,
               "folds": len(split), "best": {"devel_ccc": choice.devel_ccc["affine"]}}
    with rundir.guarded(Path(out), "run", overwrite, inputs=[src.path], metrics_kinds=("postprocess",)):
        with fsutil.own_entries(Path(out)) as tmp:
            dest = RunDir(tmp)
            fsutil.write_toml(dest.config, {"postprocess": {"source": str(src.path), "max_delay_s": max_delay_s,
                                                            "windows": list(windows), "affine": affine,
                                                            "folds": len(split)}, "data": data})
            processed = chain.apply(dev_preds)
            formats.write_predictions(dest.predictions("devel"),
                                      {s: (labels[s][0], p) for s, p in zip(dev, processed, strict=True)})
            if test:
                ids = sorted(test)
                done = chain.apply([test[s][1] for s in ids])
                formats.write_predictions(dest.predictions("test"),
                                          {s: (test[s][0], p) for s, p in zip(ids, done, strict=True)})
            fsutil.write_json(dest.metrics, metrics)
    return metrics
