"""Test submissions in the MuSe layout, and their validator.

Layout: ``<dir>/<target>/<id>.csv`` with the label files' columns ``timestamp,segment_id,value`` (the order of
the MuSe 2021 submission instructions and of this project's label and prediction files), one file per test subject
and target, one row per label step.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from musefusion import fsutil, rundir
from musefusion.data import formats
from musefusion.data.corpus import (
    contained,
    find_corpus_dir,
    label_path,
    list_targets,
    partition_path,
    subject_grid,
)
from musefusion.errors import ConfigError, MissingDataError, MuseFusionError
from musefusion.rundir import RunDir
from musefusion.types import Partition, Task

logger = logging.getLogger(__name__)

#: Predictions further than this many label ranges outside the train labels' range are flagged.
RANGE_SLACK = 1.0


def _is_submission(folder: Path) -> bool:
    """True when ``folder`` holds only ``<target>/<id>.csv`` files (a submission this module could have written)."""
    for child in folder.iterdir():
        if child.is_symlink() or not child.is_dir():
            return False
        if any(f.is_symlink() or not f.is_file() or f.suffix != ".csv" for f in child.iterdir()):
            return False
    return True


def write_submission(run_dirs: list[Path], out: Path, overwrite: bool = False) -> Path:
    """Write the test predictions of one run per target into ``<out>/<target>/<id>.csv``.

    An existing ``out`` that holds only a submission's ``<target>/<id>.csv`` files is replaced. Anything else in it
    (a file or folder a submission does not have) is refused unless ``overwrite``, and even then only the target
    folders written are replaced: nothing unrelated is ever deleted.

    Raises:
        MissingDataError: a run has no test predictions.
        ConfigError: ``out`` holds other files and ``overwrite`` is False.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out '{out}' is a file, not a folder; pass a folder for the submission.")
    # a corpus's label folders (and the hidden test labels) look like a submission: never written into
    rundir.check_out(out, "run", overwrite=True, inputs=[Path(r) for r in run_dirs])
    targets: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for run in run_dirs:
        run = Path(run)
        rec = RunDir(run).read_record()
        target = rec["data"]["target"]
        if target in targets:
            raise ConfigError(f"Two runs predict '{target}' ({run} and an earlier one); give one run per target.")
        targets[target] = formats.read_predictions(RunDir(run).predictions("test"))
    if out.is_dir() and any(out.iterdir()) and not _is_submission(out):
        if not overwrite:
            raise ConfigError(f"--out '{out}' already holds files that are not a submission; pass an empty or new "
                              "folder, or --overwrite to replace only its target folders.")
        for target, preds in targets.items():
            with fsutil.atomic_dir(out / target) as tmp:
                for sid, (ts, vals) in preds.items():
                    formats.write_sequence_csv(tmp / f"{sid}.csv", ts, vals)
        return out
    with fsutil.atomic_dir(out) as tmp:
        for target, preds in targets.items():
            for sid, (ts, vals) in preds.items():
                formats.write_sequence_csv(tmp / target / f"{sid}.csv", ts, vals)
    return out


def validate_submission(sub: Path, root: Path, task: Task) -> list[str]:
    """Every problem of a submission folder (empty list: valid).

    Checks: a folder per target of the task, exactly the test ids, each file readable with ``timestamp`` and
    ``value``, timestamps equal to the subject's label grid (row count, order, no shift), values finite and
    within the train labels' range widened by one range on each side.

    Raises:
        MissingDataError: the submission folder or the corpus does not exist.
    """
    sub = Path(sub)
    if not sub.is_dir():
        raise MissingDataError(f"Submission folder '{sub}' not found.")
    corpus = find_corpus_dir(root, task)
    partition = formats.read_partition(partition_path(corpus))
    test_ids = sorted(s for s, p in partition.items() if p == Partition.TEST)
    problems: list[str] = []
    targets = [t for t in task.default_targets if t in list_targets(corpus)] or list_targets(corpus)
    for target in targets:
        tdir = sub / target
        if not tdir.is_dir():
            problems.append(f"missing folder '{tdir}' for target {target}")
            continue
        train_vals = [formats.read_label_csv(label_path(corpus, target, s))[1] for s, p in partition.items()
                      if p == Partition.TRAIN and label_path(corpus, target, s).is_file()]
        lo = hi = None
        if train_vals:
            allv = np.concatenate(train_vals)
            vmin, vmax = float(np.nanmin(allv)), float(np.nanmax(allv))
            span = max(vmax - vmin, 1e-6)
            lo, hi = vmin - RANGE_SLACK * span, vmax + RANGE_SLACK * span
        present = {p.stem for p in tdir.glob("*.csv")}
        for extra in sorted(present - set(test_ids)):
            problems.append(f"'{tdir / (extra + '.csv')}': id {extra} is not a test subject")
        for sid in test_ids:
            f = tdir / f"{sid}.csv"
            if not f.is_file():
                problems.append(f"missing '{f}' (test subject {sid}, target {target})")
                continue
            try:
                ts, vals = formats.read_label_csv(contained(f, sub, "submission"))
            except MuseFusionError as exc:
                problems.append(str(exc))
                continue
            grid, _ = subject_grid(corpus, target, sid, Partition.TEST)
            if len(ts) != len(grid):
                problems.append(f"'{f}': {len(ts)} rows, expected {len(grid)} (one per label step)")
            elif not np.array_equal(ts, grid):
                i = int(np.flatnonzero(ts != grid)[0])
                problems.append(f"'{f}': timestamp {int(ts[i])} ms at row {i + 1}, expected {int(grid[i])} ms")
            bad = ~np.isfinite(vals)
            if bad.any():
                problems.append(f"'{f}': {int(bad.sum())} NaN/inf value(s), first at row {int(np.flatnonzero(bad)[0]) + 1}")
            fin = vals[~bad]
            if lo is not None and fin.size and (fin.min() < lo or fin.max() > hi):
                problems.append(f"'{f}': values {fin.min():.3g}..{fin.max():.3g} outside the plausible range "
                                f"{lo:.3g}..{hi:.3g} (train labels ± one range)")
    return problems
