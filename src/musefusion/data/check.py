"""Validate a MuSe corpus and summarise it (``musefusion data check``)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from musefusion.data import formats
from musefusion.data.corpus import (
    case_clashes,
    feature_path,
    find_corpus_dir,
    label_path,
    list_features,
    list_targets,
    partition_path,
    resolve_feature_names,
)
from musefusion.data.grid import align_to_grid
from musefusion.errors import MuseFusionError
from musefusion.progress import track
from musefusion.types import FEATURE_GROUPS, STEP_MS, Partition, Task

logger = logging.getLogger(__name__)

#: A subject whose feature covers less than this share of its label grid is reported as an alignment problem.
MIN_COVERAGE = 0.5


@dataclasses.dataclass
class CheckReport:
    """What ``check_corpus`` found."""

    corpus_dir: Path
    partitions: pd.DataFrame  # partition, subjects, steps, duration
    features: pd.DataFrame  # feature, dim, files, rows, nan_rate, fill_rate, start_ms (min..max)
    targets: pd.DataFrame  # target, files, labelled_rate (train/devel), test_values
    problems: list[str]  # each makes the corpus unusable as it is
    warnings: list[str]  # worth knowing, not fatal
    resolved: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)  # bio -> the folders it reads
    #: personalisation corpora: subject, train/devel/test chunks and steps of each subject with test chunks
    subjects: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems


def _hms(steps: int) -> str:
    s = int(steps * STEP_MS / 1000)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def check_corpus(root: Path, task: Task, progress: bool = False) -> CheckReport:  # noqa: C901 - one pass, many checks
    """Read every file of a corpus and list its problems.

    Args:
        root: data root or corpus folder.
        task: which sub-challenge corpus.
        progress: show a progress bar over subjects (CLI).

    Returns:
        A :class:`CheckReport`; ``report.ok`` is False when the corpus is broken.

    Raises:
        MissingDataError: the root or corpus folder does not exist (nothing to check).
    """
    corpus = find_corpus_dir(root, task)
    problems: list[str] = []
    warnings: list[str] = []
    try:
        partition = formats.read_partition(partition_path(corpus))
    except MuseFusionError as exc:
        problems.append(str(exc))
        partition = {}
    features, targets = list_features(corpus), list_targets(corpus)
    if not features:
        problems.append(f"No feature folders under '{corpus / 'feature_segments'}'.")
    if not targets:
        problems.append(f"No label folders under '{corpus / 'label_segments'}'.")
    problems += case_clashes(corpus)
    resolved = {}
    for group, members in FEATURE_GROUPS.items():
        try:
            resolved[group] = resolve_feature_names(corpus, members)
        except MuseFusionError:
            continue  # the group is not in this corpus (or ambiguous, reported above)
    for folder, names in (("feature_segments", features), ("label_segments", targets)):
        for name in names:
            extra = sorted(p.stem for p in (corpus / folder / name).glob("*.csv") if p.stem not in partition)
            if extra and partition:
                warnings.append(f"{folder}/{name}: {len(extra)} file(s) for ids not in partition.csv "
                                f"(e.g. {extra[0]}.csv); they are ignored.")

    grids: dict[str, np.ndarray] = {}
    tstats = {t: {"files": 0, "steps": 0, "labelled": 0, "test_values": 0} for t in targets}
    ids = list(partition.items())
    subject_iter: Iterable[tuple[str, Partition]] = ids
    if progress:
        subject_iter = track(ids, description="labels")
    for sid, part in subject_iter:
        for t in targets:
            try:
                p = label_path(corpus, t, sid)
            except MuseFusionError as exc:
                problems.append(str(exc))
                continue
            if not p.is_file():
                (warnings if part == Partition.TEST else problems).append(
                    f"Subject '{sid}' ({part.value}) has no label file '{p}'.")
                continue
            try:
                ts, vals = formats.read_label_csv(p, values=part != Partition.TEST)
            except MuseFusionError as exc:
                problems.append(str(exc))
                continue
            tstats[t]["files"] += 1
            grids.setdefault(sid, ts)
            if part == Partition.TEST:
                continue  # test values are never read
            tstats[t]["steps"] += len(ts)
            tstats[t]["labelled"] += int((~np.isnan(vals)).sum())
            if np.isnan(vals).all():
                problems.append(f"Label file '{p}' ({part.value}) holds no value; train/devel labels are needed.")

    frows = []
    feature_iter: Iterable[str] = features
    if progress:
        feature_iter = track(features, description="features")
    for f in feature_iter:
        dim, dim_src, files, rows, nan_rows, steps, filled, starts = None, None, 0, 0, 0, 0, 0, []
        for sid, part in ids:
            try:
                p = feature_path(corpus, f, sid)
            except MuseFusionError as exc:
                problems.append(str(exc))
                continue
            if not p.is_file():
                problems.append(f"Subject '{sid}' is listed in partition.csv ({part.value}) but '{p}' is missing.")
                continue
            try:
                ts, vals, _ = formats.read_feature_csv(p)
            except MuseFusionError as exc:
                problems.append(str(exc))
                continue
            files += 1
            rows += len(ts)
            nan_rows += int(np.isnan(vals).any(axis=1).sum())
            starts.append(int(ts[0]))
            if dim is None:
                dim, dim_src = vals.shape[1], p
            elif vals.shape[1] != dim:
                problems.append(f"Feature '{f}' has {vals.shape[1]} columns in '{p}' but {dim} in '{dim_src}'; "
                                "every subject needs the same columns.")
                continue
            grid = grids.get(sid)
            if grid is None:
                continue
            _, observed = align_to_grid(grid, ts, vals)
            steps += len(grid)
            filled += int((~observed).sum())
            if not observed.any():
                problems.append(f"'{p}' does not overlap its label grid at all (feature {ts[0]}..{ts[-1]} ms, labels "
                                f"{grid[0]}..{grid[-1]} ms); are its timestamps in ms on the labels' clock?")
            elif observed.mean() < MIN_COVERAGE:
                warnings.append(f"'{p}' covers only {observed.mean():.0%} of its {len(grid)} label steps "
                                f"(feature {ts[0]}..{ts[-1]} ms, labels {grid[0]}..{grid[-1]} ms).")
            off_grid = (ts % STEP_MS != 0).mean()
            if off_grid > 0.5 and len(ts) < 2 * len(grid):
                warnings.append(f"'{p}': {off_grid:.0%} of timestamps are off the 500 ms grid; rows are averaged "
                                "into the nearest step's bin.")
        frows.append({"feature": f, "dim": dim, "files": files, "rows": rows,
                      "nan_rate": nan_rows / rows if rows else np.nan, "fill_rate": filled / steps if steps else np.nan,
                      "start_ms": f"{min(starts)}..{max(starts)}" if starts else "-"})

    if partition:
        for part in (Partition.TRAIN, Partition.DEVEL):
            if part not in partition.values():
                problems.append(f"Partition file '{partition_path(corpus)}' lists no {part.value} subject; models need "
                                f"{'train subjects to fit' if part == Partition.TRAIN else 'devel subjects to pick the best epoch'}.")
    subjects = pd.DataFrame()
    if task == Task.PERSONALISATION and partition:
        subjects = _personal_subjects(partition, grids, problems, warnings, partition_path(corpus))
    prow = []
    for part in Partition:
        sids = [s for s, p in partition.items() if p == part]
        n_steps = sum(len(grids[s]) for s in sids if s in grids)
        prow.append({"partition": part.value, "subjects": len(sids), "steps": n_steps, "duration": _hms(n_steps)})
    trows = [{"target": t, "files": v["files"],
              "labelled_rate": v["labelled"] / v["steps"] if v["steps"] else np.nan} for t, v in tstats.items()]
    return CheckReport(corpus, pd.DataFrame(prow), pd.DataFrame(frows), pd.DataFrame(trows), problems, warnings,
                       resolved, subjects)


def _personal_subjects(partition: dict[str, Partition], grids: dict[str, np.ndarray], problems: list[str],
                       warnings: list[str], where: Path) -> pd.DataFrame:
    """The MuSe 2023 chunks of every subject with test chunks (``<s>_train``, ``<s>_devel*``, ``<s>_test*``), and the
    problems that stop ``personalise``: a subject without a labelled train or devel chunk, a chunk listed under a
    partition its name contradicts."""
    for sid, part in partition.items():
        named = formats.chunk_partition(sid)
        if named is not None and named != part:
            problems.append(f"Partition file '{where}': chunk '{sid}' is listed as {part.value} but its name says "
                            f"{named.value}; fix the Proposal/Partition column.")
    subjects, missing = formats.test_subjects(partition)
    need = {Partition.TRAIN: "fine-tune on", Partition.DEVEL: "choose the kept model on"}
    for subject, part in missing:
        problems.append(f"Test subject '{subject}' has no {part.value} chunk ('{subject}_{part.value}' in "
                        f"'{where}'): `musefusion personalise` has nothing to {need[part]}.")
    rows = [{"subject": subject, **{f"{p.value}_chunks": len(chunks.get(p, [])) for p in Partition},
             **{f"{p.value}_steps": sum(len(grids.get(c, ())) for c in chunks.get(p, []))
                for p in (Partition.TRAIN, Partition.DEVEL)}} for subject, chunks in subjects.items()]
    if not rows:
        warnings.append(f"No subject in '{where}' has test chunks ('<subject>_test'); `musefusion personalise` "
                        "has no subject to adapt to.")
    return pd.DataFrame(rows)
