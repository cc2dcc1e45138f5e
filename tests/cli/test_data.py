"""``musefusion synth`` and ``musefusion data check`` through the real entry point."""

from __future__ import annotations

import pytest

import musefusion.cli.data as data_cli
from musefusion import SynthConfig, synthesize
from musefusion.types import Task
from tests import corpus_faults
from tests.cli_helpers import run_cli

FAULTS = [f for f in corpus_faults.FAULTS if f.in_check]


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch):
    """No wrapping of long tmp paths in rich's output, and no data root from the environment."""
    monkeypatch.setattr(data_cli.console, "width", 2000)
    monkeypatch.delenv("MUSEFUSION_DATA", raising=False)


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "error:" in line]


# ----------------------------------------------------------------------------------------------- synth


def test_synth_writes_the_same_corpus_as_the_library(tmp_path, capsys):
    code = run_cli(["synth", tmp_path / "cli", "--split", "2/1/1", "--minutes", "0.3", "--seed", "4",
                    "--features", "egemaps,BPM", "--task", "physio"])
    out = capsys.readouterr().out
    assert code == 0
    assert "wrote 4 subjects (2/1/1)" in out and "c4_muse_physio" in out
    synthesize(tmp_path / "lib", SynthConfig(task=Task.PHYSIO, seed=4, n_train=2, n_devel=1, n_test=1, minutes=0.3,
                                             features=("egemaps", "BPM")))
    cli = {p.relative_to(tmp_path / "cli"): p.read_bytes() for p in (tmp_path / "cli").rglob("*") if p.is_file()}
    lib = {p.relative_to(tmp_path / "lib"): p.read_bytes() for p in (tmp_path / "lib").rglob("*") if p.is_file()}
    assert cli == lib and len(cli) > 10


@pytest.mark.parametrize(("split", "match"), [
    ("41/14", r"--split '41/14' must look like 41/14/14"),
    ("a/b/c", r"--split 'a/b/c' must look like"),
    ("4/1/1/1", r"--split '4/1/1/1' must look like"),
    ("0/1/1", r"SynthConfig\.n_train: 0 must be >= 1 \(--split\)"),
    ("3/-1/1", r"SynthConfig\.n_devel: -1"),
])
def test_synth_with_a_bad_split_exits_2(tmp_path, capsys, split, match):
    import re

    code = run_cli(["synth", tmp_path / "out", f"--split={split}"])
    err = capsys.readouterr().err
    assert code == 2
    lines = error_lines(err)
    assert len(lines) == 1 and re.search(match, lines[0]), err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_synth_with_an_unknown_feature_exits_2(tmp_path, capsys):
    code = run_cli(["synth", tmp_path / "out", "--features", "egemaps,bert"])
    err = capsys.readouterr().err
    assert code == 2
    assert error_lines(err) == [line for line in err.splitlines() if "['bert'] cannot be synthesised" in line]
    assert len(error_lines(err)) == 1


# ----------------------------------------------------------------------------------------------- data check


def test_check_a_good_corpus_exits_0(synth_stress, capsys):
    code = run_cli(["data", "check", "--data", synth_stress, "--task", "stress"])
    captured = capsys.readouterr()
    assert code == 0
    assert "corpus OK" in captured.out
    assert "problem:" not in captured.out
    for name in ("partitions", "features", "targets", "egemaps", "vggface", "arousal", "valence"):
        assert name in captured.out
    assert "Traceback" not in captured.err


def test_check_finds_the_root_in_the_environment(tiny_corpus, capsys, monkeypatch):
    monkeypatch.setenv("MUSEFUSION_DATA", str(tiny_corpus))
    assert run_cli(["data", "check"]) == 0
    assert "corpus OK" in capsys.readouterr().out
    assert run_cli(["data", "check", "--data", tiny_corpus]) == 0


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_check_a_broken_corpus_exits_1_and_lists_the_problem(tiny_corpus, capsys, fault):
    named = fault.mutate(tiny_corpus / "c3_muse_stress")
    code = run_cli(["data", "check", "--data", tiny_corpus])
    captured = capsys.readouterr()
    assert code == 1
    problems = [line for line in captured.out.splitlines() if line.startswith("problem: ")]
    assert any(f"'{named}'" in line for line in problems), captured.out
    assert f"{len(problems)} problem(s) found." in captured.out
    assert "corpus OK" not in captured.out
    assert "Traceback" not in captured.out + captured.err


@pytest.mark.parametrize(("args", "match"), [
    (["--data", "nowhere"], r"Data root '.*nowhere' not found"),
    (["--data", "TINY", "--task", "physio"], r"No MuSe corpus for task 'physio' under '.*'"),
    ([], r"No data root given: pass --data ROOT or set \$MUSEFUSION_DATA"),
])
def test_check_without_a_corpus_exits_2_with_one_error_line(tiny_corpus, tmp_path, capsys, args, match):
    import re

    args = [str(tmp_path / a) if a == "nowhere" else str(tiny_corpus) if a == "TINY" else a for a in args]
    code = run_cli(["data", "check", *args])
    captured = capsys.readouterr()
    assert code == 2
    lines = error_lines(captured.err)
    assert len(lines) == 1 and re.search(match, lines[0]), captured.err
    assert "Traceback" not in captured.err
    assert captured.out.strip() == ""


def test_check_with_an_unknown_task_is_a_usage_error(tiny_corpus, capsys):
    code = run_cli(["data", "check", "--data", tiny_corpus, "--task", "humor"])
    err = capsys.readouterr().err
    assert code == 2
    assert "Invalid value for '--task'" in err and "Traceback" not in err


@pytest.mark.slow
def test_demo_runs_synth_check_and_reproduce_then_reuses_the_corpus(tmp_path, capsys):
    args = ["demo", "--out", tmp_path, "--split", "4/2/2", "--minutes", "0.6", "--profile", "smoke",
            "--workers", "1"]
    assert run_cli(args) == 0
    captured = capsys.readouterr()
    out, err = captured.out, captured.err
    assert "wrote 8 subjects (4/2/2)" in out and "corpus OK" in out
    # the run is projected before any training: the stages to come and the whole run's ETA
    assert "projected reproduce --profile smoke --task stress" in out
    assert "stages to come: seed runs (20 jobs" in err and "Whole run ETA at most" in err
    assert "whole run ETA" in err  # and every progress line of a projected stage gives it
    # it ends with the headline table and the path of report.html
    assert "musefusion submission" in out and "paper (real data)" in out and "0.4609" in out
    assert out.rstrip().splitlines()[-1].endswith("report.html") or str(tmp_path / "reproduce-stress" /
                                                                       "report.html") in out
    report = tmp_path / "reproduce-stress" / "report.md"
    text = report.read_text()
    assert "Corpus: **synthetic** (written by `musefusion synth`: variant default, seed 0, 4/2/2 subjects" in text
    assert "Table 2" in text and "A+V+B" in text and "submission`: valid." in text.replace("/submission`", "submission`")
    corpus_mtime = (tmp_path / "data" / "c3_muse_stress" / "metadata" / "partition.csv").stat().st_mtime_ns
    assert run_cli(args) == 0  # same settings: the corpus is reused and finished runs are skipped
    assert "using the synthetic corpus already in" in capsys.readouterr().out
    assert (tmp_path / "data" / "c3_muse_stress" / "metadata" / "partition.csv").stat().st_mtime_ns == corpus_mtime
