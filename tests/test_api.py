"""The Python API: a notebook user trains and fuses in-process, the same runs the commands make."""

from __future__ import annotations

import gc
import tempfile

import numpy as np
import pytest

import musefusion as mf
from musefusion.errors import ConfigError
from tests.cli_helpers import tree_digest


def test_train_and_fuse_in_a_notebook(synth_stress, tmp_path, monkeypatch):
    """A notebook session: train two streams and fuse them in-process, read predictions, curves and scores as
    DataFrames; nothing is written outside tmp_path (the runs not asked for live in a temporary folder that goes
    with the results) and nothing into the corpus."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the temporary run folders go
    monkeypatch.chdir(tmp_path)
    before = tree_digest(synth_stress)
    epochs = []
    a = mf.train(synth_stress, features=["egemaps"], model="lstm", hidden=8, epochs=2, win_len=40, hop_len=20,
                 on_epoch=lambda seed, row: epochs.append((seed, row["epoch"])))
    b = mf.train(synth_stress, features="bio", model="bio_lstm", hidden=8, epochs=2, win_len=40, hop_len=20)
    assert epochs == [(1, 1), (1, 2)]
    assert a.run_dir.is_relative_to(scratch) and not (tmp_path / "runs").exists()  # no run dir asked for
    assert -1 <= a.devel_ccc <= 1 and a.metrics["model"] == "lstm" and b.metrics["features"] == ["ECG", "resp", "BPM"]
    devel = a.predictions("devel")
    assert list(devel.columns) == ["id", "timestamp", "prediction"]
    corpus = mf.load_corpus(synth_stress, features=["egemaps"])
    assert set(devel["id"]) == {s.id for s in corpus.partition("devel")}
    assert len(devel) == sum(len(s) for s in corpus.partition("devel"))
    hist = a.history()
    assert list(hist["epoch"]) == [1, 2] and a.devel_ccc == pytest.approx(hist["devel_ccc"].max())

    scores = mf.evaluate(a)  # rescored from the saved predictions: the same devel CCC the run kept
    assert scores.loc["devel", "ccc"] == pytest.approx(a.devel_ccc, abs=1e-6) and "test" not in scores.index
    labels = {s.id: s.y for s in corpus.partition("devel")}
    order = list(dict.fromkeys(devel["id"]))  # the frame's subject order
    by_hand = mf.ccc(devel["prediction"].to_numpy(), np.concatenate([labels[i] for i in order]))
    assert by_hand == pytest.approx(a.devel_ccc, abs=1e-6)

    saved = mf.train(synth_stress, features=["egemaps"], model="lstm", hidden=8, epochs=2, win_len=40, hop_len=20,
                     out="runs/a")  # asked for: written there
    assert (tmp_path / "runs" / "a" / "metrics.json").is_file() and saved.devel_ccc == pytest.approx(a.devel_ccc)
    again = mf.train(synth_stress, features=["egemaps"], model="lstm", hidden=8, epochs=2, win_len=40, hop_len=20,
                     out="runs/a")
    assert again.metrics == saved.metrics  # the same settings: the finished run is reused

    assert a.run_dir.name != b.run_dir.name  # temporary runs are told apart (fusion names streams after them)
    fused = mf.fuse([a, b], names=("A", "B"), train_on="in-sample", epochs=2)
    assert set(fused.metrics["stream_devel_ccc"]) == {"A", "B"} and fused.metrics["kind"] == "fusion"
    assert fused.run_dir.is_relative_to(scratch) and len(fused.predictions("devel")) == len(devel)
    assert mf.evaluate(fused).loc["devel", "ccc"] == pytest.approx(fused.devel_ccc, abs=1e-6)
    assert tree_digest(synth_stress) == before  # nothing written into the corpus
    folders = [a.run_dir.parent, b.run_dir.parent, fused.run_dir.parent]
    del a, b, fused
    gc.collect()
    assert not any(f.exists() for f in folders)  # the temporary runs went with their results
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs", "tmp"]


def test_ccc_of_the_api():
    assert mf.ccc([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == pytest.approx(1.0)
    assert mf.ccc([1.0, 2.0, 3.0], [3.0, 2.0, 1.0]) == pytest.approx(-1.0)


def test_an_unknown_setting_names_the_nearest():
    with pytest.raises(ConfigError, match="Unknown key 'epoch' in the run settings; did you mean 'epochs'"):
        mf.run_config("/data", epoch=3)
    with pytest.raises(ConfigError, match="Unknown key 'fold' in the fusion settings; did you mean 'folds'"):
        mf.fuse(["runs/a"], fold=3)
