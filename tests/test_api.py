"""The Python API: a notebook user trains and fuses in-process, the same runs the commands make."""

from __future__ import annotations

import pytest

import musefusion as mf
from musefusion.errors import ConfigError
from tests.cli_helpers import tree_digest


def test_train_and_fuse_in_a_notebook(synth_stress, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # default run directories go under runs/ of the working folder
    before = tree_digest(synth_stress)
    epochs = []
    a = mf.train(synth_stress, features=["egemaps"], model="lstm", hidden=8, epochs=2, win_len=40, hop_len=20,
                 on_epoch=lambda seed, row: epochs.append((seed, row["epoch"])))
    b = mf.train(synth_stress, features="bio", model="bio_lstm", hidden=8, epochs=2, win_len=40, hop_len=20)
    assert epochs == [(1, 1), (1, 2)]
    assert a.run_dir.resolve().parent == tmp_path / "runs" and a.run_dir.name.startswith("stress-arousal-egemaps-lstm-")
    assert -1 <= a.devel_ccc <= 1 and a.metrics["model"] == "lstm" and b.metrics["features"] == ["ECG", "resp", "BPM"]
    again = mf.train(synth_stress, features=["egemaps"], model="lstm", hidden=8, epochs=2, win_len=40, hop_len=20)
    assert again.metrics == a.metrics  # the same settings: the finished run is reused
    fused = mf.fuse([a.run_dir, b.run_dir], names=("A", "B"), train_on="in-sample", epochs=2)
    assert set(fused["stream_devel_ccc"]) == {"A", "B"} and fused["kind"] == "fusion"
    assert tree_digest(synth_stress) == before  # nothing written into the corpus


def test_an_unknown_setting_names_the_nearest():
    with pytest.raises(ConfigError, match="Unknown key 'epoch' in the run settings; did you mean 'epochs'"):
        mf.run_config("/data", epoch=3)
    with pytest.raises(ConfigError, match="Unknown key 'fold' in the fusion settings; did you mean 'folds'"):
        mf.fuse(["runs/a"], fold=3)
