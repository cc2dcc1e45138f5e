"""A hand-made MuSe 2023 personalisation corpus for tests (general subjects and chunked test subjects)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import musefusion as mf
from musefusion.data import formats
from musefusion.types import Partition, Task

CORPUS = Task.PERSONALISATION.corpus_dirs[0]


def write_personal_corpus(root: Path, n_general: int = 4, subjects: tuple[str, ...] = ("p1", "p2"), seed: int = 0,
                          steps: int = 160) -> Path:
    """A hand-made MuSe 2023 corpus that a GRU learns quickly: features are the latent state plus a little noise,
    labels ``tanh`` of it; general subjects ``g<i>`` (train), personalisation subjects with ``_train`` (first 40 %),
    ``_devel`` and ``_test`` chunks (test values empty)."""
    rng = np.random.default_rng(seed)
    corpus = root / CORPUS
    partition: dict[str, Partition] = {}
    recordings = [(f"g{i}", {f"g{i}": (Partition.TRAIN, slice(0, steps))}) for i in range(n_general)]
    cut, third = int(steps * 0.4), int(steps * 0.7)
    recordings += [(s, {f"{s}_train": (Partition.TRAIN, slice(0, cut)), f"{s}_devel": (Partition.DEVEL, slice(cut, third)),
                        f"{s}_test": (Partition.TEST, slice(third, steps))}) for s in subjects]
    for _, chunks in recordings:
        latent = np.cumsum(rng.normal(0, 0.15, steps))
        latent = (latent - latent.mean()) / (latent.std() + 1e-6) * 0.6
        x = latent[:, None] + rng.normal(0, 0.1, (steps, 4))
        ts = np.arange(steps, dtype=np.int64) * 500
        for cid, (part, sl) in chunks.items():
            partition[cid] = part
            formats.write_sequence_csv(corpus / "feature_segments" / "feat" / f"{cid}.csv", ts[sl], x[sl],
                                       columns=[f"f{j}" for j in range(4)], meta_column="subject_id")
            for target in Task.PERSONALISATION.default_targets:
                y = np.tanh(latent[sl]) if target == "valence" else np.tanh(-latent[sl])
                shown = np.full(len(y), np.nan) if part == Partition.TEST else y
                formats.write_sequence_csv(corpus / "label_segments" / target / f"{cid}.csv", ts[sl], shown,
                                           meta_column="subject_id")
                if part == Partition.TEST:
                    formats.write_sequence_csv(root / "test_labels" / CORPUS / "label_segments" / target /
                                               f"{cid}.csv", ts[sl], y, meta_column="subject_id")
    formats.write_partition(corpus / "metadata" / "partition.csv", partition)
    return corpus


def train_general(root: Path, out: Path, epochs: int = 8) -> Path:
    mf.train(root, task="personalisation", target="valence", features=["feat"], model="gru", hidden=16,
             epochs=epochs, lr=0.01, win_len=40, hop_len=20, seeds=[1], out=out)
    return out
