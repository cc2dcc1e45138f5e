"""The second corpus family (``synth --variant phases*``): deterministic, hidden test labels, its variants differ
where they say, and the features carry the labels as the paper's modalities do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from musefusion import DataConfig, SynthConfig, load_corpus, synthesize
from musefusion.config import ConfigError
from musefusion.data import phases
from musefusion.data.synth import Variant
from musefusion.types import Partition, Task
from tests.data.test_synth import all_files, partition_of

SMALL = SynthConfig(seed=4, n_train=2, n_devel=1, n_test=1, minutes=0.4, variant="phases",
                    features=("egemaps", "vggish", "vggface", "fau_intensity", "ECG", "resp", "BPM"))
FAMILY = [v for v in Variant if v.family == "phases"]


def test_the_family_has_at_least_three_variants_each_with_settings():
    assert len(FAMILY) >= 3
    assert {v.value for v in FAMILY} == set(phases.VARIANTS)


@pytest.mark.parametrize("task", [Task.STRESS, Task.PHYSIO])
def test_same_seed_same_bytes_other_seed_other_data(tmp_path, task):
    cfg = SMALL.replace(task=task)
    a = all_files(synthesize(tmp_path / "a", cfg).parent)
    b = all_files(synthesize(tmp_path / "b", cfg).parent)
    assert a == b
    c = all_files(synthesize(tmp_path / "c", cfg.replace(seed=5)).parent)
    features = [n for n in a if "/feature_segments/" in n]
    assert features and all(a[n] != c.get(n) for n in features)


@pytest.mark.parametrize("variant", FAMILY)
def test_test_labels_never_appear_in_the_corpus_tree(tmp_path, variant):
    corpus = synthesize(tmp_path, SMALL.replace(variant=variant, n_test=2))
    hidden = tmp_path / "test_labels" / corpus.name / "label_segments"
    parts = partition_of(corpus)
    tests = sorted(sid for sid, p in parts.items() if p == "test")
    for target in ("arousal", "valence"):
        assert sorted(p.stem for p in (hidden / target).glob("*.csv")) == tests
        for sid in tests:
            true = pd.read_csv(hidden / target / f"{sid}.csv")
            assert true["value"].notna().all() and true["value"].std() > 0 and true["value"].abs().max() <= 1
            assert pd.read_csv(corpus / "label_segments" / target / f"{sid}.csv")["value"].isna().all()
            # no column of any file under the corpus folder is a copy of the hidden curve
            for f in corpus.rglob(f"{sid}.csv"):
                hidden_curve = true[["timestamp", "value"]].rename(columns={"value": "hidden"})
                df = pd.read_csv(f).merge(hidden_curve, on="timestamp")
                for col in df.columns.drop(["timestamp", "hidden"]):
                    if df[col].notna().sum() > 10 and df[col].std() > 0:
                        assert abs(df[col].corr(df["hidden"])) < 0.99, (f, col)


def _readout(root: Path, features: tuple[str, ...], target: str) -> float:
    """Devel correlation of a linear read-out (features and their 6 s moving mean) fitted on train."""
    data = load_corpus(DataConfig(root=root, target=target, features=features, cache=False))

    def x_of(s):
        smooth = np.stack([np.convolve(c, np.ones(12) / 12, mode="same") for c in s.x.T], axis=1)
        return np.c_[s.x, smooth, np.ones(len(s.x))]
    x = np.concatenate([x_of(s) for s in data.partition(Partition.TRAIN)])
    y = np.concatenate([s.y for s in data.partition(Partition.TRAIN)])
    w = np.linalg.solve(x.T @ x + 50 * np.eye(x.shape[1]), x.T @ y)
    dev = data.partition(Partition.DEVEL)
    return float(np.corrcoef(np.concatenate([x_of(s) @ w for s in dev]), np.concatenate([s.y for s in dev]))[0, 1])


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    base = SynthConfig(seed=2, n_train=20, n_devel=10, n_test=1, minutes=2.0, variant="phases",
                       features=("egemaps", "vggface", "BPM"))
    return {v.value: synthesize(tmp_path_factory.mktemp(v.value), base.replace(variant=v)).parent for v in FAMILY}


def test_the_modalities_carry_what_the_paper_reports(family):
    """Voice and bio carry arousal, the face valence; each better than the other target."""
    root = family["phases"]
    assert _readout(root, ("egemaps",), "arousal") > 0.2
    assert _readout(root, ("BPM",), "arousal") > 0.2
    assert _readout(root, ("vggface",), "valence") > 0.2
    assert _readout(root, ("egemaps",), "arousal") > _readout(root, ("egemaps",), "valence")
    assert _readout(root, ("vggface",), "valence") > _readout(root, ("vggface",), "arousal")


def test_gaps_lose_the_face_and_bio_in_bursts(family):
    def absent(root: Path, feature: str) -> float:
        corpus = root / "c3_muse_stress"
        have = sum(len(pd.read_csv(f)) for f in (corpus / "feature_segments" / feature).glob("*.csv"))
        total = sum(len(pd.read_csv(f)) for f in (corpus / "label_segments" / "arousal").glob("*.csv"))
        return 1 - have / total
    assert absent(family["phases-gaps"], "vggface") > absent(family["phases"], "vggface") + 0.12
    assert absent(family["phases-gaps"], "BPM") > absent(family["phases"], "BPM") + 0.04
    # in bursts: the face's runs of absent steps are long (a Bernoulli loss of that rate would give runs of ~1-2)
    data = load_corpus(DataConfig(root=family["phases-gaps"], features=("vggface",), cache=False))
    runs = []
    for s in data.partition(Partition.TRAIN):
        miss = np.r_[0, (~s.observed[:, 0]).astype(int), 0]
        edges = np.flatnonzero(np.diff(miss))
        runs += list(edges[1::2] - edges[::2])
    assert np.mean(runs) > 5


def test_lagged_annotations_trail_the_features_further(family):
    """The shift of the labels at which a linear read-out of the voice fits best grows in phases-lagged."""
    def best_lag(root: Path) -> int:
        data = load_corpus(DataConfig(root=root, features=("egemaps",), cache=False))
        train = data.partition(Partition.TRAIN)
        scores = []
        for lag in range(0, 30, 2):
            x = np.concatenate([np.c_[s.x[: len(s.x) - lag], np.ones(len(s.x) - lag)] for s in train])
            y = np.concatenate([s.y[lag:] for s in train])
            w = np.linalg.solve(x.T @ x + 50 * np.eye(x.shape[1]), x.T @ y)
            scores.append(np.corrcoef(x @ w, y)[0, 1])
        return 2 * int(np.argmax(scores))
    assert best_lag(family["phases-lagged"]) >= best_lag(family["phases"]) + 4


def test_expressive_subjects_differ_more(family):
    def spread(root: Path) -> float:  # between-subject std of per-subject column means and stds
        means, stds = [], []
        for f in sorted((root / "c3_muse_stress" / "feature_segments" / "egemaps").glob("*.csv")):
            x = pd.read_csv(f).iloc[:, 2:].to_numpy()
            means.append(x.mean(axis=0))
            stds.append(x.std(axis=0))
        return float(np.std(means, axis=0).mean() + np.std(stds, axis=0).mean())
    assert spread(family["phases-expressive"]) > 2 * spread(family["phases"])


def test_options_the_family_does_not_use_are_refused():
    with pytest.raises(ConfigError, match="missing_face_rate"):
        SynthConfig(variant="phases", missing_face_rate=0.2)
    with pytest.raises(ConfigError, match="variant"):
        SynthConfig(task=Task.PERSONALISATION, variant="phases")
