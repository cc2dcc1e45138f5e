"""The fault catalogue (issue 12): broken and hostile input across every command.

Every case asserts the exit code, one ``error:`` line naming the file, column or option at fault (or, for
``data check`` and ``validate-submission``, ``problem:`` lines and exit 1), no traceback, no partial output, and
that nothing changed outside the output folder: the corpus and a sentinel folder are hashed before and after.
"""

from __future__ import annotations

import dataclasses
import errno
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from musefusion.data.synth import SynthConfig, synthesize
from musefusion.types import Task
from tests import corpus_faults
from tests.cli_helpers import run_cli as run
from tests.cli_helpers import tree_digest as digest

TINY = ["--model", "lstm", "--hidden", "8", "--epochs", "1", "--win-len", "40", "--hop-len", "20"]


@pytest.fixture(autouse=True)
def _no_env(monkeypatch, tmp_path):
    monkeypatch.delenv("MUSEFUSION_DATA", raising=False)
    monkeypatch.setenv("MUSEFUSION_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pristine")
    synthesize(root / "data", SynthConfig(task=Task.STRESS, seed=8, n_train=4, n_devel=2, n_test=2, minutes=0.4,
                                          features=("egemaps", "ECG", "resp", "BPM")))
    assert run(["train", "--data", root / "data", "--features", "egemaps", *TINY, "--out", root / "run"]) == 0
    return root


@dataclasses.dataclass
class World:
    """A private copy of the corpus and a trained run, a sentinel folder, and where outputs go."""

    tmp: Path
    data: Path
    corpus: Path
    run_dir: Path
    sentinel: Path
    out: Path


@pytest.fixture
def world(pristine, tmp_path) -> World:
    shutil.copytree(pristine / "data", tmp_path / "data")
    shutil.copytree(pristine / "run", tmp_path / "run")
    (tmp_path / "sentinel").mkdir()
    (tmp_path / "sentinel" / "keep.txt").write_text("do not touch\n")
    return World(tmp_path, tmp_path / "data", tmp_path / "data" / "c3_muse_stress", tmp_path / "run",
                 tmp_path / "sentinel", tmp_path / "out")


@dataclasses.dataclass(frozen=True)
class Case:
    """One fault: how to set it up, the command, the exit code and what its message must say."""

    name: str
    argv: Callable[[World], list]  # the command line
    match: str  # regex the error line (or a problem line) must contain; {path} is filled by setup's return value
    setup: Callable[[World], Any] = lambda w: None  # breaks something; may return a path the message names
    code: int = 2


def _file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("a file, not a folder\n")
    return path


def _config(w: World, body: str, encoding: str = "utf-8") -> Path:
    path = w.tmp / "run.toml"
    path.write_bytes((f'[data]\nroot = "{w.data}"\nfeatures = ["egemaps"]\n' + body).encode(encoding))
    return path


def _edit(path: Path, edit: Callable[[list[str]], list[str]]) -> Path:
    path.write_text("\n".join(edit(path.read_text().splitlines())) + "\n")
    return path


def _feature(w: World, sid: str = "2", feature: str = "egemaps") -> Path:
    return w.corpus / "feature_segments" / feature / f"{sid}.csv"


def _devel_id(w: World) -> str:
    lines = (w.corpus / "metadata" / "partition.csv").read_text().splitlines()[1:]
    return next(line.split(",")[0] for line in lines if line.endswith("devel"))


def _latin1_header(w: World) -> Path:
    path = _feature(w)
    raw = path.read_bytes()
    path.write_bytes(raw.replace(b"egemaps_0", b"egemaps_\xe90", 1))
    return path


def _seconds(w: World) -> Path:
    def edit(lines: list[str]) -> list[str]:
        out = [lines[0]]
        for line in lines[1:]:
            ts, rest = line.split(",", 1)
            out.append(f"{int(ts) / 1000:.1f},{rest}")
        return out
    return _edit(_feature(w), edit)


def _symlink_out(w: World) -> Path:
    path = _feature(w)
    path.unlink()
    path.symlink_to("/etc/passwd")
    return path


def _hours_off(w: World) -> Path:
    def edit(lines: list[str]) -> list[str]:
        return [lines[0]] + [f"{int(line.split(',', 1)[0]) + 36_000_000},{line.split(',', 1)[1]}"
                             for line in lines[1:]]
    return _edit(_feature(w, sid=_devel_id(w)), edit)


def _drop_partition(part: str) -> Callable[[World], Path]:
    def setup(w: World) -> Path:
        path = w.corpus / "metadata" / "partition.csv"
        return _edit(path, lambda lines: [line for line in lines if not line.endswith(f",{part}")])
    return setup


def _foreign_files(w: World) -> Path:
    w.out.mkdir(parents=True)
    (w.out / "notes.md").write_text("mine\n")
    return w.out


def _crashed_run(w: World) -> Path:
    """What a crash right after start leaves: another config's config.toml and an empty seed folder."""
    shutil.copytree(w.run_dir, w.out)
    for p in w.out.iterdir():
        if p.name != "config.toml":
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    (w.out / "seed_1").mkdir()
    return w.out


def _bio_1hz(w: World) -> Path:
    path = w.tmp / "slow.csv"
    t = np.arange(60)
    path.write_text("time_s,ecg,resp\n" + "".join(f"{x},{np.sin(x)},{np.cos(x)}\n" for x in t))
    return path


def _short_audio(w: World) -> Path:
    import soundfile

    path = w.tmp / "blip.wav"
    rng = np.random.default_rng(0)
    soundfile.write(path, rng.normal(0, 0.3, 160).astype(np.float32), 16000)
    return path


def _broken_submission(edit: Callable[[Path], Path]) -> Callable[[World], Path]:
    def setup(w: World) -> Path:
        assert run(["submit", w.run_dir, "--out", w.tmp / "sub"]) == 0
        return edit(next(sorted((w.tmp / "sub" / "arousal").glob("*.csv")).__iter__()))
    return setup


def _link_passwd(path: Path) -> Path:
    path.unlink()
    path.symlink_to("/etc/passwd")
    return path


TRAIN = ["train", "--model", "lstm", "--hidden", "8", "--epochs", "1", "--win-len", "40", "--hop-len", "20"]


def _train(w: World, *extra: Any) -> list:
    """``train`` on the world's corpus; a flag in ``extra`` replaces the tiny default of the same name."""
    base = list(TRAIN)
    for flag in [e for e in extra if isinstance(e, str) and e.startswith("--")]:
        if flag in base:
            i = base.index(flag)
            del base[i:i + 2]
    return [*base, "--data", w.data, "--features", "egemaps", "--out", w.out, *extra]


CASES = [
    # --out naming an existing file, in every command that writes
    Case("synth_out_is_a_file", lambda w: ["synth", _file(w.out)], r"OUT '{path}' is a file", setup=lambda w: w.out),
    Case("train_out_is_a_file", lambda w: _train(w), r"--out '{path}' is a file", setup=lambda w: _file(w.out)),
    Case("predict_out_is_a_file", lambda w: ["predict", w.run_dir, "--out", w.out], r"--out '{path}' is a file",
         setup=lambda w: _file(w.out)),
    Case("fuse_out_is_a_file", lambda w: ["fuse", "--streams", w.run_dir, "--out", w.out],
         r"--out '{path}' is a file", setup=lambda w: _file(w.out)),
    Case("reproduce_out_is_a_file", lambda w: ["reproduce", "--data", w.data, "--profile", "smoke", "--out", w.out],
         r"--out '{path}' is a file", setup=lambda w: _file(w.out)),
    Case("submit_out_is_a_file", lambda w: ["submit", w.run_dir, "--out", w.out], r"--out '{path}' is a file",
         setup=lambda w: _file(w.out)),
    Case("extract_out_is_a_file", lambda w: ["extract", "--bio", w.tmp / "b.csv", "--out", w.out],
         r"--out '{path}' is a file", setup=lambda w: _file(w.out)),
    Case("predict_recording_out_is_a_file",
         lambda w: ["predict-recording", "--bio", w.tmp / "b.csv", "--model", w.run_dir, "--out", w.out],
         r"--out '{path}' is a file", setup=lambda w: _file(w.out)),
    Case("sweep_out_is_a_file", lambda w: ["sweep", "--data", w.data, "--features", "egemaps", "--model", "lstm",
                                           "--trials", "1", "--out", w.out], r"--out '{path}' is a file",
         setup=lambda w: _file(w.out)),
    Case("demo_out_is_a_file", lambda w: ["demo", "--out", w.out], r"--out '{path}' is a file",
         setup=lambda w: _file(w.out)),
    # an --out that holds someone else's files
    Case("train_out_holds_foreign_files", lambda w: _train(w), r"--out '{path}' already holds files .*'notes.md'",
         setup=_foreign_files),
    Case("reproduce_out_holds_foreign_files",
         lambda w: ["reproduce", "--data", w.data, "--profile", "smoke", "--out", w.out],
         r"'{path}' already holds files that are not a musefusion reproduce output", setup=_foreign_files),
    Case("sweep_out_holds_foreign_files",
         lambda w: ["sweep", "--data", w.data, "--features", "egemaps", "--model", "lstm", "--out", w.out],
         r"'{path}' already holds files that are not a musefusion sweep output", setup=_foreign_files),
    Case("a_crashed_run_of_another_config", lambda w: _train(w, "--target", "valence"),
         r"'{path}' holds an unfinished run of another configuration \(data.target 'arousal' -> 'valence'.*"
         r"--overwrite", setup=_crashed_run),
    # config files: wrong types, ranges, encodings
    Case("config_epochs_a_string", lambda w: ["train", "--config", _config(w, '[train]\nepochs = "ten"\n'),
                                               "--dry-run"], r"\[train\].epochs: 'ten' must be a whole number"),
    Case("config_epochs_a_float", lambda w: ["train", "--config", _config(w, "[train]\nepochs = 1e12\n"),
                                              "--dry-run"], r"\[train\].epochs: 1000000000000.0 must be a whole number"),
    Case("config_epochs_too_many", lambda w: ["train", "--config", _config(w, "[train]\nepochs = 1000000000000\n"),
                                               "--dry-run"], r"epochs: 1000000000000 must be between 1 and 100000"),
    Case("config_seeds_not_a_list", lambda w: ["train", "--config", _config(w, "[train]\nseeds = 1\n"), "--dry-run"],
         r"\[train\].seeds: 1 must be a list"),
    Case("config_negative_weight_decay", lambda w: ["train", "--config", _config(w, "[train]\nweight_decay = -1\n"),
                                                     "--dry-run"], r"weight_decay: -1.0 must be in \[0, 1\)"),
    Case("config_hidden_huge", lambda w: ["train", "--config", _config(w, '[model]\nname = "lstm"\n'
                                                                       "hidden = 1000000000\n"), "--dry-run"],
         r"hidden: 1000000000 must be between 1 and 8192"),
    Case("config_hidden_a_float", lambda w: ["train", "--config", _config(w, '[model]\nname = "lstm"\n'
                                                                          "hidden = 1e9\n"), "--dry-run"],
         r"\[model\].hidden: 1000000000.0 must be a whole number"),
    Case("config_dropout_out_of_range", lambda w: ["train", "--config", _config(w, "[model]\ndropout = 2.0\n"),
                                                    "--dry-run"], r"dropout: 2.0 must be in \[0, 1\)"),
    Case("config_utf16", lambda w: ["train", "--config", _config(w, "", encoding="utf-16"), "--dry-run"],
         r"'.*run.toml' is not UTF-8 text"),
    Case("config_not_toml", lambda w: ["train", "--config", _file(w.tmp / "bad.toml"), "--dry-run"],
         r"'.*bad.toml' is not valid TOML"),
    Case("config_unknown_section", lambda w: ["train", "--config", _config(w, "[optimiser]\nlr = 1\n"), "--dry-run"],
         r"Unknown key 'optimiser' in the sections of"),
    Case("config_typo_in_train", lambda w: ["train", "--config", _config(w, "[train]\nlearning_rate = 1\n"),
                                             "--dry-run"], r"Unknown key 'learning_rate' in \[train\]"),
    Case("config_bad_schedule", lambda w: ["train", "--config", _config(w, '[train]\nschedule = "cosine"\n'),
                                            "--dry-run"], r"schedule: 'cosine' is not one of paper, plateau"),
    Case("config_bad_device", lambda w: ["train", "--config", _config(w, '[train]\ndevice = "tpu"\n'), "--dry-run"],
         r"device: 'tpu' must be auto, cpu or cuda"),
    Case("config_bad_fill", lambda w: ["train", "--config", _config(w, 'fill = "mean"\n'), "--dry-run"],
         r"fill: 'mean' is not one of zero, ffill"),
    # flags
    Case("flag_lr_nan", lambda w: _train(w, "--lr", "nan"), r"TrainConfig.lr: nan must be a number in \(0, 10\]"),
    Case("flag_epochs_zero", lambda w: _train(w, "--epochs", "0"), r"--epochs"),
    Case("flag_batch_zero", lambda w: _train(w, "--batch-size", "0"), r"--batch-size"),
    Case("flag_hidden_zero", lambda w: _train(w, "--hidden", "0"), r"hidden: 0 must be between 1"),
    Case("flag_seed_negative", lambda w: _train(w, "--seeds", "-1"), r"seeds: \[-1\] must be whole numbers"),
    Case("flag_twice", lambda w: [*_train(w), "--lr", "0.1", "--lr", "0.2"], r"Option --lr is given twice"),
    Case("flag_device_cuda_without_gpu", lambda w: _train(w, "--device", "cuda"),
         r"--device cuda: this torch .* sees 0 CUDA device"),
    Case("flag_model_twice", lambda w: [*_train(w), "--model", "transformer"], r"Option --model is given twice"),
    Case("flag_unknown_model", lambda w: [*_train(w)[:1], *_train(w)[3:], "--model", "transformer"],
         r"Unknown model 'transformer' \(--model\)"),
    Case("flag_bad_split", lambda w: ["synth", w.tmp / "s", "--split", "41-14-14"], r"--split '41-14-14'"),
    # corpus files
    Case("latin1_byte_in_a_header", lambda w: _train(w), r"Feature file '{path}'", setup=_latin1_header),
    Case("timestamps_in_seconds", lambda w: _train(w), r"'{path}': timestamps look like seconds",
         setup=_seconds),
    Case("feature_file_links_to_etc_passwd", lambda w: _train(w), r"'{path}' is a symbolic link out of the corpus",
         setup=_symlink_out),
    Case("data_check_of_a_link_to_etc_passwd", lambda w: ["data", "check", "--data", w.data],
         r"'{path}' is a symbolic link out of the corpus", setup=_symlink_out, code=1),
    Case("data_check_no_devel_subject", lambda w: ["data", "check", "--data", w.data], r"lists no devel subject",
         setup=_drop_partition("devel"), code=1),
    Case("data_check_no_train_subject", lambda w: ["data", "check", "--data", w.data], r"lists no train subject",
         setup=_drop_partition("train"), code=1),
    Case("data_check_features_hours_off", lambda w: ["data", "check", "--data", w.data],
         r"'{path}' does not overlap its label grid at all", setup=_hours_off, code=1),
    Case("data_check_inf_label", lambda w: ["data", "check", "--data", w.data], r"column 'value' holds 1 infinite",
         setup=lambda w: _edit(w.corpus / "label_segments" / "valence" / f"{_devel_id(w)}.csv",
                               lambda ls: [ls[0], ls[1].rsplit(",", 1)[0] + ",inf", *ls[2:]]),
         code=1),
    # extraction
    Case("extract_bio_at_1_hz", lambda w: ["extract", "--bio", _bio_1hz(w), "--bio-time-unit", "s", "--out", w.out],
         r"Bio file '.*slow.csv': the signals are sampled at 1 Hz"),
    Case("extract_audio_too_short", lambda w: ["extract", "--audio", _short_audio(w), "--features", "egemaps",
                                               "--out", w.out], r"Audio file '.*blip.wav': Audio is 0.01 s long"),
    Case("extract_id_too_long", lambda w: ["extract", "--bio", w.tmp / "b.csv", "--id", "x" * 256, "--out", w.out],
         r"longer than 200 characters"),
    # submissions
    Case("submission_file_links_to_etc_passwd", lambda w: ["validate-submission", w.tmp / "sub", "--data", w.data],
         r"'{path}' is a symbolic link out of the submission", setup=_broken_submission(_link_passwd), code=1),
    Case("submission_cell_with_markup", lambda w: ["validate-submission", w.tmp / "sub", "--data", w.data],
         r"column 'value' is not numeric", code=1, setup=_broken_submission(
             lambda p: _edit(p, lambda ls: [ls[0], ls[1].rsplit(",", 1)[0] + ",[/oops]", *ls[2:]]))),
    Case("submit_two_runs_for_one_target", lambda w: ["submit", w.run_dir, w.run_dir, "--out", w.out],
         r"Two runs predict 'arousal'"),
    Case("submit_not_a_run", lambda w: ["submit", w.sentinel, "--out", w.out], r"'.*sentinel/config.toml' not found"),
    Case("predict_not_a_run", lambda w: ["predict", w.sentinel, "--out", w.out], r"'.*sentinel/config.toml' not found"),
    Case("fuse_a_stream_that_is_not_a_run", lambda w: ["fuse", "--streams", w.sentinel, "--out", w.out],
         r"Stream '.*sentinel' is not a finished run"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fault(world, case, capsys):
    if case.name == "flag_device_cuda_without_gpu":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
    (world.tmp / "b.csv").write_text("time_s,ecg,resp\n0,0,0\n")
    named = case.setup(world)
    before = {"corpus": digest(world.data), "sentinel": digest(world.sentinel), "run": digest(world.run_dir)}
    out_before = digest(world.out) if world.out.is_dir() else None
    code = run(case.argv(world))
    captured = capsys.readouterr()
    assert code == case.code, (captured.out, captured.err)
    assert "Traceback" not in captured.err
    match = case.match.replace("{path}", re.escape(str(named)) if named is not None else "")
    if case.code == 2:
        lines = [line for line in captured.err.splitlines() if "error:" in line]
        assert len(lines) == 1, captured.err
        assert re.search(match, lines[0]), lines[0]
    else:
        lines = [line for line in captured.out.splitlines() if line.startswith("problem:")]
        assert any(re.search(match, line) for line in lines), captured.out
    assert digest(world.sentinel) == before["sentinel"]
    assert digest(world.data) == before["corpus"]  # nothing read was changed (setups ran before)
    assert digest(world.run_dir) == before["run"]
    if out_before is None:
        assert not world.out.exists() or world.out.is_file() or not any(world.out.rglob("metrics.json"))
    else:
        assert digest(world.out) == out_before


# ----------------------------------------------------------------------------------------------- the corpus faults


@pytest.mark.parametrize("fault", corpus_faults.FAULTS, ids=[f.name for f in corpus_faults.FAULTS])
def test_corpus_fault_in_a_sweep_is_one_line(tiny_corpus, tmp_path, capsys, fault):
    named = fault.mutate(tiny_corpus / "c3_muse_stress")
    features = fault.options.get("features", ("feat_a", "feat_b"))
    before = digest(tiny_corpus / "c3_muse_stress")
    code = run(["sweep", "--data", tiny_corpus, "--features", *features, "--target",
                fault.options.get("target", "arousal"), "--model", "lstm", "--epochs", "1", "--trials", "1",
                "--out", tmp_path / "sweep"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and f"'{named}'" in lines[0] and re.search(fault.match, lines[0]), err
    assert digest(tiny_corpus / "c3_muse_stress") == before
    assert not list((tmp_path / "sweep").rglob("metrics.json"))


CHECKED = [f for f in corpus_faults.FAULTS if f.in_check]


@pytest.mark.parametrize("fault", CHECKED, ids=[f.name for f in CHECKED])
def test_corpus_fault_is_a_data_check_problem(tiny_corpus, capsys, fault):
    named = fault.mutate(tiny_corpus / "c3_muse_stress")
    before = digest(tiny_corpus)
    code = run(["data", "check", "--data", tiny_corpus])
    out = capsys.readouterr()
    assert code == 1 and "Traceback" not in out.err
    problems = [line for line in out.out.splitlines() if line.startswith("problem:")]
    assert any(f"'{named}'" in p for p in problems), out.out
    assert digest(tiny_corpus) == before


# ----------------------------------------------------------------------------------------------- faults of the machine


def test_ctrl_c_of_train_says_how_to_resume(world, capsys, monkeypatch):
    from musefusion.training import run as run_mod

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_mod, "fit", interrupted)
    assert run(_train(world)) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "run the same command again to resume" in err and "Traceback" not in err


@pytest.mark.parametrize("where", ["predictions", "checkpoint"])
def test_a_full_disk_is_one_line_and_leaves_no_partial_output(world, capsys, monkeypatch, where):
    import pyarrow.csv as pacsv
    import torch

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    if where == "predictions":
        monkeypatch.setattr(pacsv, "write_csv", full)
    else:
        monkeypatch.setattr(torch, "save", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("write failed")))
    code = run(_train(world))
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    line = next(line for line in err.splitlines() if "error:" in line)
    assert "Could not write '" in line and "nothing partial was left there" in line
    assert not (world.out / "metrics.json").exists()
    assert not [p for p in world.out.rglob("*") if p.name.endswith(".tmp")]


def test_a_full_disk_during_submit_keeps_the_old_submission(world, capsys, monkeypatch):
    import pyarrow.csv as pacsv

    assert run(["submit", world.run_dir, "--out", world.out]) == 0
    before = digest(world.out)
    monkeypatch.setattr(pacsv, "write_csv", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    assert run(["submit", world.run_dir, "--out", world.out]) == 2
    assert "Could not write" in capsys.readouterr().err
    assert digest(world.out) == before


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04truncated"])
def test_a_corrupt_cache_entry_is_rebuilt(world, capsys, content):
    from musefusion.data import cache

    assert run(_train(world)) == 0
    entries = list((world.tmp / "cache").glob("corpus-*.npz"))
    assert len(entries) == 1
    entries[0].write_bytes(content)
    capsys.readouterr()
    assert run([*_train(world)[:-2], "--out", world.tmp / "again"]) == 0
    err = capsys.readouterr().err
    assert f"corpus cache entry '{entries[0]}' is unreadable" in err and "Traceback" not in err
    assert "x" in cache.load_npz(entries[0])  # rebuilt
    assert (world.tmp / "again" / "metrics.json").is_file()


def test_a_failed_cache_write_warns_and_training_goes_on(world, capsys, monkeypatch):
    from musefusion.data import cache

    monkeypatch.setattr(cache, "save_npz", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    assert run(_train(world)) == 0
    assert "could not write the corpus cache" in capsys.readouterr().err
    assert (world.out / "metrics.json").is_file()


def test_the_sweep_never_prints_a_storage_password(world, capsys):
    url = "postgresql://ana:s3cret-pw@db.example.org:5432/studies"
    assert run(["sweep", "--data", world.data, "--features", "egemaps", "--model", "lstm", "--storage", url,
                "--out", world.out, "--dry-run"]) == 0
    out = capsys.readouterr()
    assert "s3cret-pw" not in out.out + out.err and "ana:***@db.example.org" in out.out


def test_a_features_string_in_a_config_is_one_feature_set(world, capsys):
    import tomllib

    path = world.tmp / "c.toml"
    path.write_text(f'[data]\nroot = "{world.data}"\nfeatures = "egemaps"\n')
    assert run(["train", "--config", path, "--dry-run"]) == 0
    assert tomllib.loads(capsys.readouterr().out)["data"]["features"] == ["egemaps"]


@pytest.mark.parametrize("which", ["feature", "partition", "config"])
def test_an_unreadable_file_is_one_line(world, capsys, monkeypatch, which):
    """As root every file is readable, so the permission error a colleague's account gets is raised here."""
    import pandas as pd
    import pyarrow.csv as pacsv

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    if which == "feature":
        monkeypatch.setattr(pacsv, "read_csv", denied)
        argv = _train(world)
    elif which == "partition":
        monkeypatch.setattr(pd, "read_csv", denied)
        argv = _train(world)
    else:
        config = _config(world, "")
        real_read = Path.read_text

        def guarded(self, *args, **kwargs):
            if str(self) == str(config):
                raise PermissionError(13, "Permission denied", str(self))
            return real_read(self, *args, **kwargs)

        monkeypatch.setattr(Path, "read_text", guarded)
        argv = ["train", "--config", config, "--dry-run"]
    assert run(argv) == 2
    err = capsys.readouterr().err
    line = next(line for line in err.splitlines() if "error:" in line)
    assert "permission denied" in line and "Traceback" not in err
    assert not (world.out / "metrics.json").exists()
