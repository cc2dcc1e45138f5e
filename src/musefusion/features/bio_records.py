"""Raw physiological recordings: CSV tables, WFDB records, EDF(+)/BDF(+) files, read as named channels."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from musefusion.errors import DataFormatError, MissingDataError, MissingDependencyError
from musefusion.features.media import check_media_file


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
    check_media_file(path, what)
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
        import wfdb  # optional: pip install musefusion[physio]
    except ImportError:
        raise MissingDependencyError("Reading WFDB records needs wfdb: pip install musefusion[physio]") from None
    check_media_file(path, "WFDB header")
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
        import pyedflib  # optional: pip install musefusion[physio]
    except ImportError:
        raise MissingDependencyError("Reading EDF/BDF files needs pyedflib: pip install musefusion[physio]") from None
    what = "BDF" if path.suffix.lower() == ".bdf" else "EDF"
    check_media_file(path, what)
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
