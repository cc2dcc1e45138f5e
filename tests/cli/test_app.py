"""The entry point's error handling: a ``MuseFusionError`` is one ``error:`` line on stderr and exit code 2."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from musefusion.cli.app import main
from musefusion.data.synth import SynthConfig, synthesize
from musefusion.errors import MissingDataError
from musefusion.types import Task
from tests import corpus_faults
from tests.cli_helpers import run_cli, the_error_line

FAULTS = corpus_faults.FAULTS


@pytest.fixture(autouse=True)
def _no_data_env(monkeypatch):
    monkeypatch.delenv("MUSEFUSION_DATA", raising=False)


def train_argv(root: Path, out: Path, options: dict) -> list:
    """``musefusion train`` on the tiny corpus; every fault stops it while reading the corpus."""
    features = options.get("features", ("feat_a", "feat_b"))
    return ["train", "--data", root, "--features", *features, "--target", options.get("target", "arousal"),
            "--model", "lstm", "--epochs", "1", "--out", out]


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_a_bad_corpus_gives_one_error_line_naming_the_file(tiny_corpus, tmp_path, capsys, fault):
    named = fault.mutate(tiny_corpus / "c3_muse_stress")
    code = run_cli(train_argv(tiny_corpus, tmp_path / "run", fault.options))
    captured = capsys.readouterr()
    assert code == 2
    line = the_error_line(captured.err)
    assert line.startswith("error: ")
    assert f"'{named}'" in line
    assert re.search(fault.match, line)
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_a_missing_root_gives_one_error_line(tmp_path, capsys):
    code = run_cli(train_argv(tmp_path / "nowhere", tmp_path / "run", {}))
    assert code == 2
    assert f"Data root '{tmp_path / 'nowhere'}' not found" in the_error_line(capsys.readouterr().err)


def test_brackets_in_a_message_are_printed_verbatim(tmp_path, capsys):
    """Rich markup must not eat '[...]' in paths or messages."""
    root = tmp_path / "[data]" / "[red]corpora"
    code = run_cli(["data", "check", "--data", root])
    assert code == 2
    assert f"'{root}' not found" in the_error_line(capsys.readouterr().err)


def test_a_bad_config_value_names_the_field(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text(f'[data]\nroot = "{tmp_path}"\ntask = "emotion"\n')
    code = run_cli(["train", "--config", config, "--dry-run"])
    assert code == 2
    assert "DataConfig.task: 'emotion' is not one of stress, physio" in the_error_line(capsys.readouterr().err)


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(MissingDataError, match="nowhere"):
        main(["--debug", "data", "check", "--data", str(tmp_path / "nowhere")])


def test_usage_errors_keep_their_click_message_and_exit_code(capsys):
    assert run_cli(["synth"]) == 2
    err = capsys.readouterr().err
    assert "Missing argument" in err and "Traceback" not in err
    assert run_cli(["no-such-command"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_sweep_without_a_subcommand_runs_a_sweep(tmp_path, capsys):
    try:
        main(["sweep", "--data", str(tmp_path), "--model", "gcnn", "--dry-run"])
    except SystemExit as exc:  # typer may exit 0 explicitly
        assert not exc.code
    assert "grid size 24" in capsys.readouterr().out


@pytest.mark.parametrize(("split", "names"), [((3, 1, 1), ("1 devel subject", "at least 2 devel")),
                                              ((1, 2, 1), ("1 train subject", "3 folds"))])
def test_reproduce_refuses_a_partition_the_fusion_cannot_split_before_training(tmp_path, capsys, split, names):
    n_train, n_devel, n_test = split
    synthesize(tmp_path / "d", SynthConfig(task=Task.STRESS, seed=3, n_train=n_train, n_devel=n_devel, n_test=n_test,
                                           minutes=0.3, features=("egemaps",)))
    code = run_cli(["reproduce", "--data", tmp_path / "d", "--profile", "quick", "--out", tmp_path / "out"])
    line = the_error_line(capsys.readouterr().err)
    assert code == 2
    assert "partition.csv" in line and all(n in line for n in names), line
    assert not (tmp_path / "out" / "runs").exists()  # refused before any training
