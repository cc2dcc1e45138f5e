"""``musefusion reproduce``: every table of the paper on one corpus, resumable, on all CPU cores.

Steps (each skipped when its output already exists):

1. unimodal runs: every (features, model) row of Table 2 (stress) or 3 (physio) for every target, several seeds;
2. for the fusion streams: out-of-fold train predictions (k folds by subject) and the final train+devel model;
3. late fusion: every row of Table 4/5 (fitted on out-of-fold predictions), plus the full row fitted the
   baseline's way (``in-sample``) and on devel with cross-validation, to show the difference;
4. selection: per target, the paper's full fusion row against the best single row and weighted means of the
   streams and of the best rows, by cross-validation over devel subjects (``musefusion.fusion.select``); the winner's test
   predictions are written as a submission and validated; Table 6 is scored only when test labels are
   available (``--test-labels`` or the synthetic corpus's ``test_labels/``), for the selection and for the
   paper's Bi-LSTM;
5. ``report.md`` (+ ``report.html``) with each table beside the paper's numbers, plots, config and versions.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from musefusion import families, fsutil, rundir
from musefusion.config import (
    DataConfig,
    RunConfig,
    SweepConfig,
    TrainConfig,
    model_preset,
)
from musefusion.data import formats
from musefusion.data.corpus import find_corpus_dir, partition_path
from musefusion.errors import ConfigError
from musefusion.evaluation import paper
from musefusion.evaluation.uncertainty import Difference, Interval
from musefusion.pipelines import cost, runs, tune
from musefusion.pipelines.experiment import (  # noqa: F401 - re-exported: the reproduction's config lives there
    PROFILES,
    Profile,
    ProfileSettings,
    ReproduceConfig,
    Retrain,
    Stage,
)
from musefusion.pipelines.jobs import (
    Job,
    job_final,
    job_fold,
    job_fuse,
    job_train,
    job_tune,
    run_jobs,
)
from musefusion.pipelines.personal_reproduce import reproduce_personalisation
from musefusion.pipelines.report import write_report
from musefusion.pipelines.results import FusionKey, ReproduceSummary, RowKey
from musefusion.pipelines.submission import validate_submission, write_submission
from musefusion.rundir import ReproduceDir, Status
from musefusion.types import FusionTrain, Partition, Task

logger = logging.getLogger(__name__)

#: Feature sets of the extra all-models table, per task.
ALL_MODEL_FEATURES = {Task.STRESS: ("egemaps", "vggface", "bio"), Task.PHYSIO: ("vggish", "vggface", "bio")}


def unimodal_rows(cfg: ReproduceConfig) -> list[tuple[str, str, str]]:
    """(features, modality, model) of every unimodal run: the paper's rows, plus all models when asked."""
    rows = list(paper.unimodal_table(cfg.task))
    mod = {"egemaps": "A", "vggish": "A", "vggface": "V", "bio": "B"}
    if cfg.baseline:
        rows += [(feats, mod[feats], "baseline") for feats in ALL_MODEL_FEATURES[cfg.task]]
    if cfg.all_models:
        for feats in ALL_MODEL_FEATURES[cfg.task]:
            for model in families.names():
                if (feats, mod[feats], model) not in rows:
                    rows.append((feats, mod[feats], model))
    return rows


def tuned_rows(cfg: ReproduceConfig) -> list[tuple[str, str, str]]:
    """The rows ``--tune`` searches: every unimodal row but the baseline peers (they keep their README settings)."""
    return [r for r in unimodal_rows(cfg) if not families.family(r[2]).task_presets]


def _row_overrides(files: tuple[str, ...]) -> dict[tuple[tuple[str, ...], str, str], dict[str, Any]]:
    out = {}
    for f in files:
        rec = fsutil.read_toml(f)
        data, model = rec.get("data", {}), rec.get("model", {})
        if "features" not in data or "name" not in model or "target" not in data:
            raise ConfigError(f"Row config '{f}' needs [data] features and target and [model] name.")
        feats = tuple(data["features"]) if isinstance(data["features"], list) else (data["features"],)
        out[(DataConfig(root=Path("."), features=feats).features, model["name"], data["target"])] = rec
    return out


def _check_row_configs(cfg: ReproduceConfig) -> None:
    """Every ``--row-config`` file must match a row of this reproduction (features, model, target)."""
    rows = {(DataConfig(root=Path("."), features=(f,)).features, model, t)
            for (f, _m, model) in unimodal_rows(cfg) for t in cfg.task.default_targets}
    for f in cfg.row_configs:
        key = next(iter(_row_overrides((f,))))
        if key not in rows:
            feats, model, target = key
            raise ConfigError(f"Row config '{f}' ({'+'.join(feats)}, {model}, {target}) matches no row of the "
                              f"{cfg.task.value} tables; use a config for one of their feature/model/target rows "
                              "(--all-models adds every model on every feature set).")


def run_config(cfg: ReproduceConfig, features: str, model: str, target: str) -> RunConfig:
    """The RunConfig of one table row under the profile (and a row config file, when one matches).

    A family with settings of its own for the task (the ``baseline``'s README calls) trains with them: its model
    fields, learning rate, batch and schedule; its windows only under a profile with ``peer_windows`` (``paper``),
    its epochs capped by the profile's ``peer_epochs`` and its seeds the profile's ``peer_seeds`` where given
    (``quick``: one seed at the profile's window hop, so the peers cost about as much as a paper row).
    """
    s = cfg.settings
    own = families.family(model).task_presets.get(cfg.task.value, {})
    windows: dict[str, Any] = {"hop_len": s.hop_len, "win_len": s.win_len}
    if s.peer_windows:
        windows.update(own.get("data", {}))
    data = DataConfig(root=cfg.root, task=cfg.task, target=target, features=(features,), normalize=cfg.normalise,
                      **windows)
    attention = {"attention": cfg.attention} if "attention" in families.family(model).params else {}
    small = {"hidden": 16, "d_model": 16, "channels": 8, "ff_dim": 32} if s.small else {}
    mcfg = model_preset(model, **attention, **{**own.get("model", {}), **small})
    train = TrainConfig(epochs=s.epochs, seeds=s.seeds, num_threads=1, early_stop=s.early_stop,
                        precision=cfg.precision, **s.train_overrides())
    if own.get("train"):
        t = dict(own["train"])
        t["epochs"] = min(int(t.get("epochs", s.epochs)), s.peer_epochs)
        train = train.replace(**t, seeds=s.peer_seeds or s.seeds)
    override = _row_overrides(cfg.row_configs).get((data.features, model, target))
    if override:
        mcfg = model_preset(model, **{**attention, **{k: v for k, v in override.get("model", {}).items()
                                                      if k != "name"}})
        tr = override.get("train", {})
        train = train.replace(**{k: tr[k] for k in ("lr", "batch_size") if k in tr})
    return RunConfig(data, mcfg, train)


def tune_sweep(cfg: ReproduceConfig, out: Path, features: str, model: str, target: str) -> SweepConfig:
    """The ``--tune`` study of one row: the row's profile config over its family's Sec. 5.2 grid."""
    storage = cfg.storage or f"sqlite:///{ReproduceDir(out).tune_db.resolve()}"
    ReproduceDir(out).tune_db.parent.mkdir(parents=True, exist_ok=True)
    return tune.row_sweep(run_config(cfg, features, model, target), target, features, model, storage=storage,
                          out=ReproduceDir(out).tune(target, features, model), trials=cfg.tune_trials,
                          sampler=cfg.tune_sampler)


def run_dir(out: Path, target: str, features: str, model: str) -> Path:
    """The run directory of a table row (see :class:`musefusion.rundir.ReproduceDir`)."""
    return ReproduceDir(out).run(target, features, model).path


def _no_progress(stage: str, n_jobs: int) -> Callable[[str], None]:
    return lambda label: None


def _check_partition(cfg: ReproduceConfig, corpus: Path) -> Counter[Partition]:
    """The subjects per partition of the task's ``corpus`` folder; refuses, before any training, a partition that
    the fusion stages cannot split: the out-of-fold streams need ``folds`` train subjects, the fusion selection
    (and the fusion models' epoch choice) cross-validates over at least 2 devel subjects."""
    path = partition_path(corpus)
    n_part = Counter(formats.read_partition(path).values())
    if cfg.stage == Stage.UNIMODAL:
        return n_part
    folds = cfg.settings.folds
    if n_part[Partition.TRAIN] < folds:
        raise ConfigError(f"{path}: {n_part[Partition.TRAIN]} train subject(s), but the fusion streams' out-of-fold "
                          f"predictions split train into {folds} folds by subject (profile '{cfg.profile}'): give "
                          f"at least {folds} train subjects, or run --stage unimodal.")
    if n_part[Partition.DEVEL] < 2:
        raise ConfigError(f"{path}: {n_part[Partition.DEVEL]} devel subject(s), but the fusion selection "
                          "cross-validates over devel subjects: give at least 2 devel subjects, or run --stage "
                          "unimodal.")
    return n_part


def preflight(cfg: ReproduceConfig, out: Path) -> Counter[Partition]:
    """What ``reproduce`` refuses before any work (a wrong root, an output inside the corpus, a row config that
    matches no row, a partition the fusion stages cannot split); returns the subjects per partition."""
    corpus = find_corpus_dir(cfg.root, cfg.task)  # fails early on a wrong root
    rundir.refuse_corpus(out, holds=False)
    _check_row_configs(cfg)
    return _check_partition(cfg, corpus)


@dataclasses.dataclass
class Context:
    """One reproduction as its stages see it, resolved once by :func:`reproduce`: the config, the output folder,
    the subjects per partition, how jobs run and report progress, the stage running, the tuned parameters found so
    far and the submission's problems."""

    cfg: ReproduceConfig
    out: Path
    n_part: Counter[Partition]
    progress: Callable[[str, int], Callable[[str], None]]
    stage: str = ""
    tuned: dict[tuple[str, str, str], dict[str, Any] | None] = dataclasses.field(default_factory=dict)
    problems: list[str] | None = None

    @property
    def targets(self) -> tuple[str, ...]:
        return self.cfg.task.default_targets

    def run(self, jobs: list[Job], weights: list[float] | None = None) -> None:
        """Run the current stage's ``jobs`` (heaviest first by ``weights``) locally or on the cluster."""
        run_jobs(jobs, ReproduceDir(self.out).jobs_log, self.progress(self.stage, len(jobs)), self.cfg.workers,
                 self.cfg.cluster, weights)

    def weigh(self, configs: list[RunConfig], scale: list[float] | None = None) -> list[float] | None:
        """The jobs' expected costs, so the heaviest start first; None where one job runs at a time (one worker
        takes them in the given order) or there is nothing to order."""
        if not (self.cfg.workers > 1 or self.cfg.cluster) or len(configs) < 2:
            return None
        try:
            return cost.job_weights(configs, scale)
        except Exception as exc:  # only an ordering hint: a model that cannot be timed here never stops the work
            logger.warning("could not rank the jobs by cost (%s); they start in table order", exc)
            return None

    def row_config(self, features: str, model: str, target: str) -> RunConfig:
        """A row's RunConfig under the profile, with its tuned parameters (``--tune``) and feature names resolved."""
        # torch: imported on first use, so the CLI starts without it
        from musefusion.training.run import resolve_run_config

        return resolve_run_config(tune.tuned_config(run_config(self.cfg, features, model, target),
                                                    self.tuned.get((features, model, target))))


def _tune_rows(ctx: Context) -> None:
    """--tune: a study per unimodal row; its best parameters set the row's config in the stages after it."""
    cfg, out = ctx.cfg, ctx.out
    sweeps = {(f, m, t): tune_sweep(cfg, out, f, m, t) for (f, _m, m) in tuned_rows(cfg) for t in ctx.targets}
    todo = [(key, sw) for key, sw in sweeps.items() if not tune.is_done(sw)]
    ctx.run([(job_tune, (sw.to_dict(), i), f"tune {t}/{f}-{m}" + (f" #{i}" if cfg.tune_jobs > 1 else ""))
             for (f, m, t), sw in todo for i in range(cfg.tune_jobs)],
            ctx.weigh([run_config(cfg, f, m, t) for (f, m, t), _sw in todo for _i in range(cfg.tune_jobs)],
                      [cfg.tune_trials / cfg.tune_jobs] * (len(todo) * cfg.tune_jobs)))  # a job's share of trials
    ctx.tuned = {key: tune.best_params(sw) for key, sw in sweeps.items()}


def _project_tuning(p: cost.Projector) -> tuple[list[float], int]:
    """``tune_trials x epochs`` epochs per tuned row and target at most (pruning stops weak trials earlier; trials
    at larger grid sizes cost more than the preset measured), a study's trials shared by its ``tune_jobs`` jobs."""
    cfg, epochs = p.cfg, p.cfg.settings.epochs
    targets, tuned = cfg.task.default_targets, [(f, m) for f, _mod, m in tuned_rows(cfg)]
    return ([p.row_epoch_s(f, m) * cfg.tune_trials * epochs / cfg.tune_jobs
             for f, m in tuned for _t in targets for _j in range(cfg.tune_jobs)],
            len(tuned) * len(targets) * cfg.tune_trials * epochs)


def _unimodal(ctx: Context) -> None:
    """The unimodal rows (a finished row is reused only for the same config and corpus files; see rundir)."""
    # torch: imported on first use, so the CLI starts without it
    from musefusion.training.run import run_status

    jobs: list[Job] = []
    configs: list[RunConfig] = []
    for (features, _m, model) in unimodal_rows(ctx.cfg):
        for target in ctx.targets:
            rc = ctx.row_config(features, model, target)
            d = run_dir(ctx.out, target, features, model)
            if run_status(rc, d, overwrite=ctx.cfg.overwrite) is not Status.FINISHED:
                jobs.append((job_train, (rc.to_dict(), str(d)), f"{target}/{features}-{model}"))
                configs.append(rc)
    ctx.run(jobs, ctx.weigh(configs))


def _project_unimodal(p: cost.Projector) -> tuple[list[float], int]:
    """``epochs x seeds`` epochs per row and target (a peer row such as the baseline at its own budget and
    windows; an early stop can end it sooner)."""
    targets, rows = p.cfg.task.default_targets, [p.config(f, m) for f, _mod, m in unimodal_rows(p.cfg)]
    for (f, _mod, m) in unimodal_rows(p.cfg):
        p.row_epoch_s(f, m)  # measured in the table's order, each under the row's own name
    return ([p.run_s(rc) for rc in rows for _t in targets],
            sum(rc.train.epochs * len(rc.train.seeds) for rc in rows) * len(targets))


def _folds(ctx: Context) -> None:
    """Out-of-fold predictions and final (train+devel) models of the fusion streams."""
    # torch: imported on first use, so the CLI starts without it
    from musefusion.fusion.oof import collect_oof, final_config, final_finished, fold_config, fold_finished

    cfg, s = ctx.cfg, ctx.cfg.settings
    streams = paper.STREAMS[cfg.task.value]
    jobs: list[Job] = []
    configs: list[RunConfig] = []
    scale: list[float] = []
    n_train, n_devel = ctx.n_part[Partition.TRAIN], ctx.n_part[Partition.DEVEL]
    grow = (n_train + n_devel) / max(1, n_train)  # a final model
    for target in ctx.targets:
        for feats, model in streams.values():
            d = run_dir(ctx.out, target, feats, model)
            for fold in range(s.folds):
                if not fold_finished(d, s.folds, fold):
                    jobs.append((job_fold, (str(d), s.folds, fold), f"{target}/{feats}-{model} fold {fold}"))
                    configs.append(fold_config(d))
                    scale.append((s.folds - 1) / s.folds)  # a fold model fits the other folds' subjects
            if cfg.retrains and not final_finished(d):
                jobs.append((job_final, (str(d),), f"{target}/{feats}-{model} final"))
                configs.append(final_config(d))
                scale.append(grow)  # fits train+devel: more windows in proportion to the subjects
    ctx.run(jobs, ctx.weigh(configs, scale))
    for target in ctx.targets:
        for feats, model in streams.values():
            collect_oof(run_dir(ctx.out, target, feats, model), s.folds)


def _project_folds(p: cost.Projector) -> tuple[list[float], int]:
    """``folds x epochs`` epochs of a fusion stream, each on ``(k-1)/k`` of the train subjects, and the final
    models (``epochs`` epochs on train+devel, more windows in proportion) in the same stage."""
    cfg, s = p.cfg, p.cfg.settings
    targets, epochs, k = cfg.task.default_targets, s.epochs, s.folds
    streams = list(paper.STREAMS[cfg.task.value].values())
    durations = [p.row_epoch_s(*r) * epochs * (k - 1) / k for r in streams for _t in targets for _f in range(k)]
    n_epochs = len(streams) * len(targets) * k * epochs
    if cfg.retrains:
        _, _, n_train, n_devel = p.measured(p.config(*streams[0]), streams[0][0])
        grow = (n_train + n_devel) / max(1, n_train)
        durations += [p.row_epoch_s(*r) * epochs * grow for r in streams for _t in targets]
        n_epochs += len(streams) * len(targets) * epochs
    return durations, n_epochs


def _fusion(ctx: Context) -> None:
    """The fusion rows (and the full row fitted in-sample and on devel too)."""
    # torch: imported on first use, so the CLI starts without it
    from musefusion.fusion.late import fusion_record, fusion_status
    from musefusion.training.run import load_run_config

    jobs: list[Job] = []
    for target in ctx.targets:
        rows = list(paper.fusion_table(ctx.cfg.task))
        full = max(rows, key=len)
        for row in rows:
            for mode in ("oof", "in-sample", "devel") if row == full else ("oof",):
                fc = fusion_config(ctx.cfg, ctx.out, target, row, mode)
                d = fusion_dir(ctx.out, target, row, mode)
                record = fusion_record(fc, load_run_config(Path(fc.streams[0])).data.to_dict())
                if fusion_status(d, record, overwrite=ctx.cfg.overwrite) is not Status.FINISHED:
                    jobs.append((job_fuse, (fc.to_dict(), str(d)), f"{target}/{'+'.join(row)} {mode}"))
    ctx.run(jobs)


def _project_fusion(p: cost.Projector) -> tuple[list[float], int]:
    """``fusion_epochs x seeds`` epochs of the Bi-LSTM per fusion run (every row out-of-fold, the full row also
    in-sample and on devel), measured on stacked streams."""
    cfg, s = p.cfg, p.cfg.settings
    streams = list(paper.STREAMS[cfg.task.value].values())
    n_fusion = (len(list(paper.fusion_table(cfg.task))) + 2) * len(cfg.task.default_targets)
    return ([p.fusion_run_s(*streams[0], len(streams))] * n_fusion,
            n_fusion * len(s.seeds) * s.fusion_epochs)


def _select(ctx: Context) -> None:
    """The fuser that generalises (the paper's Bi-LSTM, the best single row or a weighted mean, chosen by
    cross-validation over devel subjects), then the submission from it, validated against the corpus."""
    # torch: imported on first use, so the CLI starts without it
    from musefusion.pipelines.selection import write_selection

    cfg, out = ctx.cfg, ctx.out
    for target in ctx.targets:
        write_selection(*selection_inputs(cfg, out, target), ReproduceDir(out).selected(target).path,
                        folds=cfg.settings.folds, root=cfg.root, task=cfg.task, rule=cfg.selection_rule.value)
    sub = write_submission([ReproduceDir(out).selected(t).path for t in ctx.targets], ReproduceDir(out).submission)
    ctx.problems = validate_submission(sub, cfg.root, cfg.task)
    if ctx.problems:
        logger.warning("submission has %d problem(s): %s", len(ctx.problems), ctx.problems[0])


def _beyond(ctx: Context) -> None:
    """--beyond: the later practice on the same splits and seeds (trained rows as jobs, then the derived rows)."""
    # torch: its ensembles and post-processing import the metrics, so the CLI starts without it
    from musefusion.fusion.late import fusion_record, fusion_status
    from musefusion.pipelines import beyond
    from musefusion.training.run import load_run_config, run_status

    cfg, out = ctx.cfg, ctx.out
    # a row the paper's tables tuned (the audio stream of the delay rows) keeps its tuned parameters, so the delay
    # search compares delays only (its delay 0 is the paper's own, tuned, row)
    beyond_rows = beyond.trained_configs(cfg.task.value, ctx.targets, ctx.row_config)
    extra = []
    for target in ctx.targets:  # the full fusion row again, as each fusion method fits it
        full = fusion_config(cfg, out, target, paper.full_fusion_row(cfg.task), "oof")
        for name, fitted in beyond.fusion_methods():
            fc, d = fitted(full), ReproduceDir(out).beyond(target, name)
            record = fusion_record(fc, load_run_config(Path(fc.streams[0])).data.to_dict())
            if fusion_status(d, record, overwrite=cfg.overwrite) is not Status.FINISHED:
                extra.append((job_fuse, (fc.to_dict(), str(d)), f"{target}/beyond {name}"))
    trained = beyond.jobs(out, beyond_rows, lambda rc, d: run_status(rc, d, overwrite=cfg.overwrite))
    weights = ctx.weigh([rc for _job, rc in trained])
    ctx.run([job for job, _rc in trained] + extra,  # the fusion rows are light: last
            weights + [0.0] * len(extra) if weights is not None else None)
    pools = {t: {f"{f}-{m}": ReproduceDir(out).run(t, f, m).path for (f, _mod, m) in unimodal_rows(cfg)
                 if ReproduceDir(out).run(t, f, m).finished} for t in ctx.targets}
    beyond.derive(out, cfg.task.value, ctx.targets, pools, cfg.root, folds=cfg.settings.folds,
                  rule=cfg.selection_rule.value)


def _project_beyond(p: cost.Projector) -> tuple[list[float], int]:
    """Every run a trained or search method trains (``epochs x seeds`` epochs per run and target, as a seed run) and,
    per target, the full fusion row again per fusion method (a fusion run); the derived rows cost seconds."""
    # torch: its ensembles and post-processing import the metrics, so the CLI starts without it
    from musefusion.pipelines import beyond

    cfg = p.cfg
    targets, streams = cfg.task.default_targets, list(paper.STREAMS[cfg.task.value].values())
    configs = list(beyond.trained_configs(cfg.task.value, targets,
                                          lambda f, m, t: p.run_config(cfg, f, m, t)).values())
    fuse, n_fuse = p.fusion_run_s(*streams[0], len(streams)), len(targets) * len(beyond.fusion_methods())
    return ([p.run_s(rc) for rc in configs] + [fuse] * n_fuse,
            sum(rc.train.epochs * len(rc.train.seeds) for rc in configs)
            + n_fuse * len(cfg.settings.seeds) * cfg.settings.fusion_epochs)


def _all_tables(cfg: ReproduceConfig) -> bool:
    return cfg.stage == Stage.ALL


@dataclasses.dataclass(frozen=True)
class ReproduceStage:
    """One stage of a reproduction: ``execute(ctx)`` runs its unfinished jobs (one ``ctx.run`` call, under
    :meth:`title`) and whatever follows them; ``project(projector)`` gives each job's projected seconds and the
    epochs they train (``--dry-run`` and the whole run's ETA; None: a stage that trains nothing); ``applies(cfg)``
    says whether ``cfg``'s reproduction has it. A new stage is one entry of :data:`STAGES`."""

    name: str  # as its progress lines say it ({final}: " + final models" where final models are retrained)
    execute: Callable[[Context], None]
    project: Callable[[cost.Projector], tuple[list[float], int]] | None = None
    applies: Callable[[ReproduceConfig], bool] = lambda cfg: True
    plan_name: str = ""  # as the projection's table says it (default: name)

    def title(self, cfg: ReproduceConfig) -> str:
        """The stage's name in the progress lines."""
        return self.name.format(final=" + final models" if cfg.retrains else "")

    def planned(self, cfg: ReproduceConfig) -> str:
        """The stage's name in the projection."""
        return (self.plan_name or self.name).format(final=" + final models" if cfg.retrains else "")


#: The stages of a reproduction, in the order they run; ``cost.plan`` projects the same table.
STAGES: tuple[ReproduceStage, ...] = (
    ReproduceStage("tuning", _tune_rows, _project_tuning, lambda cfg: cfg.tune, plan_name="tuning (at most)"),
    ReproduceStage("unimodal runs", _unimodal, _project_unimodal, plan_name="seed runs"),
    ReproduceStage("folds{final}", _folds, _project_folds, _all_tables),
    ReproduceStage("fusion", _fusion, _project_fusion, _all_tables),
    ReproduceStage("selection", _select, None, _all_tables),
    ReproduceStage("beyond the paper", _beyond, _project_beyond, lambda cfg: _all_tables(cfg) and cfg.beyond),
)


def plan(cfg: ReproduceConfig, on_measured: Callable[[str, str, float], None] | None = None) -> list[cost.StageCost]:
    """The stages ``cfg``'s reproduction runs, with their projected cost on this machine (``--dry-run``)."""
    return cost.plan(STAGES, cost.Projector(cfg, run_config, on_measured))


def reproduce(cfg: ReproduceConfig, out: Path, progress: Callable[[str, int], Callable[[str], None]] | None = None
              ) -> Path:
    """Run the whole paper for one task and write ``<out>/report.md``: every stage of :data:`STAGES` that applies.

    Args:
        cfg: task, data root, profile, workers, test labels.
        out: output folder (runs/, fusion/, submission/, report.md, plots/).
        progress: ``progress(stage, n_jobs)`` returns a callback called with each finished job's label.

    Returns:
        The report path.
    """
    out = Path(out)
    if cfg.task == Task.PERSONALISATION:  # the MuSe 2023 protocol: general models, personalised, fused
        return reproduce_personalisation(cfg, out, progress or _no_progress, hidden_labels_dir(cfg))
    t0 = time.perf_counter()
    ctx = Context(cfg, out, preflight(cfg, out), progress or _no_progress)
    for stage in STAGES:
        if stage.applies(cfg):
            ctx.stage = stage.title(cfg)
            stage.execute(ctx)
    return write_report(cfg, out, summarize(out, cfg, with_test=_all_tables(cfg)), wall_s=time.perf_counter() - t0,
                        submission_problems=ctx.problems)


def fusion_config(cfg: ReproduceConfig, out: Path, target: str, row: tuple[str, ...], mode: str) -> Any:
    """The FusionConfig of a fusion row fitted on ``mode`` under the profile."""
    # torch: imported on first use, so the CLI starts without it
    from musefusion.fusion.late import FusionConfig

    s = cfg.settings
    streams = paper.STREAMS[cfg.task.value]
    return FusionConfig(streams=tuple(str(run_dir(out, target, *streams[n])) for n in row), names=row,
                        train_on=FusionTrain(mode), folds=s.folds, epochs=s.fusion_epochs, seeds=s.seeds,
                        hop_len=s.fusion_hop, win_len=s.win_len,
                        final_streams=cfg.retrains, refit=cfg.fusion_refit and mode != "devel",
                        **s.train_overrides())


def selection_inputs(cfg: ReproduceConfig, out: Path, target: str) -> tuple[Path, dict[str, Path], dict[str, Path]]:
    """What the fusion selection of ``target`` chooses among: the paper's full fusion run, every finished unimodal
    row (by row name) and the fusion streams (by stream name)."""
    full = paper.full_fusion_row(cfg.task)
    streams = paper.STREAMS[cfg.task.value]
    pool = {f"{f}-{m}": ReproduceDir(out).run(target, f, m).path for (f, _mod, m) in unimodal_rows(cfg)
            if ReproduceDir(out).run(target, f, m).finished}
    return (fusion_dir(out, target, full, "oof"), pool, {n: run_dir(out, target, *streams[n]) for n in full})


def fusion_dir(out: Path, target: str, row: tuple[str, ...], mode: str) -> Path:
    """The run directory of a fusion row fitted on ``mode`` (see :class:`musefusion.rundir.ReproduceDir`)."""
    return ReproduceDir(out).fusion(target, row, mode).path


def summarize_runs(out: Path, cfg: ReproduceConfig) -> dict[str, Any]:
    """Read every finished run's metrics.json (tables are built from files only)."""
    res: dict[str, Any] = {"unimodal": {}, "fusion": {}}
    for (features, mod, model) in unimodal_rows(cfg):
        for target in cfg.task.default_targets:
            r = ReproduceDir(out).run(target, features, model)
            if r.finished:
                m = r.read_metrics()
                seeds = {int(k): v.get("devel_ccc", float("nan")) for k, v in m["seeds"].items()}
                # seeds whose kept epoch was the budget's last: still improving when training stopped
                improving = [int(k) for k, v in m["seeds"].items()
                             if v.get("epochs") and v.get("best_epoch") == v.get("epochs_run") == v.get("epochs")]
                iv = Interval.from_json(m["best"].get("devel_ccc_ci"))  # undefined for runs without one
                res["unimodal"][RowKey(features, mod, model, target)] = {
                    "mean": m["devel_ccc_mean"], "std": m["devel_ccc_std"], "best_seed": m["best"]["seed"],
                    "best": m["best"].get("devel_ccc", float("nan")), "best_low": iv.low, "best_high": iv.high,
                    "seeds": seeds, "still_improving": improving}
    for row in paper.fusion_table(cfg.task):
        for target in cfg.task.default_targets:
            for mode in ("oof", "in-sample", "devel"):
                r = ReproduceDir(out).fusion(target, row, mode)
                if r.finished:
                    m = r.read_metrics()
                    iv = Interval.from_json(m["best"].get("devel_ccc_ci"))
                    res["fusion"][FusionKey(row, target, mode)] = {"mean": m["devel_ccc_mean"], "std": m["devel_ccc_std"],
                                                          "best": m["best"]["devel_ccc"], "best_low": iv.low,
                                                          "best_high": iv.high,
                                                          "best_seed": m["best"]["seed"],
                                                          "streams": m["stream_devel_ccc"]}
    return res


def summarize(out: Path, cfg: ReproduceConfig, with_test: bool = True) -> ReproduceSummary:
    """What the report shows: every finished run's scores and, when test labels are at hand, Table 6."""
    tuning = ({(f, m, t): tune.summary(tune_sweep(cfg, out, f, m, t)) for (f, _m, m) in tuned_rows(cfg)
               for t in cfg.task.default_targets} if cfg.tune else None)
    selection = {t: ReproduceDir(out).selected(t).read_metrics() for t in cfg.task.default_targets
                 if ReproduceDir(out).selected(t).finished} if with_test else None
    rows = None
    if cfg.beyond and with_test:
        # torch: its ensembles and post-processing import the metrics, so the CLI starts without it
        from musefusion.pipelines import beyond

        rows = beyond.summary(out, cfg.task.value, cfg.task.default_targets, _test_scorer(cfg))
    test, test_ci = score_test(out, cfg) if with_test else (None, None)
    return ReproduceSummary(runs=summarize_runs(out, cfg), test=test, test_ci=test_ci, tuning=tuning,
                            selection=selection, beyond=rows)


def _test_scorer(cfg: ReproduceConfig) -> Callable[[Path, str], tuple[float, list[float]] | None]:
    """``score(predictions folder, target)``: the test CCC against the hidden labels and its 95 % subject-level
    interval ``[low, high]`` (None when withheld)."""
    # torch: imported on first use, so the CLI starts without it
    from musefusion.evaluation.scoring import score_predictions

    labels = hidden_labels_dir(cfg)

    def score(folder: Path, target: str) -> tuple[float, list[float]] | None:
        if labels is None:
            return None
        found = score_predictions(folder, cfg.root, cfg.task, target, Partition.TEST, labels)
        return float(found["ccc"]), [found["ccc_low"], found["ccc_high"]]

    return score


def hidden_labels_dir(cfg: ReproduceConfig) -> Path | None:
    """The test-label folder: ``--test-labels``, else the synthetic corpus's ``<root>/test_labels``."""
    if cfg.test_labels is not None:
        return Path(cfg.test_labels)
    cand = Path(cfg.root) / "test_labels"
    return cand if cand.is_dir() else None


def score_test(out: Path, cfg: ReproduceConfig) -> tuple[dict[str, float] | None, dict[str, list[float]] | None]:
    """Table 6: CCC of the fused test predictions against the true test labels, and each one's 95 % subject-level
    bootstrap interval ``[low, high]`` (the stress ``combined`` mean has none); (None, None) when withheld."""
    if hidden_labels_dir(cfg) is None:
        return None, None
    score = _test_scorer(cfg)
    full = paper.full_fusion_row(cfg.task)
    scores: dict[str, float] = {}
    intervals: dict[str, list[float]] = {}
    for target in cfg.task.default_targets:
        for key, run in ((target, ReproduceDir(out).selected(target)),
                         (f"bilstm:{target}", ReproduceDir(out).fusion(target, full, "oof"))):
            found = score(run.predictions("test"), target) if run.predictions("test").is_dir() else None
            if found is not None:
                scores[key], intervals[key] = found
    for prefix in ("", "bilstm:"):
        if cfg.task == Task.STRESS and all(f"{prefix}{t}" in scores for t in cfg.task.default_targets):
            scores[f"{prefix}combined"] = float(np.mean([scores[f"{prefix}{t}"] for t in cfg.task.default_targets]))
    return scores, intervals


@dataclasses.dataclass(frozen=True)
class HeadlineRow:
    """One target of the headline: what musefusion submits, the paper's fusion and the official baseline as run here
    (test CCC and its 95 % subject-level interval; None where test labels are withheld), and the paper's Table 6."""

    target: str
    chosen: str  # the fuser the selection chose for the submission
    submission: tuple[float, Interval] | None
    paper_fusion: tuple[float, Interval] | None  # the paper's full fusion Bi-LSTM (out-of-fold), run here
    baseline_row: str  # the official baseline's feature set best on devel (never chosen on test)
    baseline: tuple[float, Interval] | None
    paper_real: float | None  # Table 6: the paper's submission on the real Ulm-TSST test set
    baseline_real: float | None  # Table 6: the official baseline on the real test set
    #: submission minus baseline on the same test subjects, with its paired subject-level bootstrap interval
    versus_baseline: Difference | None = None


def headline_rows(cfg: ReproduceConfig, out: Path) -> list[HeadlineRow]:
    """The headline table of a finished reproduction (the demo ends with it; ``bench/demo.py`` writes it to the
    results page the README quotes). Targets whose selection has not finished are left out."""
    score = _test_scorer(cfg)
    full = paper.full_fusion_row(cfg.task)
    rd = ReproduceDir(out)

    def tested(folder: Path, target: str) -> tuple[float, Interval] | None:
        found = score(folder, target) if folder.is_dir() else None
        return None if found is None else (found[0], Interval(found[1][0], found[1][1]))

    def devel(run: rundir.RunDir) -> float:
        value = run.read_metrics().get("best", {}).get("devel_ccc")
        return -math.inf if value is None else float(value)

    rows = []
    for target in cfg.task.default_targets:
        selected = rd.selected(target)
        if not selected.finished:
            continue
        peers = [(rd.run(target, f, m), f) for (f, _mod, m) in unimodal_rows(cfg) if m == "baseline"]
        best = max(((r, f) for r, f in peers if r.finished), key=lambda rf: devel(rf[0]), default=None)
        rows.append(HeadlineRow(
            target=target, chosen=str(selected.read_metrics()["chosen"]),
            submission=tested(selected.predictions("test"), target),
            paper_fusion=tested(rd.fusion(target, full, "oof").predictions("test"), target),
            baseline_row=best[1] if best else "",
            baseline=tested(best[0].predictions("test"), target) if best else None,
            paper_real=paper.TABLE6.get(("Proposed Model", cfg.task.value), {}).get(target),
            baseline_real=paper.TABLE6.get(("Baseline", cfg.task.value), {}).get(target),
            versus_baseline=_paired_test(cfg, selected.predictions("test"), best[0].predictions("test"), target)
            if best else None))
    return rows


def _paired_test(cfg: ReproduceConfig, a: Path, b: Path, target: str) -> Difference | None:
    """Test CCC of ``a`` minus ``b`` (prediction folders) with its paired subject-level interval; None when the test
    labels are withheld or the two share fewer than 2 test subjects."""
    labels = hidden_labels_dir(cfg)
    if labels is None:
        return None
    paired = runs.paired_folders(a, b, cfg.root, cfg.task, target, labels)
    return None if paired.note else paired.difference
