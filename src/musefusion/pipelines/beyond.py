"""``reproduce --beyond``: the later Ulm-TSST practice beside the paper's pipeline, on the same splits and seeds.

Rows, per target (each a run folder under ``<out>/beyond/<target>/<method>/``, so it resumes, and the report reads
it like every run):

* ``early-lstm``: early fusion, the task's three feature sets concatenated per step through an LSTM (the 2022
  valence winners' plain early fusion);
* ``crossmodal``: the cross-modal temporal attention model on the same sets (``musefusion.models.crossmodal``);
* ``label-delay``: the audio stream's row retrained with its labels moved 3 s earlier (6 steps, fixed: AVEC 2018's
  best delays were 3.2-4.0 s; its predictions are written 3 s later again);
* ``label-delay-search``: the delay searched on devel, AVEC 2018's way: the audio stream's row trained at every delay
  of ``DELAY_GRID`` (0-10 s; 0 is the paper's row itself, 3 s the fixed row above, the others are folders
  ``label-delay-d<steps>``), the one with the best devel CCC (mean over seeds) kept (chosen on devel: its devel is
  optimistic); ``label-delay-search.json`` beside them records every delay's devel CCC;
* ``mean-streams``: the plain mean of the fusion streams' kept predictions (the 2023 winners averaged files);
* ``seed-ensemble``: the mean of every seed of every fusion stream;
* ``top4-rows``: the mean of the 4 unimodal rows with the best devel CCC (chosen on devel: its devel is optimistic);
* ``bilstm-reliability``: the paper's full fusion row (out-of-fold, same settings) whose Bi-LSTM also reads each
  stream's observed share at every step (0 where its features were missing and filled);
* ``postprocess``: the paper's full fusion row's predictions delayed, smoothed and bias/scale-corrected where devel
  gains (AVEC 2018's post-processing; chosen on devel). It post-processes the paper's Bi-LSTM, not the selected
  fuser: a fuser fitted on every devel subject would leave the chain's cross-validated estimate nothing unseen.
* ``selected-all``: the reproduction's fusion selection (:mod:`musefusion.fusion.select`: the paper's Bi-LSTM, the
  best single row, weighted means, chosen by cross-validation over devel subjects) with the trained rows above
  (early fusion, cross-modal, the delayed audio stream) added to its pool of unimodal rows: the 2023 practice of
  averaging the best prediction files of models of several kinds. Its devel estimate is the selection's nested
  cross-validation (:func:`musefusion.fusion.select.nested_cv`).

Rows chosen on devel (``BeyondMethod.chosen_on_devel``) have an optimistic devel CCC; where one has a subject-wise
cross-validated estimate (``top4-rows``, ``postprocess``, ``selected-all``) :func:`summary` gives it as
``devel_cv`` and :func:`above_paper` judges the row by it. These estimates remove the choice of rows, chain or
fuser, not the seed and epoch each row kept on devel; so the rows derived from kept predictions
(``BeyondMethod.from_kept``) are compared with the paper row's kept (best-seed) devel CCC, the trained rows with its mean
over seeds.

The trained rows are jobs of the same pool or cluster as every other row; the derived rows take seconds. Each
row's wall time is what its training recorded (trained rows) or what deriving it took.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any

import pandas as pd

from musefusion import fsutil
from musefusion.config import RunConfig
from musefusion.errors import ConfigError
from musefusion.evaluation import paper
from musefusion.pipelines.ensemble import ensemble_runs
from musefusion.pipelines.jobs import Job, job_train
from musefusion.pipelines.postprocessing import postprocess_run
from musefusion.pipelines.results import BeyondRow, ReproduceSummary
from musefusion.pipelines.selection import write_selection
from musefusion.rundir import ReproduceDir, RunDir, Status
from musefusion.types import SelectionRule, Task

logger = logging.getLogger(__name__)

#: The feature sets fused early (and by the cross-modal model), per task.
EARLY = {"stress": "egemaps+vggface+bio", "physio": "vggish+vggface+bio"}
#: The label-delay row's fixed delay in 2 Hz steps (3 s).
DELAY_STEPS = 6
#: The delays (2 Hz steps) the searched row tries: 0-10 s, finer where AVEC 2018 found its best (3.2-4.0 s).
DELAY_GRID = (0, 2, 4, 6, 8, 12, 16, 20)
class Kind(StrEnum):
    """How a ``--beyond`` method makes its row (what its :class:`BeyondMethod` entry must give)."""

    TRAINED = "trained"  # runs trained as jobs of the pool: ``configs``
    SEARCH = "search"  # a choice on devel among trained candidates: ``configs`` (its own candidates), ``choose``
    FUSION = "fusion"  # a ``fuse`` job on the paper's full fusion row: ``fusion`` (its config from the row's)
    DERIVED = "derived"  # seconds of work on finished runs, after the jobs: ``derive``


#: ``make(features, model, target)``: a row's RunConfig under the reproduction's profile (and tuned parameters)
MakeConfig = Callable[[str, str, str], RunConfig]


@dataclasses.dataclass(frozen=True)
class Derivation:
    """What a derived method reads and where it writes, for one target of one reproduction."""

    out: Path  # the reproduction
    task: str
    target: str
    folder: Path  # the method's own run folder (it writes there; it is overwritten)
    fused: Path  # the paper's full fusion row (out-of-fold Bi-LSTM)
    streams: dict[str, Path]  # the full fusion row's streams, by stream name
    rows: dict[str, Path]  # every finished unimodal row, by row name
    root: Path  # the data root
    folds: int  # devel-subject folds of a choice made on devel
    rule: str  # the fusion selection rule


@dataclasses.dataclass(frozen=True)
class BeyondMethod:
    """One row of ``reproduce --beyond``: a later Ulm-TSST method. A new method is one entry of :data:`METHODS`
    (or :func:`register`); the pipeline, its cost projection, the report and the API read it from there.

    ``configs(task, target, make)`` gives the runs a trained or search method trains (run folder name under
    ``beyond/<target>/`` -> RunConfig); ``fusion(fc)`` the FusionConfig of a fusion method from the paper's full
    fusion row's; ``derive(d)`` writes a derived row from finished runs; ``choose(out, task, target)`` says which
    folder a search kept (and how to say it) or None while it is unfinished; ``describe(metrics, what)`` reads a
    row whose metrics are not a run's (devel, cross-validated devel, what it is); ``seconds(out, task, target)`` its
    cost where that is not its own folder's training, fit or derivation time (a search: every candidate it trained).
    """

    name: str
    what: str  # one line for the report
    kind: Kind
    chosen_on_devel: bool = False  # chosen on devel (a delay, members, steps): its devel CCC is optimistic
    from_kept: bool = False  # derived from the runs' kept (devel-best seed) predictions, not from every seed
    min_rows: int = 0  # derived: the unimodal rows it needs (fewer: the row is skipped)
    configs: Callable[[str, str, MakeConfig], dict[str, RunConfig]] | None = None
    fusion: Callable[[Any], Any] | None = None
    derive: Callable[[Derivation], object] | None = None
    choose: Callable[[Path, str, str], tuple[Path, str] | None] | None = None
    describe: Callable[[dict[str, Any], str], tuple[float, float, str]] | None = None
    seconds: Callable[[Path, str, str], float] | None = None  # its cost, where not its own runs', fit's or derivation's

    def __post_init__(self) -> None:
        needs = {Kind.TRAINED: ("configs",), Kind.SEARCH: ("configs", "choose"), Kind.FUSION: ("fusion",),
                 Kind.DERIVED: ("derive",)}[self.kind]
        uses = (*needs, "derive") if self.kind is Kind.SEARCH else needs  # a search may record its choice
        missing = [n for n in needs if getattr(self, n) is None]
        unused = [n for n in ("configs", "fusion", "derive", "choose") if n not in uses and getattr(self, n)]
        if missing or unused:
            raise ConfigError(f"--beyond method '{self.name}' ({self.kind.value}): "
                              + (f"needs {', '.join(missing)}" if missing else f"has no use for {', '.join(unused)}")
                              + "; see musefusion.pipelines.beyond.BeyondMethod.")

    def folder(self, key: str) -> str:
        """The run folder (under ``beyond/<target>/``) of one of :attr:`configs`' runs ("": the method's own)."""
        return key or self.name


def _early(model: str) -> Callable[[str, str, MakeConfig], dict[str, RunConfig]]:
    return lambda task, target, make: {"": make(EARLY[task], model, target)}


def _delayed(steps: tuple[int, ...]) -> Callable[[str, str, MakeConfig], dict[str, RunConfig]]:
    def configs(task: str, target: str, make: MakeConfig) -> dict[str, RunConfig]:
        rc = make(*audio_stream(task), target)
        return {"" if d == DELAY_STEPS else delay_method(d): rc.replace(data=rc.data.replace(label_delay=d))
                for d in steps}
    return configs


def _choose_delay(out: Path, task: str, target: str) -> tuple[Path, str] | None:
    candidates = delay_candidates(out, task, target)
    found = search_delay(candidates)
    return None if found is None else (candidates[found[0]], f"{found[0] / 2:g} s chosen")


def _delay_seconds(out: Path, task: str, target: str) -> float:
    """The search's cost: every candidate but the paper's own row (the fixed delay's row included)."""
    return sum(_train_seconds(RunDir(p)) for d, p in delay_candidates(out, task, target).items() if d)


def _record_delay(d: Derivation) -> None:
    found = search_delay(delay_candidates(d.out, d.task, d.target))
    if found is not None:
        fsutil.write_json(ReproduceDir(d.out).beyond_search(d.target), {
            "chosen_steps": found[0], "chosen_s": found[0] / 2,
            "devel_ccc_mean_by_steps": {str(k): v for k, v in found[1].items()}})


def _selected_all(d: Derivation) -> None:
    later = {f"beyond-{m.name}": ReproduceDir(d.out).beyond(d.target, m.name) for m in METHODS.values()
             if m.kind is Kind.TRAINED and RunDir(ReproduceDir(d.out).beyond(d.target, m.name)).finished}
    write_selection(d.fused, {**d.rows, **later}, d.streams, d.folder, folds=d.folds, root=d.root, task=Task(d.task),
                    rule=d.rule)


def _describe_selection(m: dict[str, Any], what: str) -> tuple[float, float, str]:
    """A selection's chosen fuser: its in-sample and cross-validated devel."""
    return (m["chosen_devel_ccc"], m.get("nested_cv_devel_ccc", float("nan")),
            f"{what}: {m['chosen']}" + (f" ({', '.join(sorted(m['top_rows']))})"
                                        if m["chosen"] == "top-rows-mean" else ""))


#: The methods in table order (the order their jobs start and their rows are derived and shown).
METHODS: dict[str, BeyondMethod] = {m.name: m for m in (
    BeyondMethod("early-lstm", "early fusion: the three feature sets concatenated per step, LSTM", Kind.TRAINED,
                 configs=_early("lstm")),
    BeyondMethod("crossmodal", "cross-modal temporal attention over the three feature sets", Kind.TRAINED,
                 configs=_early("crossmodal")),
    BeyondMethod("label-delay", f"the audio stream retrained with labels {DELAY_STEPS / 2:g} s earlier", Kind.TRAINED,
                 configs=_delayed((DELAY_STEPS,))),
    # its candidates: every delay of the grid but 0 (the paper's row) and DELAY_STEPS (the fixed row above)
    BeyondMethod("label-delay-search", f"the audio stream's label delay searched on devel over {DELAY_GRID[0] / 2:g}-"
                 f"{DELAY_GRID[-1] / 2:g} s (devel optimistic)", Kind.SEARCH, chosen_on_devel=True,
                 configs=_delayed(tuple(d for d in DELAY_GRID if d not in (0, DELAY_STEPS))), choose=_choose_delay,
                 derive=_record_delay, seconds=_delay_seconds),
    BeyondMethod("mean-streams", "mean of the fusion streams' predictions", Kind.DERIVED, from_kept=True,
                 derive=lambda d: ensemble_runs(list(d.streams.values()), d.folder, root=d.root, overwrite=True)),
    BeyondMethod("seed-ensemble", "mean of every seed of every fusion stream", Kind.DERIVED,
                 derive=lambda d: ensemble_runs(list(d.streams.values()), d.folder, seeds=True, root=d.root,
                                                overwrite=True)),
    BeyondMethod("top4-rows", "mean of the 4 unimodal rows best on devel (devel optimistic)", Kind.DERIVED,
                 chosen_on_devel=True, from_kept=True, min_rows=2,  # ensemble_runs ranks them by devel CCC
                 derive=lambda d: ensemble_runs(list(d.rows.values()), d.folder, top=min(4, len(d.rows)),
                                                root=d.root, overwrite=True, folds=d.folds)),
    BeyondMethod("bilstm-reliability", "the paper's full fusion Bi-LSTM, also reading each stream's observed share",
                 Kind.FUSION, fusion=lambda fc: fc.replace(reliability=True)),
    BeyondMethod("postprocess", "the paper's Bi-LSTM, delayed/smoothed/bias-scale corrected on devel (devel "
                 "optimistic)", Kind.DERIVED, chosen_on_devel=True, from_kept=True,
                 derive=lambda d: postprocess_run(d.fused, d.folder, root=d.root, folds=d.folds, overwrite=True)),
    BeyondMethod("selected-all", "the fusion selection with the trained rows above added to its pool (devel "
                 "optimistic)", Kind.DERIVED, chosen_on_devel=True, from_kept=True, derive=_selected_all,
                 describe=_describe_selection),
)}


def register(method: BeyondMethod, replace: bool = False) -> None:
    """Add a ``--beyond`` method at the end of :data:`METHODS` (``replace``: redefine one of that name in place)."""
    if method.name in METHODS and not replace:
        raise ConfigError(f"--beyond method '{method.name}' is registered already; pass replace=True to redefine it.")
    METHODS[method.name] = method


def unregister(name: str) -> None:
    """Remove a method added by :func:`register` (tests)."""
    METHODS.pop(name, None)


def audio_stream(task: str) -> tuple[str, str]:
    """(features, model) of the task's first audio fusion stream (the label-delay row's source)."""
    streams = paper.STREAMS[task]
    return streams["A"] if "A" in streams else streams["A1"]


def trained_configs(task: str, targets: tuple[str, ...], make: MakeConfig) -> dict[tuple[str, str], RunConfig]:
    """(target, run folder) -> the RunConfig of every run the trained and search methods train, in table order,
    from the reproduction's ``make(features, model, target)`` (the profile's epochs, seeds and windows)."""
    return {(target, m.folder(key)): rc for target in targets for m in METHODS.values() if m.configs
            for key, rc in m.configs(task, target, make).items()}


def fusion_methods() -> list[tuple[str, Callable[[Any], Any]]]:
    """(name, FusionConfig from the full fusion row's) of the methods fitted as ``fuse`` jobs on the paper's full
    fusion row."""
    return [(m.name, m.fusion) for m in METHODS.values() if m.fusion is not None]


def delay_method(steps: int) -> str:
    """The folder name of the searched row's candidate at ``steps`` of delay."""
    return f"label-delay-d{steps}"


def delay_candidates(out: Path, task: str, target: str) -> dict[int, Path]:
    """The searched row's candidates: delay in steps -> run folder (0: the paper's audio row)."""
    rdir = ReproduceDir(out)
    return {d: rdir.run(target, *audio_stream(task)).path if d == 0 else
            rdir.beyond(target, "label-delay" if d == DELAY_STEPS else delay_method(d)) for d in DELAY_GRID}


def search_delay(candidates: dict[int, Path]) -> tuple[int, dict[int, float]] | None:
    """The delay (steps) of :func:`delay_candidates` whose run has the best devel CCC (mean over seeds; ties to the
    shorter delay), with every delay's devel CCC; None while a candidate is unfinished."""
    runs = {d: RunDir(p) for d, p in candidates.items()}
    if not all(r.finished for r in runs.values()):
        return None
    devel = {d: float(r.read_metrics().get("devel_ccc_mean", float("nan"))) for d, r in runs.items()}
    best = max(devel, key=lambda d: (devel[d] if devel[d] == devel[d] else float("-inf"), -d))
    return best, devel


def paper_seconds(out: Path, task: str, target: str, folds: int, fusion: Path) -> float:
    """Training seconds of the paper's full fusion row as a pipeline: its streams' runs (every seed), their fold
    models and final (train+devel) models where trained, and the fusion fit (``fusion``'s run folder); NaN where the
    fusion run recorded no time."""
    m = RunDir(fusion).read_metrics() if RunDir(fusion).finished else {}
    if "seconds" not in m:
        return float("nan")
    total = float(m["seconds"])
    for fm in paper.STREAMS[task].values():
        stream = ReproduceDir(out).run(target, *fm)
        total += _train_seconds(stream) + sum(_train_seconds(stream.fold(folds, i)) for i in range(folds))
        total += _train_seconds(stream.final) if stream.final.finished else 0.0
    return total


def _train_seconds(r: RunDir) -> float:
    return sum(float(pd.read_csv(sd.history, usecols=["seconds"])["seconds"].sum())
               for sd in r.seed_dirs() if sd.history.is_file())


def above_paper(rows: list[dict[str, Any]], devel_mean: float, devel_best: float, test: float | None) -> list[str]:
    """The methods of one target's :func:`summary` rows above the paper's full fusion row on devel and on test, best
    first (by test, or by devel without test labels).

    Args:
        rows: the target's :func:`summary` rows.
        devel_mean: the paper row's devel CCC, mean over seeds (what a trained row's mean is compared with).
        devel_best: its kept seed's devel CCC (what a ``from_kept`` method's row is compared with).
        test: its test CCC; None where test labels are withheld (devel alone decides), NaN where the paper row has
            no test score (no row is above).

    A row's devel is its cross-validated estimate ``devel_cv`` where it has one, else its devel (mean). Without
    test labels a row chosen on devel that has no such estimate (the searched delay) is never above: its devel
    is optimistic by the choice, and nothing else would check it.
    """
    def beats(r: dict[str, Any]) -> bool:
        method = METHODS[r["method"]]
        if test is None and method.chosen_on_devel and math.isnan(r.get("devel_cv", math.nan)):
            return False
        if not own_devel(r) > (devel_best if method.from_kept else devel_mean):
            return False
        return test is None or (r["test"] is not None and r["test"] > test)

    def rank(r: dict[str, Any]) -> float:
        return -(r["test"] if test is not None and r["test"] is not None else own_devel(r))

    return [r["method"] for r in sorted(filter(beats, rows), key=rank)]


def own_devel(row: dict[str, Any]) -> float:
    """A :func:`summary` row's devel CCC as judged: its cross-validated estimate where it has one, else its devel
    (mean over seeds)."""
    cv = row.get("devel_cv", math.nan)
    return float(row["devel_mean"] if math.isnan(cv) else cv)


def verdict(summary: ReproduceSummary, task: str, target: str) -> tuple[tuple[float, float, float | None], list[str]] | None:
    """For one target of a reproduction's summary (:class:`musefusion.pipelines.report.ReproduceSummary`): the paper
    full fusion row's (devel mean, kept devel, test CCC: None where test labels are withheld, NaN where it has no
    test score) and :func:`above_paper`'s methods; None while that row is unfinished."""
    ref = summary.runs["fusion"].get((paper.full_fusion_row(task), target, "oof"))
    if ref is None:
        return None
    test = None if summary.test is None else summary.test.get(f"bilstm:{target}", float("nan"))
    key = (float(ref["mean"]), float(ref["best"]), test)
    return key, above_paper((summary.beyond or {}).get(target, []), *key)


def jobs(out: Path, configs: dict[tuple[str, str], RunConfig], status: Callable[[RunConfig, Path], Status]
         ) -> list[tuple[Job, RunConfig]]:
    """The unfinished trained runs as jobs, each with its config (``status(cfg, dir)`` says what a folder holds)."""
    found: list[tuple[Job, RunConfig]] = []
    for (target, folder), rc in configs.items():
        d = ReproduceDir(out).beyond(target, folder)
        if status(rc, d) is not Status.FINISHED:
            found.append(((job_train, (rc.to_dict(), str(d)), f"{target}/beyond {folder}"), rc))
    return found


def derive(out: Path, task: str, targets: tuple[str, ...], pool: dict[str, dict[str, Path]], root: Path,
           folds: int = 3, rule: str = SelectionRule.INTERVAL.value) -> None:
    """Write the derived rows (ensembles, post-processing, the selection over every row under the selection
    ``rule``) of every target, each cross-validated over ``folds`` folds of devel subjects where it is chosen on
    devel, each recording its wall time; and the searches' records of what they chose."""
    for target in targets:
        full = paper.full_fusion_row(Task(task))
        fused = ReproduceDir(out).fusion(target, full, "oof").path  # the paper's Bi-LSTM
        streams = {n: ReproduceDir(out).run(target, *paper.STREAMS[task][n]).path for n in full}
        for method in METHODS.values():
            if method.derive is None or len(pool[target]) < method.min_rows:
                continue
            t0 = time.perf_counter()
            method.derive(Derivation(out, task, target, ReproduceDir(out).beyond(target, method.name), fused,
                                     streams, pool[target], root, folds, rule))
            if method.kind is Kind.DERIVED:  # a search's record beside its candidates has no time of its own
                fsutil.write_json(ReproduceDir(out).beyond_time(target, method.name),
                                  {"seconds": time.perf_counter() - t0})


def summary(out: Path, task: str, targets: tuple[str, ...],
            score_test: Callable[[Path, str], tuple[float, list[float]] | None]) -> dict[str, list[dict[str, Any]]]:
    """Per target, one row per finished method: devel mean ± std over seeds (derived rows: one value), the
    subject-wise cross-validated devel estimate of a row chosen on devel where it has one (``devel_cv``: top4-rows,
    postprocess, selected-all; else NaN), test CCC and its 95 % interval (``score_test(predictions folder, target)``
    gives both; None without test labels) and wall seconds."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for target in targets:
        rows[target] = []
        for method in METHODS.values():
            r, what = RunDir(ReproduceDir(out).beyond(target, method.name)), method.what
            if method.choose is not None:
                chosen = method.choose(out, task, target)
                if chosen is None:
                    continue
                r, what = RunDir(chosen[0]), f"{what}: {chosen[1]}"
            if not r.finished:
                continue
            m = r.read_metrics()
            mean = m.get("devel_ccc_mean", m.get("best", {}).get("devel_ccc", float("nan")))
            std = m.get("devel_ccc_std", float("nan"))
            cv = m.get("cv_devel_ccc", float("nan"))
            if method.describe is not None:
                mean, cv, what = method.describe(m, what)
            scored = score_test(r.predictions("test"), target) if r.predictions("test").is_dir() else None
            rows[target].append({"method": method.name, "what": what, "devel_mean": float(mean),
                                 "devel_std": float(std), "devel_cv": float(cv),
                                 "test": scored[0] if scored else None, "test_ci": scored[1] if scored else None,
                                 "seconds": _seconds(out, task, target, method, m)})
    return rows


def _seconds(out: Path, task: str, target: str, method: BeyondMethod, metrics: dict[str, Any]) -> float:
    """A row's wall seconds: what its runs' training recorded (a search: every candidate it trained), what its
    fusion fit recorded (a run written before runs recorded their seconds: none) or what deriving it took."""
    rdir = ReproduceDir(out)
    if method.seconds is not None:
        return method.seconds(out, task, target)
    if method.kind is Kind.TRAINED:
        return _train_seconds(RunDir(rdir.beyond(target, method.name)))
    if method.kind is Kind.FUSION:
        return float(metrics.get("seconds", float("nan")))
    t = rdir.beyond_time(target, method.name)
    return float(fsutil.read_json(t)["seconds"]) if t.is_file() else float("nan")


def table(out: Path, task: Task, folds: int, summary: ReproduceSummary) -> list[BeyondRow]:
    """The ``--beyond`` table the report shows and the API returns: per target the paper's full fusion Bi-LSTM
    (minutes: its streams, their folds and the fusion), the selected fuser, then every finished method with the
    verdict (:func:`above_paper`)."""
    full = paper.full_fusion_row(task)
    test, test_ci = summary.test or {}, summary.test_ci or {}
    nan = float("nan")
    rows: list[BeyondRow] = []
    for target, methods in (summary.beyond or {}).items():
        ref = summary.runs["fusion"].get((full, target, "oof"))
        if ref:
            seconds = paper_seconds(out, task.value, target, folds, ReproduceDir(out).fusion(target, full, "oof").path)
            low, high = test_ci.get(f"bilstm:{target}", (nan, nan))
            rows.append(BeyondRow(target, "paper", f"paper: {'+'.join(full)} Bi-LSTM (oof)",
                                  "the paper's full fusion row (minutes: its streams, their folds and the fusion)",
                                  ref["mean"], ref["std"], devel_kept=ref["best"],
                                  devel_kept_low=ref.get("best_low", nan), devel_kept_high=ref.get("best_high", nan),
                                  test=test.get(f"bilstm:{target}", nan), test_low=low, test_high=high,
                                  minutes=seconds / 60))
        sel = (summary.selection or {}).get(target)
        if sel:
            low, high = test_ci.get(target, (nan, nan))
            rows.append(BeyondRow(target, "selected", f"selected fuser ({sel.get('chosen', '-')})",
                                  "chosen by cross-validation over devel subjects (devel: fitted and scored on every "
                                  "devel subject; CV: nested cross-validation)", sel["chosen_devel_ccc"],
                                  devel_cv=sel.get("nested_cv_devel_ccc", nan), test=test.get(target, nan),
                                  test_low=low, test_high=high, chosen_on_devel=True))
        found = verdict(summary, task, target)
        above = set(found[1]) if found else set()
        for r in methods:
            low, high = r.get("test_ci") or (nan, nan)
            rows.append(BeyondRow(target, r["method"], r["method"], r["what"], r["devel_mean"], r["devel_std"],
                                  r["devel_cv"], test=nan if r["test"] is None else r["test"], test_low=low,
                                  test_high=high, minutes=r["seconds"] / 60,
                                  chosen_on_devel=METHODS[r["method"]].chosen_on_devel,
                                  above_paper=r["method"] in above))
    return rows
