"""``musefusion reproduce``: every table of the paper on one corpus, with its report."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from musefusion import rundir
from musefusion.api import default_reproduce_out
from musefusion.cli.options import (
    DataOpt,
    JsonOpt,
    NormaliseOpt,
    OverwriteOpt,
    QuietOpt,
    TaskOpt,
    TrackOpt,
    TrackUriOpt,
    check_track,
)
from musefusion.cli.parsing import Command
from musefusion.cli.train import log_to_file
from musefusion.config import Attention, Precision, Sampler, resolve_data_root
from musefusion.errors import ConfigError
from musefusion.evaluation.uncertainty import Interval
from musefusion.pipelines import tracking
from musefusion.pipelines.cost import StageCost
from musefusion.pipelines.reproduce import (
    HeadlineRow,
    Profile,
    ReproduceConfig,
    Retrain,
    Stage,
    headline_rows,
    plan,
    preflight,
)
from musefusion.pipelines.reproduce import reproduce as run_reproduce
from musefusion.progress import JobDisplay, console_handler, duration, make_progress, print_table, result
from musefusion.progress import err as err_console
from musefusion.progress import out as console
from musefusion.rundir import ReproduceDir
from musefusion.types import SelectionRule, Task


def reproduce(
    data: DataOpt = None,
    task: TaskOpt = Task.STRESS,
    profile: Annotated[Profile, typer.Option(help="quick (at most 30 epochs, stopping after 5 without a better "
                                         "devel CCC; 2 seeds, the baseline peers 1 seed), paper (Sec. 5.2 as "
                                         "written) or smoke (tiny models, 2 epochs: a wiring check).",
                                         case_sensitive=False)] = Profile.QUICK,
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
    stage: Annotated[Stage, typer.Option(help="all, or unimodal (stop after Tables 2/3).", case_sensitive=False)]
    = Stage.ALL,
    all_models: Annotated[bool, typer.Option(help="Also train every model family on every feature set.")] = False,
    baseline: Annotated[bool, typer.Option(
        help="Train the official MuSe 2021 baseline (its README settings) on each of the task's feature sets as "
             "peer rows of the unimodal table.")] = True,
    attention: Annotated[Attention, typer.Option(
        help="Self-attention of the Self-Attn rows: encoder (stock Transformer encoder layers on the raw features, "
             "as the authors most likely ran it), literal (bare Eq. 1-3, an ablation) or transformer (projection, "
             "positions, pre-norm encoder layers).", case_sensitive=False)] = Attention.ENCODER,
    tune: Annotated[bool, typer.Option(
        help="Tune every unimodal row first: an Optuna study over its family's Sec. 5.2 grid (one seed per "
             "trial, median pruning on devel CCC); the best parameters then train with the profile's seeds.")]
    = False,
    tune_trials: Annotated[int, typer.Option(help="Trials per row's study (complete + pruned).")] = 20,
    tune_jobs: Annotated[int, typer.Option(help="Jobs working on each row's study at once (Optuna shares its "
                                           "trials out through the storage); more than 1 pays off on a "
                                           "cluster with more workers than studies.")] = 1,
    tune_sampler: Annotated[Sampler, typer.Option(help="tpe, or grid (the grid's combinations in turn).",
                                                  case_sensitive=False)] = Sampler.TPE,
    storage: Annotated[str | None, typer.Option(
        help="Database of the --tune studies (default: sqlite in OUT/tune/); a postgresql:// URL lets many "
             "machines tune together.", show_default=False)] = None,
    cluster: Annotated[str | None, typer.Option(
        help="A Dask scheduler address (tcp://HOST:8786): every job (tuning, seed runs, folds, final models, "
             "fusion) runs on its workers, which share OUT and the corpus (docs/cluster.md).",
        show_default=False)] = None,
    retrain: Annotated[Retrain, typer.Option(
        help="Retrain the fusion streams on train+devel for the test predictions: auto (as the paper: physio "
             "yes, stress no), yes or no.", case_sensitive=False)] = Retrain.AUTO,
    fusion_refit: Annotated[bool, typer.Option(
        help="Refit each fusion model on the train+devel streams (its best epoch count) for the test "
             "predictions; the paper does not say whether it did.")] = False,
    precision: Annotated[Precision, typer.Option(
        help="The unimodal rows' training forward pass: fp32, or bf16 under autocast (faster on CPUs with AVX-512 "
             "BF16/AMX and on CUDA; scores stay float32).", case_sensitive=False)] = Precision.FP32,
    beyond: Annotated[bool, typer.Option(
        "--beyond", help="Also the later Ulm-TSST practice on the same splits and seeds: early fusion, cross-modal "
        "attention, a 3 s and a searched (0-10 s) label delay, stream/seed/top-4 ensembles, a Bi-LSTM reading the "
        "streams' observed shares, post-processing, the fusion selection with the later rows in its pool; a "
        "table, a verdict against the paper's fusion and a plot.")] = False,
    selection_rule: Annotated[SelectionRule, typer.Option(
        help="Fusion selection: interval (a fuser replaces the paper's Bi-LSTM only when the paired subject-level "
             "bootstrap interval of its CV gain lies above 0) or max (the highest CV score wins, an ablation).",
        case_sensitive=False)] = SelectionRule.INTERVAL,
    normalise: NormaliseOpt = None,
    overwrite: OverwriteOpt = False,
    dry_run: Annotated[bool, typer.Option(
        help="Train nothing: print the jobs per stage and the wall time projected on this machine from one "
             "measured epoch per row.")] = False,
    track: TrackOpt = None,
    track_uri: TrackUriOpt = None,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Run the whole paper (Tables 2-6) on a corpus and write report.md beside the paper's numbers.

    Example: `musefusion reproduce --data data --task stress --profile quick --out out/stress`.
    """
    check_track(track, track_uri)
    cfg = ReproduceConfig(root=resolve_data_root(data), task=task, profile=profile, workers=workers,
                          test_labels=test_labels, row_configs=tuple(str(p) for p in row_config or ()),
                          seeds=tuple(seeds or ()), stage=stage, all_models=all_models, baseline=baseline,
                          overwrite=overwrite,
                          retrain=retrain, fusion_refit=fusion_refit, attention=attention,
                          tune=tune, tune_trials=tune_trials, tune_jobs=tune_jobs, tune_sampler=tune_sampler, storage=storage,
                          cluster=cluster, precision=precision, beyond=beyond, selection_rule=selection_rule,
                          **({"normalise": normalise} if normalise else {}))
    if dry_run and cfg.task == Task.PERSONALISATION:
        raise ConfigError("--dry-run projects the 2021 tables' cost only; for --task personalisation time a run of "
                          "--profile smoke (the report gives its wall time) or one `musefusion personalise`.")
    target = out or default_reproduce_out(cfg)
    if dry_run:
        rundir.check_out(target, "reproduce", cfg.overwrite)  # a plan of a run that would be refused misleads
        result({"projected_minutes": sum(st.wall_s for st in show_plan(cfg)) / 60})
        return
    result({"out": str(target), "report": str(reproduce_shown(cfg, target, projection(cfg, target)))})
    if track:
        console.print(Text(f"logged to MLflow as run {tracking.log_tree(target, 'reproduce', track_uri)} (every "
                           "run nested in it)"))


def projection(cfg: ReproduceConfig, out: Path, smoke_too: bool = False) -> list[StageCost] | None:
    """The stages a fresh reproduction will run with their projected cost (one measured epoch per row, as
    ``--dry-run``), so its progress lines give the whole run's ETA from the start. None where a projection would
    mislead or cost more than it tells: a resumed ``out`` (its finished runs are skipped), a ``--cluster`` (other
    machines), the ``smoke`` profile (seconds long; ``smoke_too``: projected all the same, as ``demo`` does) and
    ``--task personalisation`` (no plan)."""
    if (cfg.task == Task.PERSONALISATION or (cfg.profile == Profile.SMOKE and not smoke_too) or cfg.cluster
            or (out.is_dir() and any(out.iterdir()))):
        return None
    preflight(cfg, out)  # the same refusals, in the same order, as the run itself
    console.print(Text("projecting the run: one epoch of each row (reproduce --dry-run) ..."))
    return show_plan(cfg)


def show_plan(cfg: ReproduceConfig) -> list[StageCost]:
    """Print the stages of ``cfg`` with their jobs and projected time; returns them."""
    def measured(features: str, model: str, sec: float) -> None:
        console.print(Text(f"one epoch of {features} {model}: {sec:.2f} s"))

    stages = plan(cfg, on_measured=measured)
    table = Table(title=f"reproduce --task {cfg.task.value} --profile {cfg.profile.value}", title_justify="left")
    for col in ("stage", "jobs", "epochs", "projected wall time"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for st in stages:
        table.add_row(st.name, str(st.jobs), str(st.epochs), f"{st.wall_s / 60:.1f} min")
    print_table(table)
    total = sum(st.wall_s for st in stages)
    tuned = " --tune" if cfg.tune else ""
    console.print(Text(f"projected reproduce --profile {cfg.profile.value} --task {cfg.task.value}{tuned}: "
                       f"{total / 60:.0f} min with {cfg.workers} worker(s) on this machine"))
    return stages


class WholeRunEta:
    """Seconds left of a whole reproduction: the projected stages (``--dry-run``'s plan, in the order ``reproduce``
    runs them) scaled by the pace measured so far. A stage's progress is the projected share of its finished jobs
    (they start longest first, so the first to finish are the heaviest). None once the run is past the plan."""

    def __init__(self, projected: list[StageCost]) -> None:
        self.projected = [st.wall_s for st in projected]
        self.jobs = [st.job_s for st in projected]
        self.stage = -1
        self.spent = 0.0  # seconds of the finished stages
        self.stage_t0 = time.perf_counter()
        self.done, self.total = 0, 1

    def start_stage(self, n_jobs: int) -> None:
        """A stage of ``n_jobs`` begins (called for every stage, also one without jobs)."""
        now = time.perf_counter()
        if self.stage >= 0:
            self.spent += now - self.stage_t0
        self.stage, self.stage_t0, self.done, self.total = self.stage + 1, now, 0, max(n_jobs, 1)

    def job_done(self) -> None:
        """One job of the current stage finished."""
        self.done += 1

    def fraction(self) -> float:
        """The projected share of the current stage's work that is done."""
        jobs = self.jobs[self.stage] if self.stage < len(self.jobs) else ()
        if jobs and len(jobs) == self.total and sum(jobs) > 0:
            return min(1.0, sum(jobs[:self.done]) / sum(jobs))
        return min(1.0, self.done / self.total)

    def __call__(self) -> float | None:
        if not 0 <= self.stage < len(self.projected):
            return None
        frac = self.fraction()
        planned_so_far = sum(self.projected[:self.stage]) + frac * self.projected[self.stage]
        elapsed = self.spent + time.perf_counter() - self.stage_t0
        pace = elapsed / planned_so_far if planned_so_far > 0 else 1.0
        return pace * ((1 - frac) * self.projected[self.stage] + sum(self.projected[self.stage + 1:]))


def reproduce_shown(cfg: ReproduceConfig, out: Path, projected: list[StageCost] | None = None) -> Path:
    """Run ``cfg`` into ``out`` with a progress display per stage and the log in ``out``; returns the report.

    The part of the ``reproduce`` command that ``demo`` shares. With ``projected`` (the plan of
    :func:`show_plan`), every progress line also gives the whole run's ETA.
    """
    rundir.check_out(out, "reproduce", cfg.overwrite)
    progress = make_progress("{last}", description_width=22)
    display = JobDisplay(progress)
    whole = WholeRunEta(projected) if projected else None
    if projected:
        if hasattr(progress, "whole_eta"):
            progress.whole_eta = whole
        stages = ", ".join(f"{st.name} ({st.jobs} jobs, {duration(st.wall_s)})" for st in projected)
        err_console.print(Text(f"stages to come: {stages}; then the selection, the submission and the report. "
                               f"Whole run ETA at most {duration(sum(st.wall_s for st in projected))} (projected "
                               "for every epoch of the budget; early stopping ends most rows sooner)."),
                          soft_wrap=True)

    def on_stage(name: str, n: int) -> Callable[[str], None]:
        if whole is not None:
            whole.start_stage(n)
        tid = progress.add_task(name, total=max(n, 1), last="", completed=0 if n else 1)

        def done(label: str) -> None:
            if whole is not None:
                whole.job_done()
            display.done(label)
            progress.update(tid, advance=1, last=label)

        return done

    t0 = time.perf_counter()
    with rundir.writing(out), log_to_file(ReproduceDir(out).log), progress, console_handler(display):
        report = run_reproduce(cfg, out, progress=on_stage)
    console.print(f"reproduction finished in {(time.perf_counter() - t0) / 60:.1f} min; report:", markup=False)
    console.print(Text(str(report), style="bold"))
    if cfg.task != Task.PERSONALISATION and cfg.stage == Stage.ALL:
        rows = headline_rows(cfg, out)  # the test predictions are scored once for the lines and the table
        for line in headline(out, rows):
            console.print(Text(line))
        print_table(headline_table(rows))
        console.print(Text(str(ReproduceDir(out).report_html), style="bold"))
    return report


def _scored(value: tuple[float, Interval] | None) -> str:
    return "withheld" if value is None else f"{value[0]:.4f} {value[1]}"


def headline_table(rows: list[HeadlineRow]) -> Table:
    """Test CCC of the submission beside the paper's fusion and the official baseline as run here (95 %
    subject-level intervals) and the paper's Table 6 on the real Ulm-TSST test set (``rows``: :func:`headline_rows`)."""
    table = Table(title="test CCC [95 % subject-level interval]")
    for col in ("target", "musefusion submission", "paper's fusion (run here)", "MuSe 2021 baseline (run here)",
                "submission - baseline (paired)", "paper (real data)", "baseline (real data)"):
        table.add_column(col)
    for r in rows:
        d = r.versus_baseline
        table.add_row(r.target, f"{_scored(r.submission)} ({r.chosen})", _scored(r.paper_fusion),
                      f"{_scored(r.baseline)} ({r.baseline_row})" if r.baseline_row else "-",
                      "-" if d is None else f"{d.delta:+.4f} {d.interval} "
                      + {"a higher": "submission higher", "b higher": "baseline higher"}.get(d.verdict, d.verdict),
                      "-" if r.paper_real is None else f"{r.paper_real:.4f}",
                      "-" if r.baseline_real is None else f"{r.baseline_real:.4f}")
    return table


def headline(out: Path, rows: list[HeadlineRow]) -> list[str]:
    """One line per target of ``rows`` (:func:`headline_rows`: the finished selections): the submission's fuser, its
    CV devel CCC and (with test labels) its test CCC, each with its 95 % subject-level interval, and whether any
    fuser was distinguishable from the paper's Bi-LSTM."""
    lines = []
    for row in rows:
        m = ReproduceDir(out).selected(row.target).read_metrics()
        chosen = m["chosen"]
        ci = Interval.from_json(m.get("cv_devel_ccc_ci", {}).get(chosen))
        line = f"{row.target}: submission = {chosen}, CV devel CCC {m['cv_devel_ccc'][chosen]:.4f} {ci}"
        if row.submission is not None:
            line += f", test CCC {row.submission[0]:.4f} {row.submission[1]}"
        if m.get("rule") == "interval" and not m.get("distinguishable", True):
            line += " (no candidate is distinguishable from the paper's fusion)"
        lines.append(line)
    return lines


def register(app: typer.Typer) -> None:
    """Add ``reproduce`` to the app."""
    app.command("reproduce", cls=Command)(reproduce)
