"""Every command's ``--help`` shows its source help strings whole: no markup eats bracketed text, no Python type
stands in for a metavar, nothing is cut with an ellipsis, and each command shows an example."""

from __future__ import annotations

import re

import pytest
import typer

from musefusion import __version__
from musefusion.cli.app import app
from tests.cli_helpers import run_cli


def _commands(group=None, path=()):
    group = group or typer.main.get_command(app)
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            yield (*path, name), cmd
            yield from _commands(cmd, (*path, name))
        else:
            yield (*path, name), cmd


COMMANDS = list(_commands())


def _squash(text: str) -> str:
    return "".join(text.split())  # line wrapping may move spaces (and split 'comma-separated' at the hyphen)


@pytest.mark.parametrize(("path", "cmd"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_help_shows_the_source_strings_whole(path, cmd, capsys, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    assert run_cli([*path, "--help"]) == 0
    out = capsys.readouterr().out
    flat = _squash(out)
    for text in [p.help for p in cmd.params if getattr(p, "help", None)] + (cmd.help or "").split("\n\n"):
        assert _squash(text) in flat, f"{' '.join(path)}: {text!r} is not shown whole"
    assert "<bool>" not in out and "…" not in out and "<list[" not in out and "<path>" not in out
    usage = next(line for line in out.splitlines() if line.startswith("Usage:"))
    assert "{" not in usage and usage.startswith(f"Usage: musefusion {' '.join(path)} ")
    if not hasattr(cmd, "commands"):
        assert re.search(r"Examples?: `musefusion ", out), f"{' '.join(path)} has no example"


def test_the_command_list_shows_each_summary_uncut(capsys):
    assert run_cli(["--help"]) == 0
    flat = _squash(capsys.readouterr().out)
    for path, cmd in COMMANDS:
        if len(path) == 1:
            assert _squash((cmd.help or "").split("\n\n")[0]) in flat, path


def test_version(capsys):
    assert run_cli(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"musefusion {__version__}"
