"""``musefusion extract`` end to end, and its one-line errors (exit 2)."""

from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import run_cli

from musefusion import io


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err, err
    return err


def test_extract_writes_the_corpus_layout(tmp_path, speech_wav, bio_csv, capsys):
    assert run_cli(["extract", "--audio", speech_wav, "--bio", bio_csv, "--id", "7", "--out", tmp_path,
                    "--features", "egemaps,bio"]) == 0
    out = capsys.readouterr().out
    assert "extracted 1 recording" in out
    for f in ("egemaps", "ECG", "RESP", "BPM"):
        ts, _, _ = io.read_feature_csv(tmp_path / "c3_muse_stress" / "feature_segments" / f / "7.csv")
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
