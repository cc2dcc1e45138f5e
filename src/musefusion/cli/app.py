"""``musefusion``: the typer app, logging set-up and the one-line error handler."""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from musefusion.errors import MuseFusionError

app = typer.Typer(help="musefusion: time-continuous multimodal emotion recognition on MuSe corpora "
                       "(Hybrid Multimodal Fusion, MuSe 2021).", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
err_console = Console(stderr=True)
_state = {"debug": False}


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback on errors.")] = False,
) -> None:
    """Configure logging for every command."""
    _state["debug"] = debug
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s", datefmt="[%X]",
                        handlers=[RichHandler(console=err_console, show_path=False, rich_tracebacks=False)],
                        force=True)


def _register() -> None:
    from musefusion.cli import data as data_cmds

    app.command("synth")(data_cmds.synth)
    app.command("demo")(data_cmds.demo)
    app.add_typer(data_cmds.data_app, name="data")
    for mod in ("train", "fuse", "extract", "sweep"):
        try:
            module = __import__(f"musefusion.cli.{mod}", fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != f"musefusion.cli.{mod}":
                raise
            continue
        module.register(app)


_register()


#: Options that take several values after one flag (``--seeds 1 2 3``); click wants ``--seeds 1 --seeds 2``.
_MULTI_VALUE_OPTIONS = ("--seeds", "--features", "--streams", "--names")


def _expand_multi_value(argv: list[str]) -> list[str]:
    """Rewrite ``--seeds 1 2 3`` as ``--seeds 1 --seeds 2 --seeds 3`` (values run until the next ``-`` flag)."""
    out: list[str] = []
    current: str | None = None
    for arg in argv:
        if arg in _MULTI_VALUE_OPTIONS:
            current = arg
            out.append(arg)
            continue
        if current is not None and not arg.startswith("-") and out[-1] != current:
            out.append(current)
        elif arg.startswith("-"):
            current = None
        out.append(arg)
    return out


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


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, print a ``MuseFusionError`` as one red line and exit 2."""
    argv = _default_subcommand(_expand_multi_value(list(sys.argv[1:] if argv is None else argv)))
    try:
        # standalone_mode=False makes click *return* the code of a raised typer.Exit instead of raising it
        code = app(args=argv, standalone_mode=False)
    except MuseFusionError as exc:
        if _state["debug"]:
            raise
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("[red]aborted[/red]")
        sys.exit(130)
    except Exception as exc:  # click usage errors carry their own exit code
        # duck-typed: typer >= 0.2x vendors click as typer._click, so `import click` may fail
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
