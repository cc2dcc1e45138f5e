"""``musefusion extract`` end to end, and its one-line errors (exit 2)."""

from __future__ import annotations

import numpy as np
import pytest

from musefusion.data import formats
from tests.cli_helpers import run_cli


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err, err
    return err


def test_extract_writes_the_corpus_layout(tmp_path, speech_wav, bio_csv, capsys):
    assert run_cli(["extract", "--audio", speech_wav, "--bio", bio_csv, "--id", "7", "--out", tmp_path,
                    "--features", "egemaps,bio"]) == 0
    out = capsys.readouterr().out
    assert "extracted 1 recording" in out
    for f in ("egemaps", "ECG", "resp", "BPM"):
        ts, _, _ = formats.read_feature_csv(tmp_path / "c3_muse_stress" / "feature_segments" / f / "7.csv")
        assert np.all(ts == np.arange(len(ts)) * 500)


@pytest.mark.parametrize(("args", "match"), [
    (["--out", "{tmp}/o"], "Give exactly one of"),
    (["--audio", "{tmp}/missing.wav", "--out", "{tmp}/o", "--features", "egemaps"], "missing.wav' not found"),
    (["--audio", "{tmp}/empty.wav", "--out", "{tmp}/o", "--features", "egemaps"], "empty.wav' is empty"),
    (["--audio", "{speech}", "--out", "{tmp}/o", "--features", "vggish", "--vggish-weights", "{tmp}/none.pth"],
     "none.pth' not found"),
    (["--audio", "{speech}", "--out", "{tmp}/o", "--features", "vggish", "--vggish-weights", "{tmp}/evil.pth"],
     "evil.pth' holds pickled Python objects"),
    (["--bio", "{tmp}/nocols.csv", "--out", "{tmp}/o"], "nocols.csv' has neither an ECG nor a respiration"),
    (["--audio", "{speech}", "--out", "{tmp}/o", "--features", "vggface"], "'vggface' needs --video"),
    (["--input-dir", "{tmp}/nowhere", "--out", "{tmp}/o"], "nowhere' not found"),
])
def test_extract_errors_are_one_line_exit_2(tmp_path, speech_wav, monkeypatch, capsys, args, match):
    import torch

    monkeypatch.delenv("MUSEFUSION_VGGISH_WEIGHTS", raising=False)
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "nocols.csv").write_text("time,eda\n0,1\n1,2\n")
    torch.save({"x": torch.nn.Linear(2, 2)}, tmp_path / "evil.pth")
    argv = ["extract", *[a.format(tmp=tmp_path, speech=speech_wav) for a in args]]
    assert run_cli(argv) == 2
    err = _one_line_error(capsys)
    assert __import__("re").search(match, err), err
    assert not list((tmp_path / "o").rglob("*.csv")) if (tmp_path / "o").exists() else True


def _ecg_resp(simulated_bio, names=("ECG", "Resp")):
    _, ecg, resp = simulated_bio(duration_s=6.0)
    return [(names[0], "mV", 250, ecg), (names[1], "NU", 250, resp)]


def test_extract_records_by_flag_and_by_folder(tmp_path, simulated_bio, write_bio_record, capsys):
    rec = write_bio_record(tmp_path / "one" / "rec.edf", _ecg_resp(simulated_bio, ("X1", "X2")))
    assert run_cli(["extract", "--bio", str(rec), "--ecg-channel", "x1", "--resp-channel", "X2",
                 "--out", str(tmp_path / "o")]) == 0
    assert "rec: ECG,resp,BPM" in capsys.readouterr().out
    for sid, suffix in (("a", ".hea"), ("b", ".bdf")):
        write_bio_record(tmp_path / "batch" / f"{sid}{suffix}", _ecg_resp(simulated_bio))
    assert run_cli(["extract", "--input-dir", str(tmp_path / "batch"), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "extracted 2 recording" in out and "a: ECG,resp,BPM" in out and "b: ECG,resp,BPM" in out
    seg = tmp_path / "o" / "c3_muse_stress" / "feature_segments"
    assert sorted(p.name for p in (seg / "BPM").iterdir()) == ["a.csv", "b.csv", "rec.csv"]


@pytest.mark.parametrize(("case", "extra", "match"), [
    ("no dat", [], r"rec.hea': its signal file 'rec.dat' is not beside the header .*copy it next to 'rec.hea'"),
    ("corrupt", [], r"rec.edf' cannot be read \(.*\); is it an EDF\(\+\) or BDF\(\+\) file\?"),
    ("no channel", [], r"rec.edf' has no ECG or respiration channel by name \(channels: 'X1', 'X2'\); pick them "
                       r"with --ecg-channel NAME"),
    ("unknown flag", ["--ecg-channel", "MLII"], r"rec.edf' has no channel 'MLII' \(--ecg-channel\); its channels "
                                                r"are 'ECG', 'Resp'"),
], ids=["no dat", "corrupt", "no channel", "unknown flag"])
def test_record_errors_are_one_line_exit_2(tmp_path, simulated_bio, write_bio_record, capsys, case, extra, match):
    if case == "no dat":
        rec = write_bio_record(tmp_path / "rec.hea", _ecg_resp(simulated_bio))
        (tmp_path / "rec.dat").unlink()
    elif case == "corrupt":
        rec = tmp_path / "rec.edf"
        rec.write_bytes(b"\x00" * 4096)
    else:
        rec = write_bio_record(tmp_path / "rec.edf", _ecg_resp(simulated_bio, ("X1", "X2") if case == "no channel"
                                                               else ("ECG", "Resp")))
    assert run_cli(["extract", "--bio", str(rec), "--out", str(tmp_path / "o"), *extra]) == 2
    err = _one_line_error(capsys)
    assert __import__("re").search(match, err), err
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").rglob("*.csv"))
