"""extract_file / extract_files / extract_folder: outputs on the grid, readable by load_corpus, resumable."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from musefusion.config import DataConfig
from musefusion.data import formats
from musefusion.data.corpus import load_corpus
from musefusion.errors import ConfigError, DataFormatError, MissingDataError
from musefusion.features.extract import (
    ExtractConfig,
    Recording,
    extract_file,
    extract_files,
    extract_folder,
    recordings_from_manifest,
    recordings_in_folder,
    resolve_features,
)
from musefusion.types import Task

FEATS = ("egemaps", "ECG", "resp", "BPM")


def _mini_corpus(root, results: dict[str, dict]) -> None:
    """partition.csv + arousal labels on each id's grid, so load_corpus can read the extracted features."""
    corpus = root / Task.STRESS.corpus_dirs[0]
    formats.write_partition(corpus / "metadata" / "partition.csv",
                       dict(zip(results, ["train", "devel", "test"], strict=False)))
    for sid, res in results.items():
        ts = res["egemaps"][0]
        formats.write_sequence_csv(corpus / "label_segments" / "arousal" / f"{sid}.csv", ts,
                              np.linspace(-0.5, 0.5, len(ts)))


def test_extract_file_audio_and_bio(speech_wav, bio_csv):
    res = extract_file(audio=speech_wav, bio=bio_csv, features=("egemaps", "bio"))
    assert list(res) == list(FEATS) and res.face_rate is None
    for f, (ts, vals) in res.items():
        assert ts[0] == 0 and np.all(np.diff(ts) == 500), f
        assert vals.ndim == 2 and vals.shape[0] == len(ts)
    assert res["egemaps"][1].shape[1] == 88 and res.columns["BPM"] == ["BPM"]


def test_the_python_api_gives_the_features_as_dataframes(speech_wav, bio_csv):
    import musefusion as mf

    frames = mf.extract(audio=speech_wav, bio=bio_csv, features=("egemaps", "bio"))
    res = extract_file(audio=speech_wav, bio=bio_csv, features=("egemaps", "bio"))
    assert list(frames) == list(res)
    for f, (ts, vals) in res.items():
        assert list(frames[f].columns) == ["timestamp", *res.columns[f]]
        assert frames[f]["timestamp"].tolist() == ts.tolist()
        assert np.allclose(frames[f][res.columns[f]].to_numpy(), vals, equal_nan=True)
    with pytest.raises(ConfigError, match="Unknown key 'vggish_weight' in the extract settings"):
        mf.extract(audio=speech_wav, vggish_weight="x.pth")


def test_extracted_files_are_readable_by_load_corpus(tmp_path, speech_wav, bio_csv):
    recs = [Recording(sid, audio=speech_wav, bio=bio_csv) for sid in ("1", "2", "3")]
    cfg = ExtractConfig(features=FEATS)
    report = extract_files(recs, tmp_path, cfg)
    assert report["status"].tolist() == ["extracted"] * 3
    corpus = tmp_path / "c3_muse_stress"
    results = {}
    for sid in ("1", "2", "3"):
        results[sid] = {}
        for f in FEATS:
            ts, vals, cols = formats.read_feature_csv(corpus / "feature_segments" / f / f"{sid}.csv")
            assert np.all(ts == np.arange(len(ts)) * 500)
            results[sid][f] = (ts, vals)
    _mini_corpus(tmp_path, results)
    data = load_corpus(DataConfig(root=tmp_path, features=FEATS, target="arousal", cache=False))
    assert data.feature_dims == {"egemaps": 88, "ECG": 1, "resp": 1, "BPM": 1}
    seq = data.partition("train")[0]
    assert seq.x.shape == (len(results["1"]["egemaps"][0]), 91) and np.isfinite(seq.x).all()


def test_extract_files_skips_done_ids_and_overwrites_on_request(tmp_path, bio_csv):
    recs = [Recording("a", bio=bio_csv)]
    first = extract_files(recs, tmp_path)
    target = tmp_path / "c3_muse_stress" / "feature_segments" / "BPM" / "a.csv"
    mtime = target.stat().st_mtime_ns
    again = extract_files(recs, tmp_path)
    assert first["status"].tolist() == ["extracted"] and again["status"].tolist() == ["skipped"]
    assert target.stat().st_mtime_ns == mtime
    redo = extract_files(recs, tmp_path, ExtractConfig(overwrite=True))
    assert redo["status"].tolist() == ["extracted"]


def test_a_failing_recording_writes_nothing(tmp_path, speech_wav):
    bad = tmp_path / "bad.csv"
    bad.write_text("time,eda\n0,1\n1,2\n")
    with pytest.raises(DataFormatError, match="bad.csv"):
        extract_files([Recording("x", audio=speech_wav, bio=bad)], tmp_path / "out", ExtractConfig(features=FEATS))
    assert not list((tmp_path / "out").rglob("*.csv"))


def test_extract_folder_and_manifest(tmp_path, speech_wav, bio_csv):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(bio_csv, src / "s1.csv")
    shutil.copy(bio_csv, src / "s2.csv")
    (src / "notes.txt").write_text("ignored")
    recs = recordings_in_folder(src)
    assert [(r.id, r.bio.name) for r in recs] == [("s1", "s1.csv"), ("s2", "s2.csv")]
    report = extract_folder(src, tmp_path / "out", ExtractConfig(task=Task.PHYSIO))
    assert len(report) == 2
    assert (tmp_path / "out" / "c4_muse_physio" / "feature_segments" / "resp" / "s2.csv").is_file()
    manifest = tmp_path / "m.csv"
    pd.DataFrame({"id": ["a", "b"], "audio": [str(speech_wav), ""], "bio": ["in/s1.csv", "in/s2.csv"]}).to_csv(
        manifest, index=False)
    recs = recordings_from_manifest(manifest)
    assert recs[0].audio == speech_wav and recs[1].audio is None and recs[1].bio == src / "s2.csv"


def test_folder_with_two_audio_files_for_one_id(tmp_path, speech_wav):
    shutil.copy(speech_wav, tmp_path / "a.wav")
    shutil.copy(speech_wav, tmp_path / "a.flac")
    with pytest.raises(ConfigError, match="both audio for id 'a'"):
        recordings_in_folder(tmp_path)


@pytest.mark.parametrize(("content", "exc", "match"), [
    (None, MissingDataError, "not found"),
    ("id,notes\n1,x\n", DataFormatError, "needs columns id"),
    ("id,audio,bio\n1,,\n", DataFormatError, "line 2 .* names no audio"),
])
def test_bad_manifests(tmp_path, content, exc, match):
    path = tmp_path / "m.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(exc, match=match):
        recordings_from_manifest(path)


def test_resolve_features():
    # no --features: the task's paper features the inputs allow (stress: eGeMAPS, VGGface, bio; physio: VGGish)
    assert resolve_features((), audio=False, video=True, bio=False) == ("egemaps", "vggface")
    assert resolve_features((), audio=True, video=False, bio=True, task=Task.PHYSIO) == ("vggish", "ECG", "resp",
                                                                                         "BPM")
    with pytest.raises(ConfigError, match="'vggface' needs --video"):
        resolve_features(("vggface",), audio=True, video=False, bio=False)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"features": ("mfcc",)}, "cannot extract"),
    ({"egemaps_win_s": 0.1}, "egemaps_win_s"),
    ({"bio_time_unit": "h"}, "bio_time_unit"),
    ({"face_min_size_px": 5}, "face_min_size_px"),
])
def test_config_validation(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ExtractConfig(**kwargs)


def test_config_round_trip():
    cfg = ExtractConfig(features=("bio", "egemaps"), egemaps_win_s=3.0)
    assert cfg.features == ("ECG", "resp", "BPM", "egemaps")
    assert ExtractConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(("payload", "exc", "match"), [
    (b"", DataFormatError, "empty"),
    (b"this is not audio at all" * 10, DataFormatError, "cannot be decoded"),
])
def test_unreadable_audio(tmp_path, payload, exc, match):
    path = tmp_path / "x.wav"
    path.write_bytes(payload)
    with pytest.raises(exc, match=match):
        extract_file(audio=path, features=("egemaps",))


def test_silent_audio_file_is_an_error(tmp_path):
    import soundfile as sf

    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(32000, np.float32), 16000)
    with pytest.raises(DataFormatError, match="silent"):
        extract_file(audio=path, features=("egemaps",))
