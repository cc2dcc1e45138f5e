"""Biological features on the 500 ms grid from raw ECG and respiration: ECG, RESP and BPM.

MuSe 2021 provides these three signals at 2 Hz (paper Sec. 3.3); from a raw recording at any sampling rate
they are made here with NeuroKit2 (Makowski et al., 2021, Behavior Research Methods,
doi:10.3758/s13428-020-01516-y):

- ``ECG``: ``nk.ecg_clean`` (0.5 Hz high-pass + 50 Hz powerline filter), averaged over each 500 ms step.
- ``RESP``: ``nk.rsp_clean`` (Khodadad et al. 2018 band-pass 0.05-3 Hz), averaged over each step.
- ``BPM``: R-peaks from ``nk.ecg_peaks`` on the cleaned ECG, instantaneous heart rate interpolated between
  beats (``nk.signal_rate``, monotone cubic), averaged over each step.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any

import numpy as np
import pandas as pd

from musefusion.errors import ConfigError, DataFormatError, MissingDependencyError
from musefusion.features.align import align_to_grid

logger = logging.getLogger(__name__)

#: Column names accepted (case-insensitive) for each raw signal and for time.
TIME_COLUMNS = ("time", "timestamp", "t", "time_s", "time_ms", "timestamp_ms", "seconds", "ms")
ECG_COLUMNS = ("ecg",)
RESP_COLUMNS = ("resp", "rsp", "respiration", "breathing")
#: Features this module makes.
BIO_FEATURES = ("ECG", "RESP", "BPM")


def _import_neurokit() -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import neurokit2 as nk
    except ImportError:
        raise MissingDependencyError("ECG/RESP/BPM need NeuroKit2: pip install musefusion[physio]") from None
    return nk


def _find_column(df: pd.DataFrame, names: tuple[str, ...]) -> str | None:
    lower = {str(c).strip().lower(): c for c in df.columns}
    return next((lower[n] for n in names if n in lower), None)


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


def read_bio(df: pd.DataFrame, path: str | os.PathLike[str], time_unit: str = "auto"
             ) -> tuple[np.ndarray, float, np.ndarray | None, np.ndarray | None]:
    """Pick time, ECG and respiration out of a raw recording's table.

    Args:
        df: the table (:func:`musefusion.io.read_table`).
        path: its file, for messages.
        time_unit: auto, s or ms (see :func:`time_to_seconds`).

    Returns:
        ``(time_s, sr_hz, ecg, resp)``: sample times (s, from 0), the mean sampling rate, and each signal
        (float64 ``(n,)``) or None when its column is absent.

    Raises:
        DataFormatError: no time column, neither an ECG nor a respiration column, non-numeric or
            non-increasing time, fewer than 2 s of signal.
    """
    tcol = _find_column(df, TIME_COLUMNS)
    if tcol is None:
        raise DataFormatError(f"Bio file '{path}' has no time column (columns: {list(df.columns)[:6]}); "
                              f"expected one of {', '.join(TIME_COLUMNS)} in s or ms.")
    ecol, rcol = _find_column(df, ECG_COLUMNS), _find_column(df, RESP_COLUMNS)
    if ecol is None and rcol is None:
        raise DataFormatError(f"Bio file '{path}' has neither an ECG nor a respiration column (columns: "
                              f"{list(df.columns)[:6]}); name them 'ecg' and 'resp'.")
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
    """ECG, RESP and BPM on the grid.

    Args:
        t_s: sample times in s, shape ``(n,)``.
        sr_hz: sampling rate (mean rate of ``t_s``).
        ecg: raw ECG, shape ``(n,)``, or None.
        resp: raw respiration, shape ``(n,)``, or None.
        grid_ms: step times, int ms, shape ``(T,)``.
        features: which of ECG, RESP, BPM to make.

    Returns:
        Feature name -> float32 ``(T, 1)`` (NaN on steps the recording does not cover).

    Raises:
        DataFormatError: a requested feature's signal is absent, flat, or (BPM) has fewer than 3 R-peaks.
    """
    nk = _import_neurokit()
    out: dict[str, np.ndarray] = {}
    srate = int(round(sr_hz))
    need_ecg = [f for f in features if f in ("ECG", "BPM")]
    if need_ecg and ecg is None:
        raise DataFormatError(f"{'/'.join(need_ecg)} need an ECG column ('ecg') in the bio file.")
    if "RESP" in features and resp is None:
        raise DataFormatError("RESP needs a respiration column ('resp') in the bio file.")
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
        if resp is not None and "RESP" in features:
            tu, x = _uniform(t_s, resp, srate)
            if np.ptp(x) == 0:
                raise DataFormatError("The respiration column is flat (constant); check the belt channel.")
            clean = nk.rsp_clean(x, sampling_rate=srate)
            out["RESP"] = align_to_grid(grid_ms, np.rint(tu * 1000).astype(np.int64), clean[:, None])[0]
    return {f: out[f] for f in features if f in out}
