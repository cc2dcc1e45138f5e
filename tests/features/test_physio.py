"""ECG, RESP and BPM from raw signals: neurokit2 simulations and heartpy's bundled real recordings."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from musefusion.data.grid import step_grid
from musefusion.errors import ConfigError, DataFormatError
from musefusion.features import bio_records, physio


@pytest.mark.parametrize("sr_hz", [250, 1000])
def test_bpm_of_a_70_bpm_ecg_is_70(sr_hz, simulated_bio):
    t, ecg, resp = simulated_bio(duration_s=10.0, sr_hz=sr_hz)
    grid = step_grid(t[-1])
    out = physio.extract_bio(t, sr_hz, ecg, resp, grid)
    assert list(out) == ["ECG", "resp", "BPM"]
    for v in out.values():
        assert v.shape == (len(grid), 1) and np.isfinite(v).all()
    assert abs(np.median(out["BPM"]) - 70) <= 3
    assert np.all(np.abs(out["BPM"][2:-2] - 70) <= 3)


def test_resp_follows_the_breathing_cycle(simulated_bio):
    t, ecg, resp = simulated_bio(duration_s=12.0)
    grid = step_grid(t[-1])
    out = physio.extract_bio(t, 250, None, resp, grid, ("resp",))
    ref = np.interp(grid / 1000, t, resp)
    assert np.corrcoef(out["resp"][:, 0], ref)[0, 1] > 0.9


def _heartpy(i: int) -> tuple[np.ndarray, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import heartpy as hp

        return hp.load_exampledata(i)


@pytest.mark.parametrize("example", [1, 2])
def test_real_heartpy_recordings(tmp_path, example):
    """heartpy's real recordings (~100 Hz, a ms timer or datetimes) are read from a CSV onto the grid.

    They are PPG, not ECG: an R-peak detector fits only the clean one (example 1), where the heart rate agrees
    with heartpy's own estimate; example 2 (PPG during movement) is checked for shape only."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import heartpy as hp

        data, timer = _heartpy(example)
        if example == 2:
            timer = (pd.to_datetime(timer, format="ISO8601") - pd.to_datetime(timer[0])).total_seconds().to_numpy() * 1000
            keep = np.r_[True, np.diff(timer) > 0]  # the logger repeats some timestamps
            data, timer = data[keep], timer[keep]
        _, measures = hp.process(hp.scale_data(data), hp.get_samplerate_mstimer(timer))
    path = tmp_path / "rec.csv"
    pd.DataFrame({"timestamp_ms": timer, "ECG": data}).to_csv(path, index=False)
    t, sr, ecg, resp = physio.read_bio(bio_records.read_table(path), path)
    assert resp is None and 50 < sr < 200 and t[0] == 0
    grid = step_grid(t[-1])
    out = physio.extract_bio(t, sr, ecg, None, grid, ("ECG", "BPM"))
    assert out["BPM"].shape == (len(grid), 1) and np.isfinite(out["BPM"]).all()
    if example == 1:
        assert abs(np.median(out["BPM"]) - measures["bpm"]) / measures["bpm"] < 0.1


@pytest.mark.parametrize(("t", "unit", "expected"), [
    (np.array([0.0, 1.0, 2.0]), "auto", 0.002),
    (np.array([0.0, 0.004, 0.008]), "auto", 0.008),
    (np.array([0.0, 4.0, 8.0]), "s", 8.0),
    (np.array([0.0, 4.0, 8.0]), "ms", 0.008),
])
def test_time_units(t, unit, expected):
    assert physio.time_to_seconds(t, unit)[-1] == pytest.approx(expected)


def test_time_unit_must_be_known():
    with pytest.raises(ConfigError, match="--bio-time-unit 'h'"):
        physio.time_to_seconds(np.arange(3.0), "h")


@pytest.mark.parametrize(("columns", "match"), [
    ({"x": [0, 1], "ecg": [1, 2]}, "no time column"),
    ({"time": [0, 1], "eda": [1, 2]}, "neither an ECG nor a respiration column"),
    ({"time": [1, 0], "ecg": [1, 2]}, "not strictly increasing"),
    ({"time": [0.0, 0.5], "ecg": [1, 2]}, "at least 2 s"),
    ({"time": [0, 1], "ecg": ["a", "b"]}, "holds no numbers"),
])
def test_bad_bio_tables(columns, match):
    with pytest.raises(DataFormatError, match=match):
        physio.read_bio(pd.DataFrame(columns), "rec.csv")


def test_missing_signal_for_a_requested_feature(simulated_bio):
    t, ecg, _ = simulated_bio(duration_s=4.0)
    with pytest.raises(DataFormatError, match="resp needs a respiration column"):
        physio.extract_bio(t, 250, ecg, None, step_grid(t[-1]), ("resp",))


def test_flat_ecg_is_refused():
    t = np.arange(0, 5, 0.004)
    with pytest.raises(DataFormatError, match="flat"):
        physio.extract_bio(t, 250, np.zeros_like(t), None, step_grid(t[-1]), ("BPM",))
