"""The synthetic Ulm-TSST-like corpus: determinism, layout, hidden test labels, missing faces, signal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from musefusion import DataConfig, SynthConfig, load_corpus, synthesize
from musefusion.config import ConfigError
from musefusion.data.synth import SYNTH_FEATURES
from musefusion.evaluation.uncertainty import Interval, ccc_interval
from musefusion.fsutil import read_toml
from musefusion.types import Partition, Task

SMALL = SynthConfig(seed=5, n_train=2, n_devel=1, n_test=1, minutes=0.3, features=("egemaps", "vggface", "BPM"))


def all_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def partition_of(corpus: Path) -> dict[str, str]:
    df = pd.read_csv(corpus / "metadata" / "partition.csv", dtype=str)
    return dict(zip(df["Id"], df["Proposal"], strict=True))


def test_same_seed_gives_byte_identical_files(tmp_path):
    synthesize(tmp_path / "a", SMALL)
    synthesize(tmp_path / "b", SMALL)
    a, b = all_files(tmp_path / "a"), all_files(tmp_path / "b")
    # 4 ids x 3 features + 3 ids x 2 targets + 1 test id x 2 hidden targets + partition.csv + synth.toml
    assert len(a) == 4 * 3 + 4 * 2 + 2 + 2
    assert a.keys() == b.keys()
    for name in a:
        assert a[name] == b[name], name


def test_different_seed_gives_different_data(tmp_path):
    synthesize(tmp_path / "a", SMALL)
    synthesize(tmp_path / "b", SMALL.replace(seed=6))
    a, b = all_files(tmp_path / "a"), all_files(tmp_path / "b")
    features = [n for n in a if "/feature_segments/" in n]
    assert all(a[n] != b.get(n) for n in features)
    labels = [n for n in a if "/label_segments/" in n and n in b]
    assert labels and any(a[n] != b[n] for n in labels)


def test_synthesize_replaces_an_existing_corpus_only_when_asked(tmp_path):
    corpus = synthesize(tmp_path, SMALL)
    (corpus / "feature_segments" / "stale").mkdir()
    (corpus / "feature_segments" / "stale" / "1.csv").write_text("timestamp\n0\n")
    with pytest.raises(ConfigError, match="already holds a synthetic corpus of another config"):
        synthesize(tmp_path, SMALL.replace(seed=6, features=("BPM",)))
    assert (corpus / "feature_segments" / "stale" / "1.csv").is_file()
    synthesize(tmp_path, SMALL.replace(seed=6, features=("BPM",)), overwrite=True)
    assert sorted(p.name for p in (corpus / "feature_segments").iterdir()) == ["BPM"]
    assert SynthConfig.from_dict(read_toml(corpus / "metadata" / "synth.toml")).seed == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c3_muse_stress", "test_labels"]  # no temp folders


@pytest.mark.parametrize(("fixture", "cfg"), [
    ("synth_stress", SynthConfig(task=Task.STRESS, seed=1, n_train=8, n_devel=3, n_test=3, minutes=1.5,
                                 features=("egemaps", "vggface", "ECG", "resp", "BPM"))),
    ("synth_physio", SynthConfig(task=Task.PHYSIO, seed=2, n_train=6, n_devel=2, n_test=2, minutes=1.0,
                                 features=("vggish", "vggface", "ECG", "resp", "BPM"))),
])
def test_layout_follows_the_config(request, fixture, cfg):
    root = request.getfixturevalue(fixture)
    corpus = root / cfg.task.corpus_dirs[0]
    assert SynthConfig.from_dict(read_toml(corpus / "metadata" / "synth.toml")) == cfg
    parts = partition_of(corpus)
    assert sorted(parts, key=int) == [str(i) for i in range(1, cfg.n_subjects + 1)]
    counts = pd.Series(list(parts.values())).value_counts().to_dict()
    assert counts == {"train": cfg.n_train, "devel": cfg.n_devel, "test": cfg.n_test}
    assert sorted(p.name for p in (corpus / "feature_segments").iterdir()) == sorted(cfg.features)
    assert sorted(p.name for p in (corpus / "label_segments").iterdir()) == sorted(cfg.task.default_targets)
    for feature in cfg.features:
        files = sorted((corpus / "feature_segments" / feature).glob("*.csv"))
        assert sorted(p.stem for p in files) == sorted(parts)
        header = files[0].read_text().splitlines()[0].split(",")
        assert header[:2] == ["timestamp", "segment_id"] and len(header) == 2 + SYNTH_FEATURES[feature]
    for target in cfg.task.default_targets:
        for sid in parts:
            df = pd.read_csv(corpus / "label_segments" / target / f"{sid}.csv")
            assert list(df.columns) == ["timestamp", "segment_id", "value"]
            assert np.all(df["timestamp"].to_numpy() == 500 * np.arange(len(df)))
            assert 0.8 * cfg.minutes * 120 <= len(df) <= 1.2 * cfg.minutes * 120


@pytest.mark.parametrize("fixture", ["synth_stress", "synth_physio"])
def test_test_labels_are_hidden_outside_the_corpus(request, fixture):
    root = request.getfixturevalue(fixture)
    task = Task.STRESS if fixture == "synth_stress" else Task.PHYSIO
    corpus = root / task.corpus_dirs[0]
    hidden = root / "test_labels" / task.corpus_dirs[0] / "label_segments"
    parts = partition_of(corpus)
    test_ids = sorted(sid for sid, p in parts.items() if p == "test")
    for target in task.default_targets:
        assert sorted(p.stem for p in (hidden / target).glob("*.csv")) == test_ids  # only test subjects
        for sid, part in parts.items():
            public = pd.read_csv(corpus / "label_segments" / target / f"{sid}.csv")
            if part == "test":
                assert public["value"].isna().all()
                true = pd.read_csv(hidden / target / f"{sid}.csv")
                assert true["value"].notna().all() and true["value"].std() > 0
                np.testing.assert_array_equal(true["timestamp"], public["timestamp"])
            else:
                assert public["value"].notna().all()


def test_vggface_misses_rows_in_runs_and_other_features_only_at_the_edges(synth_stress):
    corpus = synth_stress / "c3_muse_stress"
    interior_missing = {"vggface": 0, "egemaps": 0, "BPM": 0}
    for sid in partition_of(corpus):
        n = len(pd.read_csv(corpus / "label_segments" / "arousal" / f"{sid}.csv"))
        for feature in interior_missing:
            ts = pd.read_csv(corpus / "feature_segments" / feature / f"{sid}.csv")["timestamp"].to_numpy()
            if feature != "vggface":  # files start at 0 or 500 ms and end up to 3 steps early or 2 late
                assert ts[0] in (0, 500) and (n - 4) * 500 <= ts[-1] <= (n + 1) * 500
            interior = np.arange(500, (n - 3) * 500, 500)  # steps never cut by a late start or an early end
            interior_missing[feature] += int((~np.isin(interior, ts)).sum())
    assert interior_missing["egemaps"] == 0 and interior_missing["BPM"] == 0
    assert interior_missing["vggface"] > 10


def test_no_missing_faces_when_the_rate_is_zero(tmp_path):
    corpus = synthesize(tmp_path, SMALL.replace(missing_face_rate=0.0, minutes=1.0))
    for sid in partition_of(corpus):
        n = len(pd.read_csv(corpus / "label_segments" / "arousal" / f"{sid}.csv"))
        ts = pd.read_csv(corpus / "feature_segments" / "vggface" / f"{sid}.csv")["timestamp"].to_numpy()
        assert np.isin(np.arange(500, (n - 3) * 500, 500), ts).all()


def test_audio_features_carry_arousal(tmp_path):
    """A linear read-out of egemaps fitted on train predicts devel arousal, and arousal better than valence."""
    synthesize(tmp_path, SynthConfig(seed=3, n_train=20, n_devel=8, n_test=1, minutes=2.0, features=("egemaps",)))
    corr = {}
    for target in ("arousal", "valence"):
        data = load_corpus(DataConfig(root=tmp_path, target=target, cache=False))
        x = np.concatenate([s.x for s in data.partition(Partition.TRAIN)])
        y = np.concatenate([s.y for s in data.partition(Partition.TRAIN)])
        w, *_ = np.linalg.lstsq(np.c_[x, np.ones(len(x))], y, rcond=None)
        xd = np.concatenate([s.x for s in data.partition(Partition.DEVEL)])
        yd = np.concatenate([s.y for s in data.partition(Partition.DEVEL)])
        corr[target] = np.corrcoef(np.c_[xd, np.ones(len(xd))] @ w, yd)[0, 1]
    assert corr["arousal"] > 0.25
    assert corr["arousal"] > corr["valence"]


def _readout(root: Path, features: tuple[str, ...], target: str) -> float:
    """Devel correlation of a linear read-out of ``features`` fitted on train."""
    data = load_corpus(DataConfig(root=root, target=target, features=features, cache=False))
    x = np.concatenate([s.x for s in data.partition(Partition.TRAIN)])
    y = np.concatenate([s.y for s in data.partition(Partition.TRAIN)])
    w, *_ = np.linalg.lstsq(np.c_[x, np.ones(len(x))], y, rcond=None)
    xd = np.concatenate([s.x for s in data.partition(Partition.DEVEL)])
    yd = np.concatenate([s.y for s in data.partition(Partition.DEVEL)])
    return float(np.corrcoef(np.c_[xd, np.ones(len(xd))] @ w, yd)[0, 1])


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    base = SynthConfig(seed=3, n_train=12, n_devel=6, n_test=1, minutes=1.5, features=("egemaps", "vggface", "BPM"))
    return {v: synthesize(tmp_path_factory.mktemp(v), base.replace(variant=v)).parent
            for v in ("default", "bio-led", "sparse-face", "idiosyncratic", "null", "one-modality")}


def test_variants_change_which_modality_carries_what(variants):
    bio = {v: _readout(root, ("BPM",), "arousal") for v, root in variants.items()}
    voice = {v: _readout(root, ("egemaps",), "arousal") for v, root in variants.items()}
    assert bio["bio-led"] > bio["default"] + 0.1  # bio carries arousal more strongly
    assert voice["bio-led"] < voice["default"]  # and the voice less
    voice_valence = {v: _readout(root, ("egemaps",), "valence") for v, root in variants.items()}
    assert voice_valence["sparse-face"] > voice_valence["default"] + 0.05  # the voice carries valence too


def _readout_interval(root: Path, features: tuple[str, ...], target: str) -> Interval:
    """The subject-level bootstrap interval of the devel CCC of a linear read-out fitted on train."""
    data = load_corpus(DataConfig(root=root, target=target, features=features, cache=False))
    x = np.concatenate([s.x for s in data.partition(Partition.TRAIN)])
    y = np.concatenate([s.y for s in data.partition(Partition.TRAIN)])
    w, *_ = np.linalg.lstsq(np.c_[x, np.ones(len(x))], y, rcond=None)
    dev = data.partition(Partition.DEVEL)
    return ccc_interval([np.c_[s.x, np.ones(len(s.x))] @ w for s in dev], [s.y for s in dev])


def test_null_and_one_modality_carry_the_labels_only_where_they_say(variants):
    """null: no feature set carries either target; one-modality: only the voice (eGeMAPS) does. Judged by the
    subject-level interval of a linear read-out's devel CCC: it contains 0 where nothing is carried, and lies above
    0 where the voice carries arousal (and, on the default corpus, where the face carries valence)."""
    null = [_readout_interval(variants["null"], (f,), t) for f in ("egemaps", "vggface", "BPM")
            for t in ("arousal", "valence")]
    assert all(abs(iv.low + iv.high) / 2 < 0.15 for iv in null), null
    assert sum(iv.excludes_zero() for iv in null) <= 1, null  # six 95 % intervals: one may miss 0 by chance
    assert not _readout_interval(variants["one-modality"], ("vggface",), "valence").excludes_zero()
    assert _readout_interval(variants["default"], ("vggface",), "valence").low > 0.1
    assert _readout_interval(variants["one-modality"], ("egemaps",), "arousal").low > 0.05
    # the features still look like features: the same widths as the default corpus's
    widths = {v: load_corpus(DataConfig(root=variants[v], target="arousal", cache=False)).feature_dims
              for v in ("default", "null", "one-modality")}
    assert widths["null"] == widths["default"] == widths["one-modality"]


def test_sparse_face_misses_about_30_percent_of_faces(variants):
    def missing(root: Path) -> float:
        corpus = root / "c3_muse_stress"
        have = sum(len(pd.read_csv(f)) for f in (corpus / "feature_segments" / "vggface").glob("*.csv"))
        total = sum(len(pd.read_csv(f)) for f in (corpus / "label_segments" / "arousal").glob("*.csv"))
        return 1 - have / total
    assert missing(variants["default"]) < 0.12
    assert 0.2 < missing(variants["sparse-face"]) < 0.4


def test_idiosyncratic_subjects_differ_more_in_their_features(variants):
    def spread(root: Path) -> float:  # mean over columns of the between-subject std of per-subject means
        means = [pd.read_csv(f).iloc[:, 2:].to_numpy().mean(axis=0)
                 for f in sorted((root / "c3_muse_stress" / "feature_segments" / "egemaps").glob("*.csv"))]
        return float(np.std(means, axis=0).mean())
    assert spread(variants["idiosyncratic"]) > 1.5 * spread(variants["default"])


def test_the_default_variant_leaves_the_stamp_as_before(tmp_path):
    corpus = synthesize(tmp_path, SMALL)
    assert "variant" not in read_toml(corpus / "metadata" / "synth.toml")
    other = synthesize(tmp_path / "b", SMALL.replace(variant="bio-led"))
    assert read_toml(other / "metadata" / "synth.toml")["variant"] == "bio-led"
    with pytest.raises(ConfigError, match="variant: 'nope' is not one of default, bio-led"):
        SynthConfig(variant="nope")


def test_synth_config_round_trips():
    cfg = SynthConfig(task="physio", seed=9, n_train=3, n_devel=2, n_test=1, minutes=0.5,
                      features=["ECG", "vggface"], missing_face_rate=0.2)
    assert cfg.task == Task.PHYSIO and cfg.features == ("ECG", "vggface")
    assert SynthConfig.from_dict(cfg.to_dict()) == cfg
    assert SynthConfig.from_dict(SynthConfig().to_dict()) == SynthConfig()
    assert SynthConfig().n_subjects == 69


@pytest.mark.parametrize(("fields", "match"), [
    ({"task": "humor"}, r"SynthConfig\.task: 'humor' is not one of stress, physio"),
    ({"n_train": 0}, r"SynthConfig\.n_train: 0 must be >= 1"),
    ({"n_devel": -2}, r"SynthConfig\.n_devel: -2"),
    ({"n_test": 0}, r"SynthConfig\.n_test"),
    ({"minutes": 0.1}, r"SynthConfig\.minutes: 0\.1 must be between"),
    ({"minutes": 500}, r"SynthConfig\.minutes"),
    ({"features": ("egemaps", "bert")}, r"SynthConfig\.features: \['bert'\] cannot be synthesised"),
    ({"missing_face_rate": 0.95}, r"SynthConfig\.missing_face_rate: 0\.95"),
    ({"missing_face_rate": -0.1}, r"SynthConfig\.missing_face_rate"),
])
def test_invalid_synth_config_names_the_field(fields, match):
    with pytest.raises(ConfigError, match=match):
        SynthConfig(**fields)
    with pytest.raises(ConfigError, match=match):
        SynthConfig.from_dict(fields)


def test_unknown_synth_config_key_is_rejected():
    with pytest.raises(ConfigError, match=r"Unknown key 'subjects' in SynthConfig"):
        SynthConfig.from_dict({"subjects": 3})
