"""``musefusion predict-recording``: curves for a new recording from unimodal and fused runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from musefusion.config import DataConfig, RunConfig, TrainConfig, model_preset
from musefusion.fusion.late import FusionConfig, fuse
from musefusion.training.run import train_run
from tests.cli_helpers import run_cli

SMALL = {"hidden": 8, "d_model": 8, "channels": 8}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synth_stress):
    """An egemaps run, a bio run and their fusion (in-sample, 2 epochs) on the shared synthetic corpus."""
    out = tmp_path_factory.mktemp("runs")
    streams = []
    for feats, model in (("egemaps", "lstm"), ("bio", "bio_lstm")):
        cfg = RunConfig(DataConfig(root=synth_stress, features=(feats,), target="arousal", win_len=40, hop_len=20,
                                   cache=False),
                        model_preset(model, **SMALL), TrainConfig(epochs=2, seeds=(1,)))
        train_run(cfg, out / feats)
        streams.append(str(out / feats))
    fuse(FusionConfig(streams=tuple(streams), names=("A", "B"), train_on="in-sample", epochs=2), out / "fused")
    return out


def test_curves_from_a_fused_and_a_unimodal_run(runs, speech_wav, bio_csv, tmp_path, capsys):
    out = tmp_path / "curves"
    code = run_cli(["predict-recording", "--audio", str(speech_wav), "--bio", str(bio_csv),
                 "--model", str(runs / "fused"), "--model", str(runs / "egemaps"), "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    curves = pd.read_csv(out / "curves.csv")
    assert list(curves.columns) == ["timestamp", "arousal", "arousal observed", "arousal (egemaps)",
                                    "arousal (egemaps) observed"]
    assert curves["arousal (egemaps) observed"].between(0, 1).all()
    ts = curves["timestamp"].to_numpy()
    np.testing.assert_array_equal(ts, np.arange(len(ts)) * 500)
    # the 6 s recordings give about 12 steps at 2 Hz
    assert 10 <= len(ts) <= 16
    vals = curves[["arousal", "arousal (egemaps)"]].to_numpy()
    assert np.isfinite(vals).all()
    assert vals[:, 0].std() > 0 and not np.allclose(vals[:, 0], vals[:, 1])
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "curves.csv" in capsys.readouterr().out


def test_a_model_needing_a_missing_input_is_one_error_line(runs, speech_wav, tmp_path, capsys):
    out = tmp_path / "curves"
    code = run_cli(["predict-recording", "--audio", str(speech_wav), "--model", str(runs / "fused"), "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "'ECG' needs --bio" in err, err
    assert not (out / "curves.csv").exists()


def test_not_a_run_directory(tmp_path, speech_wav, capsys):
    code = run_cli(["predict-recording", "--audio", str(speech_wav), "--model", str(tmp_path), "--out",
                 str(tmp_path / "o")])
    assert code == 2
    assert "is not a run directory" in capsys.readouterr().err


def test_curves_from_an_edf_record_with_named_channels(runs, simulated_bio, write_bio_record, tmp_path, capsys):
    _, ecg, resp = simulated_bio(duration_s=6.0)
    rec = write_bio_record(tmp_path / "rec.edf", [("X1", "mV", 250, ecg), ("X2", "NU", 250, resp)])
    out = tmp_path / "curves"
    argv = ["predict-recording", "--bio", str(rec), "--model", str(runs / "bio"), "--out", str(out)]
    assert run_cli(argv) == 2
    assert "pick them with --ecg-channel NAME" in capsys.readouterr().err
    assert run_cli([*argv, "--ecg-channel", "X1", "--resp-channel", "x2"]) == 0, capsys.readouterr().err
    curves = pd.read_csv(out / "curves.csv")
    assert list(curves.columns) == ["timestamp", "arousal", "arousal observed"] and 10 <= len(curves) <= 16
    assert np.isfinite(curves["arousal"]).all()


def test_a_video_with_no_face_at_any_step_is_an_error_not_a_curve(synth_stress, tmp_path, monkeypatch, capsys):
    """Extraction that finds no face anywhere gives no vggface row; the model reading vggface must not turn its
    fill values into a curve that looks measured."""
    import musefusion.pipelines.recording as recording

    run = tmp_path / "face"
    train_run(RunConfig(DataConfig(root=synth_stress, features=("vggface",), target="valence", win_len=40,
                                   hop_len=20, cache=False),
                        model_preset("lstm", **SMALL), TrainConfig(epochs=1, seeds=(1,))), run)
    video = tmp_path / "v.mp4"
    video.write_bytes(b"\0" * 64)
    no_face = {"vggface": (np.zeros(0, np.int64), np.zeros((0, 512), np.float32))}
    monkeypatch.setattr(recording, "extract_file", lambda **kw: {**no_face, "egemaps": (
        np.arange(12, dtype=np.int64) * 500, np.zeros((12, 88), np.float32))})
    out = tmp_path / "curves"
    capsys.readouterr()  # the training's log lines
    assert run_cli(["predict-recording", "--video", str(video), "--model", str(run), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "no 'vggface' data at any step" in err and "Traceback" not in err, err
    assert not (out / "curves.csv").exists()


def test_steps_without_a_feature_are_marked_not_hidden(runs, tmp_path, monkeypatch, capsys):
    """A recording whose voice stops half-way: the curve goes on (fill values), and ``<target> observed`` says at
    which steps it leans on them; a fusion reports the share over its streams; the CLI says so in a line."""
    import musefusion.pipelines.recording as recording

    rng = np.random.default_rng(0)
    feats = {"egemaps": (np.arange(6, dtype=np.int64) * 500, rng.normal(size=(6, 88)).astype(np.float32)),
             "ECG": (np.arange(12, dtype=np.int64) * 500, rng.normal(size=(12, 1)).astype(np.float32)),
             "resp": (np.arange(12, dtype=np.int64) * 500, rng.normal(size=(12, 1)).astype(np.float32)),
             "BPM": (np.arange(12, dtype=np.int64) * 500, rng.normal(70, 3, size=(12, 1)).astype(np.float32))}
    monkeypatch.setattr(recording, "extract_file", lambda **kw: {k: feats[k] for k in kw["features"] if k in feats})
    curves = recording.predict_recording([runs / "egemaps", runs / "fused"], audio=tmp_path / "a.wav")
    voice = curves["arousal observed"].to_numpy()
    np.testing.assert_array_equal(voice, [1.0] * 6 + [0.0] * 6)
    assert np.isfinite(curves["arousal"]).all()
    fused = curves["arousal (fused) observed"].to_numpy()
    assert (fused[:6] == 1).all() and (0 < fused[6:]).all() and (fused[6:] < 1).all()
    out = tmp_path / "curves"
    (tmp_path / "a.wav").write_bytes(b"")
    capsys.readouterr()
    assert run_cli(["predict-recording", "--audio", tmp_path / "a.wav", "--model", runs / "fused",
                    "--model", runs / "egemaps", "--out", out]) == 0
    said = capsys.readouterr().out
    assert "arousal (egemaps): 50% of the steps lack some of its features" in said
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
