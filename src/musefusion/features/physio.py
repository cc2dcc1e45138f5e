"""Biological features on the 500 ms grid from raw ECG and respiration: ECG, resp and BPM.

MuSe 2021 provides these three signals at 2 Hz (paper Sec. 3.3); from a raw recording at any sampling rate
they are made here with NeuroKit2 (Makowski et al., 2021, Behavior Research Methods,
doi:10.3758/s13428-020-01516-y):

- ``ECG``: ``nk.ecg_clean`` (0.5 Hz high-pass + 50 Hz powerline filter), averaged over each 500 ms step.
- ``resp``: ``nk.rsp_clean`` (Khodadad et al. 2018 band-pass 0.05-3 Hz), averaged over each step.
- ``BPM``: R-peaks from ``nk.ecg_peaks`` on the cleaned ECG, instantaneous heart rate interpolated between
  beats (``nk.signal_rate``, monotone cubic), averaged over each step.

Inputs: a CSV table (:func:`read_bio`), or a WFDB / EDF / BDF record whose channels are picked by name and put on
one time base (:func:`record_table`, rules in :func:`is_ecg_name` / :func:`is_resp_name`).
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from musefusion.data.grid import align_to_grid
from musefusion.errors import ConfigError, DataFormatError, MissingDependencyError
from musefusion.features.bio_records import RecordChannel

logger = logging.getLogger(__name__)

#: Column names accepted (case-insensitive) for each raw signal and for time.
TIME_COLUMNS = ("time", "timestamp", "t", "time_s", "time_ms", "timestamp_ms", "seconds", "ms")
ECG_COLUMNS = ("ecg",)
RESP_COLUMNS = ("resp", "rsp", "respiration", "breathing")
#: Features this module makes.
#: Lowest sampling rate of a raw ECG/respiration signal (R-peaks need tens of samples per beat).
MIN_RAW_HZ = 50
BIO_FEATURES = ("ECG", "resp", "BPM")  # folder names as in the MuSe 2021 download
#: Record (WFDB/EDF) signal names, case-insensitive: substrings that mark respiration (checked first: a belt,
#: airflow or "ECG-derived resp" channel is respiration), substrings that mark ECG, and the standard lead names
#: that mark ECG when they are the whole name (spaces and punctuation ignored: "MLII", "V5", "aVR").
RESP_NAME_PARTS = ("resp", "rsp", "breath", "thor", "chest", "abdo", "airflow")
ECG_NAME_PARTS = ("ecg", "ekg")
ECG_LEAD_NAMES = ("i", "ii", "iii", "avr", "avl", "avf", "v1", "v2", "v3", "v4", "v5", "v6", "mli", "mlii", "mliii")
#: Factor to mV for ECG units other than mV (lower-cased; both the micro sign and Greek mu spell micro).
_TO_MV = {"v": 1e3, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "nv": 1e-6}


def _import_neurokit() -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import neurokit2 as nk  # optional: pip install musefusion[physio]
    except ImportError:
        raise MissingDependencyError("ECG/RESP/BPM need NeuroKit2: pip install musefusion[physio]") from None
    return nk


def _find_column(df: pd.DataFrame, names: tuple[str, ...]) -> str | None:
    lower = {str(c).strip().lower(): c for c in df.columns}
    return next((lower[n] for n in names if n in lower), None)


def _name_list(names: Sequence[str], limit: int = 20) -> str:
    shown = ", ".join(f"'{n}'" for n in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _named(names: Sequence[str], wanted: str, flag: str, path: str | os.PathLike[str], what: str) -> int:
    """Index of the name equal to ``wanted`` (case-insensitive, stripped); ConfigError naming the flag if none."""
    key = wanted.strip().lower()
    for i, n in enumerate(names):
        if str(n).strip().lower() == key:
            return i
    raise ConfigError(f"Bio file '{path}' has no {what} '{wanted}' ({flag}); its {what}s are "
                      f"{_name_list([str(n) for n in names])}. Pass one of these to {flag}.")


def is_resp_name(name: str) -> bool:
    """Whether a record's signal name marks respiration: it contains resp, rsp, breath, thor (thorax,
    thoracic), chest, abdo (abdomen, abdominal) or airflow, in any case.

    Examples:
        >>> [is_resp_name(n) for n in ("Resp (chest)", "THORAX", "Abdo", "ECG")]
        [True, True, True, False]
    """
    low = name.strip().lower()
    return any(part in low for part in RESP_NAME_PARTS)


def is_ecg_name(name: str) -> bool:
    """Whether a record's signal name marks ECG: it is not a respiration name (:func:`is_resp_name`) and it
    contains ecg or ekg, or holds the word "lead", or is a standard lead name (I, II, III, aVR, aVL, aVF,
    V1-V6, MLI, MLII, MLIII; spaces and punctuation ignored), in any case.

    Examples:
        >>> [is_ecg_name(n) for n in ("ECG", "ekg2", "MLII", "Lead 1", "V5", "EEG Fpz-Cz", "EDR (ECG resp)")]
        [True, True, True, True, True, False, False]
    """
    if is_resp_name(name):
        return False
    low = name.strip().lower()
    words = re.findall(r"[a-z0-9]+", low)
    return any(part in low for part in ECG_NAME_PARTS) or "lead" in words or "".join(words) in ECG_LEAD_NAMES


def ecg_to_mv(unit: str) -> float:
    """Factor that brings an ECG in ``unit`` to mV: 1e-3 for uV/µV, 1e-6 for nV, 1e3 for V; 1 for mV and
    for any other or missing unit (kept as stored).

    Examples:
        >>> ecg_to_mv("uV"), ecg_to_mv("mV"), ecg_to_mv("V"), ecg_to_mv("")
        (0.001, 1.0, 1000.0, 1.0)
    """
    return _TO_MV.get(unit.strip().lower(), 1.0)


def record_table(channels: Sequence[RecordChannel], path: str | os.PathLike[str], ecg_channel: str | None = None,
                 resp_channel: str | None = None) -> pd.DataFrame:
    """The table a bio CSV would hold (``time_s``, ``ecg``, ``resp``) from a WFDB or EDF/BDF record's signals.

    Channels: ``ecg_channel`` / ``resp_channel`` name them (case-insensitive, whole name); otherwise the first
    channel in file order that :func:`is_ecg_name` / :func:`is_resp_name` accepts (one named explicitly is not
    picked again). ECG is converted to mV (:func:`ecg_to_mv`); respiration keeps its stored unit. Both signals
    go onto one uniform time base at the higher of their two rates, the slower one linearly interpolated, and
    the table ends where the shorter one ends.

    Args:
        channels: the record's signals (:func:`musefusion.features.bio_records.read_bio_record`).
        path: the record's file, for messages.
        ecg_channel: the ECG channel's name, or None for the name rules.
        resp_channel: the respiration channel's name, or None for the name rules.

    Returns:
        Columns ``time_s`` (s, from 0, uniform), and ``ecg`` (mV) and/or ``resp`` (float64), one row per
        sample of the base rate.

    Raises:
        ConfigError: a named channel is not in the record.
        DataFormatError: no channel is given or found for either signal, or a chosen channel is empty or has
            no positive sampling rate.
    """
    names = [c.name for c in channels]
    picked: dict[str, int] = {}
    for col, wanted, flag in (("ecg", ecg_channel, "--ecg-channel"), ("resp", resp_channel, "--resp-channel")):
        if wanted is not None:
            picked[col] = _named(names, wanted, flag, path, "channel")
    for col, rule in (("ecg", is_ecg_name), ("resp", is_resp_name)):
        if col not in picked:
            found = next((i for i, n in enumerate(names) if rule(n) and i not in picked.values()), None)
            if found is not None:
                picked[col] = found
    if not picked:
        raise DataFormatError(f"Bio file '{path}' has no ECG or respiration channel by name (channels: "
                              f"{_name_list(names)}); pick them with --ecg-channel NAME and/or "
                              "--resp-channel NAME.")
    for col, i in picked.items():
        ch = channels[i]
        if len(ch.samples) < 2 or not ch.sr_hz > 0:
            raise DataFormatError(f"Bio file '{path}': {col} channel '{ch.name}' holds {len(ch.samples)} "
                                  f"sample(s) at {ch.sr_hz} Hz; pick another with --{col}-channel.")
    base_hz = max(channels[i].sr_hz for i in picked.values())
    duration_s = min(len(channels[i].samples) / channels[i].sr_hz for i in picked.values())
    n = int(np.floor(duration_s * base_hz + 1e-9))
    t = np.arange(n) / base_hz
    table = {"time_s": t}
    for col, i in picked.items():
        ch = channels[i]
        x = ch.samples * (ecg_to_mv(ch.unit) if col == "ecg" else 1.0)
        table[col] = x[:n] if ch.sr_hz == base_hz else np.interp(t, np.arange(len(x)) / ch.sr_hz, x)
        logger.info("%s: %s from channel '%s' (%g Hz%s)", Path(path).name, col.upper(), ch.name, ch.sr_hz,
                    f", {ch.unit}" if ch.unit else "")
    return pd.DataFrame(table)


def time_to_seconds(t: np.ndarray, unit: str = "auto", column: str = "") -> np.ndarray:
    """Convert a time column to seconds.

    ``auto``: a column named ``*ms*`` is in ms; otherwise the unit is ms when reading it as seconds would give
    a sampling rate below 10 Hz (e.g. a 1 kHz recording in ms has steps of 1), else seconds.

    Raises:
        ConfigError: ``unit`` is not one of auto, s, ms.

    Examples:
        >>> time_to_seconds(np.array([0.0, 1.0, 2.0])).tolist()
        [0.0, 0.001, 0.002]
        >>> time_to_seconds(np.array([0.0, 0.01, 0.02])).tolist()
        [0.0, 0.01, 0.02]
    """
    if unit not in ("auto", "s", "ms"):
        raise ConfigError(f"--bio-time-unit '{unit}' is not allowed; use auto, s or ms.")
    t = np.asarray(t, dtype=np.float64)
    if unit == "auto":
        step = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
        unit = "ms" if "ms" in column.lower() or (step > 0 and 1.0 / step < 10.0) else "s"
    return t / 1000.0 if unit == "ms" else t


def read_bio(df: pd.DataFrame, path: str | os.PathLike[str], time_unit: str = "auto",
             ecg_column: str | None = None, resp_column: str | None = None
             ) -> tuple[np.ndarray, float, np.ndarray | None, np.ndarray | None]:
    """Pick time, ECG and respiration out of a raw recording's table.

    Args:
        df: the table (:func:`musefusion.features.bio_records.read_table`, or :func:`record_table` for a WFDB/EDF record).
        path: its file, for messages.
        time_unit: auto, s or ms (see :func:`time_to_seconds`).
        ecg_column: the ECG column's name (case-insensitive; ``--ecg-channel``), or None for ``ECG_COLUMNS``.
        resp_column: the respiration column's name (``--resp-channel``), or None for ``RESP_COLUMNS``.

    Returns:
        ``(time_s, sr_hz, ecg, resp)``: sample times (s, from 0), the mean sampling rate, and each signal
        (float64 ``(n,)``) or None when its column is absent.

    Raises:
        ConfigError: a named column is not in the table.
        DataFormatError: no time column, neither an ECG nor a respiration column, non-numeric or
            non-increasing time, fewer than 2 s of signal.
    """
    tcol = _find_column(df, TIME_COLUMNS)
    if tcol is None:
        raise DataFormatError(f"Bio file '{path}' has no time column (columns: {list(df.columns)[:6]}); "
                              f"expected one of {', '.join(TIME_COLUMNS)} in s or ms.")
    columns = [str(c) for c in df.columns]
    ecol = (df.columns[_named(columns, ecg_column, "--ecg-channel", path, "column")] if ecg_column is not None
            else _find_column(df, ECG_COLUMNS))
    rcol = (df.columns[_named(columns, resp_column, "--resp-channel", path, "column")] if resp_column is not None
            else _find_column(df, RESP_COLUMNS))
    if ecol is None and rcol is None:
        raise DataFormatError(f"Bio file '{path}' has neither an ECG nor a respiration column (columns: "
                              f"{list(df.columns)[:6]}); name them 'ecg' and 'resp', or pick them with "
                              "--ecg-channel/--resp-channel.")
    numeric = {}
    for c in (tcol, ecol, rcol):
        if c is None:
            continue
        col = pd.to_numeric(df[c], errors="coerce").to_numpy(np.float64)
        if np.isnan(col).all():
            raise DataFormatError(f"Bio file '{path}': column '{c}' holds no numbers.")
        numeric[c] = col
    t = numeric[tcol]
    ok = ~np.isnan(t)
    t = time_to_seconds(t[ok], time_unit, str(tcol))
    if len(t) < 2 or np.any(np.diff(t) <= 0):
        raise DataFormatError(f"Bio file '{path}': time column '{tcol}' is not strictly increasing; "
                              "sort the file by time and drop duplicated rows.")
    t = t - t[0]
    if t[-1] < 2.0:
        raise DataFormatError(f"Bio file '{path}' holds {t[-1]:.2f} s of signal; at least 2 s are needed.")
    sr_hz = (len(t) - 1) / t[-1]

    def signal(c: str | None) -> np.ndarray | None:
        if c is None:
            return None
        x = numeric[c][ok]
        if np.isnan(x).any():  # short gaps: linear interpolation over time
            good = ~np.isnan(x)
            x = np.interp(t, t[good], x[good])
        return x

    return t, sr_hz, signal(ecol), signal(rcol)


def _uniform(t: np.ndarray, x: np.ndarray, sr_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Resample an irregularly sampled signal onto a uniform time base (NeuroKit2 assumes one)."""
    tu = np.arange(0.0, t[-1] + 0.5 / sr_hz, 1.0 / sr_hz)
    return tu, np.interp(tu, t, x)


def extract_bio(t_s: np.ndarray, sr_hz: float, ecg: np.ndarray | None, resp: np.ndarray | None,
                grid_ms: np.ndarray, features: tuple[str, ...] = BIO_FEATURES) -> dict[str, np.ndarray]:
    """ECG, resp and BPM on the grid.

    Args:
        t_s: sample times in s, shape ``(n,)``.
        sr_hz: sampling rate (mean rate of ``t_s``).
        ecg: raw ECG, shape ``(n,)``, or None.
        resp: raw respiration, shape ``(n,)``, or None.
        grid_ms: step times, int ms, shape ``(T,)``.
        features: which of ECG, resp, BPM to make.

    Returns:
        Feature name -> float32 ``(T, 1)`` (NaN on steps the recording does not cover).

    Raises:
        DataFormatError: a requested feature's signal is absent, flat, or (BPM) has fewer than 3 R-peaks.
    """
    nk = _import_neurokit()
    out: dict[str, np.ndarray] = {}
    srate = int(round(sr_hz))
    if srate < MIN_RAW_HZ:
        raise DataFormatError(f"the signals are sampled at {sr_hz:.3g} Hz; ECG and respiration features need the "
                              f"raw recording (at least {MIN_RAW_HZ} Hz). Is this already a 2 Hz feature file? "
                              "Those go into feature_segments/ as they are.")
    need_ecg = [f for f in features if f in ("ECG", "BPM")]
    if need_ecg and ecg is None:
        raise DataFormatError(f"{'/'.join(need_ecg)} need an ECG column ('ecg') in the bio file, or name its "
                              "column or record channel with --ecg-channel.")
    if "resp" in features and resp is None:
        raise DataFormatError("resp needs a respiration column ('resp') in the bio file, or name its column or "
                              "record channel with --resp-channel; or leave resp out with --features.")
    ts_ms = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NeuroKit2 warns on short or noisy segments; results are checked below
        if ecg is not None and need_ecg:
            tu, x = _uniform(t_s, ecg, srate)
            ts_ms = np.rint(tu * 1000).astype(np.int64)
            if np.ptp(x) == 0:
                raise DataFormatError("The ECG column is flat (constant); check the electrode channel.")
            clean = nk.ecg_clean(x, sampling_rate=srate)
            if "ECG" in features:
                out["ECG"] = align_to_grid(grid_ms, ts_ms, clean[:, None])[0]
            if "BPM" in features:
                _, info = nk.ecg_peaks(clean, sampling_rate=srate)
                peaks = np.asarray(info["ECG_R_Peaks"], dtype=np.int64)
                if len(peaks) < 3:
                    raise DataFormatError(f"Only {len(peaks)} R-peaks found in the ECG; BPM needs at least 3 "
                                          "(is the column really an ECG?).")
                rate = nk.signal_rate(peaks, sampling_rate=srate, desired_length=len(clean),
                                      interpolation_method="monotone_cubic")
                out["BPM"] = align_to_grid(grid_ms, ts_ms, np.asarray(rate)[:, None])[0]
        if resp is not None and "resp" in features:
            tu, x = _uniform(t_s, resp, srate)
            if np.ptp(x) == 0:
                raise DataFormatError("The respiration column is flat (constant); check the belt channel.")
            clean = nk.rsp_clean(x, sampling_rate=srate)
            out["resp"] = align_to_grid(grid_ms, np.rint(tu * 1000).astype(np.int64), clean[:, None])[0]
    return {f: out[f] for f in features if f in out}
