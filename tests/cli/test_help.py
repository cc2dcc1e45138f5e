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


#: config fields whose `train` flag has another name than the field
FLAG_OF = {"root": "--data", "normalize": "--normalise", "name": "--model", "num_threads": "--threads"}


def test_train_help_shows_every_config_field_with_its_real_default(capsys, monkeypatch):
    """Every field of [data], [model] and [train] has a `train` flag, and `train --help` shows beside it the default
    the dataclass holds (read from it, never typed into a help string: a help string that types a default fails)."""
    import dataclasses

    from musefusion.cli.options import shown
    from musefusion.config import DataConfig, ModelConfig, TrainConfig

    train = dict(COMMANDS)[("train",)]
    options = {opt: p for p in train.params for opt in getattr(p, "opts", [])}
    monkeypatch.delenv("COLUMNS", raising=False)
    assert run_cli(["train", "--help"]) == 0
    flat = _squash(capsys.readouterr().out)
    for cls in (DataConfig, ModelConfig, TrainConfig):
        for f in dataclasses.fields(cls):
            flag = FLAG_OF.get(f.name, "--" + f.name.replace("_", "-"))
            assert flag in options, f"{cls.__name__}.{f.name} has no `train` flag ({flag})"
            param = options[flag]
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                continue  # the data root: --data or $MUSEFUSION_DATA
            real = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            assert param.help.endswith(f"[default: {shown(real)}]"), (flag, param.help)
            assert param.help.lower().count("default:") == 1, f"{flag}: a default typed into its help: {param.help}"
            assert _squash(param.help) in flat


def test_a_changed_dataclass_default_changes_the_help(monkeypatch):
    """The help reads the default from the dataclass: change the field's default and the shown one follows."""
    import dataclasses

    from musefusion.cli.options import field_default
    from musefusion.config import TrainConfig

    field = next(f for f in dataclasses.fields(TrainConfig) if f.name == "lr")
    monkeypatch.setattr(field, "default", 0.0042)
    assert field_default(TrainConfig, "lr") == "0.0042"
