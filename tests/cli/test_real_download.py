"""Runs on the real MuSe download and on any fresh machine (issue 11): the download's folder names, output that
never breaks a path, one rule for multi-valued options, no stale run reused, files others can read, strict JSON,
config typos named, synthetic labels like real ones."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from musefusion import fsutil
from musefusion.config import DataConfig, RunConfig, TrainConfig, model_preset
from musefusion.data import formats
from musefusion.data.check import check_corpus
from musefusion.data.synth import SynthConfig, synthesize
from musefusion.training.run import load_run_config, train_run
from musefusion.types import Task
from tests.cli_helpers import run_cli, the_error_line

TINY = ["--model", "lstm", "--hidden", "8", "--epochs", "1", "--win-len", "40", "--hop-len", "20"]


@pytest.fixture(autouse=True)
def _no_data_env(monkeypatch):
    monkeypatch.delenv("MUSEFUSION_DATA", raising=False)


def _synth(root: Path, features: tuple[str, ...], task: Task = Task.STRESS, **kw) -> Path:
    synthesize(root, SynthConfig(task=task, seed=5, n_train=4, n_devel=2, n_test=2, minutes=0.5, features=features,
                                 **kw))
    return root


# ----------------------------------------------------------------------------------------------- feature names


def test_synth_writes_the_download_names_and_bio_reads_them(tmp_path, capsys):
    root = tmp_path / "d"
    assert run_cli(["synth", root, "--split", "4/2/2", "--minutes", "0.5"]) == 0
    folders = sorted(p.name for p in (root / "c3_muse_stress" / "feature_segments").iterdir())
    assert {"BPM", "ECG", "resp"} <= set(folders) and "RESP" not in folders
    header = (root / "c3_muse_stress" / "feature_segments" / "resp" / "1.csv").read_text().splitlines()[0]
    assert header == "timestamp,segment_id,resp"
    assert run_cli(["data", "check", "--data", root]) == 0
    assert "--features bio reads: ECG + resp + BPM" in capsys.readouterr().out
    assert run_cli(["train", "--data", root, "--features", "bio", *TINY, "--out", tmp_path / "run"]) == 0
    assert load_run_config(tmp_path / "run").data.features == ("ECG", "resp", "BPM")


def test_feature_folders_match_in_any_case(tmp_path):
    root = _synth(tmp_path / "d", ("egemaps", "ECG", "RESP", "BPM"))  # another package's spelling
    assert run_cli(["train", "--data", root, "--features", "bio", "EGEMAPS", *TINY, "--out", tmp_path / "run"]) == 0
    cfg = load_run_config(tmp_path / "run")
    assert cfg.data.features == ("ECG", "RESP", "BPM", "egemaps")  # recorded as the corpus names them
    metrics = fsutil.read_json(tmp_path / "run" / "metrics.json")
    assert metrics["feature_dims"] == {"ECG": 1, "RESP": 1, "BPM": 1, "egemaps": 88}


def test_a_biosignals_folder_stands_in_for_bio(tmp_path, capsys):
    root = tmp_path / "d"
    assert run_cli(["synth", root, "--split", "4/2/2", "--minutes", "0.5", "--features", "egemaps",
                    "biosignals"]) == 0
    f = root / "c3_muse_stress" / "feature_segments" / "biosignals" / "1.csv"
    assert f.read_text().splitlines()[0] == "timestamp,segment_id,ECG,resp,BPM"
    assert run_cli(["data", "check", "--data", root]) == 0
    assert "--features bio reads: biosignals" in capsys.readouterr().out
    assert run_cli(["train", "--data", root, "--features", "bio", *TINY, "--out", tmp_path / "run"]) == 0
    assert load_run_config(tmp_path / "run").data.features == ("biosignals",)
    assert fsutil.read_json(tmp_path / "run" / "metrics.json")["d_in"] == 3
    code = run_cli(["train", "--data", root, "--features", "ECG", *TINY, "--out", tmp_path / "run2"])
    assert code == 2
    assert "has one 'biosignals' folder" in the_error_line(capsys.readouterr().err)


def test_folders_that_differ_only_by_case_are_refused(tmp_path, capsys):
    root = _synth(tmp_path / "d", ("egemaps", "ECG", "resp", "BPM"))
    feats = root / "c3_muse_stress" / "feature_segments"
    shutil.copytree(feats / "resp", feats / "RESP")
    code = run_cli(["train", "--data", root, "--features", "bio", *TINY, "--out", tmp_path / "run"])
    assert code == 2
    line = the_error_line(capsys.readouterr().err)
    assert "'RESP' and 'resp'" in line and "differ only by case" in line
    assert any("differ only by case" in p for p in check_corpus(root, Task.STRESS).problems)


@pytest.mark.slow
def test_physio_reproduce_runs_its_bio_row_on_the_download_layout(tmp_path):
    """Stress is covered by tests/test_reproduce.py on the same default names; physio end to end here."""
    root = _synth(tmp_path / "d", ("vggish", "vggface", "ECG", "resp", "BPM"), task=Task.PHYSIO)
    out = tmp_path / "rep"
    assert run_cli(["reproduce", "--data", root, "--task", "physio", "--profile", "smoke", "--workers", "1",
                    "--out", out]) == 0
    bio = out / "runs" / "anno12_EDA" / "bio-bio_lstm"
    assert load_run_config(bio).data.features == ("ECG", "resp", "BPM")
    assert (bio / "final" / "metrics.json").is_file() and (bio / "oof_k2" / "predictions" / "train").is_dir()
    assert len(list((out / "submission" / "anno12_EDA").glob("*.csv"))) == 2
    report = (out / "report.md").read_text()
    assert "| ECG+RESP+BPM | B | LSTM |" in report
    assert "final models, retrained on train+devel for their best epoch count (Sec. 5.5)" in report


# ----------------------------------------------------------------------------------------------- terminals


def _cli(argv: list, columns: str | None, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "MUSEFUSION_DATA")}
    if columns is not None:
        env["COLUMNS"] = columns
    return subprocess.run([sys.executable, "-c", "from musefusion.cli.app import main; main()", *map(str, argv)],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def _assert_whole(path: Path, text: str) -> None:
    assert any(line.strip() == str(path) for line in text.splitlines()), (str(path), text)


@pytest.fixture(scope="module")
def long_dir(tmp_path_factory) -> Path:
    """A long temporary path (well over 40 columns), as CI machines and Slurm scratch folders have."""
    d = tmp_path_factory.mktemp("a_rather_long_folder_name_for_wrapping_checks") / ("x" * 30) / "and_deeper"
    d.mkdir(parents=True)
    return d


@pytest.mark.slow
@pytest.mark.parametrize("columns", [None, "40"])
def test_printed_paths_are_whole_lines_in_any_terminal_width(long_dir, columns, speech_wav, bio_csv):
    base = long_dir / f"cols{columns}"
    data = _synth(base / "data", ("egemaps", "vggface", "ECG", "resp", "BPM"))
    run = base / "runs" / "egemaps-lstm-arousal"
    r = _cli(["train", "--data", data, "--features", "egemaps", *TINY, "--out", run], columns, base)
    assert r.returncode == 0, r.stderr
    _assert_whole(run, r.stdout)
    assert "seed 1: 1/1 devel CCC" in r.stderr  # redirected: a plain line per epoch
    r = _cli(["reproduce", "--data", data, "--profile", "smoke", "--workers", "1", "--stage", "unimodal",
              "--out", base / "rep"], columns, base)
    assert r.returncode == 0, r.stderr
    _assert_whole(base / "rep" / "report.md", r.stdout)
    r = _cli(["extract", "--audio", speech_wav, "--bio", bio_csv, "--id", "7", "--out", base / "ex"], columns, base)
    assert r.returncode == 0, r.stderr
    _assert_whole(base / "ex" / "c3_muse_stress", r.stdout)
    r = _cli(["predict-recording", "--audio", speech_wav, "--model", run, "--out", base / "curves"], columns, base)
    assert r.returncode == 0, r.stderr
    _assert_whole(base / "curves" / "curves.csv", r.stdout)
    r = _cli(["data", "check", "--data", data], columns, base)
    assert r.returncode == 0 and "│ egemaps " in r.stdout  # the table is printed at its natural width
    assert all("…" not in line for line in r.stdout.splitlines())


# ----------------------------------------------------------------------------------------------- options


def _dry_run(capsys, *flags) -> dict:
    import tomllib

    assert run_cli(["train", "--data", "/nowhere", "--dry-run", *flags]) == 0
    return tomllib.loads(capsys.readouterr().out)


@pytest.mark.parametrize("flags", [["--features", "egemaps", "vggface"], ["--features", "egemaps,vggface"],
                                   ["--features", "egemaps", "--features", "vggface"], ["--features=egemaps,vggface"]])
def test_train_features_take_several_values_in_every_form(capsys, flags):
    assert _dry_run(capsys, *flags)["data"]["features"] == ["egemaps", "vggface"]


@pytest.mark.parametrize("flags", [["--seeds", "1", "2", "3"], ["--seeds", "1,2,3"], ["--seeds", "1", "2,3"]])
def test_train_seeds_take_several_values_in_every_form(capsys, flags):
    assert _dry_run(capsys, *flags)["train"]["seeds"] == [1, 2, 3]


def test_a_single_valued_option_given_twice_is_refused(capsys):
    assert run_cli(["train", "--data", "/nowhere", "--epochs", "5", "--epochs", "6", "--dry-run"]) == 2
    assert "Option --epochs is given twice ('5' and '6')" in the_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("features", [["egemaps", "ECG"], ["egemaps,ECG"]])
def test_synth_writes_every_feature_given(tmp_path, features):
    assert run_cli(["synth", tmp_path, "--split", "2/1/1", "--minutes", "0.3", "--features", *features]) == 0
    assert sorted(p.name for p in (tmp_path / "c3_muse_stress" / "feature_segments").iterdir()) == ["ECG", "egemaps"]


def test_synth_refuses_a_feature_it_cannot_make(tmp_path, capsys):
    assert run_cli(["synth", tmp_path, "--features", "egemaps", "mfcc"]) == 2
    assert "['mfcc'] cannot be synthesised" in the_error_line(capsys.readouterr().err)


def test_sweep_features_and_seeds_take_several_values(capsys, tmp_path):
    assert run_cli(["sweep", "--data", "/nowhere", "--model", "lstm", "--features", "egemaps", "vggface",
                    "--seeds", "1,2", "--out", tmp_path / "s", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert 'features = [\n    "egemaps",\n    "vggface",\n]' in out or 'features = ["egemaps", "vggface"]' in out
    assert "seeds = [\n    1,\n    2,\n]" in out or "seeds = [1, 2]" in out


def test_fuse_streams_names_and_seeds_take_several_values(tmp_path, synth_stress, capsys):
    runs = []
    for feats, model in (("egemaps", "lstm"), ("bio", "bio_lstm")):
        cfg = RunConfig(DataConfig(root=synth_stress, features=(feats,), win_len=40, hop_len=20, cache=False),
                        model_preset(model, hidden=8), TrainConfig(epochs=1))
        train_run(cfg, tmp_path / feats)
        runs.append(tmp_path / feats)
    assert run_cli(["fuse", "--streams", *runs, "--names", "A,B", "--seeds", "1", "2", "--train-on", "in-sample",
                    "--epochs", "1", "--out", tmp_path / "fused"]) == 0
    m = fsutil.read_json(tmp_path / "fused" / "metrics.json")
    assert set(m["stream_devel_ccc"]) == {"A", "B"} and set(m["seeds"]) == {"1", "2"}


def test_extract_features_take_several_values(tmp_path, bio_csv):
    assert run_cli(["extract", "--bio", bio_csv, "--id", "3", "--out", tmp_path, "--features", "ECG", "BPM"]) == 0
    assert sorted(p.name for p in (tmp_path / "c3_muse_stress" / "feature_segments").iterdir()) == ["BPM", "ECG"]


# ----------------------------------------------------------------------------------------------- extract defaults


def test_extract_defaults_to_the_task_paper_features_the_machine_can_make(tmp_path, speech_wav, bio_csv, capsys,
                                                                        monkeypatch):
    monkeypatch.delenv("MUSEFUSION_VGGISH_WEIGHTS", raising=False)
    # stress: eGeMAPS + bio; no VGGish is asked for, so no weights are needed
    assert run_cli(["extract", "--audio", speech_wav, "--bio", bio_csv, "--id", "1", "--out", tmp_path / "s"]) == 0
    made = sorted(p.name for p in (tmp_path / "s" / "c3_muse_stress" / "feature_segments").iterdir())
    assert made == ["BPM", "ECG", "egemaps", "resp"]
    # physio's audio feature is VGGish: skipped with one line naming how to enable it, the rest extracted
    capsys.readouterr()
    assert run_cli(["extract", "--audio", speech_wav, "--bio", bio_csv, "--id", "1", "--task", "physio",
                    "--out", tmp_path / "p"]) == 0
    err = capsys.readouterr().err
    assert "skipping vggish: No VGGish weights file given. Pass --vggish-weights FILE" in err
    made = sorted(p.name for p in (tmp_path / "p" / "c4_muse_physio" / "feature_segments").iterdir())
    assert made == ["BPM", "ECG", "resp"]
    # asked for by name, a feature without weights stays an error
    assert run_cli(["extract", "--audio", speech_wav, "--id", "1", "--features", "vggish", "--out",
                    tmp_path / "v"]) == 2
    assert "No VGGish weights file given" in the_error_line(capsys.readouterr().err)


# ----------------------------------------------------------------------------------------------- stale runs


def test_a_run_of_another_config_is_refused_and_the_same_one_reused(synth_stress, tmp_path, capsys):
    out = tmp_path / "run"
    base = ["train", "--data", synth_stress, *TINY, "--out", out]
    assert run_cli([*base, "--target", "arousal", "--features", "egemaps"]) == 0
    first = capsys.readouterr().out
    stamp = (out / "metrics.json").stat().st_mtime_ns
    code = run_cli(["train", "--data", synth_stress, "--model", "gcnn", "--hidden", "8", "--epochs", "1",
                    "--win-len", "40", "--hop-len", "20", "--target", "valence", "--features", "vggface",
                    "--out", out])
    assert code == 2
    line = the_error_line(capsys.readouterr().err)
    for diff in ("data.target 'arousal' -> 'valence'", "data.features ['egemaps'] -> ['vggface']",
                 "model.name 'lstm' -> 'gcnn'"):
        assert diff in line
    assert "--overwrite" in line and (out / "metrics.json").stat().st_mtime_ns == stamp
    assert run_cli([*base, "--target", "arousal", "--features", "egemaps"]) == 0  # the same config: reused
    assert capsys.readouterr().out.splitlines()[0] == first.splitlines()[0]
    assert (out / "metrics.json").stat().st_mtime_ns == stamp
    assert run_cli([*base, "--target", "valence", "--features", "egemaps", "--overwrite"]) == 0
    assert load_run_config(out).data.target == "valence"


def test_a_changed_corpus_file_is_not_a_finished_run(tmp_path, capsys):
    root = _synth(tmp_path / "d", ("egemaps",))
    argv = ["train", "--data", root, "--features", "egemaps", *TINY, "--out", tmp_path / "run"]
    assert run_cli(argv) == 0
    f = root / "c3_muse_stress" / "feature_segments" / "egemaps" / "1.csv"
    f.write_text(f.read_text().replace(",1,", ",2,", 1))
    assert run_cli(argv) == 2
    assert "inputs.corpus" in the_error_line(capsys.readouterr().err)


def test_default_out_never_collides_between_configs(synth_stress, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for model in ("lstm", "gcnn"):
        assert run_cli(["train", "--data", synth_stress, "--features", "egemaps", "--model", model, "--hidden", "8",
                        "--epochs", "1", "--win-len", "40", "--hop-len", "20"]) == 0
    dirs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(dirs) == 2 and dirs[0].startswith("stress-arousal-egemaps-gcnn-")
    assert dirs[1].startswith("stress-arousal-egemaps-lstm-")


@pytest.mark.slow
def test_reproduce_refuses_rows_of_another_config(tmp_path, capsys):
    root = _synth(tmp_path / "d", ("egemaps", "vggface", "ECG", "resp", "BPM"))
    argv = ["reproduce", "--data", root, "--profile", "smoke", "--stage", "unimodal", "--workers", "1",
            "--out", tmp_path / "rep"]
    assert run_cli(argv) == 0
    row = tmp_path / "rep" / "runs" / "arousal" / "bio-bio_lstm" / "metrics.json"
    stamp = row.stat().st_mtime_ns
    capsys.readouterr()
    assert run_cli([*argv, "--seeds", "7"]) == 2
    assert "train.seeds [1] -> [7]" in the_error_line(capsys.readouterr().err)
    assert row.stat().st_mtime_ns == stamp
    assert run_cli(argv) == 0 and row.stat().st_mtime_ns == stamp  # the same config: every row reused
    assert run_cli([*argv, "--seeds", "7", "--overwrite"]) == 0
    assert fsutil.read_json(row)["best"]["seed"] == 7


# ----------------------------------------------------------------------------------------------- files, JSON, config


def test_written_files_follow_the_umask(synth_stress, tmp_path):
    old = os.umask(0o022)
    try:
        assert run_cli(["train", "--data", synth_stress, "--features", "egemaps", *TINY, "--out", tmp_path / "r"]) == 0
    finally:
        os.umask(old)
    for p in [tmp_path / "r" / "metrics.json", tmp_path / "r" / "config.toml", tmp_path / "r" / "checkpoint.pt",
              *(tmp_path / "r" / "predictions" / "devel").glob("*.csv")]:
        assert stat.S_IMODE(p.stat().st_mode) == 0o644, p
    for d in (tmp_path / "r" / "predictions", tmp_path / "r" / "predictions" / "devel"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o755, d


def test_metrics_json_is_strict_and_records_what_was_not_finite(synth_stress, tmp_path):
    cfg = RunConfig(DataConfig(root=synth_stress, features=("egemaps",), win_len=40, hop_len=20, cache=False,
                               train_partitions=("train", "devel")), model_preset("lstm", hidden=8),
                    TrainConfig(epochs=1))
    train_run(cfg, tmp_path / "final")  # fitted on devel too: no devel score

    def refuse(name):
        raise ValueError(f"bare {name} in metrics.json")

    text = (tmp_path / "final" / "metrics.json").read_text()
    raw = json.loads(text, parse_constant=refuse)
    assert raw["devel_ccc_mean"] is None and raw["non_finite"]["devel_ccc_mean"] == "nan"
    assert "devel is part of the fitting data" in raw["notes"]
    assert np.isnan(fsutil.read_json(tmp_path / "final" / "metrics.json")["devel_ccc_mean"])  # restored on reading


@pytest.mark.parametrize(("section", "typo", "nearest"), [("data", "targt", "target"), ("model", "hiden", "hidden"),
                                                          ("train", "epocs", "epochs")])
def test_a_typo_in_any_config_section_is_one_line_naming_it(tmp_path, capsys, section, typo, nearest):
    config = tmp_path / "run.toml"
    config.write_text(f'[data]\nroot = "{tmp_path}"\n' + (f"{typo} = 1\n" if section == "data" else "")
                      + (f"[{section}]\n{typo} = 1\n" if section != "data" else ""))
    assert run_cli(["train", "--config", config, "--dry-run"]) == 2
    line = the_error_line(capsys.readouterr().err)
    assert f"Unknown key '{typo}' in [{section}] of '{config}'; did you mean '{nearest}'?" in line


def test_a_wrong_type_in_the_model_section_is_one_line(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text(f'[data]\nroot = "{tmp_path}"\n[model]\nname = "lstm"\nhidden = "big"\n')
    assert run_cli(["train", "--config", config, "--dry-run"]) == 2
    assert "[model]" in the_error_line(capsys.readouterr().err)


# ----------------------------------------------------------------------------------------------- synthetic labels


@pytest.mark.parametrize("task", [Task.STRESS, Task.PHYSIO])
def test_synthetic_labels_lie_in_minus_one_one_without_plateaus(tmp_path, task):
    root = tmp_path / "d"
    synthesize(root, SynthConfig(task=task, seed=0, n_train=16, n_devel=6, n_test=6, minutes=2.0,
                                 features=("ECG",)))
    corpus = root / task.corpus_dirs[0]
    values = []
    for f in [*(corpus / "label_segments").rglob("*.csv"), *(root / "test_labels").rglob("*.csv")]:
        _, v = formats.read_label_csv(f)
        values.append(v[~np.isnan(v)])
    v = np.concatenate(values)
    assert len(v) > 5000 and v.min() >= -1.0 and v.max() <= 1.0
    _, counts = np.unique(v, return_counts=True)
    assert counts.max() <= 0.01 * len(v)
    assert v.max() > 0.5  # squashed, not shrunk into a narrow band
