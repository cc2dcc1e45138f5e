"""The MuSe file formats: feature and label CSVs, the partition file, prediction folders, subject ids.

Readers validate columns and values and raise :class:`musefusion.errors.DataFormatError` naming the file, the
column and the row; writers go through :mod:`musefusion.fsutil`'s atomic writes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from musefusion.errors import DataFormatError, MissingDataError
from musefusion.fsutil import atomic_dir, atomic_path
from musefusion.types import Partition

# ----------------------------------------------------------------------------------------------- corpus CSVs


def _read_csv_table(path: Path, what: str) -> pa.Table:
    if not path.is_file():
        raise MissingDataError(f"{what} file '{path}' not found.")
    if path.stat().st_size == 0:
        raise DataFormatError(f"{what} file '{path}' is empty; re-extract or re-download it.")
    try:
        table = pacsv.read_csv(path, read_options=pacsv.ReadOptions(use_threads=True),
                               convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
    except pa.ArrowInvalid as exc:
        msg = str(exc).splitlines()[0]
        if "Empty CSV file" in msg:
            raise DataFormatError(f"{what} file '{path}' is empty; re-extract or re-download it.") from None
        # pyarrow quotes the offending row after the last ': '; never echo file contents into a message
        found = re.search(r"Expected \d+ columns?, got \d+", msg)
        reason = found.group(0) if found else msg.split(":")[0][:80]
        raise DataFormatError(f"{what} file '{path}' cannot be parsed as CSV ({reason}).") from None
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{what} file '{path}' is not UTF-8 text (byte {exc.object[exc.start:exc.start + 1]!r} "
                              f"at offset {exc.start}); save it as UTF-8 CSV.") from None
    except PermissionError:
        raise MissingDataError(f"{what} file '{path}' cannot be read (permission denied).") from None
    try:
        _ = table.column_names  # decoded lazily: a latin-1 header fails here
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{what} file '{path}' has a header that is not UTF-8 (byte "
                              f"{exc.object[exc.start:exc.start + 1]!r}); save it as UTF-8 CSV.") from None
    if table.num_rows == 0:
        raise DataFormatError(f"{what} file '{path}' has a header but no rows; re-extract or re-download it.")
    return table


#: Largest magnitude accepted in a feature / label cell: beyond it a value is a fault (1e300, a sentinel), and
#: z-normalisation or the CCC loss would overflow. Real MuSe features stay below 1e5, gold standards in [-1, 1].
MAX_ABS = {"Feature": 1e15, "Label": 1e6}
#: Largest timestamp accepted (ms): 1e11 ms is over three years, far beyond any recording, and well inside int64.
#: The value limits above are for measurements and labels, not time: a 20-minute recording ends at 1.2e6 ms.
MAX_TIMESTAMP_MS = 1e11


def _numeric_column(table: pa.Table, name: str, path: Path, what: str, limit: float | None = None) -> np.ndarray:
    col = table.column(name)
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_null(col.type)):
        raise DataFormatError(f"{what} file '{path}': column '{name}' is not numeric (type {col.type}); "
                              "every column after 'timestamp' and 'segment_id' (or 'subject_id') must hold numbers.")
    values = col.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    limit = MAX_ABS.get(what) if limit is None else limit
    if limit is not None:
        bad = np.isinf(values) | (np.abs(np.nan_to_num(values)) > limit)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataFormatError(f"{what} file '{path}': column '{name}' holds {int(bad.sum())} infinite or absurd "
                                  f"value(s) (|x| > {limit:g}), first {values[row]!r} in data row {row + 1}; fix or "
                                  "re-extract the file (empty cells are read as missing).")
    return values


def _timestamps(table: pa.Table, path: Path, what: str) -> np.ndarray:
    if "timestamp" not in table.column_names:
        raise DataFormatError(f"{what} file '{path}' has no 'timestamp' column (columns: "
                              f"{table.column_names[:6]}); MuSe files start with timestamp (ms), segment_id.")
    ts = _numeric_column(table, "timestamp", path, what, limit=MAX_TIMESTAMP_MS)
    if np.isnan(ts).any():
        row = int(np.flatnonzero(np.isnan(ts))[0])
        raise DataFormatError(f"{what} file '{path}': empty timestamp in data row {row + 1}.")
    if len(ts) > 1 and np.abs(ts - np.rint(ts)).max() > 0 and 0 < np.median(np.diff(ts)) <= 5:
        raise DataFormatError(f"{what} file '{path}': timestamps look like seconds ({ts[0]:g}, {ts[1]:g}, ...); MuSe "
                              "timestamps are milliseconds on a 500 ms grid: multiply the column by 1000.")
    ts = np.rint(ts).astype(np.int64)
    diffs = np.diff(ts)
    if (diffs == 0).any():
        i = int(np.flatnonzero(diffs == 0)[0])
        raise DataFormatError(f"{what} file '{path}': timestamp {ts[i]} ms is duplicated (data rows {i + 1} and "
                              f"{i + 2}); each step must appear once.")
    if (diffs < 0).any():
        i = int(np.flatnonzero(diffs < 0)[0])
        raise DataFormatError(f"{what} file '{path}': timestamps are not increasing ({ts[i]} ms then "
                              f"{ts[i + 1]} ms at data row {i + 2}); sort the file by timestamp.")
    return ts


#: Columns of a feature file that describe a row rather than measure it: ``segment_id`` (MuSe 2021/2022) and
#: ``subject_id`` (MuSe 2023 personalisation files: ``timestamp, subject_id, <features>``).
META_COLUMNS = ("timestamp", "segment_id", "subject_id")


def read_feature_csv(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read one MuSe feature file ``feature_segments/<feature>/<id>.csv``.

    Args:
        path: the CSV file: ``timestamp`` (ms), optional ``segment_id`` / ``subject_id`` (:data:`META_COLUMNS`), then
            numeric feature columns.

    Returns:
        ``(timestamps, values, columns)``: int64 ms of shape ``(n_rows,)``, float32 of shape
        ``(n_rows, n_features)`` (empty cells are NaN), and the feature column names.

    Raises:
        MissingDataError: the file does not exist.
        DataFormatError: empty file, no timestamp column, a non-numeric feature column, no feature column,
            duplicated or decreasing timestamps.
    """
    path = Path(path)
    table = _read_csv_table(path, "Feature")
    ts = _timestamps(table, path, "Feature")
    cols = [c for c in table.column_names if c not in META_COLUMNS]
    if not cols:
        raise DataFormatError(f"Feature file '{path}' has no feature columns after {'/'.join(META_COLUMNS)}.")
    values = np.empty((table.num_rows, len(cols)), dtype=np.float32)
    for j, c in enumerate(cols):
        values[:, j] = _numeric_column(table, c, path, "Feature")
    return ts, values, cols


def read_label_csv(path: str | os.PathLike[str], *, values: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Read one MuSe label file ``label_segments/<target>/<id>.csv``.

    Args:
        path: the CSV file with ``timestamp`` (ms), ``value`` and optional ``segment_id``.
        values: when False only the timestamps are kept and the values returned are NaN (test partition).

    Returns:
        ``(timestamps, values)``: int64 ms and float32, both of shape ``(n_rows,)``.

    Raises:
        MissingDataError: the file does not exist.
        DataFormatError: empty file, no timestamp/value column, duplicated or decreasing timestamps.
    """
    path = Path(path)
    table = _read_csv_table(path, "Label")
    ts = _timestamps(table, path, "Label")
    if "value" not in table.column_names:
        raise DataFormatError(f"Label file '{path}' has no 'value' column (columns: {table.column_names}); "
                              "MuSe label files hold timestamp, segment_id and value.")
    if not values:
        return ts, np.full(len(ts), np.nan, dtype=np.float32)
    return ts, _numeric_column(table, "value", path, "Label").astype(np.float32)


#: Longest subject id accepted (ids become file names ``<id>.csv``; most file systems allow 255 bytes).
MAX_ID_LEN = 200


def check_id(sid: str, where: str) -> str:
    """``sid`` if it is safe as a file name stem, else a DataFormatError naming ``where`` it came from.

    A subject id becomes ``<folder>/<id>.csv``: path separators, ``..``, control characters and ids longer than
    :data:`MAX_ID_LEN` would write outside the folder or fail late, so they are refused where they are read.

    Examples:
        >>> check_id("s12_devel", "partition.csv")
        's12_devel'
    """
    bad = ("it is empty" if not sid else
           f"it is longer than {MAX_ID_LEN} characters" if len(sid) > MAX_ID_LEN else
           "it holds a path separator" if "/" in sid or "\\" in sid or os.sep in sid else
           "it is '.' or '..'" if sid in (".", "..") else
           "it holds a control or non-printable character" if not sid.isprintable() else
           "it starts with '.' (hidden files are ignored)" if sid.startswith(".") else None)
    if bad:
        raise DataFormatError(f"{where}: subject id {sid[:60]!r} cannot name a file ({bad}); use letters, digits, "
                              "'_' or '-'.")
    return sid


def read_partition(path: str | os.PathLike[str]) -> dict[str, Partition]:
    """Read ``metadata/partition.csv`` (``Id,Proposal`` as in MuSe 2021, or ``Id,Partition``).

    Returns:
        Subject id (as a string) to its partition, in file order.

    Raises:
        MissingDataError: the file does not exist.
        DataFormatError: missing columns, an unknown partition name, duplicated ids.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"Partition file '{path}' not found; expected <corpus>/metadata/partition.csv "
                               "with columns Id,Proposal. Check --data.")
    try:
        df = pd.read_csv(path, dtype=str)
    except pd.errors.EmptyDataError:
        raise DataFormatError(f"Partition file '{path}' is empty; it needs columns Id,Proposal.") from None
    except PermissionError:
        raise MissingDataError(f"Partition file '{path}' cannot be read (permission denied).") from None
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataFormatError(f"Partition file '{path}' is not a UTF-8 CSV with columns Id,Proposal "
                              f"({type(exc).__name__}).") from None
    part_col = next((c for c in ("Proposal", "Partition") if c in df.columns), None)
    if "Id" not in df.columns or part_col is None:
        raise DataFormatError(f"Partition file '{path}' needs columns Id and Proposal (or Partition); "
                              f"found {list(df.columns)}.")
    ids = df["Id"].astype(str).str.strip()
    dup = ids[ids.duplicated()]
    if len(dup):
        raise DataFormatError(f"Partition file '{path}': id '{dup.iloc[0]}' is listed more than once.")
    out: dict[str, Partition] = {}
    for sid, part in zip(ids, df[part_col].astype(str).str.strip().str.lower(), strict=True):
        check_id(sid, f"Partition file '{path}'")
        try:
            out[sid] = Partition(part)
        except ValueError:
            raise DataFormatError(f"Partition file '{path}': id '{sid}' has partition '{part}'; allowed: "
                                  "train, devel, test.") from None
    return out


#: A MuSe 2023 chunk id: ``<subject>_train``, ``<subject>_devel``, ``<subject>_devel_2``, ``<subject>_test3``, ...
_CHUNK = re.compile(r"^(?P<subject>.+?)_(?P<part>train|devel|test)(?:_?\d+)?$")


def subject_of(chunk_id: str) -> str:
    """The subject a MuSe 2023 chunk id belongs to (an id without a chunk suffix is its own subject).

    Examples:
        >>> subject_of("12_devel_2"), subject_of("12_train"), subject_of("7")
        ('12', '12', '7')
    """
    m = _CHUNK.match(chunk_id)
    return m.group("subject") if m else chunk_id


def chunk_partition(chunk_id: str) -> Partition | None:
    """The partition a chunk id's suffix names (``12_devel_2`` -> devel), None for an id without one."""
    m = _CHUNK.match(chunk_id)
    return Partition(m.group("part")) if m else None


def chunks_by_subject(partition: Mapping[str, Partition]) -> dict[str, dict[Partition, list[str]]]:
    """Group the ids of a partition map by subject: ``{subject: {partition: [chunk ids in file order]}}``.

    Examples:
        >>> p = {"3_train": Partition.TRAIN, "3_devel": Partition.DEVEL, "3_test": Partition.TEST,
        ...      "5": Partition.TRAIN}
        >>> chunks_by_subject(p)["3"][Partition.DEVEL]
        ['3_devel']
    """
    out: dict[str, dict[Partition, list[str]]] = {}
    for sid, part in partition.items():
        out.setdefault(subject_of(sid), {}).setdefault(Partition(part), []).append(sid)
    return out


def test_subjects(partition: Mapping[str, Partition]) -> tuple[dict[str, dict[Partition, list[str]]],
                                                                 list[tuple[str, Partition]]]:
    """The subjects with test chunks (the ones a model is personalised to) and their chunks, and each
    ``(subject, partition)`` whose train or devel chunk is missing (personalisation needs both)."""
    subjects = {s: c for s, c in chunks_by_subject(partition).items() if Partition.TEST in c}
    missing = [(s, p) for s, c in subjects.items() for p in (Partition.TRAIN, Partition.DEVEL) if p not in c]
    return subjects, missing


def write_partition(path: str | os.PathLike[str], partition: Mapping[str, Partition | str]) -> Path:
    """Write ``metadata/partition.csv`` with columns ``Id,Proposal``."""
    df = pd.DataFrame({"Id": list(partition), "Proposal": [Partition(p).value for p in partition.values()]})
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    return Path(path)


def write_sequence_csv(path: str | os.PathLike[str], timestamps: np.ndarray, values: np.ndarray,
                       columns: list[str] | None = None, segment_id: int = 1, float_decimals: int | None = None,
                       meta_column: str = "segment_id") -> Path:
    """Write a MuSe-format CSV: ``timestamp,segment_id,<columns>`` (features) or ``timestamp,segment_id,value``.

    Args:
        path: destination.
        timestamps: int ms, shape ``(n,)``.
        values: shape ``(n,)`` (written as ``value``) or ``(n, d)`` (written as ``columns``).
        columns: feature column names for 2-d values (default ``f0..f{d-1}``).
        segment_id: the value of the ``segment_id`` column (of ``meta_column``).
        float_decimals: round values to this many decimals first (smaller files); None keeps float32 precision.
        meta_column: the second column's name: ``segment_id`` (MuSe 2021/2022) or ``subject_id`` (MuSe 2023).
    """
    values = np.asarray(values)
    if values.ndim == 1:
        names, mat = ["value"], values[:, None]
    else:
        names = columns or [f"f{j}" for j in range(values.shape[1])]
        mat = values
    if float_decimals is not None:
        mat = np.round(mat.astype(np.float64), float_decimals)
    arrays = [pa.array(np.asarray(timestamps, dtype=np.int64)),
              pa.array(np.full(len(timestamps), segment_id, dtype=np.int64))]
    # NaN is written as an empty cell (MuSe test label files hold empty values)
    arrays += [pa.array(mat[:, j].astype(np.float32), from_pandas=True) for j in range(mat.shape[1])]
    table = pa.Table.from_arrays(arrays, names=["timestamp", meta_column, *names])
    with atomic_path(path) as tmp:
        with tmp.open("wb") as fh:
            fh.write((",".join(table.column_names) + "\n").encode())
            pacsv.write_csv(table, fh, write_options=pacsv.WriteOptions(include_header=False, quoting_style="none"))
    return Path(path)


def write_predictions(folder: str | os.PathLike[str], predictions: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    """Write predictions as MuSe CSVs ``<folder>/<id>.csv`` (timestamp,segment_id,value), replacing the folder
    atomically (a run's folder is ``RunDir.predictions(partition)``).

    Args:
        folder: the partition's prediction folder.
        predictions: id -> (timestamps int64 ms, values float).

    Returns:
        The folder.
    """
    out = Path(folder)
    with atomic_dir(out) as tmp:
        for sid, (ts, vals) in predictions.items():
            write_sequence_csv(tmp / f"{sid}.csv", ts, np.asarray(vals, dtype=np.float32))
    return out


def read_predictions(folder: str | os.PathLike[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read a folder of MuSe-format prediction CSVs (id -> (timestamps, values)).

    Raises:
        MissingDataError: the folder does not exist or holds no CSV.
        DataFormatError: a file is malformed.
    """
    folder = Path(folder)
    files = sorted(folder.glob("*.csv")) if folder.is_dir() else []
    if not files:
        raise MissingDataError(f"No prediction CSVs in '{folder}'; run `musefusion train` (or predict) first.")
    return {f.stem: read_label_csv(f) for f in files}
