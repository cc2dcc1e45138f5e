"""``musefusion``: the typer app, logging set-up and the one-line error handler."""

from __future__ import annotations

import json
import logging
import math
import signal
import sys
import threading
from typing import Annotated, Any

import typer
from rich.text import Text

from musefusion import __version__, progress
from musefusion.cli import data as data_cmds
from musefusion.cli.parsing import Command
from musefusion.errors import MuseFusionError
from musefusion.fsutil import OUTPUT_ERRNOS
from musefusion.progress import configure_logging, err

app = typer.Typer(rich_markup_mode=None, help="musefusion: time-continuous multimodal emotion recognition on MuSe corpora "
                       "(Hybrid Multimodal Fusion, MuSe 2021).", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
_state = {"debug": False}


def _print_version(value: bool) -> None:
    if value:
        print(f"musefusion {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback on errors.")] = False,
    version: Annotated[bool, typer.Option("--version", help="Print the musefusion version and exit.",
                                          is_eager=True, callback=_print_version)] = False,
) -> None:
    """Configure logging for every command."""
    _state["debug"] = debug
    configure_logging(logging.DEBUG if verbose else logging.INFO)


def _register() -> None:
    app.command("synth", cls=Command)(data_cmds.synth)
    app.command("demo", cls=Command)(data_cmds.demo)
    app.add_typer(data_cmds.data_app, name="data")
    for mod in ("train", "fuse", "ensemble", "postprocess", "reproduce", "submit", "extract", "sweep", "runs", "personalise"):
        try:
            module = __import__(f"musefusion.cli.{mod}", fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != f"musefusion.cli.{mod}":
                raise
            continue
        module.register(app)


_register()


_INTERRUPTED = "interrupted: nothing finished was lost; run the same command again to resume"


def _plain_json(value: Any) -> Any:
    """``value`` as JSON can hold it: paths and other objects as text, NaN and infinities as null."""
    if isinstance(value, dict):
        return {str(k): _plain_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_json(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float) or hasattr(value, "__float__"):
        f = float(value)
        return f if math.isfinite(f) else None
    return str(value)


def _print_json(ok: bool, error: str | None = None) -> None:
    """``--json``: the command's one JSON object on stdout."""
    if progress.MODE["json"]:
        payload = {"ok": ok, **(progress.MODE["result"] or {})}
        if error is not None:
            payload["error"] = error
        print(json.dumps(_plain_json(payload), indent=1))


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, print a ``MuseFusionError`` as one red line and exit 2.

    ``kill`` (SIGTERM) ends a command as Ctrl-C does: its workers stop, nothing finished is lost, and the last line
    says how to resume.
    """
    if threading.current_thread() is threading.main_thread():  # signal handlers belong to the main thread
        signal.signal(signal.SIGTERM, _interrupt)
    progress.MODE.update(quiet=False, json=False, result=None)
    progress.out.quiet = False
    try:
        _run(argv)
    finally:  # a command's --quiet/--json never outlives it (the API and tests go on in the same process)
        progress.MODE.update(quiet=False, json=False, result=None)
        progress.out.quiet = False


def _run(argv: list[str] | None) -> None:
    try:
        argv = list(sys.argv[1:] if argv is None else argv)
        # standalone_mode=False makes click *return* the code of a raised typer.Exit instead of raising it
        code = app(args=argv, standalone_mode=False, prog_name="musefusion")
    except MuseFusionError as exc:
        if _state["debug"]:
            raise
        err.print(Text("error: ", style="red") + Text(str(exc)), soft_wrap=True)
        _print_json(False, str(exc))
        sys.exit(2)
    except typer.Exit as exc:
        if exc.exit_code not in (0, None) or progress.MODE["result"] is not None:
            _print_json(exc.exit_code in (0, None))
        sys.exit(exc.exit_code)
    except OSError as exc:  # a full disk, quota, read-only folder or permission outside an atomic write
        if _state["debug"] or exc.errno not in OUTPUT_ERRNOS:
            raise
        err.print(Text("error: ", style="red") + Text(f"{exc.strerror}: '{exc.filename}'"), soft_wrap=True)
        _print_json(False, f"{exc.strerror}: '{exc.filename}'")
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        err.print(Text(_INTERRUPTED, style="red"))
        _print_json(False, _INTERRUPTED)
        sys.exit(130)
    except Exception as exc:  # click usage errors carry their own exit code
        # duck-typed: typer >= 0.2x vendors click as typer._click, so `import click` may fail
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            fmt = getattr(exc, "format_message", None)
            _print_json(False, fmt() if callable(fmt) else str(exc))
            sys.exit(code)
        raise
    if code == 130:  # typer turns Ctrl-C (KeyboardInterrupt) into exit code 130
        err.print(Text(_INTERRUPTED, style="red"))
    _print_json(not (isinstance(code, int) and code), _INTERRUPTED if code == 130 else None)
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
