"""``musefusion sweep run`` and ``musefusion sweep report``: hyper-parameter sweeps over the paper's grid."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Annotated, Any

import tomli_w
import typer
from rich.table import Table
from rich.text import Text

from musefusion import rundir
from musefusion.api import build_run_config
from musefusion.cli.options import (
    ConfigOpt,
    DataOpt,
    EpochsOpt,
    FeaturesOpt,
    HopLenOpt,
    JsonOpt,
    ModelOpt,
    QuietOpt,
    TargetOpt,
    TaskOverrideOpt,
    TrackOpt,
    TrackUriOpt,
    WinLenOpt,
    check_track,
)
from musefusion.cli.parsing import Command, DefaultCommandGroup
from musefusion.cli.train import log_to_file
from musefusion.config import Sampler, SweepConfig
from musefusion.pipelines import tracking
from musefusion.progress import make_progress, print_table, result
from musefusion.progress import out as console
from musefusion.rundir import RunDir
from musefusion.sweep.grid import grid_points, load_space, paper_space
from musefusion.sweep.report import report_study
from musefusion.sweep.runner import check_storage_url, quiet_optuna, redact_url, run_sweep, target_trials
from musefusion.workers import log_to_parent, worker_logs

sweep_app = typer.Typer(rich_markup_mode=None, cls=DefaultCommandGroup,
                        help="Hyper-parameter sweeps (paper Sec. 5.2 grid) with Optuna: resumable, several "
                             "workers and machines on one study. `musefusion sweep --data ...` is short for `sweep run --data ...`.",
                        no_args_is_help=True)


def _default_storage(study: str, out: Path | None) -> str:
    return f"sqlite:///{((out or Path('sweeps') / study) / 'study.db').resolve()}"


def _init_worker(queue: Any, level: int, index: int) -> None:
    """Logging in a spawned worker: its records, prefixed ``[w<index>]``, go to the parent (``workers.worker_logs``),
    which prints them above its progress bar and copies them into the sweep's log.txt."""
    log_to_parent(queue, level, f"[w{index}] ")
    quiet_optuna()


@sweep_app.command("run", cls=Command)
def run(
    data: DataOpt = None,
    task: TaskOverrideOpt = None,
    target: TargetOpt = None,
    features: FeaturesOpt = None,
    model: ModelOpt = None,
    trials: Annotated[int, typer.Option(help="COMPLETE + PRUNED trials the study should hold in total (a rerun "
                                        "continues up to this number; it does not add this many).")] = 20,
    epochs: EpochsOpt = None,
    seeds: Annotated[list[int] | None, typer.Option(help="Seeds per trial, e.g. --seeds 1 2 3; the objective is "
                                                    "the mean devel CCC over them (default: 1).",
                                                    show_default=False)] = None,
    study: Annotated[str | None, typer.Option(help="Study name (default: <model>-<target>).",
                                              show_default=False)] = None,
    storage: Annotated[str | None, typer.Option(help="Study database: sqlite:///file.db or postgresql://user:pw@"
                                                "host/db (shared by machines) [default: sqlite in --out].",
                                                show_default=False)] = None,
    space: Annotated[Path | None, typer.Option(help="TOML with a [space] table (parameter = [values]) that "
                                               "narrows or widens the paper grid; paper_space = false starts "
                                               "from nothing.", show_default=False)] = None,
    sampler: Annotated[Sampler, typer.Option(help="tpe (seeded) or grid (every combination once).",
                                             case_sensitive=False)] = Sampler.TPE,
    seed: Annotated[int, typer.Option(help="Sampler seed (give each machine another one with tpe).")] = 0,
    workers: Annotated[int, typer.Option(help="Worker processes on this machine (one per core).")] = 1,
    threads: Annotated[int, typer.Option(help="torch threads per worker.")] = 1,
    prune: Annotated[bool, typer.Option(help="Prune weak trials on intermediate devel CCC (median rule).")] = True,
    prune_warmup: Annotated[int, typer.Option(help="Epochs before pruning may start (0: a quarter of --epochs).")]
    = 0,
    heartbeat: Annotated[int, typer.Option(help="Heartbeat seconds; a trial silent for 3 heartbeats (its worker "
                                           "died on another machine) is failed and retried.")] = 10,
    win_len: WinLenOpt = None,
    hop_len: HopLenOpt = None,
    config: ConfigOpt = None,
    out: Annotated[Path | None, typer.Option(help="Sweep folder: trials/<number>/ run dirs, study.db, log.txt "
                                             "[default: sweeps/<study>].", show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the resolved sweep (base config, space, grid size) and "
                                          "exit.")] = False,
    track: TrackOpt = None,
    track_uri: TrackUriOpt = None,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Sweep a model's hyper-parameters on devel CCC; rerun the same command to resume after a crash or kill.

    Example: `musefusion sweep --data data --model lstm --features egemaps --trials 40 --workers 2`.
    """
    overrides: dict[str, dict[str, Any]] = {
        "data": {"root": str(data) if data else None, "task": task.value if task else None, "target": target,
                 "features": list(features) if features else None, "win_len": win_len, "hop_len": hop_len},
        "model": {"name": model},
        "train": {"seeds": list(seeds) if seeds else None, "epochs": epochs},
    }
    check_track(track, track_uri)
    base = build_run_config(config, overrides)
    name = base.model.name
    values = load_space(space, name) if space is not None else paper_space(name)
    study = study or f"{name}-{base.data.target}"
    out = out or Path("sweeps") / study
    sweep = SweepConfig(base=base, space=tuple(values.items()), study=study, storage=storage, out=out,
                        trials=trials, sampler=sampler, seed=seed, prune=prune, prune_warmup=prune_warmup,
                        workers=workers, threads=threads, heartbeat_s=heartbeat)
    target_n = target_trials(sweep)
    if dry_run:
        shown = sweep.to_dict()
        if shown.get("storage"):
            shown["storage"] = redact_url(shown["storage"])
        console.print(tomli_w.dumps(shown), highlight=False, markup=False)
        console.print(f"grid size {len(grid_points(sweep.space_dict))}; trials {target_n}", highlight=False)
        return
    if target_n < trials:
        logging.getLogger(__name__).info("the grid has %d points; running %d trials, not %d", target_n, target_n,
                                         trials)
    quiet_optuna()
    rundir.check_out(out, "sweep", can_overwrite=False)
    out.mkdir(parents=True, exist_ok=True)
    progress = make_progress()
    bar = progress.add_task(f"study {study}", total=target_n)

    def on_event(ev: dict[str, Any]) -> None:
        if not progress.live.is_started:  # the study is open and checked: show the bar from now on
            progress.start()
        if ev["kind"] == "counts":
            c = ev["counts"]
            progress.update(bar, completed=c.done, description=f"study {study}: {c.running} running, "
                            f"{c.pruned} pruned")
        elif ev["kind"] == "epoch":
            ccc = ev["ccc"]
            progress.update(bar, description=f"study {study}: trial {ev['number']} seed {ev['seed']} epoch "
                            f"{ev['epoch']}/{sweep.base.train.epochs} devel CCC "
                            f"{f'{ccc:.4f}' if ccc == ccc else '-'}")
        elif ev["kind"] == "trial_end":
            progress.advance(bar, 1 if ev["outcome"] in ("complete", "pruned") else 0)

    log = RunDir(out).log  # the sweep folder's log.txt
    with log_to_file(log), worker_logs() as queue:
        try:
            counts = run_sweep(sweep, on_event=on_event,
                               worker_init=functools.partial(_init_worker, queue, logging.getLogger().level))
        finally:
            progress.stop()

    console.print(Text(f"study {study}: {counts.complete} complete, {counts.pruned} pruned, {counts.failed} failed "
                       "(retried or given up); run dirs in"))
    console.print(Text(str(out / "trials"), style="bold"))
    result({"study": study, "complete": counts.complete, "pruned": counts.pruned, "failed": counts.failed,
            "trials": str(out / "trials")})
    console.print(Text(f"next: musefusion sweep report --study {study} --storage {redact_url(sweep.storage_url)}"))
    if track:
        console.print(Text(f"logged to MLflow as run {tracking.log_tree(out, 'sweep', track_uri)} (every trial "
                           "nested in it)"))


@sweep_app.command("report", cls=Command)
def report(
    study: Annotated[str, typer.Option(help="Study name.")],
    storage: Annotated[str | None, typer.Option(help="Study database URL [default: sqlite:///sweeps/<study>/"
                                                "study.db].", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option(help="Report folder [default: report/ beside a SQLite study, else "
                                             "sweeps/<study>/report].", show_default=False)] = None,
    top: Annotated[int, typer.Option(help="Rows in the best-trials table.")] = 10,
    data: DataOpt = None,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Best trials, parameter importances, optimisation history plots and the best config as TOML.

    Example: `musefusion sweep report --study lstm-arousal`.
    """
    url = storage or _default_storage(study, None)
    if out is None:
        out = (Path(url[len("sqlite:///"):]).parent / "report" if check_storage_url(url) == "sqlite"
               else Path("sweeps") / study / "report")
    rep = report_study(study, url, out, top=top, data_root=data)
    counts = rep.trials["state"].value_counts().to_dict() if not rep.trials.empty else {}
    table = Table(title=Text(f"study {study} ({redact_url(url)}): " + ", ".join(f"{v} {k.lower()}"
                                                                               for k, v in counts.items())))
    params = [c for c in rep.best.columns if c not in ("number", "state", "devel_ccc", "devel_ccc_std", "seconds",
                                                       "retry_of", "run_dir")]
    for col in ("trial", "devel CCC", "± std", *params, "s"):
        table.add_column(col, justify="right")
    for _, r in rep.best.iterrows():
        table.add_row(str(r["number"]), f"{r['devel_ccc']:.4f}", f"{r['devel_ccc_std']:.4f}",
                      *[f"{r[p]:g}" if isinstance(r[p], float) else str(r[p]) for p in params], f"{r['seconds']:.0f}")
    print_table(table)
    if rep.importances:
        console.print("importances: " + ", ".join(f"{k} {v:.2f}" for k, v in rep.importances.items()),
                      highlight=False)
    result({"study": study, "best": rep.best.to_dict(orient="records"), "importances": rep.importances,
            "files": [str(f) for f in rep.files]})
    for f in rep.files:
        console.print(Text(f"wrote {f}"))
    if rep.best_config is not None:
        console.print(Text(f"train it: musefusion train --config {out / 'best_config.toml'} --out runs/best"))


def register(app: typer.Typer) -> None:
    """Add the ``sweep`` command group to the app."""
    app.add_typer(sweep_app, name="sweep")
