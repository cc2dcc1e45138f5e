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

Rows chosen on devel (:data:`CHOSEN_ON_DEVEL`) have an optimistic devel CCC; where one has a subject-wise
cross-validated estimate (``top4-rows``, ``postprocess``, ``selected-all``) :func:`summary` gives it as
``devel_cv`` and :func:`above_paper` judges the row by it. These estimates remove the choice of rows, chain or
fuser, not the seed and epoch each row kept on devel; so the rows derived from kept predictions
(:data:`FROM_KEPT`) are compared with the paper row's kept (best-seed) devel CCC, the trained rows with its mean
over seeds.

The trained rows are jobs of the same pool or cluster as every other row; the derived rows take seconds. Each
row's wall time is what its training recorded (trained rows) or what deriving it took.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from musefusion import fsutil
from musefusion.config import RunConfig
from musefusion.evaluation import paper
from musefusion.pipelines.ensemble import ensemble_runs
from musefusion.pipelines.jobs import Job, job_train
from musefusion.pipelines.postprocessing import postprocess_run
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
#: The methods in table order, with one line each for the report.
METHODS: dict[str, str] = {
    "early-lstm": "early fusion: the three feature sets concatenated per step, LSTM",
    "crossmodal": "cross-modal temporal attention over the three feature sets",
    "label-delay": f"the audio stream retrained with labels {DELAY_STEPS / 2:g} s earlier",
    "label-delay-search": f"the audio stream's label delay searched on devel over {DELAY_GRID[0] / 2:g}-"
                          f"{DELAY_GRID[-1] / 2:g} s (devel optimistic)",
    "mean-streams": "mean of the fusion streams' predictions",
    "seed-ensemble": "mean of every seed of every fusion stream",
    "top4-rows": "mean of the 4 unimodal rows best on devel (devel optimistic)",
    "bilstm-reliability": "the paper's full fusion Bi-LSTM, also reading each stream's observed share",
    "postprocess": "the paper's Bi-LSTM, delayed/smoothed/bias-scale corrected on devel (devel optimistic)",
    "selected-all": "the fusion selection with the trained rows above added to its pool (devel optimistic)",
}
TRAINED = ("early-lstm", "crossmodal", "label-delay")
#: The rows chosen on devel (a delay, ensemble members, post-processing steps): their devel CCC is optimistic.
CHOSEN_ON_DEVEL = frozenset({"label-delay-search", "top4-rows", "postprocess", "selected-all"})
#: The rows derived from the runs' kept (devel-best seed) predictions (the seed ensemble averages every seed).
FROM_KEPT = frozenset({"mean-streams", "top4-rows", "postprocess", "selected-all"})
SEARCH_ROW = "label-delay-search"
#: The fusion row trained as a ``fuse`` job (its config is the reproduction's full fusion row's).
FUSION_ROW = "bilstm-reliability"


def audio_stream(task: str) -> tuple[str, str]:
    """(features, model) of the task's first audio fusion stream (the label-delay row's source)."""
    streams = paper.STREAMS[task]
    return streams["A"] if "A" in streams else streams["A1"]


def trained_configs(task: str, targets: tuple[str, ...], make: Callable[[str, str, str], RunConfig]
                    ) -> dict[tuple[str, str], RunConfig]:
    """(target, method) -> the RunConfig of each trained row, from the reproduction's ``make(features, model,
    target)`` (the profile's epochs, seeds and windows)."""
    out = {}
    for target in targets:
        out[(target, "early-lstm")] = make(EARLY[task], "lstm", target)
        out[(target, "crossmodal")] = make(EARLY[task], "crossmodal", target)
        feats, model = audio_stream(task)
        rc = make(feats, model, target)
        out[(target, "label-delay")] = rc.replace(data=rc.data.replace(label_delay=DELAY_STEPS))
        for d in DELAY_GRID:
            if d not in (0, DELAY_STEPS):  # 0: the paper's row; DELAY_STEPS: the fixed row
                out[(target, delay_method(d))] = rc.replace(data=rc.data.replace(label_delay=d))
    return out


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
        devel_best: its kept seed's devel CCC (what a row of :data:`FROM_KEPT` is compared with).
        test: its test CCC; None where test labels are withheld (devel alone decides), NaN where the paper row has
            no test score (no row is above).

    A row's devel is its cross-validated estimate ``devel_cv`` where it has one, else its devel (mean). Without
    test labels a row chosen on devel that has no such estimate (the searched delay) is never above: its devel
    is optimistic by the choice, and nothing else would check it.
    """
    def beats(r: dict[str, Any]) -> bool:
        if test is None and r["method"] in CHOSEN_ON_DEVEL and math.isnan(r.get("devel_cv", math.nan)):
            return False
        if not own_devel(r) > (devel_best if r["method"] in FROM_KEPT else devel_mean):
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


def verdict(summary: Any, task: str, target: str) -> tuple[tuple[float, float, float | None], list[str]] | None:
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
    """The unfinished trained rows as jobs, each with its config (``status(cfg, dir)`` says what a folder holds)."""
    found: list[tuple[Job, RunConfig]] = []
    for (target, method), rc in configs.items():
        d = ReproduceDir(out).beyond(target, method)
        if status(rc, d) is not Status.FINISHED:
            found.append(((job_train, (rc.to_dict(), str(d)), f"{target}/beyond {method}"), rc))
    return found


def _derive_one(out: Path, method: str, target: str, streams: dict[str, Path], rows: dict[str, Path], root: Path,
                task: str, folds: int, rule: str) -> None:
    d = ReproduceDir(out).beyond(target, method)
    fused = ReproduceDir(out).fusion(target, paper.full_fusion_row(Task(task)), "oof").path  # the paper's Bi-LSTM
    if method == "selected-all":
        later = {f"beyond-{m}": ReproduceDir(out).beyond(target, m) for m in TRAINED
                 if RunDir(ReproduceDir(out).beyond(target, m)).finished}
        write_selection(fused, {**rows, **later}, streams, d, folds=folds, root=root, task=Task(task), rule=rule)
    elif method == "mean-streams":
        ensemble_runs(list(streams.values()), d, root=root, overwrite=True)
    elif method == "seed-ensemble":
        ensemble_runs(list(streams.values()), d, seeds=True, root=root, overwrite=True)
    elif method == "top4-rows":  # it ranks them by devel CCC
        ensemble_runs(list(rows.values()), d, top=min(4, len(rows)), root=root, overwrite=True, folds=folds)
    else:
        postprocess_run(fused, d, root=root, folds=folds, overwrite=True)


def derive(out: Path, task: str, targets: tuple[str, ...], pool: dict[str, dict[str, Path]], root: Path,
           folds: int = 3, rule: str = SelectionRule.INTERVAL.value) -> None:
    """Write the derived rows (ensembles, post-processing, the selection over every row under the selection
    ``rule``) of every target, each cross-validated over ``folds`` folds of devel subjects where it is chosen on
    devel; each records its wall time."""
    for target in targets:
        full = paper.full_fusion_row(Task(task))
        streams = {n: ReproduceDir(out).run(target, *paper.STREAMS[task][n]).path for n in full}
        rows = pool[target]
        for method in ("mean-streams", "seed-ensemble", "top4-rows", "postprocess", "selected-all"):
            if method == "top4-rows" and len(rows) < 2:
                continue
            t0 = time.perf_counter()
            _derive_one(out, method, target, streams, rows, root, task, folds, rule)
            fsutil.write_json(ReproduceDir(out).beyond_time(target, method), {"seconds": time.perf_counter() - t0})
        found = search_delay(delay_candidates(out, task, target))
        if found is not None:
            fsutil.write_json(ReproduceDir(out).beyond_search(target), {
                "chosen_steps": found[0], "chosen_s": found[0] / 2,
                "devel_ccc_mean_by_steps": {str(d): v for d, v in found[1].items()}})


def summary(out: Path, task: str, targets: tuple[str, ...],
            score_test: Callable[[Path, str], tuple[float, list[float]] | None]) -> dict[str, list[dict[str, Any]]]:
    """Per target, one row per finished method: devel mean ± std over seeds (derived rows: one value), the
    subject-wise cross-validated devel estimate of a row chosen on devel where it has one (``devel_cv``: top4-rows,
    postprocess, selected-all; else NaN), test CCC and its 95 % interval (``score_test(predictions folder, target)``
    gives both; None without test labels) and wall seconds."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for target in targets:
        rows[target] = []
        for method, what in METHODS.items():
            r = RunDir(ReproduceDir(out).beyond(target, method))
            if method == SEARCH_ROW:
                candidates = delay_candidates(out, task, target)
                found = search_delay(candidates)
                if found is None:
                    continue
                r = RunDir(candidates[found[0]])
                what = f"{what}: {found[0] / 2:g} s chosen"
            if not r.finished:
                continue
            m = r.read_metrics()
            mean = m.get("devel_ccc_mean", m.get("best", {}).get("devel_ccc", float("nan")))
            std = m.get("devel_ccc_std", float("nan"))
            cv = m.get("cv_devel_ccc", float("nan"))
            if method == "selected-all":  # a selection: its chosen fuser's in-sample and cross-validated devel
                mean, cv = m["chosen_devel_ccc"], m.get("nested_cv_devel_ccc", float("nan"))
                what = f"{what}: {m['chosen']}" + (f" ({', '.join(sorted(m['top_rows']))})"
                                                   if m["chosen"] == "top-rows-mean" else "")
            if method in TRAINED:
                seconds = _train_seconds(r)
            elif method == SEARCH_ROW:  # the search's cost: every candidate but the paper's own row
                seconds = sum(_train_seconds(RunDir(p)) for d, p in candidates.items() if d)
            elif method == FUSION_ROW:
                seconds = float(m.get("seconds", float("nan")))  # a fusion run written before runs recorded their seconds: none
            else:
                t = ReproduceDir(out).beyond_time(target, method)
                seconds = float(fsutil.read_json(t)["seconds"]) if t.is_file() else float("nan")
            scored = score_test(r.predictions("test"), target) if r.predictions("test").is_dir() else None
            rows[target].append({"method": method, "what": what, "devel_mean": float(mean),
                                 "devel_std": float(std), "devel_cv": float(cv),
                                 "test": scored[0] if scored else None, "test_ci": scored[1] if scored else None,
                                 "seconds": seconds})
    return rows
