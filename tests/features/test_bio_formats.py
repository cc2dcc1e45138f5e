"""ECG/RESP/BPM from WFDB records and EDF/BDF files, written here with wfdb's and pyedflib's own writers.

Every record is compared with a CSV of the same signals: the record path must give the CSV path's features
(within the formats' 16-/24-bit quantisation).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from musefusion.data import formats
from musefusion.errors import ConfigError, DataFormatError, MissingDataError
from musefusion.features import bio_records, physio
from musefusion.features.extract import ExtractConfig, extract_file, extract_folder, recordings_in_folder

FORMATS = [".hea", ".edf", ".bdf"]


def _csv(path, t, **signals):
    pd.DataFrame({"time_s": t, **signals}).to_csv(path, index=False)
    return path


def _features(bio, **cfg):
    features = cfg.pop("features", None)
    return extract_file(bio=bio, features=features, config=ExtractConfig(**cfg))


def _assert_same(got, ref, rel_tol=1e-3):
    """Same features on the same grid, within ``rel_tol`` of each feature's range (quantisation)."""
    assert list(got) == list(ref)
    for f, (ts, vals) in ref.items():
        np.testing.assert_array_equal(got[f][0], ts)
        tol = rel_tol * max(float(np.ptp(vals)), 1.0)
        assert np.allclose(got[f][1], vals, rtol=0, atol=tol), (f, np.abs(got[f][1] - vals).max(), tol)


@pytest.mark.parametrize("suffix", FORMATS)
def test_record_gives_the_csv_features(tmp_path, simulated_bio, write_bio_record, suffix):
    t, ecg, resp = simulated_bio(duration_s=10.0, sr_hz=250)
    rec = write_bio_record(tmp_path / f"rec{suffix}", [("ECG", "mV", 250, ecg), ("Resp", "NU", 250, resp)])
    got = _features(rec)
    ref = _features(_csv(tmp_path / "rec.csv", t, ecg=ecg, resp=resp))
    _assert_same(got, ref)
    bpm = got["BPM"][1]
    assert abs(np.median(bpm) - 70) <= 3 and np.all(np.abs(bpm[2:-2] - 70) <= 3)


@pytest.mark.parametrize("suffix", [".hea", ".edf"])
def test_channels_keep_their_own_rates_and_ecg_units(tmp_path, simulated_bio, write_bio_record, suffix):
    """ECG at 250 Hz in uV beside respiration at 25 Hz: ECG comes back in mV, respiration is interpolated."""
    t, ecg, resp = simulated_bio(duration_s=10.0, sr_hz=250)
    rec = write_bio_record(tmp_path / f"rec{suffix}", [("ECG", "uV", 250, ecg * 1000), ("Resp", "NU", 25, resp[::10])])
    chans = bio_records.read_bio_record(rec)
    assert [(c.name, c.unit, c.sr_hz, len(c.samples)) for c in chans] == [("ECG", "uV", 250, 2500),
                                                                          ("Resp", "NU", 25, 250)]
    table = physio.record_table(chans, rec)
    assert list(table.columns) == ["time_s", "ecg", "resp"] and len(table) == 2500
    assert np.allclose(table["ecg"], ecg, atol=1e-3)  # mV again
    got = _features(rec)
    ref = _features(_csv(tmp_path / "rec.csv", t, ecg=ecg, resp=resp))
    _assert_same({f: got[f] for f in ("ECG", "BPM")}, {f: ref[f] for f in ("ECG", "BPM")})
    # respiration sampled at 25 Hz ends 36 ms before the 250 Hz CSV's; the band-pass carries that into the
    # last steps (about 1.7 % of the range at the very end, under 0.5 % before the last 2 s)
    _assert_same({"resp": got["resp"]}, {"resp": ref["resp"]}, rel_tol=0.03)
    (ts, ref_resp), got_resp = ref["resp"], got["resp"][1]
    _assert_same({"resp": (ts[:-4], got_resp[:-4])}, {"resp": (ts[:-4], ref_resp[:-4])}, rel_tol=0.005)
    assert abs(np.median(got["BPM"][1]) - 70) <= 3


@pytest.mark.parametrize(("name", "ecg", "resp"), [
    ("ECG", True, False), ("ekg lead 2", True, False), ("ECG1", True, False), ("MLII", True, False),
    ("II", True, False), ("Lead I", True, False), ("aVR", True, False), ("V5", True, False),
    ("Resp (chest)", False, True), ("RSP", False, True), ("Thorax", False, True), ("ABDO RES", False, True),
    ("Breathing belt", False, True), ("Airflow", False, True), ("EDR (ECG resp)", False, True),
    ("EEG Fpz-Cz", False, False), ("EMG submental", False, False), ("Status", False, False),
    ("SpO2", False, False), ("PPG", False, False), ("Fp1", False, False), ("V", False, False),
])
def test_channel_name_rules(name, ecg, resp):
    assert physio.is_ecg_name(name) == ecg
    assert physio.is_resp_name(name) == resp


@pytest.mark.parametrize(("ecg_channel", "bpm"), [(None, 70), ("ecg ii", 90), ("ECG I", 70)])
def test_first_matching_channel_unless_one_is_named(tmp_path, simulated_bio, write_bio_record, ecg_channel, bpm):
    t, ecg70, resp = simulated_bio(duration_s=10.0)
    _, ecg90, _ = simulated_bio(duration_s=10.0, heart_rate=90, seed=1)
    noise = np.random.default_rng(0).normal(size=len(t))
    rec = write_bio_record(tmp_path / "rec.edf", [("EEG Fpz-Cz", "uV", 250, noise), ("ECG I", "mV", 250, ecg70),
                                                  ("ECG II", "mV", 250, ecg90), ("Thorax", "", 250, resp)])
    out = _features(rec, ecg_channel=ecg_channel)
    assert abs(np.median(out["BPM"][1]) - bpm) <= 3
    ref = _features(_csv(tmp_path / "rec.csv", t, resp=resp), features=("resp",))
    _assert_same({"resp": out["resp"]}, ref)


@pytest.mark.parametrize("suffix", FORMATS)
def test_channel_flags_pick_unrecognised_names(tmp_path, simulated_bio, write_bio_record, suffix):
    t, ecg, resp = simulated_bio(duration_s=10.0)
    rec = write_bio_record(tmp_path / f"rec{suffix}", [("X1", "mV", 250, ecg), ("X2", "NU", 250, resp)])
    with pytest.raises(DataFormatError, match=r"no ECG or respiration channel by name \(channels: 'X1', 'X2'\); "
                                              "pick them with --ecg-channel NAME"):
        _features(rec)
    got = _features(rec, ecg_channel="x1", resp_channel="X2")
    _assert_same(got, _features(_csv(tmp_path / "rec.csv", t, ecg=ecg, resp=resp)))


def test_channel_flags_also_name_csv_columns(tmp_path, simulated_bio):
    t, ecg, resp = simulated_bio(duration_s=10.0)
    named = _csv(tmp_path / "named.csv", t, Lead_A=ecg, belt=resp)
    ref = _features(_csv(tmp_path / "rec.csv", t, ecg=ecg, resp=resp))
    _assert_same(_features(named, ecg_channel="lead_a", resp_channel="BELT"), ref)
    with pytest.raises(ConfigError, match=r"named.csv' has no column 'ecg' \(--ecg-channel\); its columns are "
                                          r"'time_s', 'Lead_A', 'belt'"):
        _features(named, ecg_channel="ecg")


def _heartpy_example0() -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import heartpy as hp

        data, timer = hp.load_exampledata(0)
    assert len(timer) == 0  # example 0 has no timer: heartpy documents it as sampled at 100 Hz
    return data[: len(data) // 100 * 100]  # whole seconds: EDF stores whole 1 s data records


@pytest.mark.parametrize("suffix", FORMATS)
def test_real_heartpy_recording_from_a_record(tmp_path, write_bio_record, suffix):
    """heartpy's bundled real PPG (100 Hz, ADC units): the record path gives what the CSV path gives.

    PPG is not ECG, so the BPM values are not checked (the R-peak detector misses beats); the channel's name,
    PPG, matches no rule, so it must be named."""
    data = _heartpy_example0()
    rec = write_bio_record(tmp_path / f"ppg{suffix}", [("PPG", "", 100, data)])
    with pytest.raises(DataFormatError, match="channels: 'PPG'"):
        _features(rec, features=("ECG", "BPM"))
    got = _features(rec, ecg_channel="PPG", features=("ECG", "BPM"))
    ref = _features(_csv(tmp_path / "ppg.csv", np.arange(len(data)) / 100, ecg=data), features=("ECG", "BPM"))
    _assert_same(got, ref)
    assert len(got["BPM"][0]) == len(data) // 50 and np.isfinite(got["BPM"][1]).all()


def _corrupt(tmp_path, kind, write_bio_record, sim):
    """A broken input of each kind; returns (path, config fields, features)."""
    t, ecg, resp = sim
    both = [("ECG", "mV", 250, ecg), ("Resp", "", 250, resp)]
    if kind == "missing dat":
        rec = write_bio_record(tmp_path / "rec.hea", both)
        (tmp_path / "rec.dat").unlink()
        return rec, {}, None
    if kind == "dat given":
        write_bio_record(tmp_path / "rec.hea", both)
        return tmp_path / "rec.dat", {}, None
    if kind == "bad header":
        (tmp_path / "rec.hea").write_text("this is not a header\n")
        return tmp_path / "rec.hea", {}, None
    if kind == "short dat":
        rec = write_bio_record(tmp_path / "rec.hea", both)
        (tmp_path / "rec.dat").write_bytes((tmp_path / "rec.dat").read_bytes()[:101])
        return rec, {}, None
    if kind == "not edf":
        (tmp_path / "rec.edf").write_bytes(b"0       " * 200)
        return tmp_path / "rec.edf", {}, None
    if kind == "truncated edf":
        rec = write_bio_record(tmp_path / "rec.edf", both)
        rec.write_bytes(rec.read_bytes()[:-1000])
        return rec, {}, None
    if kind == "no ecg or resp":
        return write_bio_record(tmp_path / "rec.bdf", [("EEG Fpz-Cz", "uV", 250, ecg), ("EMG", "uV", 250, resp)]), {}, None
    if kind == "unknown channel":
        return write_bio_record(tmp_path / "rec.edf", both), {"ecg_channel": "Lead II"}, None
    if kind == "no resp":
        return write_bio_record(tmp_path / "rec.edf", both[:1]), {}, ("resp",)
    raise AssertionError(kind)


BROKEN = [
    ("missing dat", MissingDataError, r"rec.hea': its signal file 'rec.dat' is not beside the header"),
    ("dat given", ConfigError, r"rec.dat' is a WFDB signal file; give its header '.*rec.hea'"),
    ("bad header", DataFormatError, r"WFDB record '.*rec.hea' cannot be read \(HeaderSyntaxError"),
    ("short dat", DataFormatError, r"rec.hea' cannot be read .*that its .dat file is complete"),
    ("not edf", DataFormatError, r"EDF file '.*rec.edf' cannot be read \(.*not EDF\(\+\) or BDF\(\+\) compliant"),
    ("truncated edf", DataFormatError, r"rec.edf' cannot be read \(truncated: \d+ bytes, the header promises \d+"),
    ("no ecg or resp", DataFormatError, r"rec.bdf' has no ECG or respiration channel by name \(channels: "
                                        r"'EEG Fpz-Cz', 'EMG'\); pick them with --ecg-channel NAME and/or "
                                        r"--resp-channel NAME"),
    ("unknown channel", ConfigError, r"rec.edf' has no channel 'Lead II' \(--ecg-channel\); its channels are "
                                     r"'ECG', 'Resp'. Pass one of these to --ecg-channel"),
    ("no resp", DataFormatError, r"rec.edf': resp needs a respiration column \('resp'\) in the bio file, or name "
                                 r"its column or record channel with --resp-channel"),
]


@pytest.mark.parametrize(("kind", "error", "match"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_records_raise_one_actionable_error(tmp_path, simulated_bio, write_bio_record, kind, error, match):
    path, cfg, features = _corrupt(tmp_path, kind, write_bio_record, simulated_bio(duration_s=4.0))
    with pytest.raises(error, match=match) as exc:
        _features(path, features=features, **cfg)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("value", ["", "  ", 3])
def test_channel_option_must_be_a_name(value):
    with pytest.raises(ConfigError, match="ExtractConfig.ecg_channel"):
        ExtractConfig(ecg_channel=value)


def test_channel_options_round_trip():
    cfg = ExtractConfig(ecg_channel="MLII", resp_channel="Resp (chest)")
    assert ExtractConfig.from_dict(cfg.to_dict()) == cfg


def test_folder_of_records(tmp_path, simulated_bio, write_bio_record):
    t, ecg, resp = simulated_bio(duration_s=6.0)
    both = [("ECG", "mV", 250, ecg), ("Resp", "", 250, resp)]
    src = tmp_path / "in"
    for name in ("a.hea", "b.edf", "c.bdf"):
        write_bio_record(src / name, both)
    _csv(src / "d.csv", t, ecg=ecg, resp=resp)
    recs = recordings_in_folder(src)
    assert [(r.id, r.bio.name) for r in recs] == [("a", "a.hea"), ("b", "b.edf"), ("c", "c.bdf"), ("d", "d.csv")]
    report = extract_folder(src, tmp_path / "out", ExtractConfig(features=("bio",)))
    assert report["status"].tolist() == ["extracted"] * 4
    seg = tmp_path / "out" / "c3_muse_stress" / "feature_segments"
    for f in ("ECG", "resp", "BPM"):
        ref = formats.read_feature_csv(seg / f / "d.csv")[1]
        for sid in "abc":
            vals = formats.read_feature_csv(seg / f / f"{sid}.csv")[1]
            assert np.allclose(vals, ref, rtol=0, atol=1e-3 * max(float(np.ptp(ref)), 1.0)), (f, sid)
