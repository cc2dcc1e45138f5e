"""Submission writer and validator."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from musefusion import fsutil
from musefusion.cli.app import main
from musefusion.data import formats
from musefusion.pipelines.submission import validate_submission
from musefusion.types import Task


@pytest.fixture
def good_submission(synth_stress, tmp_path):
    """A valid submission built from the hidden true test labels."""
    sub = tmp_path / "sub"
    src = synth_stress / "test_labels" / "c3_muse_stress" / "label_segments"
    for target in ("arousal", "valence"):
        for f in (src / target).glob("*.csv"):
            ts, v = formats.read_label_csv(f)
            (sub / target).mkdir(parents=True, exist_ok=True)
            pd.DataFrame({"timestamp": ts, "value": v, "segment_id": 1}).to_csv(sub / target / f.name, index=False)
    return sub


def test_good_submission_passes(good_submission, synth_stress, capsys):
    assert validate_submission(good_submission, synth_stress, Task.STRESS) == []
    main(["validate-submission", str(good_submission), "--data", str(synth_stress)])  # returns: exit 0
    assert "submission valid" in capsys.readouterr().out


def test_validator_catches_each_problem(good_submission, synth_stress, capsys):
    files = sorted((good_submission / "arousal").glob("*.csv"))
    files[0].unlink()  # a missing subject
    df = pd.read_csv(files[1])
    df["timestamp"] += 500  # a shifted timestamp
    df.to_csv(files[1], index=False)
    df = pd.read_csv(files[2])
    df.loc[3, "value"] = np.nan  # a NaN
    df.to_csv(files[2], index=False)
    shutil.rmtree(good_submission / "valence")
    problems = validate_submission(good_submission, synth_stress, Task.STRESS)
    text = "\n".join(problems)
    assert f"missing '{files[0]}'" in text
    assert "timestamp 500 ms at row 1, expected 0 ms" in text
    assert "1 NaN/inf value(s), first at row 4" in text
    assert "missing folder" in text and "valence" in text
    assert len(problems) == 4
    with pytest.raises(SystemExit) as exc:
        main(["validate-submission", str(good_submission), "--data", str(synth_stress)])
    assert exc.value.code == 1
    assert "4 problem(s)" in capsys.readouterr().out


def test_validator_flags_out_of_range(good_submission, synth_stress):
    f = sorted((good_submission / "valence").glob("*.csv"))[0]
    df = pd.read_csv(f)
    df.loc[0, "value"] = 50.0
    df.to_csv(f, index=False)
    problems = validate_submission(good_submission, synth_stress, Task.STRESS)
    assert len(problems) == 1 and "outside the plausible range" in problems[0]


def test_written_submission_has_the_label_files_layout_and_passes(synth_stress, tmp_path):
    from musefusion.pipelines.submission import write_submission

    hidden = synth_stress / "test_labels" / "c3_muse_stress" / "label_segments"
    runs = []
    for target in ("arousal", "valence"):  # run dirs whose test predictions are the true labels
        run = tmp_path / f"run-{target}"
        fsutil.write_toml(run / "config.toml", {"data": {"target": target}})
        shutil.copytree(hidden / target, run / "predictions" / "test")
        runs.append(run)
    sub = write_submission(runs, tmp_path / "sub")
    assert validate_submission(sub, synth_stress, Task.STRESS) == []
    corpus_labels = synth_stress / "c3_muse_stress" / "label_segments"
    for target in ("arousal", "valence"):
        files = sorted((sub / target).glob("*.csv"))
        assert [f.name for f in files] == sorted(f.name for f in (hidden / target).glob("*.csv"))
        for f in files:
            assert f.read_text().splitlines()[0] == (corpus_labels / target / f.name).read_text().splitlines()[0]
            np.testing.assert_allclose(formats.read_label_csv(f)[1], formats.read_label_csv(hidden / target / f.name)[1])
