"""``report.md`` / ``report.html`` of a reproduction, built only from the files the runs wrote."""

from __future__ import annotations

import base64
import contextlib
import html
import logging
import math
import mimetypes
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tomli_w
from markdown_it import MarkdownIt

from musefusion import fsutil, rundir
from musefusion.data import formats
from musefusion.data.corpus import find_corpus_dir, load_labels
from musefusion.errors import MuseFusionError
from musefusion.evaluation import paper
from musefusion.pipelines.experiment import ReproduceConfig
from musefusion.pipelines.results import ReproduceSummary
from musefusion.rundir import ReproduceDir, RunDir
from musefusion.sweep.runner import redact_url
from musefusion.types import Task

logger = logging.getLogger(__name__)


def _f(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"


def _ci(low: float | None, high: float | None) -> str:
    """`` [low, high]`` (a 95 % subject-level bootstrap interval), or nothing where none was recorded."""
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return ""
    return f" [{low:.3f}, {high:.3f}]"


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _bar_chart(res: dict[str, Any], task: Task, targets: tuple[str, ...], path: Path) -> Path | None:
    import matplotlib  # matplotlib: imported only when a plot is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # matplotlib: imported only when a plot is drawn

    from musefusion.evaluation.plots import CCC_LIMITS  # matplotlib: imported only when a plot is drawn

    rows = [k for k in res["unimodal"] if k.target == targets[0]]
    if not rows:
        return None
    fig, axes = plt.subplots(1, len(targets), figsize=(5 * len(targets), 3.6), squeeze=False)
    colors = {"A": "tab:blue", "V": "tab:orange", "B": "tab:green"}
    for ax, target in zip(axes[0], targets, strict=True):
        keys = [k for k in res["unimodal"] if k.target == target]
        labels = [f"{paper.FEATURE_LABELS.get(k.features, k.features)}\n{paper.MODEL_LABELS.get(k.model, k.model)}"
                  for k in keys]
        means = [res["unimodal"][k]["mean"] for k in keys]
        stds = [res["unimodal"][k]["std"] for k in keys]
        ref = [(paper.TABLE2 if task == Task.STRESS else paper.TABLE3).get(k.row, {}).get(target, np.nan)
               for k in keys]
        x = np.arange(len(keys))
        ax.bar(x - 0.2, means, 0.4, yerr=stds, color=[colors.get(k.modality, "gray") for k in keys], label="musefusion")
        ax.bar(x + 0.2, ref, 0.4, color="lightgray", edgecolor="gray", label="paper")
        ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
        ax.set(ylabel="devel CCC", ylim=CCC_LIMITS, title=f"{target}: unimodal (A blue, V orange, B green)")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with fsutil.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _curves(out: Path, cfg: ReproduceConfig, target: str, path: Path) -> Path | None:
    """Fused and unimodal devel predictions against the label, for one devel subject."""
    import matplotlib  # matplotlib: imported only when a plot is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # matplotlib: imported only when a plot is drawn

    full = paper.full_fusion_row(cfg.task)
    fdir = ReproduceDir(out).fusion(target, full, "oof").predictions("devel")
    if not fdir.is_dir():
        return None
    labels, partition = load_labels(cfg.root, cfg.task, target)
    fused = formats.read_predictions(fdir)
    sid = sorted(fused)[0]
    fig, ax = plt.subplots(figsize=(11, 3.4))
    lts, y = labels[sid]
    ax.plot(lts / 1000, y, color="black", lw=1.5, label="label")
    for name in full:
        feats, model = paper.STREAMS[cfg.task.value][name]
        p = formats.read_predictions(ReproduceDir(out).run(target, feats, model).predictions("devel")).get(sid)
        if p is not None:
            ax.plot(p[0] / 1000, p[1], lw=0.8, alpha=0.8, label=f"{name}: {feats} {paper.MODEL_LABELS[model]}")
    ax.plot(fused[sid][0] / 1000, fused[sid][1], color="tab:red", lw=1.6, label="fused")
    ax.set(xlabel="time (s)", ylabel=target, title=f"devel subject {sid}: unimodal and fused predictions")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=3)
    with fsutil.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _tuning_table(summary: ReproduceSummary, res: dict[str, Any]) -> str:
    """Each row's search: trials, the best trial (one seed) and the row trained with its parameters (all seeds)."""
    header = ["Feature", "Model", "Target", "trials (complete/pruned of grid)", "best trial devel CCC",
              "row devel CCC (seeds)", "chosen hyper-parameters", "search time"]
    rows = []
    for (features, model, target), t in sorted((summary.tuning or {}).items()):
        r = next((v for k, v in res["unimodal"].items() if (k.features, k.model, k.target) == (features, model, target)),
                 None)
        params = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(t["params"].items()))
        rows.append([paper.FEATURE_LABELS.get(features, features), paper.MODEL_LABELS.get(model, model), target,
                     f"{t['complete']}/{t['pruned']} of {t['grid_size']}", _f(t["best_devel_ccc"]),
                     f"{r['mean']:.4f} ± {r['std']:.4f}" if r else "-", params or "-",
                     f"{t['wall_seconds'] / 60:.1f} min ({t['trial_seconds'] / 60:.1f} min of trials)"])
    return _md_table(header, rows)


def _selection_table(selection: dict[str, dict[str, Any]], targets: tuple[str, ...], full: tuple[str, ...]) -> str:
    """Each fuser's cross-validated devel CCC (the selection score) and devel CCC fitted on all devel subjects."""
    names = {"bilstm": f"paper's Bi-LSTM ({'+'.join(full)}, fitted on out-of-fold train predictions)",
             "best-stream": "best single row", "weighted-mean": "devel-weighted mean of the streams",
             "top-rows-mean": "devel-weighted mean of the best rows"}
    header = ["fuser"] + [h for t in targets if t in selection
                          for h in (f"{t}: CV devel CCC", f"{t}: CV gain over the Bi-LSTM", f"{t}: devel CCC")]
    rows = []
    for fuser, label in names.items():
        row = [label]
        for t in targets:
            m = selection.get(t)
            if m is None or fuser not in m["cv_devel_ccc"]:
                continue
            detail = ""
            if fuser == "best-stream":
                detail = f" ({m['best_stream']})"
            elif fuser == "weighted-mean":
                detail = " (" + ", ".join(f"{k} {w:.2f}" for k, w in m["weights"].items()) + ")"
            elif fuser == "top-rows-mean" and "top_rows" in m:
                detail = " (" + ", ".join(f"{k} {w:.2f}" for k, w in m["top_rows"].items()) + ")"
            mark = " **chosen**" if m["chosen"] == fuser else ""
            ci = m.get("cv_devel_ccc_ci", {}).get(fuser)
            gain = m.get("cv_gain_over_bilstm", {}).get(fuser)
            row += [f"{m['cv_devel_ccc'][fuser]:.4f}{_ci(*ci) if ci else ''}{mark}",
                    f"{gain['delta']:+.4f}{_ci(*gain['ci'])}" if gain and None not in gain["ci"] else "-",
                    f"{m['devel_ccc'][fuser]:.4f}{detail}"]
        rows.append(row)
    first = next(iter(selection.values()))
    rule = first.get("rule", "max")
    text = (f"CV: {first['folds']} folds of devel subjects; a row or weights chosen on the other folds, scored on "
            "the held-out one. ")
    if rule == "interval":
        text += ("Rule `interval`: a fuser replaces the paper's Bi-LSTM only when the paired subject-level bootstrap "
                 "interval of its CV gain lies above 0; among those the highest CV score wins.")
        quiet = [t for t in targets if t in selection and not selection[t].get("distinguishable", True)]
        if quiet:
            text += (f" {', '.join(quiet)}: no candidate is distinguishable from the paper's fusion, so the paper's "
                     "Bi-LSTM makes the submission.")
    else:
        text += "Rule `max`: the highest CV devel CCC makes the submission; ties go to the paper's Bi-LSTM."
    return _md_table(header, rows) + "\n\n" + text


def _peer_line(res: dict[str, Any], table: dict[Any, Any], targets: tuple[str, ...]) -> str:
    """How far the paper's rows are from the MuSe 2021 baseline peer rows, per target (best seed devel CCC)."""
    bits = []
    for t in targets:
        ours = {k: v["best"] for k, v in res["unimodal"].items() if k.target == t and k.row in table}
        base = {k: v["best"] for k, v in res["unimodal"].items() if k.target == t and k.model == "baseline"}
        if ours and base:
            (ko, vo), (kb, vb) = max(ours.items(), key=lambda kv: kv[1]), max(base.items(), key=lambda kv: kv[1])
            bits.append(f"{t}: best paper row {vo:.4f} ({paper.FEATURE_LABELS.get(ko[0], ko[0])} "
                        f"{paper.MODEL_LABELS.get(ko[2], ko[2])}), best baseline row {vb:.4f} "
                        f"({paper.FEATURE_LABELS.get(kb[0], kb[0])}), difference {vo - vb:+.4f}")
    return ("Peer rows: the official MuSe 2021 baseline (its README settings: bidirectional LSTM, plateau schedule, "
            "early stop; `--no-baseline` leaves them out). " + "; ".join(bits) + ".")


def write_report(cfg: ReproduceConfig, out: Path, summary: ReproduceSummary, wall_s: float,
                 submission_problems: list[str] | None) -> Path:
    """Write ``report.md`` and ``report.html`` into ``out`` and return the Markdown path.

    Args:
        cfg: the ``ReproduceConfig`` (task, profile, root, seeds) the runs were made with.
        out: the reproduction folder (its plots are written there too).
        summary: the scores to show.
        wall_s: the reproduction's wall time.
        submission_problems: the validator's findings; None for a ``--stage unimodal`` report.
    """
    # torch: imported on first use, so the CLI starts without it
    from musefusion.training.run import versions

    out = Path(out)
    res = summary.runs
    targets = cfg.task.default_targets
    s = cfg.settings
    tno = ("2", "4") if cfg.task == Task.STRESS else ("3", "5")
    parts = [f"# musefusion reproduction: MuSe-{cfg.task.value.capitalize()}",
             f"Data: {md_code(cfg.root)}; profile **{cfg.profile}** ({s.epochs} epochs, seeds {list(s.seeds)}, "
             f"window hop {s.hop_len}, {s.folds} folds, fusion {s.fusion_epochs} epochs); "
             f"{cfg.workers} worker process(es); wall time of this call **{wall_s / 60:.1f} min**, training time "
             f"recorded in the runs **{training_seconds(out) / 60:.1f} min** of worker time.",
             corpus_kind(cfg.root, cfg.task),
             "All numbers are devel CCC (one CCC over all devel subjects concatenated), mean ± std over seeds, "
             "and the best seed's; *paper* is the value the paper reports on the real Ulm-TSST data. "
             "Brackets: the 95 % interval of the kept seed's CCC (test: of the test CCC) from a subject-level "
             "bootstrap (1000 resamples of the subjects); two scores whose intervals overlap widely are not "
             "told apart by this corpus.",
             "Test predictions: the fusion streams' "
             + ("final models, retrained on train+devel for their best epoch count (Sec. 5.5)" if cfg.retrains
                else "devel-selected models (trained on train only)")
             + "; the fusion models' "
             + ("refit on the train+devel streams" if cfg.fusion_refit else "kept seed (fitted on train, epoch "
                "chosen on devel)") + f" (--retrain {cfg.retrain.value}"
             + (", --fusion-refit)." if cfg.fusion_refit else ")."),
             f"Self-attention: **{cfg.attention.value}** ("
             + {"encoder": "stock Transformer encoder layers over the raw features, Eq. 1-3 inside them",
                "literal": "bare Eq. 1-3 over the raw features, an ablation"}.get(
                 cfg.attention.value, "projection to d_model, positions, Transformer encoder layers") + ")."]
    header = ["Feature", "M", "Model"]
    for t in targets:
        header += [f"{t} (ours)", f"{t} best seed", f"{t} (paper)"]
    rows = []
    table = paper.unimodal_table(cfg.task)
    peers = sorted({k.row for k in res["unimodal"] if k.model == "baseline"})
    flagged = False
    for (features, mod, model) in [*table, *peers]:
        row = [paper.FEATURE_LABELS.get(features, features), mod, paper.MODEL_LABELS.get(model, model)]
        for t in targets:
            r = res["unimodal"].get((features, mod, model, t))
            mark = " †" if r and r.get("still_improving") else ""
            flagged = flagged or bool(mark)
            ref = table.get((features, mod, model), {}).get(t)
            row += ([f"{r['mean']:.4f} ± {r['std']:.4f}{mark}",
                     f"{r['best']:.4f}{_ci(r.get('best_low'), r.get('best_high'))} (seed {r['best_seed']})"] if r
                    else ["-", "-"]) + [_f(ref)]
        rows.append(row)
    parts += [f"## Table {tno[0]}: unimodal models", _md_table(header, rows)]
    if peers:
        parts.append(_peer_line(res, table, targets))
    if flagged:
        parts.append("† a seed's best devel CCC came at the last epoch of its budget: the row was still improving "
                     f"when the {cfg.profile} profile stopped it ({s.epochs} epochs); a longer budget may score "
                     "higher.")
    parts.append("![unimodal devel CCC](plots/unimodal.png)")
    if summary.tuning:
        parts += ["## Tuning (Sec. 5.2 grid, one Optuna study per row)", _tuning_table(summary, res)]
    if cfg.all_models:
        header = ["Feature", "Model"] + [f"{t} (ours)" for t in targets] + ["train-mean predictor"]
        rows = []
        for (features, _mod, model) in sorted({k.row for k in res["unimodal"]}):
            row = [paper.FEATURE_LABELS.get(features, features), model]
            for t in targets:
                r = res["unimodal"].get((features, _mod, model, t))
                row.append(f"{r['mean']:.4f} ± {r['std']:.4f} (kept {r['best']:.4f}"
                           f"{_ci(r.get('best_low'), r.get('best_high'))})" if r else "-")
            rows.append([*row, "0.0000"])
        parts += ["## All models on every feature set", "A constant prediction (the train mean) has CCC 0.",
                  _md_table(header, rows)]
    if submission_problems is None:  # --stage unimodal
        _bar_chart(res, cfg.task, targets, ReproduceDir(out).plot("unimodal.png"))
        parts.append(f"Wall time {wall_s / 60:.1f} min (unimodal stage only).")
        return write_pages(out, parts)

    header = ["Streams", "M"] + [h for t in targets for h in (f"{t} (ours)", f"{t} (paper)")]
    rows = []
    for row_key, paper_row in paper.fusion_table(cfg.task).items():
        row = [" + ".join(f"{n}={paper.FEATURE_LABELS.get(paper.STREAMS[cfg.task.value][n][0])} "
                          f"{paper.MODEL_LABELS[paper.STREAMS[cfg.task.value][n][1]]}" for n in row_key),
               "+".join(dict.fromkeys(n[0] for n in row_key))]
        for t in targets:
            r = res["fusion"].get((row_key, t, "oof"))
            row += [f"{r['mean']:.4f} ± {r['std']:.4f}{_ci(r.get('best_low'), r.get('best_high'))}" if r else "-",
                    _f(paper_row.get(t))]
        rows.append(row)
    parts += [f"## Table {tno[1]}: late fusion (Bi-LSTM over prediction streams, fitted on out-of-fold "
              "train predictions)", _md_table(header, rows)]

    full = paper.full_fusion_row(cfg.task)
    rows = []
    for mode, text in (("oof", "out-of-fold train predictions (default)"),
                       ("in-sample", "in-sample train predictions (MuSe 2021 baseline)"),
                       ("devel", f"devel predictions, {s.folds}-fold CV by subject")):
        row = [text]
        for t in targets:
            r = res["fusion"].get((full, t, mode))
            row.append(f"{r['mean']:.4f} ± {r['std']:.4f}{_ci(r.get('best_low'), r.get('best_high'))}" if r else "-")
        rows.append(row)
    best_uni = []
    for t in targets:
        vals = [v for k, v in res["unimodal"].items() if k.target == t]
        top = max(vals, key=lambda v: v["best"]) if vals else None
        best_uni.append(f"{top['best']:.4f}{_ci(top.get('best_low'), top.get('best_high'))}" if top else "-")
    rows.append(["best unimodal run (best seed)", *best_uni])
    parts += [f"## What the fusion is fitted on ({' + '.join(full)})", _md_table(["fitted on", *targets], rows)]

    if summary.selection:
        parts += ["## Fusion selection (what the submission is made from)", _selection_table(summary.selection,
                                                                                             targets, full)]
    test = summary.test
    t6 = [r for r in paper.TABLE6 if r[1] == cfg.task.value]
    cols = [*targets, "combined"] if cfg.task == Task.STRESS else list(targets)
    rows = [[name, "paper"] + [_f(paper.TABLE6[(name, task)].get(c)) for c in cols] for name, task in t6]
    if test is not None:
        ci = summary.test_ci or {}
        rows.append(["musefusion, paper's fusion (Bi-LSTM, " + "+".join(full) + ")", "ours"]
                    + [_f(test.get(f"bilstm:{c}")) + _ci(*ci.get(f"bilstm:{c}", (None, None))) for c in cols])
        chosen = ", ".join(f"{t}: {summary.selection[t]['chosen']}" for t in targets
                           if summary.selection and t in summary.selection)
        rows.append([f"musefusion, selected fuser ({chosen or '-'}; the submission)", "ours"]
                    + [_f(test.get(c)) + _ci(*ci.get(c, (None, None))) for c in cols])
        note = "Scored against the true test labels (used for this table only)."
    else:
        note = "Test labels are withheld: pass `--test-labels DIR` to fill our row."
    parts += ["## Table 6: test", _md_table(["Model", "source", *cols], rows), note]
    parts += ["## Submission", f"{md_code(ReproduceDir(out).submission)}: " + ("valid." if not submission_problems else
              f"{len(submission_problems)} problem(s):\n" + "\n".join(f"- {p}" for p in submission_problems))]
    if summary.beyond:
        parts += _beyond_section(out, cfg, summary, targets)
    _bar_chart(res, cfg.task, targets, ReproduceDir(out).plot("unimodal.png"))
    for t in targets:
        if _curves(out, cfg, t, ReproduceDir(out).plot(f"curves_{t}.png")):
            parts.append(f"![{t} curves](plots/curves_{t}.png)")
    parts += _provenance(out, cfg, summary, wall_s, versions())
    return write_pages(out, parts)


def _beyond_section(out: Path, cfg: ReproduceConfig, summary: ReproduceSummary, targets: tuple[str, ...]) -> list[str]:
    """``--beyond``: every later method beside the paper's full fusion row and the selected fuser, and a bar plot."""
    # matplotlib: imported only when a plot is drawn
    from musefusion.evaluation.plots import plot_beyond

    # torch: beyond's ensembles and post-processing import the metrics, so the CLI starts without it
    from musefusion.pipelines import beyond

    test = summary.test or {}
    reference = {t: {"paper Bi-LSTM": test.get(f"bilstm:{t}"), "selected fuser": test.get(t)} for t in targets}
    verdicts = []
    for target in targets:
        found = beyond.verdict(summary, cfg.task, target)
        if found:
            above = found[1]
            on = "devel and test" if summary.test is not None else "devel (test labels withheld)"
            ref_test = found[0][2]
            verdicts.append(f"- {target}: " + (
                "the paper's Bi-LSTM has no test score (no test predictions): no verdict." if ref_test != ref_test else
                f"above the paper's Bi-LSTM on {on}: " + ", ".join(
                    f"`{m}`" + ("*" if beyond.METHODS[m].chosen_on_devel else "") for m in above) if above else
                f"no later method is above the paper's Bi-LSTM on {on}."))
    rows = [[r.target, r.label, r.what,
             _f(r.devel_mean) + ("" if math.isnan(r.devel_std) else f" ± {r.devel_std:.4f}")
             + ("" if math.isnan(r.devel_kept) else f" (kept seed {r.devel_kept:.4f})")
             + ("" if math.isnan(r.devel_cv) else f" (CV {r.devel_cv:.4f})"),
             _f(r.test) + _ci(r.test_low, r.test_high), "-" if math.isnan(r.minutes) else f"{r.minutes:.1f}"]
            for r in beyond.table(out, cfg.task, cfg.settings.folds, summary)]
    plot = plot_beyond(summary.beyond or {}, reference, ReproduceDir(out).plot("beyond.png"))
    return ["## Beyond the paper (`--beyond`)",
            "Later Ulm-TSST practice on the same splits and seeds (devel CCC mean ± std over seeds where a row has "
            "seeds; test CCC against the hidden labels; minutes of training or of deriving the row).",
            _md_table(["Target", "method", "what", "devel CCC", "test CCC", "minutes"], rows),
            *(["\n".join(verdicts) + "\n\n(* chosen on devel: its devel CCC is optimistic; where a row shows a "
               "cross-validated estimate (CV: its rows, chain or fuser chosen on other devel subjects than it is "
               "scored on) the verdict uses that. Rows derived from the runs' kept predictions are compared with the "
               "paper row's kept seed, trained rows with its mean over seeds.)"] if verdicts else []),
            f"![beyond the paper]({plot.relative_to(out)})"]


def write_pages(out: Path, parts: list[str]) -> Path:
    """``report.md`` from the report's parts and ``report.html`` rendered from it (titled by its first heading);
    returns the Markdown path."""
    text = "\n\n".join(parts) + "\n"
    fsutil.write_text(ReproduceDir(out).report_html, to_html(text, out, parts[0].lstrip("# ")))
    return fsutil.write_text(ReproduceDir(out).report_md, text)


def training_seconds(out: Path) -> float:
    """The training time every run under ``out`` recorded in its per-epoch history (worker seconds, all calls)."""
    history = RunDir(Path(".")).history.name
    seconds = 0.0
    for f in Path(out).rglob(history):
        with contextlib.suppress(OSError, ValueError, KeyError):
            seconds += float(pd.read_csv(f, usecols=["seconds"])["seconds"].sum())
    return seconds


def corpus_kind(root: Path, task: Task) -> str:
    """One sentence on what the corpus is: synthetic (``musefusion synth`` left its stamp, with the settings) or
    not, so that nobody reads a synthetic score beside the paper's real-data number as a comparison."""
    try:
        stamp = find_corpus_dir(root, task) / "metadata" / "synth.toml"
        synth = fsutil.read_toml(stamp) if stamp.is_file() else None
    except MuseFusionError:
        synth = None
    if synth is None:
        return ("Corpus: **not synthetic** as far as musefusion can tell (no `metadata/synth.toml` stamp of "
                "`musefusion synth`), so taken to be real data.")
    split = "/".join(str(synth.get(k, "?")) for k in ("n_train", "n_devel", "n_test"))
    return (f"Corpus: **synthetic** (written by `musefusion synth`: variant {synth.get('variant', 'default')}, seed "
            f"{synth.get('seed', '?')}, {split} subjects of {synth.get('minutes', '?')} min). Its scores show the "
            "pipeline at work; they are not comparable with the paper's numbers on the real Ulm-TSST data.")


def _provenance(out: Path, cfg: ReproduceConfig, summary: ReproduceSummary, wall_s: float,
                versions: dict[str, str]) -> list[str]:
    """What made these numbers: the config as given and the profile as run (seeds included), the corpus digests
    the runs recorded, the library versions, this call's wall time and the training time the runs recorded."""
    digests: dict[str, set[str]] = {}
    for (features, _mod, model, target) in summary.runs["unimodal"]:
        run = ReproduceDir(out).run(target, features, model)
        try:
            digests.setdefault(features, set()).add(str(run.read_record().get(rundir.INPUTS, {}).get("corpus", "?")))
        except MuseFusionError:
            continue
    seconds = training_seconds(out)
    block = io_toml(cfg) + "\n" + tomli_w.dumps({"profile": cfg.settings.to_dict()}).strip()
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", block)), default=0))
    return ["## Provenance", fence, block, fence,
            "Corpus files (digest the runs recorded, per feature set): "
            + ", ".join(f"{f} `{'`, `'.join(sorted(d))}`" for f, d in sorted(digests.items())) + ".",
            "Versions: " + ", ".join(f"{k} {val}" for k, val in versions.items()) + ".",
            f"Wall time of the call that wrote this report: {wall_s / 60:.1f} min (finished runs are reused, so a "
            f"resumed call is shorter); training time recorded in the runs' histories: {seconds / 60:.1f} min of "
            "worker time.",
            "Every run directory under `runs/` and `fusion/` holds its own config.toml, metrics.json, "
            "checkpoint and predictions."]


def md_code(text: object) -> str:
    """``text`` (a path, an id: anything a user or a file named) as one Markdown code span, whatever backticks,
    brackets or newlines it holds, so it is shown as data and never read as Markdown.

    Examples:
        >>> md_code("runs/a"), md_code("a`b![x](/etc/passwd)`")
        ('`runs/a`', '`` a`b![x](/etc/passwd)` ``')
    """
    s = " ".join(str(text).splitlines())
    longest = max((len(run) for run in re.findall(r"`+", s)), default=0)
    tick = "`" * (longest + 1)
    pad = " " if longest else ""
    return f"{tick}{pad}{s}{pad}{tick}"


def io_toml(cfg: ReproduceConfig) -> str:
    """The reproduce config as TOML text."""
    # not given (None, or an empty override such as seeds = [] whose profile value is in [profile]): left out
    shown = {k: v for k, v in cfg.to_dict().items() if v is not None and v != [] and v != ()}
    if shown.get("storage"):  # a PostgreSQL URL may carry a password
        shown["storage"] = redact_url(shown["storage"])
    return tomli_w.dumps({"reproduce": shown}).strip()


#: The report page's stylesheet (inline: the page is one self-contained file).
_CSS = ("body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1150px;margin:2em auto;"
        "padding:0 1em;line-height:1.45;color:#1d1d1d}h1,h2{border-bottom:1px solid #ddd;padding-bottom:.2em}"
        "table{border-collapse:collapse;margin:1em 0;font-size:.88em}th,td{border:1px solid #ccc;padding:.3em .6em;"
        "text-align:left;vertical-align:top;font-variant-numeric:tabular-nums}thead{background:#f2f4f7}"
        "tbody tr:nth-child(even){background:#fafafa}img{max-width:100%;height:auto;display:block;margin:1em 0}"
        "code{background:#f4f4f4;padding:0 .2em}pre{background:#f4f4f4;padding:.8em;overflow-x:auto}")


def to_html(md: str, base: Path, title: str) -> str:
    """``md`` rendered by markdown-it-py (CommonMark + tables) as one self-contained UTF-8 page.

    Every image the report itself wrote (a PNG or SVG file in ``base/plots``) is embedded as a ``data:`` URI (the
    page can be mailed or served alone); its Markdown alt text is kept. Any other image reference is dropped (its
    alt text stays): no file outside the report's plots is ever read into the page. Raw HTML in ``md`` is escaped,
    not passed through.
    """
    parser = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = parser.parse(md)
    plots = (Path(base) / rundir.PLOTS_DIR).resolve()
    for tok in tokens:
        for child in tok.children or []:
            if child.type == "image":
                src = str(child.attrGet("src") or "")
                path = (Path(base) / src).resolve() if src else plots
                if plots in path.parents and path.suffix.lower() in (".png", ".svg") and path.is_file():
                    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                    child.attrSet("src", f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}")
                else:
                    child.attrSet("src", "")
    body = parser.renderer.render(tokens, parser.options, {})
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{body}</body>\n</html>\n")
