"""``musefusion fuse``, ``reproduce``, ``submit`` and ``validate-submission``."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from musefusion import rundir
from musefusion.cli.options import DataOpt, TaskOpt
from musefusion.cli.train import log_to_file
from musefusion.config import resolve_data_root
from musefusion.progress import make_progress
from musefusion.progress import out as console
from musefusion.rundir import ReproduceDir, RunDir
from musefusion.types import Task

OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace runs in --out that were made with another "
                                            "configuration (without it they are refused).")]


def fuse(
    streams: Annotated[list[Path], typer.Option("--streams", help="Unimodal run directories (one stream each), "
                                                "e.g. --streams runs/A runs/V runs/B.", show_default=False)],
    out: Annotated[Path | None, typer.Option(help="Fusion run directory [default: runs/fusion-<names>-<hash of the "
                                             "config>].", show_default=False)] = None,
    train_on: Annotated[str, typer.Option(help="What the fusion is fitted on: oof (out-of-fold train "
                                          "predictions), in-sample (the baseline's practice) or devel (k-fold CV "
                                          "on devel).")] = "oof",
    folds: Annotated[int, typer.Option(help="k for out-of-fold predictions / devel CV.")] = 5,
    epochs: Annotated[int, typer.Option(help="Fusion epochs (paper: at most 20).")] = 20,
    seeds: Annotated[list[int] | None, typer.Option(help="Seeds (default: 1).", show_default=False)] = None,
    names: Annotated[list[str] | None, typer.Option(help="A short name per stream.", show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Refit and replace the fusion run in --out (another "
                                            "config's or this one's).")] = False,
) -> None:
    """Late fusion: a Bi-LSTM (32 cells) over the prediction streams of unimodal runs (paper Eq. 12-14)."""
    from musefusion.fusion.late import FusionConfig
    from musefusion.fusion.late import fuse as fuse_streams

    cfg = FusionConfig(streams=tuple(str(s) for s in streams), names=tuple(names or ()),
                       train_on=train_on,  # type: ignore[arg-type]  # a str: checked (ConfigError) by FusionConfig
                       folds=folds, epochs=epochs, seeds=tuple(seeds or (1,)))
    if out is None:
        out = rundir.default_run_dir(Path("runs"), ["fusion", "+".join(cfg.names)], {"fusion": cfg.to_dict()})
    rundir.check_out(out, "run", overwrite)
    with log_to_file(RunDir(out).log):
        m = fuse_streams(cfg, out, resume=not overwrite, overwrite=overwrite)
    streams_txt = ", ".join(f"{n} {v:.4f}" for n, v in m["stream_devel_ccc"].items())
    console.print(f"fused devel CCC {m['best']['devel_ccc']:.4f} (streams: {streams_txt}); run dir:", markup=False)
    console.print(Text(str(out), style="bold"))


def reproduce(
    data: DataOpt = None,
    task: TaskOpt = Task.STRESS,
    profile: Annotated[str, typer.Option(help="quick (8 epochs, 2 seeds: 5.9 min for the default stress corpus "
                                         "on 2 cores), paper (Sec. 5.2 as written) or smoke (tiny models, 2 "
                                         "epochs: a wiring check).")] = "quick",
    out: Annotated[Path | None, typer.Option(help="Output folder [default: runs/reproduce-<task>-<profile>]; "
                                             "resumable: finished runs of the same config are reused.",
                                             show_default=False)] = None,
    workers: Annotated[int, typer.Option(help="Parallel training processes.")] = 2,
    test_labels: Annotated[Path | None, typer.Option(help="True test labels for Table 6 (default: "
                                                     "ROOT/test_labels when present).", show_default=False)] = None,
    row_config: Annotated[list[Path] | None, typer.Option(help="TOML row configs (e.g. from `sweep report`) "
                                                          "overriding a row's model settings.",
                                                          show_default=False)] = None,
    seeds: Annotated[list[int] | None, typer.Option(help="Seeds, overriding the profile's.", show_default=False)]
    = None,
    stage: Annotated[str, typer.Option(help="all, or unimodal (stop after Tables 2/3).")] = "all",
    all_models: Annotated[bool, typer.Option(help="Also train every model family on every feature set.")] = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Run the whole paper (Tables 2-6) on a corpus and write report.md beside the paper's numbers."""
    from musefusion.reproduce import ReproduceConfig
    from musefusion.reproduce import reproduce as run_reproduce

    cfg = ReproduceConfig(root=resolve_data_root(data), task=task, profile=profile, workers=workers,
                          test_labels=test_labels, row_configs=tuple(str(p) for p in row_config or ()),
                          seeds=tuple(seeds or ()), stage=stage, all_models=all_models, overwrite=overwrite)
    out = out or Path("runs") / f"reproduce-{task.value}-{profile}"
    rundir.check_out(out, "reproduce", overwrite)
    progress = make_progress("{last}", description_width=22)

    def on_stage(name: str, n: int) -> Callable[[str], None]:
        tid = progress.add_task(name, total=max(n, 1), last="", completed=0 if n else 1)

        def done(label: str) -> None:
            progress.update(tid, advance=1, last=label)

        return done

    t0 = time.perf_counter()
    with log_to_file(ReproduceDir(out).log), progress:
        report = run_reproduce(cfg, out, progress=on_stage)
    console.print(f"reproduction finished in {(time.perf_counter() - t0) / 60:.1f} min; report:", markup=False)
    console.print(Text(str(report), style="bold"))


def submit(
    runs: Annotated[list[Path], typer.Argument(help="One run directory (fusion or unimodal) per target.")],
    out: Annotated[Path, typer.Option(help="Submission folder (<target>/<id>.csv).")] = Path("submission"),
    data: DataOpt = None,
    task: TaskOpt = Task.STRESS,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Write into an --out that holds other files "
                                            "(only its target folders are replaced; nothing else is deleted).")]
    = False,
) -> None:
    """Write the test predictions of finished runs in the MuSe submission layout, then validate them."""
    from musefusion.submission import validate_submission, write_submission

    sub = write_submission(list(runs), out, overwrite=overwrite)
    console.print("wrote submission to", markup=False)
    console.print(Text(str(sub), style="bold"))
    if data is not None:
        _report_problems(validate_submission(sub, resolve_data_root(data), task))


def validate(
    sub: Annotated[Path, typer.Argument(help="Submission folder (<target>/<id>.csv).")],
    data: DataOpt = None,
    task: TaskOpt = Task.STRESS,
) -> None:
    """Check a submission's ids, timestamps, row counts, NaN/inf and value ranges; exit 1 listing every problem."""
    from musefusion.submission import validate_submission

    _report_problems(validate_submission(sub, resolve_data_root(data), task))


def _report_problems(problems: list[str]) -> None:
    for p in problems:
        console.print(Text("problem: ", style="red") + Text(p))
    if problems:
        console.print(f"[red]{len(problems)} problem(s): the submission is not valid.[/red]")
        raise typer.Exit(1)
    console.print("[green]submission valid[/green]")


def register(app: typer.Typer) -> None:
    """Add fuse, reproduce, submit and validate-submission."""
    app.command("fuse")(fuse)
    app.command("reproduce")(reproduce)
    app.command("submit")(submit)
    app.command("validate-submission")(validate)
