"""Label-delay compensation (``--label-delay``): on a corpus whose labels lag its features by a known d steps,
training with the delay d beats no delay and twice the delay (a search over delays recovers d), and the
predictions it writes line up with the true labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from musefusion import fsutil
from musefusion.config import DataConfig, RunConfig, TrainConfig, model_preset
from musefusion.data import formats
from musefusion.data.segment import delay_later, labels_earlier
from musefusion.fusion.postprocess import smooth
from musefusion.training.run import train_run
from musefusion.types import Task

D = 12  # the known lag, in steps (6 s)


@pytest.fixture(scope="module")
def lagged(tmp_path_factory):
    """8/3/1 subjects whose 4 feature columns follow a slow latent state at once and whose labels follow it D
    steps late (annotators reacting 6 s late); nothing else lags."""
    root = tmp_path_factory.mktemp("lagged")
    corpus = root / Task.STRESS.corpus_dirs[0]
    rng = np.random.default_rng(7)
    ids = {**{str(i): "train" for i in range(1, 9)}, "9": "devel", "10": "devel", "11": "devel", "12": "test"}
    formats.write_partition(corpus / "metadata" / "partition.csv", ids)
    for sid, part in ids.items():
        n = 400
        ts = np.arange(n, dtype=np.int64) * 500
        latent = smooth(rng.normal(size=n), 5)  # correlated over about 5 steps: a 12-step lag decorrelates it
        y = delay_later(latent, D) if part != "test" else np.full(n, np.nan)
        for t in Task.STRESS.default_targets:
            formats.write_sequence_csv(corpus / "label_segments" / t / f"{sid}.csv", ts, y)
        x = latent[:, None] + rng.normal(0, 0.1, (n, 4))
        formats.write_sequence_csv(corpus / "feature_segments" / "egemaps" / f"{sid}.csv", ts, x,
                                   columns=[f"f{j}" for j in range(4)])
    return root


def _fit(root, out, delay: int) -> float:
    cfg = RunConfig(DataConfig(root=root, features=("egemaps",), win_len=60, hop_len=20, label_delay=delay),
                    model_preset("lstm", hidden=16), TrainConfig(epochs=6, seeds=(1,), lr=5e-3))
    return train_run(cfg, out).devel_ccc


def test_the_known_delay_wins(lagged, tmp_path):
    scores = {d: _fit(lagged, tmp_path / f"d{d}", d) for d in (0, D, 2 * D)}
    assert max(scores, key=scores.get) == D, scores
    assert scores[D] > scores[0] + 0.2, scores  # measured: 0.37 (d=0), 0.81 (d=12), -0.005 (d=24)


def test_the_helpers_undo_each_other():
    y = np.arange(10, dtype=np.float32)
    assert labels_earlier(y, 3)[:7].tolist() == y[3:].tolist() and np.isnan(labels_earlier(y, 3)[7:]).all()
    assert delay_later(labels_earlier(y, 3), 3)[3:].tolist() == y[3:].tolist()


def test_the_kept_epoch_is_chosen_on_the_reported_number(lagged, tmp_path):
    """The epoch is kept on the devel CCC of the delayed predictions against the true labels, the number the run
    reports, not on the model's raw output against the shifted labels (they differ at each sequence's start)."""
    out = tmp_path / "r"
    _fit(lagged, out, D)
    m = fsutil.read_json(out / "metrics.json")
    history = pd.read_csv(out / f"seed_{m['best']['seed']}" / "history.csv")
    kept = history.loc[history["epoch"] == m["best"]["best_epoch"], "devel_ccc"].item()
    assert kept == pytest.approx(m["best"]["devel_ccc"], abs=1e-6)
    assert kept == pytest.approx(history["devel_ccc"].max(), abs=1e-12)
