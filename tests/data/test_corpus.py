"""Reading the MuSe layout: alignment by timestamp, masks, train-only normalisation, cache."""

from __future__ import annotations

import numpy as np

from musefusion import DataConfig, load_corpus
from musefusion.types import Partition


def test_reads_synthetic_corpus(synth_stress):
    data = load_corpus(DataConfig(root=synth_stress, features=("egemaps", "bio"), target="valence"))
    assert data.feature_dims == {"egemaps": 88, "ECG": 1, "RESP": 1, "BPM": 1}
    assert data.d_in == 91
    assert [len(data.partition(p)) for p in Partition] == [8, 3, 3]
    for seq in data.partition("train"):
        assert seq.x.shape == (len(seq), 91)
        assert np.isfinite(seq.x).all()
        assert not np.isnan(seq.y).any()
        assert np.all(np.diff(seq.timestamps) == 500)
    assert all(np.isnan(s.y).all() for s in data.partition("test"))


def test_train_only_normalisation(synth_stress):
    data = load_corpus(DataConfig(root=synth_stress, features=("bio",)))
    for k in range(3):  # ECG, RESP, BPM: one column each; statistics over the steps that had a real row
        train = np.concatenate([s.x[s.observed[:, k], k] for s in data.partition("train")])
        assert abs(train.mean()) < 1e-4
        assert abs(train.std() - 1.0) < 1e-3
    devel = np.concatenate([s.x for s in data.partition("devel")])
    assert np.abs(devel.mean(axis=0)).max() > 1e-3  # devel statistics were not used
