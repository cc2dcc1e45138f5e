"""``musefusion runs``: list the runs under a folder, compare runs side by side."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from musefusion.cli.options import JsonOpt, QuietOpt
from musefusion.cli.parsing import Command, DefaultCommandGroup
from musefusion.pipelines.runs import SORT_KEYS, compare_runs, find_runs, plot_compare, sort_runs
from musefusion.progress import out as console
from musefusion.progress import print_table, result


class _RunsGroup(DefaultCommandGroup):
    """``musefusion runs ROOT`` is short for ``musefusion runs list ROOT``."""

    default_command = "list"
    default_on_positional = True


runs_app = typer.Typer(rich_markup_mode=None, cls=_RunsGroup, no_args_is_help=True,
                       help="List and compare finished runs (train, sweep trials, fold/final models, fusion). "
                            "`musefusion runs ROOT` is short for `runs list ROOT`.")


def _f(v: float) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


Glob = Annotated[str | None, typer.Option(help="Keep runs whose field matches this glob.", show_default=False)]


@runs_app.command("list", cls=Command)
def list_(
    root: Annotated[Path, typer.Argument(help="Folder holding runs (runs/, a reproduce output, sweeps/...).",
                                         metavar="ROOT", show_default=False)] = Path("runs"),
    kind: Annotated[str | None, typer.Option(help="run, fusion or fusion-selection (a glob).",
                                             show_default=False)] = None,
    task: Glob = None,
    target: Glob = None,
    features: Glob = None,
    model: Glob = None,
    fit: Annotated[str | None, typer.Option(help="train, train+devel, 'fold*', oof, in-sample, devel (a glob).",
                                            show_default=False)] = None,
    sort: Annotated[str, typer.Option(help=f"Sort key: {', '.join(SORT_KEYS)} (scores best first).")] = "devel",
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Every finished run under ROOT, best devel CCC first.

    Examples: `musefusion runs out/reproduce --kind run --fit train`, `musefusion runs runs --model 'selfattn*'
    --json`.
    """
    infos = sort_runs(find_runs(root, kind=kind, task=task, target=target, features=features, model=model, fit=fit),
                      sort)
    result({"root": str(root), "runs": [r.to_dict() for r in infos]})
    table = Table(title=Text(f"{len(infos)} run(s) under {root}"))
    for col in ("path", "kind", "target", "features", "model", "fit", "seeds", "devel CCC", "mean ± std",
                "best ep."):
        table.add_column(col, justify="right" if col in ("devel CCC", "mean ± std", "best ep.") else "left")
    for r in infos:
        table.add_row(r.path, r.kind, r.target, r.features, r.model, r.fit, " ".join(map(str, r.seeds)) or "-",
                      _f(r.devel_ccc), f"{_f(r.devel_ccc_mean)} ± {_f(r.devel_ccc_std)}",
                      str(r.best_epoch or "-") + (f"/{r.epochs_run}" if r.epochs_run else ""))
    print_table(table)


@runs_app.command("compare", cls=Command)
def compare(
    runs: Annotated[list[Path], typer.Argument(help="Two or more run directories.", metavar="RUN...",
                                               show_default=False)],
    plot: Annotated[Path | None, typer.Option(help="Also write a PNG overlaying the runs' learning curves (kept "
                                              "seeds).", metavar="PNG", show_default=False)] = None,
    test_labels: Annotated[Path | None, typer.Option(
        help="Compare two runs' test predictions against these true test labels instead of devel (scores no seed "
             "or epoch was chosen on).", show_default=False)] = None,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Configs side by side (only the fields that differ) and the runs' scores.

    Example: `musefusion runs compare runs/a runs/b --plot curves.png`.
    """
    cmp = compare_runs(list(runs), test_labels=test_labels)
    written = plot_compare(list(runs), plot, labels=[str(p) for p in runs]) if plot is not None else None
    result({**cmp.to_dict(), "plot": str(written) if written else None})
    table = Table(title=Text(f"{len(cmp.differing)} differing field(s); {cmp.same} the same in all"))
    table.add_column("field")
    for r in cmp.runs:
        table.add_column(r.path, justify="right")
    for key, values in cmp.differing.items():
        table.add_row(key, *["-" if v is None else str(v) for v in values])
    table.add_section()
    table.add_row("devel CCC (kept seed)", *[_f(r.devel_ccc) for r in cmp.runs])
    table.add_row("devel CCC mean ± std", *[f"{_f(r.devel_ccc_mean)} ± {_f(r.devel_ccc_std)}" for r in cmp.runs])
    table.add_row("best epoch / run", *[f"{r.best_epoch}/{r.epochs_run}" for r in cmp.runs])
    pair = cmp.paired
    if len(cmp.runs) == 2 and not pair.note:
        table.add_row(f"{'test' if test_labels else 'devel'} CCC, {pair.subjects} common subjects [95 % CI]",
                      *[f"{_f(c)} {iv}" for c, iv in zip(pair.ccc, pair.intervals, strict=True)])
    print_table(table)
    if len(cmp.runs) == 2:
        if pair.note:
            console.print(Text(f"no paired comparison: {pair.note}"))
        else:
            d = pair.difference
            console.print(Text(f"paired difference (first - second) {d.delta:+.4f}, 95 % CI {d.interval} "
                               f"(subject-level bootstrap): " + ("the interval excludes 0" if d.interval.excludes_zero()
                                                                 else "indistinguishable (the interval contains 0)")))
    if written is not None:
        console.print(Text(f"wrote {written}"))


def register(app: typer.Typer) -> None:
    """Add the ``runs`` command group to the app."""
    app.add_typer(runs_app, name="runs")
