"""Reading the MuSe layout: alignment by timestamp, masks, train-only normalisation, cache."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import musefusion.data.corpus as corpus_mod
from musefusion import DataConfig, load_corpus
from musefusion.config import ConfigError
from musefusion.data.corpus import CorpusData
from musefusion.data.grid import align_to_grid
from musefusion.errors import MissingDataError, MuseFusionError
from musefusion.types import FillPolicy, Partition, Task
from tests.corpus_faults import FAULTS, Fault, feature_file, label_file, partition_file

# ----------------------------------------------------------------------------------------------- helpers


def corpus_of(root: Path, task: Task = Task.STRESS) -> Path:
    return root / task.corpus_dirs[0]


def read_raw(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A MuSe CSV read with pandas, independently of musefusion.data.formats: (timestamps, values without ts/segment_id)."""
    df = pd.read_csv(path)
    return df["timestamp"].to_numpy(np.int64), df.drop(columns=["timestamp", "segment_id"]).to_numpy(np.float64)


def write_raw(path: Path, ts: np.ndarray, values: np.ndarray, prefix: str = "feat_a") -> None:
    """Write a feature file with pandas (full float64 precision)."""
    df = pd.DataFrame(values, columns=[f"{prefix}_{j}" for j in range(values.shape[1])])
    df.insert(0, "segment_id", 1)
    df.insert(0, "timestamp", ts)
    df.to_csv(path, index=False)


def seq_of(data: CorpusData, sid: str):
    return next(s for part in Partition for s in data.partition(part) if s.id == sid)


def load_raw(root: Path, **options) -> CorpusData:
    """feat_a only, not normalised, no cache: x holds the raw aligned feature values."""
    options = {"features": ("feat_a",), "normalize": False, "cache": False, **options}
    return load_corpus(DataConfig(root=root, **options))


def assert_same_data(a: CorpusData, b: CorpusData) -> None:
    assert a.feature_dims == b.feature_dims
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.std, b.std)
    for part in Partition:
        assert [s.id for s in a.partition(part)] == [s.id for s in b.partition(part)]
        for sa, sb in zip(a.partition(part), b.partition(part), strict=True):
            assert sa.partition == sb.partition
            for field in ("timestamps", "x", "y", "observed"):
                va, vb = getattr(sa, field), getattr(sb, field)
                assert va.dtype == vb.dtype, field
                np.testing.assert_array_equal(va, vb, err_msg=f"{sa.id}.{field}")
    pd.testing.assert_frame_equal(a.fill_report.reset_index(drop=True), b.fill_report.reset_index(drop=True),
                                  check_dtype=False)


def cache_files() -> list[Path]:
    return sorted(Path(os.environ["MUSEFUSION_CACHE"]).glob("corpus-*.npz"))


# ----------------------------------------------------------------------------------------------- reading


def test_reads_synthetic_corpus(synth_stress):
    data = load_corpus(DataConfig(root=synth_stress, features=("egemaps", "bio"), target="valence"))
    assert data.feature_dims == {"egemaps": 88, "ECG": 1, "resp": 1, "BPM": 1}
    assert data.d_in == 91
    assert [len(data.partition(p)) for p in Partition] == [8, 3, 3]
    for seq in data.partition("train"):
        assert seq.x.shape == (len(seq), 91)
        assert np.isfinite(seq.x).all()
        assert not np.isnan(seq.y).any()
        assert np.all(np.diff(seq.timestamps) == 500)
    assert all(np.isnan(s.y).all() for s in data.partition("test"))


@pytest.mark.parametrize(("task", "target", "features", "dims", "split"), [
    (Task.STRESS, "arousal", ("egemaps", "vggface"), {"egemaps": 88, "vggface": 512}, (8, 3, 3)),
    (Task.STRESS, "valence", ("vggface", "BPM"), {"vggface": 512, "BPM": 1}, (8, 3, 3)),
    (Task.PHYSIO, "anno12_EDA", ("vggish", "bio"), {"vggish": 128, "ECG": 1, "resp": 1, "BPM": 1}, (6, 2, 2)),
])
def test_sequences_follow_the_label_files(request, task, target, features, dims, split):
    root = request.getfixturevalue("synth_stress" if task == Task.STRESS else "synth_physio")
    data = load_corpus(DataConfig(root=root, task=task, target=target, features=features))
    corpus = corpus_of(root, task)
    parts = pd.read_csv(partition_file(corpus), dtype=str)
    assert data.corpus_dir == corpus
    assert data.feature_dims == dims
    assert data.d_in == sum(dims.values())
    assert tuple(len(data.partition(p)) for p in Partition) == split
    for part in Partition:
        assert sorted(s.id for s in data.partition(part)) == sorted(parts.loc[parts["Proposal"] == part.value, "Id"])
    for seq in (s for p in Partition for s in data.partition(p)):
        ts, values = read_raw(label_file(corpus, seq.id, target))
        np.testing.assert_array_equal(seq.timestamps, ts)
        assert seq.x.shape == (len(ts), data.d_in) and seq.x.dtype == np.float32
        assert seq.observed.shape == (len(ts), len(dims))  # one column per feature folder (bio = 3)
        assert np.isfinite(seq.x).all()
        if seq.partition == Partition.TEST:
            assert np.isnan(seq.y).all()
        else:
            np.testing.assert_array_equal(seq.y, values[:, 0].astype(np.float32))
    assert [s.id for s in data.fit_sequences()] == [s.id for s in data.partition("train")]


def test_test_label_values_are_never_read(tiny_corpus):
    """Real values in a test label file change neither the test y, the statistics, nor the cache key."""
    cfg = DataConfig(root=tiny_corpus, features=("feat_a", "feat_b"))
    before = load_corpus(cfg)
    path = label_file(corpus_of(tiny_corpus), "3")
    ts, _ = read_raw(path)
    pd.DataFrame({"timestamp": ts, "segment_id": 1, "value": np.linspace(-1, 1, len(ts))}).to_csv(path, index=False)
    after = load_corpus(cfg)
    assert np.isnan(after.partition("test")[0].y).all()
    assert np.isnan(load_corpus(cfg.replace(cache=False)).partition("test")[0].y).all()
    assert_same_data(before, after)
    assert len(cache_files()) == 1


def test_test_subject_without_label_file_uses_its_feature_grid(tiny_corpus):
    corpus = corpus_of(tiny_corpus)
    label_file(corpus, "3").unlink()
    ts, values = read_raw(feature_file(corpus, "3"))
    write_raw(feature_file(corpus, "3"), ts[1:] + 500, values[1:])  # features span 1000 .. 20000 ms
    seq = load_raw(tiny_corpus).partition("test")[0]
    np.testing.assert_array_equal(seq.timestamps, np.arange(1000, 20001, 500))
    np.testing.assert_array_equal(seq.x, values[1:].astype(np.float32))
    assert np.isnan(seq.y).all()


# ----------------------------------------------------------------------------------------------- timestamp join


def test_feature_file_starting_at_500_ms(tiny_corpus):
    path = feature_file(corpus_of(tiny_corpus), "1")
    ts, values = read_raw(path)
    write_raw(path, ts[1:], values[1:])
    seq = seq_of(load_raw(tiny_corpus), "1")
    assert len(seq) == 40 and seq.timestamps[0] == 0
    np.testing.assert_array_equal(seq.observed[:, 0], np.arange(40) >= 1)
    np.testing.assert_array_equal(seq.x[1:], values[1:].astype(np.float32))
    np.testing.assert_array_equal(seq.x[0], 0.0)


def test_feature_file_ending_before_the_labels(tiny_corpus):
    path = feature_file(corpus_of(tiny_corpus), "1")
    ts, values = read_raw(path)
    write_raw(path, ts[:-3], values[:-3])
    seq = seq_of(load_raw(tiny_corpus, fill="ffill"), "1")
    assert len(seq) == 40
    np.testing.assert_array_equal(seq.observed[:, 0], np.arange(40) < 37)
    np.testing.assert_array_equal(seq.x[:37], values[:37].astype(np.float32))
    np.testing.assert_array_equal(seq.x[37:], np.repeat(values[36:37].astype(np.float32), 3, axis=0))


def test_feature_rows_after_the_label_end_are_ignored(tiny_corpus):
    path = feature_file(corpus_of(tiny_corpus), "1")
    ts, values = read_raw(path)
    extra_ts = ts[-1] + 500 * np.arange(1, 7)
    write_raw(path, np.concatenate([ts, extra_ts]), np.vstack([values, np.full((6, 4), 1e4)]))
    seq = seq_of(load_raw(tiny_corpus), "1")
    np.testing.assert_array_equal(seq.timestamps, ts)
    np.testing.assert_array_equal(seq.x, values.astype(np.float32))
    assert seq.observed.all()
    normed = load_corpus(DataConfig(root=tiny_corpus, features=("feat_a",), cache=False))
    np.testing.assert_allclose(normed.mean, values.mean(axis=0), rtol=1e-6)  # the 1e4 rows do not count


def test_feature_rows_at_a_higher_rate_are_averaged_per_step(tiny_corpus):
    path = feature_file(corpus_of(tiny_corpus), "1")
    rng = np.random.default_rng(3)
    ts = np.arange(80) * 250  # 4 Hz: 0, 250, ..., 19750 ms
    values = rng.normal(size=(80, 4))
    write_raw(path, ts, values)
    seq = seq_of(load_raw(tiny_corpus), "1")
    assert seq.observed.all()
    # step t averages the rows in [t - 250, t + 250): the rows at t - 250 and t (only t=0 for the first step)
    np.testing.assert_allclose(seq.x[0], values[0], rtol=1e-6)
    expected = (values[1:-1:2] + values[2::2]) / 2
    np.testing.assert_allclose(seq.x[1:], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("offset_ms", [-250, -120, 40, 249])
def test_off_grid_timestamps_join_the_nearest_step(tiny_corpus, offset_ms):
    path = feature_file(corpus_of(tiny_corpus), "1")
    ts, values = read_raw(path)
    write_raw(path, ts[1:] + offset_ms, values[1:])
    seq = seq_of(load_raw(tiny_corpus), "1")
    np.testing.assert_array_equal(seq.observed[:, 0], np.arange(40) >= 1)
    np.testing.assert_array_equal(seq.x[1:], values[1:].astype(np.float32))


def test_align_to_grid_bins_and_boundaries():
    grid = np.array([0, 500, 1000, 1500])
    ts = np.array([0, 250, 400, 749, 750, 1600, 5000])
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 100.0])[:, None]
    aligned, observed = align_to_grid(grid, ts, values)
    assert aligned.shape == (4, 1) and aligned.dtype == np.float32
    assert aligned[:, 0].tolist() == [1.0, 3.0, 5.0, 6.0]  # 500 ms: mean of the rows at 250, 400, 749
    assert observed.tolist() == [True, True, True, True]


def test_align_to_grid_treats_rows_with_nan_as_missing():
    grid = np.array([0, 500, 1000, 1500])
    ts = np.array([0, 500, 900, 1000])
    values = np.array([[1.0, 2.0], [np.nan, 3.0], [np.nan, np.nan], [4.0, 6.0]])
    aligned, observed = align_to_grid(grid, ts, values)
    assert observed.tolist() == [True, False, True, False]
    np.testing.assert_array_equal(aligned[[0, 2]], [[1.0, 2.0], [4.0, 6.0]])  # the NaN row at 900 is not averaged
    assert np.isnan(aligned[[1, 3]]).all()
    aligned, observed = align_to_grid(grid, np.array([], dtype=np.int64), np.empty((0, 2)))
    assert not observed.any() and np.isnan(aligned).all()


def test_align_to_grid_matches_a_brute_force_reference():
    rng = np.random.default_rng(0)
    grid = np.arange(2, 60) * 500
    ts = np.sort(rng.choice(np.arange(-400, 31_000, 50), size=300, replace=False))
    values = rng.normal(size=(300, 3))
    values[rng.random(300) < 0.1, rng.integers(0, 3)] = np.nan
    aligned, observed = align_to_grid(grid, ts, values)
    for k, t in enumerate(grid):
        rows = values[(ts >= t - 250) & (ts < t + 250)]
        rows = rows[~np.isnan(rows).any(axis=1)]
        assert observed[k] == (len(rows) > 0)
        if len(rows):
            np.testing.assert_allclose(aligned[k], rows.mean(axis=0), rtol=1e-5, atol=1e-6)
        else:
            assert np.isnan(aligned[k]).all()
    assert observed.any() and not observed.all()


# ----------------------------------------------------------------------------------------------- missing rows


@pytest.mark.parametrize("fill", list(FillPolicy))
def test_missing_rows_are_masked_filled_and_reported(tiny_corpus, fill):
    corpus = corpus_of(tiny_corpus)
    ts_a, raw_a = read_raw(feature_file(corpus, "1", "feat_a"))
    keep = (np.arange(40) < 10) | (np.arange(40) > 14)  # train subject: no face at steps 10..14
    write_raw(feature_file(corpus, "1", "feat_a"), ts_a[keep], raw_a[keep])
    ts_b, raw_b = read_raw(feature_file(corpus, "2", "feat_b"))
    write_raw(feature_file(corpus, "2", "feat_b"), ts_b[2:], raw_b[2:], prefix="feat_b")  # devel: leading gap
    data = load_corpus(DataConfig(root=tiny_corpus, features=("feat_a", "feat_b"), fill=fill, cache=False))

    s1, s2, s3 = seq_of(data, "1"), seq_of(data, "2"), seq_of(data, "3")
    np.testing.assert_array_equal(s1.observed[:, 0], keep)
    assert s1.observed[:, 1].all()
    np.testing.assert_array_equal(s2.observed[:, 1], np.arange(40) >= 2)
    assert s2.observed[:, 0].all() and s3.observed.all()
    # train statistics come from the rows that exist
    np.testing.assert_allclose(data.mean[:4], raw_a[keep].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(data.std[:4], raw_a[keep].std(axis=0), rtol=1e-5)
    expected_a = ((raw_a - data.mean[:4]) / data.std[:4]).astype(np.float32)
    np.testing.assert_allclose(s1.x[keep, :4], expected_a[keep], rtol=1e-5, atol=1e-6)
    if fill == FillPolicy.ZERO:
        np.testing.assert_array_equal(s1.x[10:15, :4], 0.0)  # the train mean after normalisation
        np.testing.assert_array_equal(s2.x[:2, 4:], 0.0)
    else:
        np.testing.assert_array_equal(s1.x[10:15, :4], np.repeat(s1.x[9:10, :4], 5, axis=0))
        np.testing.assert_array_equal(s2.x[:2, 4:], np.repeat(s2.x[2:3, 4:], 2, axis=0))  # first observed row
    assert np.isfinite(s1.x).all() and np.isfinite(s2.x).all()

    report = data.fill_report.set_index(["id", "feature"])
    assert report.loc[("1", "feat_a"), "n_filled"] == 5
    assert report.loc[("2", "feat_b"), "n_filled"] == 2
    assert report["n_filled"].sum() == 7
    assert (report["n_steps"] == 40).all() and len(report) == 6


def test_a_row_with_an_empty_cell_counts_as_missing(tiny_corpus):
    path = feature_file(corpus_of(tiny_corpus), "1")
    df = pd.read_csv(path)
    df.loc[7, "feat_a_2"] = np.nan
    df.to_csv(path, index=False)
    data = load_raw(tiny_corpus)
    np.testing.assert_array_equal(seq_of(data, "1").observed[:, 0], np.arange(40) != 7)
    assert data.fill_report["n_filled"].sum() == 1


def test_missing_face_rows_of_the_synthetic_corpus(synth_stress):
    data = load_corpus(DataConfig(root=synth_stress, features=("vggface", "egemaps")))
    corpus = corpus_of(synth_stress)
    report = data.fill_report.set_index(["id", "feature"])
    total_missing = 0
    for seq in (s for p in Partition for s in data.partition(p)):
        for k, name in enumerate(("vggface", "egemaps")):
            ts, _ = read_raw(feature_file(corpus, seq.id, name))
            expected = np.isin(seq.timestamps, ts)
            np.testing.assert_array_equal(seq.observed[:, k], expected, err_msg=f"{seq.id}/{name}")
            assert report.loc[(seq.id, name), "n_filled"] == (~expected).sum()
        total_missing += int((~seq.observed[:, 0]).sum())
        np.testing.assert_array_equal(seq.x[~seq.observed[:, 0], :512], 0.0)
    assert total_missing > 10  # faces are missing in runs, not only at the file edges


# ----------------------------------------------------------------------------------------------- normalisation


def test_train_only_normalisation(synth_stress):
    data = load_corpus(DataConfig(root=synth_stress, features=("bio",)))
    for k in range(3):  # ECG, RESP, BPM: one column each; statistics over the steps that had a real row
        train = np.concatenate([s.x[s.observed[:, k], k] for s in data.partition("train")])
        assert abs(train.mean()) < 1e-4
        assert abs(train.std() - 1.0) < 1e-3
    devel = np.concatenate([s.x for s in data.partition("devel")])
    assert np.abs(devel.mean(axis=0)).max() > 1e-3  # devel statistics were not used


def test_statistics_equal_numpy_over_the_raw_train_rows(tiny_corpus):
    corpus = corpus_of(tiny_corpus)
    data = load_corpus(DataConfig(root=tiny_corpus, features=("feat_b", "feat_a"), cache=False))
    raw = np.hstack([read_raw(feature_file(corpus, "1", f))[1] for f in ("feat_b", "feat_a")])
    np.testing.assert_allclose(data.mean, raw.mean(axis=0), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(data.std, raw.std(axis=0), rtol=1e-5)  # population std (ddof=0)
    np.testing.assert_allclose(seq_of(data, "1").x, (raw - raw.mean(axis=0)) / raw.std(axis=0), rtol=1e-4,
                               atol=1e-5)


def test_statistics_on_the_synthetic_corpus_skip_rows_outside_the_label_grid(synth_stress):
    corpus = corpus_of(synth_stress)
    data = load_corpus(DataConfig(root=synth_stress, features=("egemaps",)))
    rows, n_beyond = [], 0
    for seq in data.partition("train"):
        label_ts, _ = read_raw(label_file(corpus, seq.id))
        ts, values = read_raw(feature_file(corpus, seq.id, "egemaps"))
        inside = np.isin(ts, label_ts)
        n_beyond += int((ts > label_ts[-1]).sum())
        rows.append(values[inside])
    raw = np.concatenate(rows)
    assert n_beyond > 0  # some synthetic files run past their labels
    np.testing.assert_allclose(data.mean, raw.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(data.std, raw.std(axis=0), rtol=1e-5)


def test_devel_and_test_features_do_not_change_the_statistics(tiny_corpus):
    corpus = corpus_of(tiny_corpus)
    cfg = DataConfig(root=tiny_corpus, features=("feat_a", "feat_b"))
    before = load_corpus(cfg)
    for sid in ("2", "3"):
        for feat in ("feat_a", "feat_b"):
            ts, values = read_raw(feature_file(corpus, sid, feat))
            write_raw(feature_file(corpus, sid, feat), ts, values * 1000 + 5000, prefix=feat)
    after = load_corpus(cfg)
    np.testing.assert_array_equal(after.mean, before.mean)
    np.testing.assert_array_equal(after.std, before.std)
    np.testing.assert_array_equal(seq_of(after, "1").x, seq_of(before, "1").x)
    assert np.abs(seq_of(after, "2").x - seq_of(before, "2").x).min() > 100


def test_fitting_on_train_and_devel_uses_both_for_the_statistics(tiny_corpus):
    corpus = corpus_of(tiny_corpus)
    cfg = DataConfig(root=tiny_corpus, features=("feat_a",), cache=False)
    train_only = load_corpus(cfg)
    both = load_corpus(cfg.replace(train_partitions=("train", "devel")))
    raw = np.vstack([read_raw(feature_file(corpus, sid))[1] for sid in ("1", "2")])
    np.testing.assert_allclose(both.mean, raw.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(both.std, raw.std(axis=0), rtol=1e-5)
    assert not np.allclose(both.mean, train_only.mean)
    assert [s.id for s in both.fit_sequences()] == ["1", "2"]
    assert [s.id for s in train_only.fit_sequences()] == ["1"]


def test_a_constant_train_column_gets_unit_std(tiny_corpus):
    path = feature_file(corpus_of(tiny_corpus), "1")
    ts, values = read_raw(path)
    values[:, 0] = 3.0
    write_raw(path, ts, values)
    data = load_corpus(DataConfig(root=tiny_corpus, features=("feat_a",), cache=False))
    assert data.mean[0] == pytest.approx(3.0) and data.std[0] == 1.0
    np.testing.assert_array_equal(seq_of(data, "1").x[:, 0], 0.0)


# ----------------------------------------------------------------------------------------------- cache


def test_second_load_hits_the_cache(tiny_corpus, monkeypatch):
    cfg = DataConfig(root=tiny_corpus, features=("feat_a", "feat_b"))
    first = load_corpus(cfg)
    files = cache_files()
    assert len(files) == 1 and files[0].stat().st_size > 0

    def no_recompute(*args, **kwargs):
        raise AssertionError("features were aligned again despite a warm cache")

    monkeypatch.setattr(corpus_mod, "align_to_grid", no_recompute)
    second = load_corpus(cfg)
    assert_same_data(first, second)
    assert cache_files() == files
    with pytest.raises(AssertionError, match="aligned again"):
        load_corpus(cfg.replace(cache=False))


def test_no_cache_file_without_cache(tiny_corpus):
    load_corpus(DataConfig(root=tiny_corpus, features=("feat_a",), cache=False))
    assert cache_files() == []


def test_cache_dir_option_overrides_the_environment(tiny_corpus, tmp_path):
    load_corpus(DataConfig(root=tiny_corpus, features=("feat_a",), cache_dir=tmp_path / "my_cache"))
    assert len(list((tmp_path / "my_cache").glob("corpus-*.npz"))) == 1
    assert cache_files() == []


def _change_one_digit(corpus: Path) -> None:
    path = feature_file(corpus, "1")
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    head, sep, tail = lines[5].rpartition(",")  # last column of data row 5; same size, one byte changed
    digit = next(i for i, ch in enumerate(tail) if ch in "123456789")
    tail = tail[:digit] + ("1" if tail[digit] != "1" else "2") + tail[digit + 1:]
    lines[5] = head + sep + tail
    new = "".join(lines)
    assert len(new) == len(text) and new != text
    path.write_text(new)


def _change_train_label(corpus: Path) -> None:
    path = label_file(corpus, "1")
    df = pd.read_csv(path)
    df.loc[3, "value"] += 0.5
    df.to_csv(path, index=False)


def _move_devel_to_train(corpus: Path) -> None:
    path = partition_file(corpus)
    path.write_text(path.read_text().replace("2,devel", "2,train"))


@pytest.mark.parametrize("edit", [_change_one_digit, _change_train_label, _move_devel_to_train])
def test_an_edited_file_is_never_served_from_a_stale_cache(tiny_corpus, edit):
    cfg = DataConfig(root=tiny_corpus, features=("feat_a", "feat_b"))
    before = load_corpus(cfg)
    edit(corpus_of(tiny_corpus))
    after = load_corpus(cfg)
    assert len(cache_files()) == 2
    assert_same_data(after, load_corpus(cfg.replace(cache=False)))
    with pytest.raises(AssertionError):
        assert_same_data(after, before)


@pytest.mark.parametrize("change", [
    {"fill": "ffill"}, {"normalize": False}, {"target": "valence"}, {"features": ("feat_b", "feat_a")},
    {"train_partitions": ("train", "devel")},
], ids=lambda c: "+".join(c))
def test_a_changed_option_gets_its_own_cache_entry(tiny_corpus, change):
    path = feature_file(corpus_of(tiny_corpus), "1")
    ts, values = read_raw(path)
    write_raw(path, np.delete(ts, [4, 5]), np.delete(values, [4, 5], axis=0))  # so that fill matters
    cfg = DataConfig(root=tiny_corpus, features=("feat_a", "feat_b"))
    load_corpus(cfg)
    changed = cfg.replace(**change)
    data = load_corpus(changed)
    assert len(cache_files()) == 2
    assert_same_data(data, load_corpus(changed.replace(cache=False)))
    assert_same_data(load_corpus(changed), data)  # and it is a hit now
    assert len(cache_files()) == 2


def test_window_options_share_the_cache_entry(tiny_corpus):
    cfg = DataConfig(root=tiny_corpus, features=("feat_a", "feat_b"))
    first = load_corpus(cfg)
    second = load_corpus(cfg.replace(win_len=10, hop_len=5))  # windowing happens after loading
    assert len(cache_files()) == 1
    assert_same_data(first, second)


# ----------------------------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_bad_input_gives_a_one_line_error_naming_the_file(tiny_corpus, fault: Fault):
    named = fault.mutate(corpus_of(tiny_corpus))
    cfg = DataConfig(root=tiny_corpus, **{"features": ("feat_a", "feat_b"), **fault.options})
    with pytest.raises(fault.error, match=fault.match) as info:
        load_corpus(cfg)
    message = str(info.value)
    assert isinstance(info.value, MuseFusionError)
    assert f"'{named}'" in message
    assert "\n" not in message


def test_missing_root_names_the_root(tmp_path):
    root = tmp_path / "no_such_root"
    with pytest.raises(MissingDataError, match=r"Data root '.*no_such_root' not found.*--data") as info:
        load_corpus(DataConfig(root=root))
    assert "\n" not in str(info.value)


def test_root_may_be_the_corpus_folder_itself(tiny_corpus):
    a = load_raw(tiny_corpus)
    b = load_raw(corpus_of(tiny_corpus))
    assert b.corpus_dir == corpus_of(tiny_corpus)
    assert_same_data(a, b)


# ----------------------------------------------------------------------------------------------- DataConfig


def test_data_config_round_trips_through_a_dict(tmp_path):
    cfg = DataConfig(root=tmp_path / "data", task="physio", target="anno12_EDA", features=("vggish+bio",),
                     win_len=120, hop_len=30, fill="ffill", normalize=False, train_partitions=("train", "devel"),
                     cache=False, cache_dir=tmp_path / "cache")
    assert cfg.features == ("vggish", "ECG", "resp", "BPM")
    assert cfg.task == Task.PHYSIO and cfg.fill == FillPolicy.FFILL
    d = cfg.to_dict()
    assert d["task"] == "physio" and d["fill"] == "ffill" and d["features"] == ["vggish", "ECG", "resp", "BPM"]
    assert DataConfig.from_dict(d) == cfg
    default = DataConfig(root=tmp_path)
    assert "cache_dir" not in default.to_dict()
    assert DataConfig.from_dict(default.to_dict()) == default


def test_data_config_round_trips_through_toml(tmp_path):
    from musefusion import fsutil

    cfg = DataConfig(root=tmp_path, features=("egemaps", "vggface"), fill="ffill", cache_dir=tmp_path / "c")
    fsutil.write_toml(tmp_path / "config.toml", cfg.to_dict())
    assert DataConfig.from_dict(fsutil.read_toml(tmp_path / "config.toml")) == cfg


@pytest.mark.parametrize(("fields", "match"), [
    ({"task": "emotion"}, r"DataConfig\.task: 'emotion' is not one of stress, physio"),
    ({"fill": "mean"}, r"DataConfig\.fill: 'mean' is not one of zero, ffill"),
    ({"features": ()}, r"DataConfig\.features"),
    ({"features": ("+",)}, r"DataConfig\.features"),
    ({"train_partitions": ("train", "test")}, r"DataConfig\.train_partitions: \['test'\]"),
    ({"train_partitions": ()}, r"DataConfig\.train_partitions"),
    ({"win_len": 0}, r"DataConfig\.win_len: 0 must be between 1 and 100000"),
    ({"hop_len": 0}, r"DataConfig\.hop_len: 0"),
    ({"win_len": 10, "hop_len": 11}, r"DataConfig\.hop_len: 11 must be between 1 and win_len=10"),
    ({"target": ""}, r"DataConfig\.target"),
])
def test_invalid_data_config_names_the_field(tmp_path, fields, match):
    with pytest.raises(ConfigError, match=match):
        DataConfig(root=tmp_path, **fields)
    with pytest.raises(ConfigError, match=match):
        DataConfig.from_dict({"root": str(tmp_path), **fields})


def test_unknown_data_config_key_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match=r"Unknown key 'window' in \[data\]; did you mean 'win_len'"):
        DataConfig.from_dict({"root": str(tmp_path), "window": 3})


def test_data_config_is_frozen(tmp_path):
    cfg = DataConfig(root=tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.win_len = 3  # type: ignore[misc]
    with pytest.raises(ConfigError, match="win_len"):
        cfg.replace(win_len=-1)


def test_a_field_added_at_its_default_keeps_the_corpus_digest(tiny_corpus):
    # a run records this digest: a new DataConfig field must not turn every earlier run into "another configuration"
    @dataclasses.dataclass(frozen=True)
    class Later(DataConfig):
        smoothing: int = 0

    base = DataConfig(root=tiny_corpus, features=("feat_a",))
    later = Later(root=tiny_corpus, features=("feat_a",))
    assert corpus_mod.corpus_digest(later) == corpus_mod.corpus_digest(base)
    assert corpus_mod.corpus_digest(dataclasses.replace(later, smoothing=2)) != corpus_mod.corpus_digest(base)
    # a field the key always hashed still counts; the label delay moves labels after loading: one cache entry
    assert corpus_mod.corpus_digest(base.replace(normalize=False)) != corpus_mod.corpus_digest(base)
    assert corpus_mod.corpus_digest(base.replace(label_delay=3)) == corpus_mod.corpus_digest(base)
