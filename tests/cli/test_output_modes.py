"""``--quiet`` and ``--json`` on every command: one JSON object on stdout, nothing but warnings on stderr."""

from __future__ import annotations

import json

import pytest

from tests.cli.test_help import COMMANDS
from tests.cli_helpers import run_cli

LEAVES = [(p, c) for p, c in COMMANDS if not hasattr(c, "commands")]


@pytest.mark.parametrize(("path", "cmd"), LEAVES, ids=[" ".join(p) for p, _ in LEAVES])
def test_every_command_takes_quiet_and_json(path, cmd):
    flags = {o for p in cmd.params for o in getattr(p, "opts", [])}
    assert {"--quiet", "--json"} <= flags, path


def test_synth_and_check_print_one_json_object(tmp_path, capsys):
    assert run_cli(["synth", tmp_path / "d", "--split", "2/1/1", "--minutes", "0.2", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["ok"] is True and got["subjects"] == 4 and got["corpus"].endswith("c3_muse_stress")
    assert run_cli(["data", "check", "--data", tmp_path / "d", "--json", "--quiet"]) == 0
    cap = capsys.readouterr()
    got = json.loads(cap.out)
    assert got["ok"] is True and got["problems"] == [] and {r["partition"] for r in got["partitions"]} >= {"train"}
    assert cap.err == ""  # --quiet: no progress, no info lines


def test_train_json_quiet_and_a_failure(synth_stress, tmp_path, capsys):
    args = ["train", "--data", synth_stress, "--epochs", "1", "--win-len", "40", "--hop-len", "20", "--model", "lstm",
            "--out", tmp_path / "run"]
    assert run_cli([*args, "--json", "--quiet"]) == 0
    cap = capsys.readouterr()
    got = json.loads(cap.out)
    assert got["ok"] and got["run_dir"] == str(tmp_path / "run") and got["metrics"]["model"] == "lstm"
    assert "epoch" not in cap.err and "seed 1" not in cap.err
    assert run_cli(["train", "--data", tmp_path / "nowhere", "--json"]) == 2
    cap = capsys.readouterr()
    got = json.loads(cap.out)
    assert got["ok"] is False and "nowhere" in got["error"] and "error:" in cap.err


def test_json_stays_json_with_a_wide_table_and_on_a_usage_error(synth_stress, tmp_path, capsys, monkeypatch):
    from musefusion import progress

    monkeypatch.setattr(progress.out, "width", 40)  # narrower than the runs table: it would be printed wide
    assert run_cli(["synth", tmp_path / "d", "--split", "2/1/1", "--minutes", "0.2"]) == 0
    capsys.readouterr()
    assert run_cli(["runs", tmp_path, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"ok": True, "root": str(tmp_path), "runs": []}
    assert run_cli(["train", "--epochs", "x", "--json"]) == 2
    got = json.loads(capsys.readouterr().out)
    assert got["ok"] is False and "--epochs" in got["error"]
