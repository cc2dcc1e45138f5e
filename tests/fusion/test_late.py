"""Late fusion: timestamp joins, refusals, out-of-fold subjects, test labels never read."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from musefusion.config import DataConfig, RunConfig, TrainConfig, model_preset
from musefusion.data import formats
from musefusion.errors import ConfigError, DataFormatError, MissingDataError
from musefusion.fusion import oof as oof_mod
from musefusion.fusion.late import FusionConfig, fuse
from musefusion.fusion.stack import stack_streams
from musefusion.training.run import train_run

SMALL = {"hidden": 8, "d_model": 8, "channels": 8}


def _stream(ts_by_id):
    return {sid: (ts, np.arange(len(ts), dtype=np.float32)) for sid, ts in ts_by_id.items()}


def test_stack_joins_by_timestamp():
    ts = np.arange(5) * 500
    a, b = _stream({"1": ts}), _stream({"1": ts})
    b["1"] = (ts, np.full(5, 7.0, dtype=np.float32))
    out = stack_streams([a, b], ["a", "b"], ["1"])
    assert out["1"][1].shape == (5, 2)
    np.testing.assert_array_equal(out["1"][1][:, 1], 7.0)


def test_stack_refuses_missing_and_misaligned_streams():
    ts = np.arange(5) * 500
    with pytest.raises(MissingDataError, match="Stream 'b' has no predictions for subject '1'"):
        stack_streams([_stream({"1": ts}), _stream({"2": ts})], ["a", "b"], ["1"])
    with pytest.raises(DataFormatError, match="Stream 'b' is misaligned .*first at 500 ms vs 0 ms"):
        stack_streams([_stream({"1": ts}), _stream({"1": ts + 500})], ["a", "b"], ["1"])
    with pytest.raises(DataFormatError, match="misaligned.*4 vs 5 steps"):
        stack_streams([_stream({"1": ts}), _stream({"1": ts[:4]})], ["a", "b"], ["1"])


@pytest.fixture(scope="module")
def streams(tmp_path_factory, synth_stress):
    """Two tiny unimodal runs on the shared synthetic corpus."""
    out = tmp_path_factory.mktemp("streams")
    runs = []
    for feats, model in (("egemaps", "lstm"), ("bio", "bio_lstm")):
        cfg = RunConfig(DataConfig(root=synth_stress, features=(feats,), target="arousal", win_len=40, hop_len=20,
                                   cache=False),
                        model_preset(model, **SMALL), TrainConfig(epochs=2, seeds=(1,)))
        train_run(cfg, out / feats)
        runs.append(str(out / feats))
    return runs


def test_out_of_fold_subjects_never_seen(streams, monkeypatch):
    seen = []
    real = oof_mod.train_run

    def spy(cfg, out, data=None, **kw):
        seen.append(({s.id for s in data.partition("train")}, {s.id for s in data.partition("test")}))
        return real(cfg, out, data=data, **kw)

    monkeypatch.setattr(oof_mod, "train_run", spy)
    pred_dir = oof_mod.ensure_oof(streams[0], 3)
    assert len(seen) == 3
    held_all = set()
    for train_ids, held in seen:
        assert not train_ids & held  # the fold model never saw its held-out subjects
        assert not held_all & held  # each subject is held out once
        held_all |= held
    assert {p.stem for p in pred_dir.glob("*.csv")} == held_all
    assert len(held_all) == 8


def test_fusion_modes_and_test_labels_never_read(streams, synth_stress, tmp_path, monkeypatch):
    hidden = synth_stress / "test_labels"
    moved = tmp_path / "hidden_elsewhere"
    shutil.copytree(hidden, moved)
    opened = []
    real = formats.read_label_csv

    def spy(path, *, values=True):
        opened.append((str(path), values))
        return real(path, values=values)

    monkeypatch.setattr(formats, "read_label_csv", spy)
    shutil.rmtree(hidden)
    try:
        for mode in ("oof", "in-sample", "devel"):
            m = fuse(FusionConfig(streams=tuple(streams), names=("A", "B"), train_on=mode, folds=2, epochs=2,
                                  win_len=40, hop_len=20), tmp_path / mode)
            assert np.isfinite(m["best"]["devel_ccc"])
            assert set(m["stream_devel_ccc"]) == {"A", "B"}
            preds = formats.read_predictions(tmp_path / mode / "predictions" / "test")
            assert len(preds) == 3
    finally:
        shutil.copytree(moved, hidden)
    test_ids = {s for s, p in formats.read_partition(synth_stress / "c3_muse_stress" / "metadata" /
                                                       "partition.csv").items() if p.value == "test"}
    for path, values in opened:
        assert "test_labels" not in path
        if any(path.endswith(f"/{sid}.csv") and "label_segments" in path for sid in test_ids):
            assert values is False  # only the timestamp grid of a test subject is read


def test_refit_on_train_and_devel_changes_only_the_test_predictions(streams, tmp_path):
    base = dict(streams=tuple(streams), names=("A", "B"), folds=2, epochs=3, win_len=40, hop_len=20)
    kept = fuse(FusionConfig(**base), tmp_path / "kept")
    refit = fuse(FusionConfig(**base, refit=True), tmp_path / "refit")
    assert kept["test_from"]["fusion"] == "kept seed" and refit["test_from"]["fusion"] == "refit on train+devel"
    assert refit["best"]["devel_ccc"] == kept["best"]["devel_ccc"]  # devel scores the model fitted on train
    for part, same in (("devel", True), ("test", False)):
        a = formats.read_predictions(tmp_path / "kept" / "predictions" / part)
        b = formats.read_predictions(tmp_path / "refit" / "predictions" / part)
        assert set(a) == set(b)
        assert all(np.array_equal(a[s][1], b[s][1]) for s in a) is same, part


def test_final_streams_off_ignores_a_final_model(streams, tmp_path):
    runs = [tmp_path / "A", tmp_path / "B"]
    for src, dst in zip(streams, runs, strict=True):
        shutil.copytree(src, dst)
    final = runs[0] / "final" / "predictions" / "test"  # a 'final' model whose test predictions are all 5
    shutil.copytree(runs[0] / "predictions" / "test", final)
    formats.write_predictions(final, {s: (ts, np.full_like(v, 5.0))
                                      for s, (ts, v) in formats.read_predictions(final).items()})
    (runs[0] / "final" / "metrics.json").write_text("{}")
    base = dict(streams=tuple(str(r) for r in runs), names=("A", "B"), folds=2, epochs=2, win_len=40, hop_len=20)
    on = fuse(FusionConfig(**base), tmp_path / "on")
    off = fuse(FusionConfig(**base, final_streams=False), tmp_path / "off")
    assert on["test_from"]["streams"] == "train+devel models"
    assert off["test_from"]["streams"] == "devel-selected models"
    a = formats.read_predictions(tmp_path / "on" / "predictions" / "test")
    b = formats.read_predictions(tmp_path / "off" / "predictions" / "test")
    assert any(not np.array_equal(a[s][1], b[s][1]) for s in a)


def test_refit_needs_a_train_fit():
    with pytest.raises(ConfigError, match="--train-on devel.*has no train\\+devel refit"):
        FusionConfig(streams=("a",), train_on="devel", refit=True)


def test_reliability_fusion_reads_each_streams_observed_share(streams, synth_stress, tmp_path):
    from musefusion.data.corpus import load_corpus
    from musefusion.fusion.late import observed_shares, with_reliability
    from musefusion.training import checkpoint
    from musefusion.training.run import load_run_config

    face = RunConfig(DataConfig(root=synth_stress, features=("vggface",), target="arousal", win_len=40, hop_len=20),
                     model_preset("lstm", **SMALL), TrainConfig(epochs=1, seeds=(1,)))
    train_run(face, tmp_path / "vggface")
    runs = [streams[0], str(tmp_path / "vggface")]
    shares = observed_shares([load_run_config(Path(s)) for s in runs])
    data = load_corpus(face.data)
    missing = next(s for s in data.partition("devel") if not s.observed.all())  # faces go missing
    ts, share = shares[1][missing.id]
    np.testing.assert_array_equal(share, missing.observed[:, 0].astype(np.float32))
    assert share.min() == 0 and share.max() == 1 and shares[0][missing.id][1].min() == 1  # eGeMAPS always there
    joined = with_reliability({missing.id: (ts, np.zeros((len(ts), 2), np.float32))}, shares)[missing.id][1]
    assert joined.shape == (len(ts), 4) and np.array_equal(joined[:, 3], share)
    m = fuse(FusionConfig(streams=tuple(runs), epochs=1, folds=2, reliability=True), tmp_path / "rel")
    payload = checkpoint.load_checkpoint(tmp_path / "rel" / "checkpoint.pt")
    assert payload["n_inputs"] == 4 and payload["config"]["reliability"] is True
    assert np.isfinite(m["best"]["devel_ccc"])


def test_a_fusion_is_the_same_whatever_the_streams_spelling_and_after_a_move(streams, tmp_path, monkeypatch):
    """The streams named relatively, absolutely, through a link or after the whole tree was moved are the same
    streams (compared by digest): the finished fusion is reused, not refused as 'another configuration', and its
    record still leads to them (predict-recording reads it)."""
    from musefusion.pipelines.recording import _stream_dirs
    from musefusion.rundir import RunDir

    project = tmp_path / "project"
    for src in streams:
        shutil.copytree(src, project / "runs" / Path(src).name)
    monkeypatch.chdir(project)
    base = dict(names=("A", "B"), train_on="in-sample", epochs=2, win_len=40, hop_len=20)
    first = fuse(FusionConfig(streams=("runs/egemaps", "runs/bio"), **base), Path("fusion/ab"))
    stamp = (project / "fusion" / "ab" / "metrics.json").stat().st_mtime_ns
    absolute = fuse(FusionConfig(streams=(str(project / "runs/egemaps"), str(project / "runs/bio")), **base),
                    project / "fusion" / "ab")
    (tmp_path / "link").symlink_to(project)
    linked = fuse(FusionConfig(streams=(str(tmp_path / "link/runs/egemaps"), str(tmp_path / "link/runs/bio")),
                               **base), tmp_path / "link" / "fusion" / "ab")
    assert first == absolute == linked
    assert (project / "fusion" / "ab" / "metrics.json").stat().st_mtime_ns == stamp  # reused, not retrained
    assert RunDir(project / "fusion" / "ab").read_record()["fusion"]["streams"] == ["../../runs/egemaps",
                                                                                 "../../runs/bio"]
    moved = tmp_path / "elsewhere"
    shutil.move(project, moved)
    monkeypatch.chdir(tmp_path)
    again = fuse(FusionConfig(streams=(str(moved / "runs/egemaps"), str(moved / "runs/bio")), **base),
                 moved / "fusion" / "ab")
    assert again == first
    assert _stream_dirs(moved / "fusion" / "ab") == [moved / "fusion" / "ab" / "../../runs/egemaps",
                                                     moved / "fusion" / "ab" / "../../runs/bio"]
