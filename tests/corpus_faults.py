"""A catalogue of broken inputs, applied to the tiny corpus of ``tests/conftest.py``.

Shared by ``tests/data/test_corpus.py`` (library errors) and ``tests/cli/test_app.py`` (the one-line CLI errors);
the CLI tests load it by path. Subject ids of the tiny corpus: 1 train, 2 devel, 3 test; features feat_a and
feat_b (4 columns each); targets arousal and valence. Faults hit subject 2, not the first subject read, so a
message naming the right file is not a coincidence.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from musefusion.errors import ConfigError, DataFormatError, MissingDataError


def feature_file(corpus: Path, sid: str = "2", feature: str = "feat_a") -> Path:
    """``<corpus>/feature_segments/<feature>/<sid>.csv``."""
    return corpus / "feature_segments" / feature / f"{sid}.csv"


def label_file(corpus: Path, sid: str = "2", target: str = "arousal") -> Path:
    """``<corpus>/label_segments/<target>/<sid>.csv``."""
    return corpus / "label_segments" / target / f"{sid}.csv"


def partition_file(corpus: Path) -> Path:
    """``<corpus>/metadata/partition.csv``."""
    return corpus / "metadata" / "partition.csv"


def _edit_csv(path: Path, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> Path:
    df = edit(pd.read_csv(path, dtype=str, keep_default_na=False))
    df.to_csv(path, index=False)
    return path


def _rename_timestamp(corpus: Path) -> Path:
    return _edit_csv(feature_file(corpus), lambda df: df.rename(columns={"timestamp": "time_ms"}))


def _non_numeric(corpus: Path) -> Path:
    def edit(df: pd.DataFrame) -> pd.DataFrame:
        df.loc[5, "feat_a_1"] = "n/a?"
        return df

    return _edit_csv(feature_file(corpus), edit)


def _swap_rows(corpus: Path) -> Path:
    return _edit_csv(feature_file(corpus), lambda df: df.iloc[[0, 1, 2, 4, 3, *range(5, len(df))]])


def _duplicate_row(corpus: Path) -> Path:
    return _edit_csv(feature_file(corpus), lambda df: df.iloc[[0, 1, 2, 3, 3, *range(4, len(df))]])


def _duplicate_id(corpus: Path) -> Path:
    path = partition_file(corpus)
    path.write_text(path.read_text() + "2,test\n")
    return path


def _empty(corpus: Path) -> Path:
    path = feature_file(corpus)
    path.write_bytes(b"")
    return path


def _header_only(corpus: Path) -> Path:
    path = feature_file(corpus)
    path.write_text(path.read_text().splitlines()[0] + "\n")
    return path


def _fewer_columns(corpus: Path) -> Path:
    return _edit_csv(feature_file(corpus), lambda df: df.drop(columns=["feat_a_3"]))


def _unlink(get: Callable[[Path], Path]) -> Callable[[Path], Path]:
    def mutate(corpus: Path) -> Path:
        path = get(corpus)
        path.unlink()
        return path

    return mutate


def _bad_partition_name(corpus: Path) -> Path:
    path = partition_file(corpus)
    path.write_text(path.read_text().replace("devel", "validation"))
    return path


def _no_corpus(corpus: Path) -> Path:
    shutil.rmtree(corpus)
    return corpus.parent


def _label_without_value(corpus: Path) -> Path:
    return _edit_csv(label_file(corpus), lambda df: df.rename(columns={"value": "arousal"}))


@dataclasses.dataclass(frozen=True)
class Fault:
    """One broken input: how to break the corpus, what load_corpus raises, and the message it must hold."""

    name: str
    mutate: Callable[[Path], Path]  # breaks the corpus in place; returns the file or folder the message names
    error: type[Exception]
    match: str  # regex the message must contain (besides the path)
    options: dict[str, Any] = dataclasses.field(default_factory=dict)  # DataConfig overrides
    in_check: bool = True  # `musefusion data check` reports it as a problem (exit 1)


FAULTS = [
    Fault("no_corpus_under_root", _no_corpus, MissingDataError, r"No MuSe corpus for task 'stress'",
          in_check=False),
    Fault("missing_partition_file", _unlink(partition_file), MissingDataError, r"Partition file .* not found"),
    Fault("unknown_feature", lambda c: c / "feature_segments" / "feat_z", ConfigError,
          r"Unknown feature 'feat_z'.*Available: feat_a, feat_b", options={"features": ("feat_a", "feat_z")},
          in_check=False),
    Fault("unknown_target", lambda c: c / "label_segments" / "dominance", ConfigError,
          r"Unknown target 'dominance'.*Available: arousal, valence", options={"target": "dominance"},
          in_check=False),
    Fault("no_timestamp_column", _rename_timestamp, DataFormatError, r"has no 'timestamp' column"),
    Fault("non_numeric_feature", _non_numeric, DataFormatError, r"column 'feat_a_1' is not numeric"),
    Fault("non_monotonic_timestamps", _swap_rows, DataFormatError, r"timestamps are not increasing"),
    Fault("duplicated_timestamps", _duplicate_row, DataFormatError, r"timestamp 1500 ms is duplicated"),
    Fault("duplicated_partition_id", _duplicate_id, DataFormatError, r"id '2' is listed more than once"),
    Fault("empty_file", _empty, DataFormatError, r"is empty"),
    Fault("header_only_file", _header_only, DataFormatError, r"has a header but no rows"),
    Fault("feature_dim_differs", _fewer_columns, DataFormatError, r"'feat_a' has 3 columns in .* but 4 in"),
    Fault("missing_feature_file", _unlink(lambda c: feature_file(c, feature="feat_b")), MissingDataError,
          r"Subject '2' is listed in partition.csv \(devel\) but"),
    Fault("missing_label_file", _unlink(label_file), MissingDataError,
          r"Subject '2' is listed in partition.csv \(devel\) but its label file"),
    Fault("unknown_partition_name", _bad_partition_name, DataFormatError,
          r"partition 'validation'; allowed: train, devel, test"),
    Fault("label_without_value_column", _label_without_value, DataFormatError, r"has no 'value' column"),
]
