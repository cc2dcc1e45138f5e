"""Shared fixtures: tiny MuSe-format corpora generated in tmp folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from musefusion import io
from musefusion.data.synth import SynthConfig, synthesize
from musefusion.types import Task


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own corpus cache folder (never ~/.cache)."""
    monkeypatch.setenv("MUSEFUSION_CACHE", str(tmp_path_factory.mktemp("cache")))


def write_tiny_corpus(root: Path, n_rows: int = 40, dims: tuple[int, int] = (4, 4), seed: int = 0,
                      task: Task = Task.STRESS) -> Path:
    """3 subjects (train/devel/test), 2 feature sets (feat_a, feat_b) x 4 dims, ~40 rows at 500 ms."""
    rng = np.random.default_rng(seed)
    corpus = root / task.corpus_dirs[0]
    ids = {"1": "train", "2": "devel", "3": "test"}
    io.write_partition(corpus / "metadata" / "partition.csv", ids)
    targets = task.default_targets
    for sid, part in ids.items():
        ts = np.arange(n_rows, dtype=np.int64) * 500
        latent = np.cumsum(rng.normal(0, 0.1, n_rows))
        for t in targets:
            vals = latent if part != "test" else np.full(n_rows, np.nan)
            io.write_sequence_csv(corpus / "label_segments" / t / f"{sid}.csv", ts, vals)
        for name, d in zip(("feat_a", "feat_b"), dims, strict=True):
            x = latent[:, None] + rng.normal(0, 0.1, (n_rows, d))
            io.write_sequence_csv(corpus / "feature_segments" / name / f"{sid}.csv", ts, x,
                                  columns=[f"{name}_{j}" for j in range(d)])
    return corpus


@pytest.fixture
def tiny_corpus(tmp_path) -> Path:
    """Root folder of a hand-made 3-subject corpus (see :func:`write_tiny_corpus`)."""
    write_tiny_corpus(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def synth_stress(tmp_path_factory) -> Path:
    """Root of a small synthetic stress corpus (8/3/3 subjects, ~1.5 min each); shared, do not modify."""
    root = tmp_path_factory.mktemp("synth_stress")
    synthesize(root, SynthConfig(task=Task.STRESS, seed=1, n_train=8, n_devel=3, n_test=3, minutes=1.5,
                                 features=("egemaps", "vggface", "ECG", "RESP", "BPM")))
    return root


@pytest.fixture(scope="session")
def synth_physio(tmp_path_factory) -> Path:
    """Root of a small synthetic physio corpus (6/2/2 subjects, ~1 min each); shared, do not modify."""
    root = tmp_path_factory.mktemp("synth_physio")
    synthesize(root, SynthConfig(task=Task.PHYSIO, seed=2, n_train=6, n_devel=2, n_test=2, minutes=1.0,
                                 features=("vggish", "vggface", "ECG", "RESP", "BPM")))
    return root
