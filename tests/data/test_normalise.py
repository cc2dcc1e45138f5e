"""Subject-level normalisation (``DataConfig.normalize = subject``): each recording z-scored with its own statistics."""

from __future__ import annotations

import numpy as np
import pytest

from musefusion.config import DataConfig, RunConfig
from musefusion.data.corpus import corpus_digest as cache_key
from musefusion.data.corpus import load_corpus, normalise_recording, subject_stats
from musefusion.errors import ConfigError
from musefusion.rundir import differences
from musefusion.types import FillPolicy, Normalise, Partition


def _observed_stats(data) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """(id, feature, mean, std) over each recording's observed steps of each feature set."""
    out = []
    offsets = np.cumsum([0, *data.feature_dims.values()])
    for part in Partition:
        for s in data.partition(part):
            for k, f in enumerate(data.feature_dims):
                cols = s.x[s.observed[:, k], offsets[k]:offsets[k + 1]].astype(np.float64)
                out.append((s.id, f, cols.mean(axis=0), cols.std(axis=0)))
    return out


def test_every_subject_has_mean_0_std_1_over_its_observed_steps(synth_stress):
    cfg = DataConfig(synth_stress, features=("egemaps", "vggface"), normalize="subject", fill=FillPolicy.FFILL)
    data = load_corpus(cfg)
    # vggface has steps without a face in this corpus: they are filled, and must not enter the statistics
    assert any((~s.observed).any() for p in Partition for s in data.partition(p))
    rows = _observed_stats(data)
    assert {sid for sid, *_ in rows} >= {s.id for s in data.partition("test")}  # test subjects too (no label read)
    for sid, f, mean, std in rows:
        assert np.abs(mean).max() < 1e-4, (sid, f)
        varying = std > 1e-3
        np.testing.assert_allclose(std[varying], 1.0, atol=1e-4, err_msg=f"{sid} {f}")


def test_train_statistics_leave_subject_offsets_that_subject_statistics_remove(synth_stress):
    """With train statistics a devel subject's column means are far from 0 (its own offset); with its own, 0."""
    train = load_corpus(DataConfig(synth_stress, features=("egemaps",)))
    subject = load_corpus(DataConfig(synth_stress, features=("egemaps",), normalize=Normalise.SUBJECT))
    offset = max(np.abs(s.x.mean(axis=0)).max() for s in train.partition("devel"))
    assert offset > 0.1
    assert max(np.abs(s.x.mean(axis=0)).max() for s in subject.partition("devel")) < 1e-4
    np.testing.assert_array_equal(train.mean, subject.mean)  # the train statistics are still saved (the prior)


def test_the_cache_tells_the_normalisations_apart(synth_stress):
    keys = {n: cache_key(DataConfig(synth_stress, normalize=n)) for n in Normalise}
    assert len(set(keys.values())) == 3
    assert cache_key(DataConfig(synth_stress, normalize=Normalise.SUBJECT, subject_prior=20)) != keys["subject"]


def test_prior_pools_the_train_statistics():
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 3.0, (200, 2))
    x[:50, 1] = np.nan  # unobserved steps of the second column are not counted
    train_mean, train_std = np.zeros(2), np.ones(2)
    own = subject_stats(x, train_mean, train_std)
    np.testing.assert_allclose(own[0], np.nanmean(x, axis=0))
    np.testing.assert_allclose(own[1], np.nanstd(x, axis=0))
    pooled = subject_stats(x, train_mean, train_std, prior=200)
    # 200 real steps and 200 pseudo-steps of N(0, 1) for column 0: the pooled moments, by hand
    m = x[:, 0].mean() / 2
    v = ((x[:, 0] ** 2).mean() + 1.0) / 2 - m ** 2
    np.testing.assert_allclose([pooled[0][0], pooled[1][0]], [m, np.sqrt(v)])
    far = subject_stats(x, train_mean, train_std, prior=10**6)
    np.testing.assert_allclose(far[0], train_mean, atol=1e-3)
    np.testing.assert_allclose(far[1], train_std, atol=2e-2)


def test_an_unobserved_or_constant_column_keeps_the_train_transform():
    x = np.column_stack([np.full(10, np.nan), np.full(10, 4.0)])
    mean, std = subject_stats(x, np.array([1.0, 2.0]), np.array([3.0, 5.0]))
    np.testing.assert_allclose(mean, [1.0, 4.0])
    np.testing.assert_allclose(std, [3.0, 5.0])


def test_a_single_recording_normalises_with_its_own_statistics():
    """What ``predict-recording`` does with a model trained with ``normalize = subject``."""
    rng = np.random.default_rng(1)
    x = rng.normal(10.0, 2.0, (60, 3))
    x[:7] = np.nan
    observed = [~np.isnan(x[:, 0])]
    cfg = DataConfig(".", normalize="subject")
    out = normalise_recording(x, observed, np.array([0, 3]), np.zeros(3), np.ones(3), cfg)
    np.testing.assert_allclose(out[7:].mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(out[7:].std(axis=0), 1.0, atol=1e-5)
    assert not np.isnan(out).any()
    train = normalise_recording(x, observed, np.array([0, 3]), np.zeros(3), np.ones(3), DataConfig("."))
    assert train[7:].mean() > 9  # the train transform (here the identity) keeps the recording's offset


def test_configs_and_runs_written_before_the_option_still_read():
    """``normalize = true`` / ``false`` (before 0.4) read as train / none, and a finished run's record compares
    equal to the same request today (so it is reused, not refused as another configuration)."""
    assert DataConfig.from_dict({"root": ".", "normalize": True}).normalize == Normalise.TRAIN
    assert DataConfig.from_dict({"root": ".", "normalize": False}).normalize == Normalise.NONE
    cfg = RunConfig(DataConfig("."))
    old = cfg.to_dict()
    old["data"] = {**old["data"], "normalize": True}
    old["data"].pop("subject_prior")
    assert differences(old, cfg.to_dict(), RunConfig.record_defaults()) == []
    subject = RunConfig(DataConfig(".", normalize="subject")).to_dict()
    assert differences(old, subject, RunConfig.record_defaults()) == ["data.normalize 'train' -> 'subject'"]


@pytest.mark.parametrize("bad", [{"normalize": "speaker"}, {"normalize": 3}, {"subject_prior": -1}])
def test_a_bad_value_names_the_field(bad):
    with pytest.raises(ConfigError, match="normalize|subject_prior"):
        DataConfig.from_dict({"root": ".", **bad})
