"""Scoring prediction files against label files joined by timestamp."""

from __future__ import annotations

import numpy as np
import pytest

from musefusion.data import formats
from musefusion.errors import DataFormatError, MissingDataError
from musefusion.evaluation.metrics import ccc, ccc_concatenated, ccc_per_sequence_mean
from musefusion.evaluation.scoring import hidden_label_path, join_by_timestamp, score_predictions
from musefusion.rundir import RunDir
from musefusion.types import Partition, Task


def test_join_pairs_equal_timestamps_and_skips_unlabelled_steps():
    pred = (np.array([0, 500, 1000, 1500, 2000]), np.array([0.0, 1.0, 2.0, 3.0, 4.0]))
    label = (np.array([500, 1000, 1500, 2500]), np.array([10.0, np.nan, 30.0, np.nan]))
    p, y = join_by_timestamp(pred, label, "x")
    np.testing.assert_array_equal(p, [1.0, 3.0])
    np.testing.assert_array_equal(y, [10.0, 30.0])


def test_join_refuses_labelled_steps_without_prediction():
    pred = (np.array([0, 500]), np.array([0.0, 1.0]))
    label = (np.array([0, 500, 1000, 1500]), np.array([1.0, 2.0, 3.0, 4.0]))
    with pytest.raises(DataFormatError, match="'f.csv': no prediction for 2 labelled timestamps \\(first 1000 ms\\)"):
        join_by_timestamp(pred, label, "'f.csv'")
    with pytest.raises(DataFormatError, match="no prediction for 4 labelled"):
        join_by_timestamp((np.array([], dtype=np.int64), np.array([])), label, "x")


def _labels(corpus, part_ids, target="arousal"):
    return {sid: formats.read_label_csv(corpus / "label_segments" / target / f"{sid}.csv") for sid in part_ids}


def test_scores_match_the_metrics_on_the_joined_values(tiny_corpus, tmp_path):
    corpus = tiny_corpus / "c3_muse_stress"
    rng = np.random.default_rng(0)
    (ts, y), = _labels(corpus, ["2"]).values()
    pred = y + rng.normal(0, 0.2, len(y))
    formats.write_predictions(RunDir(tmp_path).predictions("devel"), {"2": (ts, pred)})
    r = score_predictions(tmp_path / "predictions" / "devel", tiny_corpus, Task.STRESS, "arousal", Partition.DEVEL)
    p32 = pred.astype(np.float32)  # predictions are written as float32
    assert r["subjects"] == 1
    assert r["ccc"] == pytest.approx(ccc(p32, y), abs=1e-6)
    assert r["ccc_subject_mean"] == pytest.approx(r["ccc"], abs=1e-9)
    assert r["rmse"] == pytest.approx(np.sqrt(np.mean((p32 - y) ** 2)), abs=1e-6)


def test_perfect_predictions_score_one(tiny_corpus, tmp_path):
    corpus = tiny_corpus / "c3_muse_stress"
    formats.write_predictions(RunDir(tmp_path).predictions("train"), _labels(corpus, ["1"]))
    r = score_predictions(tmp_path / "predictions" / "train", tiny_corpus, Task.STRESS, "arousal", Partition.TRAIN)
    assert r["ccc"] == pytest.approx(1.0, abs=1e-6)
    assert r["pcc"] == pytest.approx(1.0, abs=1e-6)
    assert r["rmse"] == pytest.approx(0.0, abs=1e-6)


def test_several_subjects_give_concatenated_and_subject_mean(synth_stress, tmp_path):
    corpus = synth_stress / "c3_muse_stress"
    part = formats.read_partition(corpus / "metadata" / "partition.csv")
    ids = [s for s, p in part.items() if p == Partition.DEVEL]
    labels = _labels(corpus, ids)
    rng = np.random.default_rng(1)
    preds = {sid: (ts, 0.5 * y + rng.normal(0, 0.3, len(y)) + k) for k, (sid, (ts, y)) in enumerate(labels.items())}
    formats.write_predictions(RunDir(tmp_path).predictions("devel"), preds)
    r = score_predictions(tmp_path / "predictions" / "devel", synth_stress, Task.STRESS, "arousal", Partition.DEVEL)
    ps = [preds[s][1].astype(np.float32) for s in ids]
    ys = [labels[s][1] for s in ids]
    assert r["subjects"] == len(ids) == 3
    assert r["ccc"] == pytest.approx(ccc_concatenated(ps, ys), abs=1e-6)
    assert r["ccc_subject_mean"] == pytest.approx(ccc_per_sequence_mean(ps, ys), abs=1e-6)
    assert r["ccc"] != pytest.approx(r["ccc_subject_mean"], abs=1e-3)


def test_test_partition_needs_the_withheld_labels(synth_stress, tmp_path):
    corpus = synth_stress / "c3_muse_stress"
    part = formats.read_partition(corpus / "metadata" / "partition.csv")
    ids = [s for s, p in part.items() if p == Partition.TEST]
    hidden = synth_stress / "test_labels"
    truth = {s: formats.read_label_csv(hidden_label_path(hidden, corpus.name, "arousal", s)) for s in ids}
    formats.write_predictions(RunDir(tmp_path).predictions("test"), truth)
    pred_dir = tmp_path / "predictions" / "test"
    with pytest.raises(MissingDataError, match="pass --test-labels DIR"):
        score_predictions(pred_dir, synth_stress, Task.STRESS, "arousal", Partition.TEST)
    r = score_predictions(pred_dir, synth_stress, Task.STRESS, "arousal", Partition.TEST, hidden)
    assert r["ccc"] == pytest.approx(1.0, abs=1e-6) and r["subjects"] == 3


@pytest.mark.parametrize("layout", ["{corpus}/label_segments/{t}/{s}.csv", "label_segments/{t}/{s}.csv",
                                    "{t}/{s}.csv", "{s}.csv"])
def test_hidden_label_layouts(tmp_path, layout):
    path = tmp_path / layout.format(corpus="c3_muse_stress", t="arousal", s="7")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("timestamp,value,segment_id\n0,0.5,1\n")
    assert hidden_label_path(tmp_path, "c3_muse_stress", "arousal", "7") == path
    with pytest.raises(MissingDataError, match="No test label for subject '8'"):
        hidden_label_path(tmp_path, "c3_muse_stress", "arousal", "8")


def test_missing_predictions_are_refused(tiny_corpus, tmp_path):
    with pytest.raises(MissingDataError, match="No prediction CSVs"):
        score_predictions(tmp_path / "nothing", tiny_corpus, Task.STRESS, "arousal", Partition.DEVEL)
    formats.write_predictions(RunDir(tmp_path).predictions("devel"), {"99": (np.array([0]), np.array([0.0]))})
    with pytest.raises(MissingDataError, match="has no predictions for 1 devel subject\\(s\\), e.g. 2.csv"):
        score_predictions(tmp_path / "predictions" / "devel", tiny_corpus, Task.STRESS, "arousal", Partition.DEVEL)


def test_short_predictions_are_refused(tiny_corpus, tmp_path):
    corpus = tiny_corpus / "c3_muse_stress"
    ts, y = _labels(corpus, ["2"])["2"]
    formats.write_predictions(RunDir(tmp_path).predictions("devel"), {"2": (ts[:-3], y[:-3])})
    with pytest.raises(DataFormatError, match="2.csv'?: no prediction for 3 labelled timestamps"):
        score_predictions(tmp_path / "predictions" / "devel", tiny_corpus, Task.STRESS, "arousal", Partition.DEVEL)
