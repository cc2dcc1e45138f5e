"""``musefusion reproduce --task personalisation``: the MuSe 2023 protocol on every feature set and target.

For each target (``physio-arousal``, ``valence``), feature set (``egemaps``, ``faus``, ``bio``) and seed: a general
GRU (the 2023 baseline's model) trained with the CCC loss, then personalised (:mod:`musefusion.pipelines.personalise`,
its defaults); per target and seed, the 2023 late fusion (a devel-weighted average) of the general streams and of the
personalised streams. The report gives general against personalised devel and test CCC, mean ± std over the seeds,
the subjects personalisation hurt on test, and a plot of per-subject gains.

Layout (inside the reproduce folder)::

    runs/<target>/<features>-gru-seed<s>/                a general run; its personalised/ folder
    fusion/<target>/<general|personalised>-seed<s>/      the weighted-average fusion of the feature sets
    personalisation.json, report.md, plots/gains_<target>.png

This module takes the reproduce config by its fields (it does not import ``reproduce``, which dispatches here).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from musefusion import fsutil, rundir
from musefusion.config import DataConfig, RunConfig, Schedule, TrainConfig, model_preset
from musefusion.data import formats
from musefusion.data.corpus import find_corpus_dir, partition_path
from musefusion.errors import ConfigError
from musefusion.pipelines.experiment import ReproduceConfig
from musefusion.pipelines.jobs import job_train, run_jobs
from musefusion.pipelines.personalise import PersonaliseConfig, fuse_personalised, personalise, test_subjects
from musefusion.pipelines.report import write_pages
from musefusion.rundir import ReproduceDir, RunDir, Status
from musefusion.types import Task

logger = logging.getLogger(__name__)

#: The feature sets of the rows (MuSe 2023 folder names; ``bio`` reads a ``biosignals`` folder).
FEATURES = ("egemaps", "faus", "bio")
MODEL = "gru"

#: Per reproduce profile: the general model's training (the 2023 baseline's GRU: plateau schedule, windows of 25-100
#: s) and the personalisation's options (PersonaliseConfig fields; its defaults where absent).
PROFILES: dict[str, dict[str, Any]] = {
    "quick": {"epochs": 30, "early_stop": 5, "seeds": (1, 2, 3), "win_len": 100, "hop_len": 50, "lr": 0.002,
              "personalise": {}},
    "paper": {"epochs": 100, "early_stop": 15, "seeds": (1, 2, 3), "win_len": 200, "hop_len": 100, "lr": 0.002,
              "personalise": {}},
    "demo": {"epochs": 12, "early_stop": 3, "seeds": (1,), "win_len": 100, "hop_len": 50, "lr": 0.002,
             "personalise": {"seeds": (1,)}},
    "smoke": {"epochs": 2, "early_stop": 0, "seeds": (1,), "win_len": 40, "hop_len": 20, "lr": 0.005, "small": True,
              "personalise": {"seeds": (1,), "epochs": 2}},
}

#: ReproduceConfig fields that have no meaning here, with their defaults: a value other than these is refused.
_UNUSED = {"row_configs": (), "stage": "all", "all_models": False, "baseline": True, "retrain": "auto",
           "fusion_refit": False, "attention": "encoder", "tune": False,
           "selection_rule": "interval"}


def _check(cfg: ReproduceConfig) -> None:
    for name, default in _UNUSED.items():
        value = getattr(cfg, name)
        if (value.value if hasattr(value, "value") else value) != default:
            raise ConfigError(f"reproduce --task personalisation: --{name.replace('_', '-')} does not apply (the rows "
                              "are the 2023 baseline's GRU on each feature set, then personalised); drop it.")


def general_config(cfg: ReproduceConfig, target: str, features: str, seed: int) -> RunConfig:
    """The general model of one row and seed under the profile."""
    s = PROFILES[cfg.profile.value]
    data = DataConfig(root=cfg.root, task=Task.PERSONALISATION, target=target, features=(features,),
                      win_len=s["win_len"], hop_len=s["hop_len"], normalize=cfg.normalise)
    model = model_preset(MODEL, **({"hidden": 16} if s.get("small") else {}))
    train = TrainConfig(epochs=s["epochs"], lr=s["lr"], seeds=(seed,), schedule=Schedule.PLATEAU,
                        early_stop=s["early_stop"] or s["epochs"], num_threads=1, precision=cfg.precision)
    return RunConfig(data, model, train)


def _seeds(cfg: ReproduceConfig) -> tuple[int, ...]:
    return tuple(cfg.seeds) or PROFILES[cfg.profile.value]["seeds"]


def reproduce_personalisation(cfg: ReproduceConfig, out: Path, progress: Callable[[str, int], Callable[[str], None]],
                              labels: Path | None) -> Path:
    """Run every row, personalise it, fuse, and write ``report.md``; returns the report path (resumable).

    ``labels``: the true test labels' folder (``reproduce.hidden_labels_dir``), None when withheld.
    """
    # torch: imported on first use, so the CLI starts without it
    from musefusion.training.run import resolve_run_config, run_status

    _check(cfg)
    t0 = time.perf_counter()
    out = Path(out)
    rdir = ReproduceDir(out)
    corpus = find_corpus_dir(cfg.root, Task.PERSONALISATION)
    rundir.refuse_corpus(out, holds=False)
    targets, seeds = Task.PERSONALISATION.default_targets, _seeds(cfg)
    rows = [(t, f, s) for t in targets for f in FEATURES for s in seeds]

    jobs = []
    for target, features, seed in rows:
        rc = resolve_run_config(general_config(cfg, target, features, seed))
        d = rdir.general(target, features, MODEL, seed)
        if run_status(rc, d, overwrite=cfg.overwrite) is not Status.FINISHED:
            jobs.append((job_train, (rc.to_dict(), str(d)), f"{target}/{features}-{MODEL}-seed{seed}"))
    run_jobs(jobs, rdir.jobs_log, progress("general models", len(jobs)), cfg.workers, cfg.cluster)

    pcfg = PersonaliseConfig(**PROFILES[cfg.profile.value]["personalise"])
    where = partition_path(corpus)
    n_subjects = len(test_subjects(formats.read_partition(where), where))
    results: dict[tuple[str, str, int], dict[str, Any]] = {}
    for target, features, seed in rows:
        d = rdir.general(target, features, MODEL, seed)
        done = progress(f"personalise {target}/{features} s{seed}", n_subjects)
        results[(target, features, seed)] = personalise(d, pcfg, test_labels=labels, workers=cfg.workers,
                                                         cluster=cfg.cluster, overwrite=cfg.overwrite,
                                                         on_subject=done).metrics
    fused: dict[tuple[str, str, int], dict[str, Any]] = {}
    for target in targets:
        for seed in seeds:
            folders = [RunDir(rdir.general(target, f, MODEL, seed)).personalised.path for f in FEATURES]
            for stream in ("general", "personalised"):
                fused[(target, stream, seed)] = fuse_personalised(
                    folders, rdir.personal_fusion(target, stream, seed), test_labels=labels, stream=stream).metrics
    summary = _summary(results, fused, targets, seeds)
    fsutil.write_json(rdir.personal_summary, summary)
    for target in targets:
        try:
            # matplotlib: imported only when a plot is drawn
            from musefusion.evaluation.plots import plot_subject_gains

            plot_subject_gains(_gains(results, target, seeds), rdir.plot(f"gains_{target}.png"),
                               f"{target}: personalised minus general CCC per subject (mean over seeds {list(seeds)})")
        except Exception as exc:  # plotting must never lose a finished reproduction
            logger.warning("could not draw the gains plot of %s: %s", target, exc)
    return _write_report(cfg, rdir, summary, seeds, time.perf_counter() - t0)


def _mean_std(values: list[float | None]) -> tuple[float, float]:
    vals = np.array([np.nan if v is None else v for v in values], dtype=float)
    if np.isnan(vals).all():
        return float("nan"), float("nan")
    return float(np.nanmean(vals)), float(np.nanstd(vals))


def _summary(results: dict[tuple[str, str, int], dict[str, Any]], fused: dict[tuple[str, str, int], dict[str, Any]],
             targets: tuple[str, ...], seeds: tuple[int, ...]) -> dict[str, Any]:
    """Per target and row (each feature set, the fusion): general and personalised devel/test, mean and std."""
    out: dict[str, Any] = {}
    for target in targets:
        rows: dict[str, Any] = {}
        for features in FEATURES:
            ms = [results[(target, features, s)] for s in seeds]
            row: dict[str, Any] = {}
            for part in ("devel", "test"):
                for stream in ("general", "personalised"):
                    row[f"{part}_{stream}"] = _mean_std([(m.get(part) or {}).get(stream) for m in ms])
            hurt = sorted({s for m in ms for s in (m.get("hurt_on_test") or {})})
            mean_loss = {s: round(float(np.mean([(m.get("hurt_on_test") or {}).get(s, 0.0) for m in ms])), 4)
                         for s in hurt}
            row["hurt_on_test"] = dict(sorted(mean_loss.items(), key=lambda kv: kv[1]))  # the worst first
            row["kept_general"] = [len(m["kept_general"]) for m in ms]
            row["subjects"] = ms[0]["n_subjects"]
            rows[features] = row
        row = {}
        for part in ("devel", "test"):
            for stream in ("general", "personalised"):
                row[f"{part}_{stream}"] = _mean_std([(fused[(target, stream, s)].get(part) or {}).get("fused")
                                                     for s in seeds])
        rows["fusion"] = row
        out[target] = rows
    return {"seeds": list(seeds), "targets": out}


def _gains(results: dict[tuple[str, str, int], dict[str, Any]], target: str, seeds: tuple[int, ...]) -> pd.DataFrame:
    """Subject x feature set: the personalised minus general CCC on test (devel where test is not scored), mean over
    seeds."""
    frames = []
    for features in FEATURES:
        for seed in seeds:
            for subject, r in results[(target, features, seed)]["subjects"].items():
                gain = r.get("test_gain", r["devel_gain"])
                frames.append({"subject": subject, "features": features, "gain": gain})
    df = pd.DataFrame(frames)
    table = df.groupby(["subject", "features"])["gain"].mean().unstack("features")[list(FEATURES)]
    return table.loc[sorted(table.index, key=lambda s: (len(s), s) if s.isdigit() else (1 << 30, s))]  # 2 < 10


def _fmt(ms: tuple[float, float]) -> str:
    m, s = ms
    return "-" if np.isnan(m) else f"{m:.4f} ± {s:.4f}"


def _write_report(cfg: ReproduceConfig, rdir: ReproduceDir, summary: dict[str, Any], seeds: tuple[int, ...], wall_s: float) -> Path:
    # torch: imported on first use, so the CLI starts without it
    from musefusion.training.run import versions

    parts = ["# musefusion: MuSe 2023 personalisation",
             f"Corpus `{cfg.root}`, profile `{cfg.profile.value}`, seeds {list(seeds)} (one general model per seed, "
             f"each personalised); {wall_s / 60:.1f} min this call with {cfg.workers} worker(s).",
             "General: the 2023 baseline's GRU trained on every train id; personalised: one fine-tuned copy per test "
             "subject, kept only where it beats the general model on the subject's devel chunks. CCC over all "
             "subjects' chunks at once; mean ± std over the seeds. Devel is optimistic for the personalised models "
             "(their epochs and seeds were chosen on it); test is the honest score."]
    for target, rows in summary["targets"].items():
        lines = [f"## {target}", "", "| row | devel general | devel personalised | test general | test personalised |"
                 " general kept for (per seed) | hurt on test (mean gain) |", "|---|---|---|---|---|---|---|"]
        for name, row in rows.items():
            kept = (f"{'/'.join(str(k) for k in row['kept_general'])} of {row['subjects']}" if "kept_general" in row
                    else "")
            hurt = ", ".join(f"{s} ({g:+.3f})" for s, g in row.get("hurt_on_test", {}).items()) if name != "fusion" \
                else ""
            label = "fusion (devel-weighted mean)" if name == "fusion" else f"{name} {MODEL}"
            lines.append(f"| {label} | {_fmt(row['devel_general'])} | {_fmt(row['devel_personalised'])} | "
                         f"{_fmt(row['test_general'])} | {_fmt(row['test_personalised'])} | {kept} | {hurt} |")
        parts += ["\n".join(lines), f"![{target}: per-subject gains](plots/gains_{target}.png)"]
    parts.append("## Provenance\n\n" + ", ".join(f"{k} {v}" for k, v in versions().items()))
    return write_pages(rdir.path, parts)
