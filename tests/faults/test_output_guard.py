"""The one output guard (issue 30, round three): no command that writes may put its output inside the corpus or
the hidden test labels, onto one of its own inputs, or over a finished output of another kind; with
``--overwrite`` only its own entries are replaced. Every case is a black-box CLI call: exit code 2, one error line,
no traceback, and every input and neighbouring folder hashed unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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
                                          features=("egemaps", "vggface", "ECG", "resp", "BPM")))
    import soundfile

    t = np.arange(16000 * 3) / 16000
    soundfile.write(base / "talk.wav", (0.1 * np.sin(2 * np.pi * 220 * t)).astype("float32"), 16000)
    for name, features, target in (("a", "egemaps", "arousal"), ("b", "bio", "arousal"),
                                   ("v", "egemaps", "valence")):
        assert run(["train", "--data", base / "data", "--features", features, "--target", target, *TINY,
                    "--out", base / name]) == 0
    return base


def refused(argv: list, capsys, *, words: str | tuple[str, ...], world: Path) -> None:
    """``argv`` exits 2 with one error line holding ``words`` (one of them, for a tuple); nothing in ``world``
    changed."""
    before = tree_digest(world)
    capsys.readouterr()
    assert run(argv) == 2
    line = the_error_line(capsys.readouterr().err)
    assert any(w in line for w in ((words,) if isinstance(words, str) else words)), line
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


# -- the other writers: reproduce, sweep, predict-recording, demo (a run folder), synth and extract (a data root),
#    personalise and personalise-fuse (their own world below) --------------------------------------------------------

WRITERS = {
    "reproduce": lambda w, out: ["reproduce", "--data", w / "data", "--profile", "smoke", "--out", out],
    "reproduce --dry-run": lambda w, out: ["reproduce", "--data", w / "data", "--profile", "smoke", "--dry-run",
                                           "--out", out],
    "sweep": lambda w, out: ["sweep", "run", "--data", w / "data", "--features", "egemaps", "--trials", "1",
                             "--out", out],
    "predict-recording": lambda w, out: ["predict-recording", "--audio", w / "talk.wav", "--model", w / "a",
                                         "--out", out],
    "demo": lambda w, out: ["demo", "--profile", "smoke", "--out", out],
}
HAS_OVERWRITE = {"reproduce", "reproduce --dry-run"}


@pytest.mark.parametrize("where", sorted(CORPUS_OUTS))
@pytest.mark.parametrize("command", sorted(WRITERS))
def test_no_other_writer_writes_inside_or_over_a_corpus(world, capsys, command, where):
    """Every command that writes a folder refuses one in or over the corpus, before any work (``demo`` keeps a
    corpus of its own in OUT/data, so a data root is to it a folder of foreign files)."""
    argv = WRITERS[command](world, CORPUS_OUTS[where](world))
    words = ("corpus", "not a musefusion demo output") if command == "demo" else "corpus"
    refused(argv, capsys, words=words, world=world)
    if command in HAS_OVERWRITE:
        refused([*argv, "--overwrite"], capsys, words=words, world=world)


@pytest.mark.parametrize("command", sorted(WRITERS))
def test_no_other_writer_writes_over_a_finished_run(world, capsys, command):
    """A run folder is not a reproduction, a sweep, curves or a demo: refused, advising --overwrite only where the
    command has it."""
    refused(WRITERS[command](world, world / "v"), capsys, words=f"not a musefusion {command.split()[0]}"
            .replace("predict-recording", "curves"), world=world)
    capsys.readouterr()
    run(WRITERS[command](world, world / "v"))
    assert ("--overwrite" in capsys.readouterr().err) == (command in HAS_OVERWRITE)


def test_predict_recording_never_writes_onto_its_model_or_recording(world, capsys):
    for out in (world / "a", world / "a" / "curves"):
        refused(WRITERS["predict-recording"](world, out), capsys, words="an input of this command", world=world)


DATA_ROOT_WRITERS = {
    "synth": lambda w, out: ["synth", out, "--task", "physio", "--split", "2/2/2", "--minutes", "0.2"],
    "extract": lambda w, out: ["extract", "--audio", w / "talk.wav", "--features", "egemaps", "--id", "new",
                               "--out", out],
}
NOT_DATA_ROOTS = {**{k: v for k, v in CORPUS_OUTS.items() if k != "the data root"},
                  "a corpus folder": lambda w: w / "data" / "c3_muse_stress",
                  "a run": lambda w: w / "a"}


@pytest.mark.parametrize("where", sorted(NOT_DATA_ROOTS))
@pytest.mark.parametrize("command", sorted(DATA_ROOT_WRITERS))
def test_synth_and_extract_write_only_into_a_data_root(world, capsys, command, where):
    """``synth`` and ``extract`` write OUT/<corpus>/...: an OUT inside a corpus or the hidden test labels, or a run
    folder, is refused (``extract --out <test_labels>`` once wrote features among the hidden labels, exit 0)."""
    argv = DATA_ROOT_WRITERS[command](world, NOT_DATA_ROOTS[where](world))
    words = "holds a musefusion output" if where == "a run" else "lies inside a corpus or its hidden test labels"
    refused(argv, capsys, words=words, world=world)
    refused([*argv, "--overwrite"], capsys, words=words, world=world)


def test_synth_and_extract_add_to_a_data_root_and_keep_what_is_there(world, tmp_path):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(world / "data", root)
    before = tree_digest(root)
    assert run(DATA_ROOT_WRITERS["synth"](world, root)) == 0
    assert run(DATA_ROOT_WRITERS["extract"](world, root)) == 0
    after = tree_digest(root)
    assert {k: after[k] for k in before} == before  # nothing that was there changed
    new = set(after) - set(before)
    assert "c3_muse_stress/feature_segments/egemaps/new.csv" in new
    assert any(k.startswith("c4_muse_physio/") for k in new)


@pytest.fixture(scope="module")
def pworld(tmp_path_factory) -> Path:
    """A personalisation corpus, a general run ``g`` and two finished personalisations of it (``pa``, ``pb``)."""
    from tests.personal_corpus import train_general, write_personal_corpus

    base = tmp_path_factory.mktemp("pguard")
    write_personal_corpus(base / "data")
    train_general(base / "data", base / "g", epochs=2)
    for name, epochs in (("pa", "1"), ("pb", "2")):
        assert run(["personalise", base / "g", "--data", base / "data", "--epochs", epochs, "--out", base / name]) == 0
    return base


PERSONAL = {
    "personalise": lambda w, out: ["personalise", w / "g", "--data", w / "data", "--epochs", "1", "--out", out],
    "personalise-fuse": lambda w, out: ["personalise-fuse", w / "pa", w / "pb", "--data", w / "data", "--out", out],
}
PERSONAL_CORPUS_OUTS = {
    "gold labels": lambda w: w / "data" / "c3_muse_personalisation" / "label_segments",
    "the test-label root": lambda w: w / "data" / "test_labels",
    "the data root": lambda w: w / "data",
}


@pytest.mark.parametrize("where", sorted(PERSONAL_CORPUS_OUTS))
@pytest.mark.parametrize("command", sorted(PERSONAL))
def test_personalisation_writes_nothing_inside_or_over_its_corpus(pworld, capsys, command, where):
    """``personalise --out <corpus>`` was refused, but only after its log.txt had been written there."""
    argv = PERSONAL[command](pworld, PERSONAL_CORPUS_OUTS[where](pworld))
    refused(argv, capsys, words="corpus", world=pworld)
    if command == "personalise":  # personalise-fuse has no --overwrite
        refused([*argv, "--overwrite"], capsys, words="corpus", world=pworld)


def test_personalisation_never_writes_onto_its_inputs(pworld, capsys):
    """``personalise g --out g --overwrite`` would have replaced the general run's config.toml and metrics.json."""
    for out in (pworld / "g", pworld):
        for extra in ([], ["--overwrite"]):
            refused([*PERSONAL["personalise"](pworld, out), *extra], capsys, words="is or holds the general run",
                    world=pworld)
    for out in (pworld / "pa", pworld / "pb" / "sub"):
        refused(PERSONAL["personalise-fuse"](pworld, out), capsys, words="an input of this command", world=pworld)


def test_personalisation_never_writes_over_another_kind_of_output(pworld, tmp_path, capsys):
    fused = tmp_path / "fused"
    assert run(PERSONAL["personalise-fuse"](pworld, fused)) == 0
    before = tree_digest(fused)
    refused(PERSONAL["personalise"](pworld, fused), capsys, words="holds a finished musefusion personalise-fusion",
            world=pworld)
    assert tree_digest(fused) == before
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.md").write_text("mine\n")
    refused(PERSONAL["personalise"](pworld, other), capsys, words="not a musefusion personalise output",
            world=pworld)
    assert list(other.iterdir()) == [other / "notes.md"]


@pytest.fixture(scope="module")
def study(world, tmp_path_factory) -> Path:
    """A one-trial sweep of the world's corpus; returns its folder (study.db inside)."""
    out = tmp_path_factory.mktemp("study") / "sweep"
    assert run(["sweep", "run", "--data", world / "data", "--features", "egemaps", "--model", "lstm", "--trials", "1",
                "--epochs", "1", "--win-len", "40", "--hop-len", "20", "--study", "s", "--out", out]) == 0
    return out


def test_the_sweep_report_writes_only_where_a_report_belongs(world, study, capsys):
    """``sweep report --out`` once wrote its tables and plots anywhere: into the corpus labels, into a run."""
    argv = ["sweep", "report", "--study", "s", "--storage", f"sqlite:///{study / 'study.db'}", "--out"]
    for where in ("gold labels", "hidden test labels", "the data root"):
        refused([*argv, CORPUS_OUTS[where](world)], capsys, words="corpus", world=world)
    refused([*argv, world / "a"], capsys, words="not a musefusion sweep report output", world=world)
    before = tree_digest(study)
    refused([*argv, study], capsys, words="an input of this command", world=study)
    assert tree_digest(study) == before
    for _ in range(2):  # the default, beside the study, is written and written again
        assert run(argv[:-1]) == 0
    assert (study / "report" / "best_config.toml").is_file()
