"""``musefusion ensemble``: the mean of several runs' (or one run's seeds') predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from musefusion.cli.options import DataOpt, JsonOpt, QuietOpt
from musefusion.cli.parsing import Command
from musefusion.errors import ConfigError
from musefusion.progress import out as console
from musefusion.progress import result


def ensemble(
    runs: Annotated[list[Path], typer.Argument(help="Finished runs of one target (unimodal or fusion).")],
    out: Annotated[Path, typer.Option(help="The ensemble's run folder to write.")],
    top: Annotated[int | None, typer.Option(help="Keep only the K members with the best devel CCC (default: all).",
                                            metavar="K", show_default=False)] = None,
    seeds: Annotated[bool, typer.Option("--seeds", help="Members are every seed of each run, not its kept "
                                        "predictions.")] = False,
    folds: Annotated[int | None, typer.Option(
        help="With --top: folds of devel subjects for the cross-validated devel estimate (the members ranked on "
             "other subjects than they are scored on).  [default: 3]", metavar="K", show_default=False)] = None,
    data: DataOpt = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an ensemble in --out.")] = False,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Average the predictions of several runs, or of one run's seeds, into a run of its own.

    Example: `musefusion ensemble runs/a runs/b runs/c --top 2 --out runs/ens` or `musefusion ensemble runs/a
    --seeds --out runs/a-seeds`.
    """
    # torch: imported on first use, so the CLI starts without it
    from musefusion.pipelines.ensemble import ensemble_runs

    if folds is not None and top is None:
        raise ConfigError(f"--folds {folds} applies only with --top K (the estimate of ranking members on devel); "
                          "drop --folds or give --top.")
    m = ensemble_runs(list(runs), out, top=top, seeds=seeds, root=data, overwrite=overwrite,
                      folds=3 if folds is None else folds)
    cv = (f" (cross-validated over {m['cv_folds']} folds of devel subjects: {m['cv_devel_ccc']:.4f})"
          if "cv_devel_ccc" in m else "")
    console.print(Text(f"{len(m['members'])} members (best devel CCC {m['best_member_devel_ccc']:.4f}); the mean's "
                       f"devel CCC {m['best']['devel_ccc']:.4f}{cv}; run dir:"))
    console.print(Text(str(out), style="bold"))
    result({"run_dir": str(out), "metrics": m})


def register(app: typer.Typer) -> None:
    """Add ``ensemble`` to the app."""
    app.command("ensemble", cls=Command)(ensemble)
