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
