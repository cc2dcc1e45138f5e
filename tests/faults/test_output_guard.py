"""The one output guard (issue 30, round three): no command that writes may put its output inside the corpus or
the hidden test labels, onto one of its own inputs, or over a finished output of another kind; with
``--overwrite`` only its own entries are replaced. Every case is a black-box CLI call: exit code 2, one error line,
no traceback, and every input and neighbouring folder hashed unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from musefusion.data.synth import SynthConfig, synthesize
from musefusion.types import Task
from tests.cli_helpers import run_cli as run
from tests.cli_helpers import the_error_line, tree_digest

TINY = ["--model", "lstm", "--hidden", "8", "--epochs", "1", "--win-len", "40", "--hop-len", "20"]


@pytest.fixture(autouse=True)
def _no_data_env(monkeypatch):
    monkeypatch.delenv("MUSEFUSION_DATA", raising=False)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """A corpus (with hidden test labels) and two finished runs per target, made once for the module."""
    base = tmp_path_factory.mktemp("guard")
    synthesize(base / "data", SynthConfig(task=Task.STRESS, seed=4, n_train=4, n_devel=3, n_test=2, minutes=0.4,
                                          features=("egemaps", "ECG", "resp", "BPM")))
    for name, features, target in (("a", "egemaps", "arousal"), ("b", "bio", "arousal"),
                                   ("v", "egemaps", "valence")):
        assert run(["train", "--data", base / "data", "--features", features, "--target", target, *TINY,
                    "--out", base / name]) == 0
    return base


def refused(argv: list, capsys, *, words: str, world: Path) -> None:
    """``argv`` exits 2 with one error line holding ``words``; nothing in ``world`` changed."""
    before = tree_digest(world)
    capsys.readouterr()
    assert run(argv) == 2
    line = the_error_line(capsys.readouterr().err)
    assert words in line, line
    assert tree_digest(world) == before


CORPUS_OUTS = {
    "gold labels": lambda w: w / "data" / "c3_muse_stress" / "label_segments",
    "a gold label folder": lambda w: w / "data" / "c3_muse_stress" / "label_segments" / "arousal",
    "hidden test labels": lambda w: w / "data" / "test_labels" / "c3_muse_stress" / "label_segments",
    "the test-label root": lambda w: w / "data" / "test_labels",
    "the data root": lambda w: w / "data",
    "a feature folder": lambda w: w / "data" / "c3_muse_stress" / "feature_segments" / "egemaps",
}

COMMANDS = {
    "submit": lambda w, out: ["submit", w / "a", "--out", out],
    "ensemble": lambda w, out: ["ensemble", w / "a", w / "b", "--out", out],
    "postprocess": lambda w, out: ["postprocess", w / "a", "--out", out],
    "predict": lambda w, out: ["predict", w / "a", "--out", out],
    "fuse": lambda w, out: ["fuse", "--streams", w / "a", w / "b", "--train-on", "in-sample", "--epochs", "1",
                            "--out", out],
    "train": lambda w, out: ["train", "--data", w / "data", "--features", "egemaps", *TINY, "--out", out],
}


@pytest.mark.parametrize("where", sorted(CORPUS_OUTS))
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_no_output_inside_or_over_a_corpus_even_with_overwrite(world, capsys, command, where):
    out = CORPUS_OUTS[where](world)
    argv = COMMANDS[command](world, out)
    refused(argv, capsys, words="corpus", world=world)
    if command not in ("train", "predict"):  # no --overwrite (train refuses a run of another config itself)
        refused([*argv, "--overwrite"], capsys, words="corpus", world=world)


@pytest.mark.parametrize("command", ["ensemble", "postprocess", "submit", "fuse"])
def test_no_output_onto_an_input(world, capsys, command):
    for out in (world / "a", world / "a" / "sub"):
        argv = COMMANDS[command](world, out)
        refused(argv, capsys, words="an input of this command", world=world)
        refused([*argv, "--overwrite"], capsys, words="an input of this command", world=world)


@pytest.mark.parametrize("command", ["ensemble", "postprocess", "predict", "fuse"])
def test_no_output_over_a_finished_run_of_another_kind(world, capsys, command):
    """``ensemble A B --out V`` once replaced an unrelated valence run; ``predict A --out V`` wrote A's predictions
    into V, so ``evaluate V`` reported A's score."""
    refused(COMMANDS[command](world, world / "v"), capsys, words="holds a finished musefusion run", world=world)


def test_overwrite_replaces_only_the_commands_own_entries(world, tmp_path, capsys):
    """``ensemble --overwrite`` and ``postprocess --overwrite`` into a folder with the user's files keep them."""
    for command in ("ensemble", "postprocess"):
        out = tmp_path / command
        out.mkdir()
        (out / "notes.md").write_text("mine\n")
        (out / "figures").mkdir()
        (out / "figures" / "fig1.pdf").write_bytes(b"%PDF")
        assert run(COMMANDS[command](world, out)) == 2  # foreign files: refused without --overwrite
        assert run([*COMMANDS[command](world, out), "--overwrite"]) == 0
        assert (out / "notes.md").read_text() == "mine\n" and (out / "figures" / "fig1.pdf").is_file()
        assert (out / "metrics.json").is_file() and (out / "predictions" / "devel").is_dir()
        assert run([*COMMANDS[command](world, out), "--overwrite"]) == 0  # and again: still kept
        assert (out / "notes.md").is_file() and (out / "figures" / "fig1.pdf").is_file()


@pytest.mark.slow
def test_two_train_processes_on_one_out_one_proceeds_the_other_is_refused(world, tmp_path):
    """Two ``train`` processes of different learning rates started at once on one ``--out``: exactly one trains,
    the other is refused in one line (it once trained seed 2 at another rate than config.toml said)."""
    import subprocess
    import sys

    out = tmp_path / "shared"
    base = [sys.executable, "-c", "from musefusion.cli.app import main; main()", "train", "--data",
            str(world / "data"), "--features", "egemaps", "--model", "lstm", "--hidden", "8", "--epochs", "6",
            "--win-len", "40", "--hop-len", "20", "--seeds", "1", "2", "--out", str(out)]
    procs = [subprocess.Popen([*base, "--lr", lr], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for lr in ("0.05", "0.001")]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _err in results)
    assert codes == [0, 2], results
    refusal = next(err for code, err in results if code == 2)
    assert "Traceback" not in refusal
    line = the_error_line(refusal)
    assert "being written by another musefusion process" in line or "data.lr" in line or "train.lr" in line, line
    winner_lr = float(__import__("tomllib").loads((out / "config.toml").read_text())["train"]["lr"])
    assert winner_lr in (0.05, 0.001)
    import pandas as pd

    for seed in (1, 2):  # every seed was trained at the rate its config.toml states
        history = pd.read_csv(out / f"seed_{seed}" / "history.csv")
        assert len(history) >= 1 and history["lr"].iloc[0] == pytest.approx(winner_lr), history


def test_runs_lists_an_ensemble_of_seeds(world, tmp_path, capsys):
    """An ensemble of one run's seeds records ``seeds = true``: ``runs`` once ended in a traceback on it."""
    two = tmp_path / "two"
    assert run(["train", "--data", world / "data", "--features", "egemaps", *TINY, "--seeds", "1", "2",
                "--out", two]) == 0
    assert run(["ensemble", two, "--seeds", "--out", tmp_path / "ens"]) == 0
    capsys.readouterr()
    assert run(["runs", tmp_path, "--json"]) == 0
    import json

    listed = json.loads(capsys.readouterr().out)
    assert "Traceback" not in json.dumps(listed) and "ens" in json.dumps(listed)


@pytest.mark.parametrize("command", ["ensemble", "postprocess"])
def test_a_folder_another_process_is_writing_is_refused(world, tmp_path, capsys, command):
    """``ensemble`` and ``postprocess`` hold their --out as train, fuse and reproduce do: while another process
    writes the folder, they are refused in one line and leave it as it was."""
    import subprocess
    import sys

    out = tmp_path / "busy"
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from musefusion import rundir\n"
                               f"with rundir.writing({str(out)!r}):\n    print('held', flush=True); sys.stdin.read()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        refused(COMMANDS[command](world, out), capsys, words="being written by another musefusion process",
                world=world)
        assert list(out.iterdir()) == []
    finally:
        holder.communicate("", timeout=60)
    assert run(COMMANDS[command](world, out)) == 0  # once the other process is done, the folder is free
