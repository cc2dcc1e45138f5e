"""``musefusion``: the typer app, logging set-up and the one-line error handler."""

from __future__ import annotations

import logging
import sys
from typing import Annotated, Any

import typer
import typer.main
from rich.text import Text

from musefusion.errors import ConfigError, MuseFusionError
from musefusion.fsutil import OUTPUT_ERRNOS
from musefusion.progress import configure_logging, err

app = typer.Typer(help="musefusion: time-continuous multimodal emotion recognition on MuSe corpora "
                       "(Hybrid Multimodal Fusion, MuSe 2021).", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
_state = {"debug": False}


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback on errors.")] = False,
) -> None:
    """Configure logging for every command."""
    _state["debug"] = debug
    configure_logging(logging.DEBUG if verbose else logging.INFO)


def _register() -> None:
    from musefusion.cli import data as data_cmds

    app.command("synth")(data_cmds.synth)
    app.command("demo")(data_cmds.demo)
    app.add_typer(data_cmds.data_app, name="data")
    for mod in ("train", "fuse", "reproduce", "submit", "extract", "sweep"):
        try:
            module = __import__(f"musefusion.cli.{mod}", fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != f"musefusion.cli.{mod}":
                raise
            continue
        module.register(app)


_register()


def _command_for(argv: list[str]) -> Any:
    """The click command ``argv`` invokes (the app itself when it names none)."""
    cmd = typer.main.get_command(app)
    for arg in argv:
        if arg.startswith("-"):
            continue
        sub = getattr(cmd, "commands", {}).get(arg)
        if sub is None:
            break
        cmd = sub
    return cmd


def _expand_multi_value(argv: list[str]) -> list[str]:
    """One rule for options that take several values, in every command.

    ``--seeds 1 2 3`` and ``--seeds 1,2,3`` both mean ``--seeds 1 --seeds 2 --seeds 3`` for an option the command
    declares as taking several values (click wants one flag per value); values run until the next ``-`` flag.
    An option that takes one value and is given twice is refused instead of keeping the last silently.

    Raises:
        ConfigError: a single-valued option is given more than once.

    Examples:
        >>> _expand_multi_value(["train", "--seeds", "1", "2", "--features", "egemaps,vggface"])
        ['train', '--seeds', '1', '--seeds', '2', '--features', 'egemaps', '--features', 'vggface']
    """
    cmd = _command_for(argv)
    multi: set[str] = set()
    single: set[str] = set()
    for p in getattr(cmd, "params", []):
        if getattr(p, "is_flag", False):
            continue
        for opt in getattr(p, "opts", []):
            if opt.startswith("-"):
                (multi if getattr(p, "multiple", False) else single).add(opt)
    out: list[str] = []
    current: str | None = None
    seen: dict[str, str] = {}
    for k, arg in enumerate(argv):
        flag = arg.split("=", 1)[0]
        if arg.startswith("-") and not _is_number(arg):
            current = None
            if flag in multi:
                current = flag
                if "=" in arg:  # --features=a,b
                    out.extend(v for x in _split(flag, arg.split("=", 1)[1]) for v in (flag, x))
                    continue
                out.append(arg)
                continue
            if flag in single:
                value = arg.split("=", 1)[1] if "=" in arg else (argv[k + 1] if k + 1 < len(argv) else "")
                if flag in seen:
                    raise ConfigError(f"Option {flag} is given twice ({seen[flag]!r} and {value!r}); it takes one "
                                      "value: give it once.")
                seen[flag] = value
            out.append(arg)
            continue
        if current is not None:
            for v in _split(current, arg):
                if out[-1] != current:
                    out.append(current)
                out.append(v)
            continue
        out.append(arg)
    return out


#: Multi-valued options whose values may also be joined by commas (never paths, which may hold commas).
_COMMA_OPTIONS = ("--features", "--seeds", "--names")


def _split(flag: str, value: str) -> list[str]:
    if flag not in _COMMA_OPTIONS:
        return [value]
    return [v.strip() for v in value.split(",") if v.strip()] or [value]


def _is_number(arg: str) -> bool:
    try:
        float(arg)
    except ValueError:
        return False
    return True


def _default_subcommand(argv: list[str]) -> list[str]:
    """``musefusion sweep --data ...`` means ``musefusion sweep run --data ...``.

    Examples:
        >>> _default_subcommand(["sweep", "--trials", "4"])
        ['sweep', 'run', '--trials', '4']
        >>> _default_subcommand(["sweep", "--help"])
        ['sweep', '--help']
    """
    i = next((k for k, a in enumerate(argv) if not a.startswith("-")), None)
    if i is not None and argv[i] == "sweep" and i + 1 < len(argv) and argv[i + 1].startswith("-") \
            and argv[i + 1] not in ("--help", "-h"):
        return [*argv[:i + 1], "run", *argv[i + 1:]]
    return argv


_INTERRUPTED = "interrupted: nothing finished was lost; run the same command again to resume"


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, print a ``MuseFusionError`` as one red line and exit 2."""
    try:
        argv = _expand_multi_value(_default_subcommand(list(sys.argv[1:] if argv is None else argv)))
        # standalone_mode=False makes click *return* the code of a raised typer.Exit instead of raising it
        code = app(args=argv, standalone_mode=False)
    except MuseFusionError as exc:
        if _state["debug"]:
            raise
        err.print(Text("error: ", style="red") + Text(str(exc)), soft_wrap=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except OSError as exc:  # a full disk, quota, read-only folder or permission outside an atomic write
        if _state["debug"] or exc.errno not in OUTPUT_ERRNOS:
            raise
        err.print(Text("error: ", style="red") + Text(f"{exc.strerror}: '{exc.filename}'"), soft_wrap=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        err.print(Text(_INTERRUPTED, style="red"))
        sys.exit(130)
    except Exception as exc:  # click usage errors carry their own exit code
        # duck-typed: typer >= 0.2x vendors click as typer._click, so `import click` may fail
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            sys.exit(code)
        raise
    if code == 130:  # typer turns Ctrl-C (KeyboardInterrupt) into exit code 130
        err.print(Text(_INTERRUPTED, style="red"))
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
