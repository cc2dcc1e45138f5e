"""Score prediction files against label files, joined by timestamp."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from musefusion.data import formats
from musefusion.data.corpus import find_corpus_dir, hidden_label_path, join_by_timestamp, label_path
from musefusion.errors import MissingDataError
from musefusion.evaluation.metrics import ccc_concatenated, ccc_per_sequence_mean, pcc, rmse
from musefusion.evaluation.uncertainty import ccc_interval
from musefusion.types import Partition, Task

logger = logging.getLogger(__name__)


def score_predictions(pred_dir: Path, root: Path, task: Task, target: str, partition: Partition,
                      test_labels: Path | None = None, ids: Sequence[str] | None = None) -> dict[str, float]:
    """CCC (concatenated, with its 95 % subject-level bootstrap interval ``ccc_low``-``ccc_high``, and the
    per-subject mean), PCC and RMSE of a folder of predictions.

    Args:
        pred_dir: ``<run>/predictions/<partition>`` (MuSe CSVs).
        root: data root (labels for train/devel).
        task: sub-challenge.
        target: label folder.
        partition: which partition these predictions are for.
        test_labels: folder of the true test labels (only for ``partition == test``).
        ids: score only these ids of the partition (one subject's chunks); default every id it lists.

    Raises:
        MissingDataError: no predictions, or a needed label file is missing.
        DataFormatError: predictions do not cover the label steps.
    """
    preds = formats.read_predictions(pred_dir)
    corpus = find_corpus_dir(root, task)
    partition_map = formats.read_partition(corpus / "metadata" / "partition.csv")
    listed = [s for s, p in partition_map.items() if p == partition]
    wanted = None if ids is None else set(ids)
    ids = listed if wanted is None else [s for s in listed if s in wanted]
    missing = [s for s in ids if s not in preds]
    if missing:
        raise MissingDataError(f"'{pred_dir}' has no predictions for {len(missing)} {partition.value} subject(s), "
                               f"e.g. {missing[0]}.csv.")
    ps, ys = [], []
    for sid in ids:
        if partition == Partition.TEST:
            if test_labels is None:
                raise MissingDataError("Test labels are withheld; pass --test-labels DIR to score test predictions.")
            lp = hidden_label_path(test_labels, corpus.name, target, sid)
        else:
            lp = label_path(corpus, target, sid)
        p, y = join_by_timestamp(preds[sid], formats.read_label_csv(lp), f"'{pred_dir / (sid + '.csv')}'")
        ps.append(p)
        ys.append(y)
    cat_p, cat_y = np.concatenate(ps), np.concatenate(ys)
    interval = ccc_interval(ps, ys)
    return {"ccc": ccc_concatenated(ps, ys), "ccc_low": interval.low, "ccc_high": interval.high,
            "ccc_subject_mean": ccc_per_sequence_mean(ps, ys),
            "pcc": pcc(cat_p, cat_y), "rmse": rmse(cat_p, cat_y), "subjects": len(ids)}
