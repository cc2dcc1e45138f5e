"""The one place that touches disk: corpus CSVs, partition files, predictions, configs, run dirs.

Every writer goes through :func:`atomic_path`, so a crash never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import re
import shutil
import tempfile
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import tomli_w

from musefusion.errors import DataFormatError, MissingDataError
from musefusion.types import Partition

# ----------------------------------------------------------------------------------------------- atomic writes


#: errno values that mean 'this output cannot be written here' (not a bug): reported on one line.
OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG})


def _raise_output_error(exc: OSError, path: Path) -> None:
    """Re-raise a full disk, quota, read-only or permission error while writing ``path`` as one clear line."""
    if exc.errno in OUTPUT_ERRNOS:
        from musefusion.errors import OutputError

        raise OutputError(f"Could not write '{path}': {exc.strerror or exc}; nothing partial was left there. Free "
                          "space or pick another --out.") from None


def _umask() -> int:
    """The process umask (read without changing it for longer than the call)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary file is removed when the block raises, so no half-written output is left. The file gets the
    mode any program's new file gets (0666 less the umask), not ``mkstemp``'s private 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as exc:
        _raise_output_error(exc, path)
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    tmp.chmod(0o777 & ~_umask())
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except OSError as exc:
        _raise_output_error(exc, path)
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


#: Key of the map ``{"path/to/key": "nan" | "inf" | "-inf"}`` of values written as JSON null.
NON_FINITE_KEY = "non_finite"


def _strict(obj: Any, where: str, found: dict[str, str]) -> Any:
    if isinstance(obj, float) and not np.isfinite(obj):
        found[where] = repr(obj)
        return None
    if isinstance(obj, np.floating | np.integer):
        return _strict(obj.item(), where, found)
    if isinstance(obj, dict):
        return {k: _strict(v, f"{where}/{k}" if where else str(k), found) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict(v, f"{where}/{i}" if where else str(i), found) for i, v in enumerate(obj)]
    return obj


def _restore(obj: Any, parts: list[str], value: float) -> None:
    for p in parts[:-1]:
        obj = obj[int(p)] if isinstance(obj, list) else obj.get(p)
        if obj is None:
            return
    last = parts[-1]
    if isinstance(obj, list):
        obj[int(last)] = value
    elif isinstance(obj, dict) and last in obj and obj[last] is None:
        obj[last] = value


def write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Write strict JSON atomically (sorted keys, indented).

    NaN and infinities (a devel CCC without devel subjects, say) are written as ``null``, and a top-level
    ``"non_finite"`` map records which keys they were and what they held, so :func:`read_json` restores them.
    """
    found: dict[str, str] = {}
    clean = _strict(data, "", found)
    if found and isinstance(clean, dict):
        clean[NON_FINITE_KEY] = found
    return write_text(path, json.dumps(clean, indent=2, sort_keys=True, default=str, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file.

    Raises:
        MissingDataError: the file does not exist.
        DataFormatError: the file is not valid JSON.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"File '{path}' not found.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"'{path}' is not valid JSON ({exc}).") from None
    if isinstance(data, dict) and isinstance(data.get(NON_FINITE_KEY), dict):
        for where, text in data.pop(NON_FINITE_KEY).items():
            _restore(data, str(where).split("/"), float(text))
    return data


def write_toml(path: str | os.PathLike[str], data: dict[str, Any]) -> Path:
    """Write a TOML file atomically (``None`` values are dropped, TOML has no null)."""

    def clean(d: Any) -> Any:
        if isinstance(d, dict):
            return {k: clean(v) for k, v in d.items() if v is not None}
        if isinstance(d, (list, tuple)):
            return [clean(v) for v in d]
        return d

    return write_text(path, tomli_w.dumps(clean(data)))


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML file.

    Raises:
        MissingDataError: the file does not exist.
        DataFormatError: the file is not valid TOML.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"Config file '{path}' not found.")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise DataFormatError(f"'{path}' is not valid TOML ({exc}).") from None
    except UnicodeDecodeError:
        raise DataFormatError(f"'{path}' is not UTF-8 text (TOML files must be UTF-8); save it as UTF-8.") from None
    except PermissionError:
        raise MissingDataError(f"'{path}' cannot be read (permission denied).") from None


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


def _numeric_column(table: pa.Table, name: str, path: Path, what: str) -> np.ndarray:
    col = table.column(name)
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_null(col.type)):
        raise DataFormatError(f"{what} file '{path}': column '{name}' is not numeric (type {col.type}); "
                              "every column after 'timestamp' and 'segment_id' must hold numbers.")
    values = col.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    limit = MAX_ABS.get(what)
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
    ts = _numeric_column(table, "timestamp", path, what)
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


def read_feature_csv(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read one MuSe feature file ``feature_segments/<feature>/<id>.csv``.

    Args:
        path: the CSV file: ``timestamp`` (ms), optional ``segment_id``, then numeric feature columns.

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
    cols = [c for c in table.column_names if c not in ("timestamp", "segment_id")]
    if not cols:
        raise DataFormatError(f"Feature file '{path}' has no feature columns after timestamp/segment_id.")
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


def write_partition(path: str | os.PathLike[str], partition: Mapping[str, Partition | str]) -> Path:
    """Write ``metadata/partition.csv`` with columns ``Id,Proposal``."""
    df = pd.DataFrame({"Id": list(partition), "Proposal": [Partition(p).value for p in partition.values()]})
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    return Path(path)


def write_sequence_csv(path: str | os.PathLike[str], timestamps: np.ndarray, values: np.ndarray,
                       columns: list[str] | None = None, segment_id: int = 1, float_decimals: int | None = None) -> Path:
    """Write a MuSe-format CSV: ``timestamp,segment_id,<columns>`` (features) or ``timestamp,segment_id,value``.

    Args:
        path: destination.
        timestamps: int ms, shape ``(n,)``.
        values: shape ``(n,)`` (written as ``value``) or ``(n, d)`` (written as ``columns``).
        columns: feature column names for 2-d values (default ``f0..f{d-1}``).
        segment_id: the value of the ``segment_id`` column.
        float_decimals: round values to this many decimals first (smaller files); None keeps float32 precision.
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
    table = pa.Table.from_arrays(arrays, names=["timestamp", "segment_id", *names])
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


#: Content digests of files already hashed in this process, keyed by (path, size, mtime_ns, inode).
_DIGESTS: dict[tuple[str, int, int, int], bytes] = {}


def file_digest(path: str | os.PathLike[str], h: Any) -> None:
    """Feed a file's name and a digest of its bytes into the hash object ``h`` (for cache and reuse keys).

    A file's bytes are read once per process while its size, mtime and inode stay the same.
    """
    import hashlib

    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
    digest = _DIGESTS.get(key)
    if digest is None:
        fh_hash = hashlib.blake2b(digest_size=16)
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                fh_hash.update(chunk)
        digest = _DIGESTS[key] = fh_hash.digest()
    h.update(str(path.name).encode())
    h.update(digest)


def save_npz(path: str | os.PathLike[str], **arrays: np.ndarray) -> Path:
    """Save arrays atomically as an uncompressed ``.npz`` (no pickled objects)."""
    with atomic_path(path) as tmp:
        with tmp.open("wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]  # numpy's stub types allow_pickle, not **arrays
    return Path(path)


def load_npz(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Load a ``.npz`` written by :func:`save_npz` (``allow_pickle=False``)."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


# ----------------------------------------------------------------------------------------------- checkpoints


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Save a checkpoint dict (state dicts, tensors, plain values; never a pickled module) atomically."""
    import torch

    with atomic_path(path) as tmp:
        try:
            torch.save(payload, tmp)
        except RuntimeError as exc:  # torch reports a full disk as a RuntimeError of its stream writer
            raise OSError(errno.ENOSPC, f"torch could not write the checkpoint ({str(exc)[:80]})") from None
    return Path(path)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint with ``torch.load(..., weights_only=True)`` onto the CPU.

    Raises:
        MissingDataError: the file does not exist.
        CheckpointError: the file holds pickled code/objects or is not a torch checkpoint.
    """
    import pickle

    import torch

    from musefusion.errors import CheckpointError

    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"Checkpoint '{path}' not found; train a model first (musefusion train).")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        import re

        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f"it references {found.group(1)}" if found else "it is not a plain weights file"
        raise CheckpointError(f"Refusing to load '{path}': it contains pickled code or objects ({what}); "
                              "only tensors and plain values are accepted. Re-save it as a state_dict.") from None
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        raise CheckpointError(f"'{path}' is not a readable torch checkpoint ({str(exc).splitlines()[0][:160]}).") from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"'{path}' holds a {type(payload).__name__}, not a musefusion checkpoint dict.")
    return payload


# ----------------------------------------------------------------------------------------------- raw recordings


def _check_media_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise MissingDataError(f"{what} file '{path}' not found; check the path (or the manifest row).")
    if path.stat().st_size == 0:
        raise DataFormatError(f"{what} file '{path}' is empty (0 bytes); re-export the recording.")


def _open_container(path: Path, what: str) -> Any:
    try:
        import av
    except ImportError:
        from musefusion.errors import MissingDependencyError

        raise MissingDependencyError("Decoding media needs PyAV: pip install musefusion[audio]") from None
    _check_media_file(path, what)
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise DataFormatError(f"{what} file '{path}' cannot be decoded ({str(exc).splitlines()[0]}); "
                              "is it a media file?") from None


def read_audio(path: str | os.PathLike[str], sr_hz: int = 16000, *,
               what: str = "Audio") -> np.ndarray | None:
    """Decode the first audio stream of a media file to mono float32 at ``sr_hz`` (PyAV, no ffmpeg binary).

    Args:
        path: an audio file (wav, flac, mp3, ...) or a video file with an audio track.
        sr_hz: output sampling rate; the stream is resampled (and down-mixed to mono) by libswresample.
        what: the file's role in error messages ("Audio", "Video").

    Returns:
        The samples in ``[-1, 1]``, shape ``(n_samples,)``, or None when the file has no audio stream.

    Raises:
        MissingDataError: the file does not exist.
        DataFormatError: the file is empty or cannot be decoded.
    """
    import av

    path = Path(path)
    container = _open_container(path, what)
    with container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sr_hz)
        chunks: list[np.ndarray] = []
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as exc:
            raise DataFormatError(f"{what} file '{path}': audio stream cannot be decoded "
                                  f"({str(exc).splitlines()[0]}).") from None
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32, copy=False)


def read_video_frames(path: str | os.PathLike[str], times_s: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """Decode a video and yield the frame shown at each requested time (PyAV).

    The frame for time ``t`` is the last frame whose presentation time is ``<= t`` (+1 ms); times after the
    last frame get the last frame when they lie within its duration, else nothing.

    Args:
        path: the video file.
        times_s: increasing times in seconds, shape ``(T,)``.

    Yields:
        ``(step_index, frame)`` with frame uint8 RGB of shape ``(height, width, 3)``.

    Raises:
        MissingDataError: the file does not exist.
        DataFormatError: empty file, no video stream, or undecodable.
    """
    import av

    path = Path(path)
    container = _open_container(path, "Video")
    with container:
        if not container.streams.video:
            raise DataFormatError(f"Video file '{path}' has no video stream; pass it as --audio instead.")
        stream = container.streams.video[0]
        stream.thread_count = 1  # decode on this thread: extra FFmpeg threads would compete with torch's
        tb = float(stream.time_base) if stream.time_base else 0.0
        rate = float(stream.average_rate) if stream.average_rate else 25.0
        tol = 1e-3
        k, prev, prev_t, n = 0, None, 0.0, len(times_s)
        try:
            for i, frame in enumerate(container.decode(stream)):
                ft = frame.pts * tb if frame.pts is not None and tb else i / rate
                while k < n and ft > times_s[k] + tol:
                    if prev is not None:
                        yield k, prev.to_ndarray(format="rgb24")
                    k += 1
                if k >= n:
                    break
                prev, prev_t = frame, ft
        except av.error.FFmpegError as exc:
            raise DataFormatError(f"Video file '{path}': video stream cannot be decoded "
                                  f"({str(exc).splitlines()[0]}).") from None
        if prev is None and k == 0:
            raise DataFormatError(f"Video file '{path}' holds no decodable frame; re-export the recording.")
        while k < n and prev is not None and times_s[k] < prev_t + 1.0 / rate - tol:
            yield k, prev.to_ndarray(format="rgb24")
            k += 1


def media_duration_s(path: str | os.PathLike[str]) -> float:
    """Duration of a media file in seconds (container metadata; 0.0 when unknown)."""
    path = Path(path)
    container = _open_container(path, "Media")
    with container:
        if container.duration:
            return container.duration / 1_000_000
        stream = (container.streams.video or container.streams.audio or [None])[0]
        if stream is not None and stream.duration and stream.time_base:
            return float(stream.duration * stream.time_base)
    return 0.0


def read_table(path: str | os.PathLike[str], what: str = "Bio",
               expected: str = "columns time (s or ms), ecg and/or resp") -> pd.DataFrame:
    """Read a small CSV table (a raw physiological recording, a manifest).

    Args:
        path: the CSV file.
        what: the file's role in messages.
        expected: the columns it should have, for messages.

    Raises:
        MissingDataError: the file does not exist.
        DataFormatError: empty or unparsable file.
    """
    path = Path(path)
    _check_media_file(path, what)
    try:
        df = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{what} file '{path}' cannot be parsed as CSV ({str(exc).splitlines()[0]}); "
                              f"expected {expected}.") from None
    if df.empty:
        raise DataFormatError(f"{what} file '{path}' has a header but no rows; expected {expected}.")
    return df


#: Physiological record formats read through their own libraries (WFDB header, EDF(+), BDF(+)).
RECORD_SUFFIXES = (".hea", ".edf", ".bdf")


@dataclasses.dataclass(frozen=True)
class RecordChannel:
    """One signal of a WFDB or EDF/BDF record, in physical units, at its own sampling rate."""

    name: str  # the signal's name as stored (WFDB sig_name, EDF label), stripped
    unit: str  # its physical unit as stored ("mV", "uV", ...; "" when the file gives none)
    sr_hz: float  # its own sampling rate (EDF channels may differ)
    samples: np.ndarray  # float64 (n,); WFDB's missing-sample marker reads as NaN


def read_bio_record(path: str | os.PathLike[str]) -> list[RecordChannel]:
    """Read every signal of a physiological record: a WFDB record (``.hea`` header with its ``.dat`` signal
    file(s) beside it, via ``wfdb``) or an EDF/EDF+/BDF/BDF+ file (via ``pyedflib``).

    Args:
        path: the ``.hea``, ``.edf`` or ``.bdf`` file.

    Returns:
        The record's signals in file order (EDF+ annotation channels excluded), each in physical units.

    Raises:
        MissingDataError: the file, or a WFDB signal file the header names, does not exist.
        DataFormatError: the suffix is not one of ``RECORD_SUFFIXES``; the header or file is malformed,
            truncated or holds no signal.
        MissingDependencyError: wfdb or pyedflib is not installed.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".hea":
        return _read_wfdb(path)
    if suffix in (".edf", ".bdf"):
        return _read_edf(path)
    raise DataFormatError(f"Bio file '{path}': '{suffix}' is not a record format; expected one of "
                          f"{', '.join(RECORD_SUFFIXES)}.")


@contextlib.contextmanager
def _wfdb_errors(path: Path) -> Iterator[None]:
    """Turn wfdb's exceptions (it raises built-in ones for bad headers and short signal files) into ours."""
    try:
        yield
    except FileNotFoundError as exc:
        raise MissingDataError(f"WFDB record '{path}': file '{exc.filename}' is missing; a WFDB record needs its "
                               "header and every signal file it names in one folder.") from None
    except (ValueError, IndexError, KeyError, TypeError, OSError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else "malformed"
        raise DataFormatError(f"WFDB record '{path}' cannot be read ({type(exc).__name__}: {detail}); check the "
                              "header and that its .dat file is complete.") from None


def _read_wfdb(path: Path) -> list[RecordChannel]:
    try:
        import wfdb
    except ImportError:
        from musefusion.errors import MissingDependencyError

        raise MissingDependencyError("Reading WFDB records needs wfdb: pip install musefusion[physio]") from None
    _check_media_file(path, "WFDB header")
    record_name = str(path.with_suffix(""))
    with _wfdb_errors(path):
        header = wfdb.rdheader(record_name)
    for name in dict.fromkeys(getattr(header, "file_name", None) or []):
        if not (path.parent / name).is_file():
            raise MissingDataError(f"WFDB record '{path}': its signal file '{name}' is not beside the header "
                                   f"(expected '{path.parent / name}'); copy it next to '{path.name}'.")
    with _wfdb_errors(path):
        # smooth_frames=False keeps each signal at its own rate (fs * samples per frame)
        record = wfdb.rdrecord(record_name, physical=True, smooth_frames=False)
    signals = record.e_p_signal or []
    if not signals:
        raise DataFormatError(f"WFDB record '{path}' holds no signal.")
    spf = record.samps_per_frame or [1] * len(signals)
    names = record.sig_name or [""] * len(signals)
    units = record.units or [""] * len(signals)
    return [RecordChannel(str(n or "").strip(), str(u or "").strip(), float(record.fs) * int(k),
                          np.asarray(x, dtype=np.float64))
            for n, u, k, x in zip(names, units, spf, signals, strict=True)]


def _edf_header_problem(path: Path) -> str | None:
    """Why an EDF/BDF file cannot be complete, from its fixed-layout header, or None when it looks whole.

    Checked here rather than left to edflib, which prints its size check to stdout before failing.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(256)
        if len(head) < 256:
            return f"{size} bytes, shorter than the 256-byte EDF header"
        try:
            n_signals = int(head[252:256].decode("ascii").strip())
            n_records = int(head[236:244].decode("ascii").strip())
            f.seek(256 + 216 * n_signals)  # per-signal fields before "samples per data record"
            per_record = [int(f.read(8).decode("ascii").strip()) for _ in range(n_signals)]
        except (ValueError, UnicodeDecodeError):
            return None  # not parseable: let edflib name the format error
    if n_records < 0:  # -1: the recorder did not finish the header; edflib decides
        return None
    width = 3 if head[:1] == b"\xff" else 2  # BDF (first byte 0xFF) stores 24-bit samples, EDF 16-bit
    expected = 256 * (n_signals + 1) + n_records * sum(per_record) * width
    if size < expected:
        return f"truncated: {size} bytes, the header promises {expected}"
    return None


def _read_edf(path: Path) -> list[RecordChannel]:
    try:
        import pyedflib
    except ImportError:
        from musefusion.errors import MissingDependencyError

        raise MissingDependencyError("Reading EDF/BDF files needs pyedflib: pip install musefusion[physio]") from None
    what = "BDF" if path.suffix.lower() == ".bdf" else "EDF"
    _check_media_file(path, what)
    problem = _edf_header_problem(path)
    if problem is not None:
        raise DataFormatError(f"{what} file '{path}' cannot be read ({problem}); re-export the recording.")
    try:
        reader = pyedflib.EdfReader(str(path))
    except OSError as exc:
        msg = str(exc).splitlines()[0].removeprefix(f"{path}: ")
        raise DataFormatError(f"{what} file '{path}' cannot be read ({msg}); is it an EDF(+) or BDF(+) "
                              "file? Re-export it as continuous EDF/EDF+C or BDF/BDF+C.") from None
    try:
        channels = [RecordChannel(reader.getLabel(i).strip(), reader.getPhysicalDimension(i).strip(),
                                  float(reader.getSampleFrequency(i)), reader.readSignal(i).astype(np.float64))
                    for i in range(reader.signals_in_file)]
    finally:
        reader.close()
    if not channels:
        raise DataFormatError(f"{what} file '{path}' holds no signal.")
    return channels


# ----------------------------------------------------------------------------------------------- weights


def load_state_dict(path: str | os.PathLike[str], what: str, hint: str) -> dict[str, Any]:
    """Load a weights file safely: safetensors, or a torch state dict via ``torch.load(weights_only=True)``.

    A checkpoint dict written by this package (``{"model": state_dict, ...}``) or one holding a
    ``"state_dict"`` entry is unwrapped.

    Args:
        path: the weights file.
        what: the network's name for messages ("VGGish").
        hint: how to get the file, appended to the not-found message.

    Returns:
        Parameter name -> tensor.

    Raises:
        MissingDataError: the file does not exist.
        CheckpointError: the file holds pickled code or objects, is corrupt, or is not a dict of tensors.
    """
    import torch

    from musefusion.errors import CheckpointError

    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"{what} weights file '{path}' not found. {hint}")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{what} weights file '{path}' is not a valid safetensors file "
                                  f"({str(exc).splitlines()[0]}).") from None
    else:
        import pickle

        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            raise CheckpointError(f"{what} weights file '{path}' holds pickled Python objects, not a plain "
                                  "state dict; refusing to load it. Re-save it with "
                                  "torch.save(model.state_dict(), ...) or as safetensors.") from None
        except (RuntimeError, EOFError, OSError, ValueError) as exc:
            raise CheckpointError(f"{what} weights file '{path}' cannot be read as a torch state dict "
                                  f"({str(exc).splitlines()[0]}).") from None
    if isinstance(state, dict):
        for key in ("model", "state_dict"):
            inner = state.get(key)
            if isinstance(inner, dict):
                state = inner
                break
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{what} weights file '{path}' is not a state dict of tensors "
                              f"(got {type(state).__name__}); save model.state_dict().")
    return dict(state)
