"""``musefusion submit`` and ``validate-submission``: the MuSe test submission and its checks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from musefusion.cli.options import DataOpt, JsonOpt, QuietOpt, TaskOpt
from musefusion.cli.parsing import Command
from musefusion.config import resolve_data_root
from musefusion.pipelines.submission import validate_submission, write_submission
from musefusion.progress import MODE, result
from musefusion.progress import out as console
from musefusion.types import Task


def submit(
    runs: Annotated[list[Path], typer.Argument(help="One run directory (fusion or unimodal) per target.")],
    out: Annotated[Path, typer.Option(help="Submission folder (<target>/<id>.csv).")] = Path("submission"),
    data: DataOpt = None,
    task: TaskOpt = Task.STRESS,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Write into an --out that holds other files "
                                            "(only its target folders are replaced; nothing else is deleted).")]
    = False,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Write the test predictions of finished runs in the MuSe submission layout, then validate them.

    Example: `musefusion submit fusion/arousal fusion/valence --data data --out submission`.
    """
    sub = write_submission(list(runs), out, overwrite=overwrite)
    console.print("wrote submission to", markup=False)
    console.print(Text(str(sub), style="bold"))
    result({"submission": str(sub), "validated": data is not None})
    if data is not None:
        _report_problems(validate_submission(sub, resolve_data_root(data), task))


def validate(
    sub: Annotated[Path, typer.Argument(help="Submission folder (<target>/<id>.csv).")],
    data: DataOpt = None,
    task: TaskOpt = Task.STRESS,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Check a submission's ids, timestamps, row counts, NaN/inf and value ranges; exit 1 listing every problem.

    Example: `musefusion validate-submission submission --data data --task stress`.
    """
    _report_problems(validate_submission(sub, resolve_data_root(data), task))


def _report_problems(problems: list[str]) -> None:
    result({**(MODE["result"] or {}), "problems": list(problems)})
    for p in problems:
        console.print(Text("problem: ", style="red") + Text(p))
    if problems:
        console.print(f"[red]{len(problems)} problem(s): the submission is not valid.[/red]")
        raise typer.Exit(1)
    console.print("[green]submission valid[/green]")


def register(app: typer.Typer) -> None:
    """Add ``submit`` and ``validate-submission`` to the app."""
    app.command("submit", cls=Command)(submit)
    app.command("validate-submission", cls=Command)(validate)
