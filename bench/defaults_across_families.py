"""Defaults chosen across corpus families: a candidate default is adopted only when it helps on the family it was
not chosen on (leave-one-family-out).

Two corpus families exist, written apart: ``synth`` (its variants ``default bio-led sparse-face idiosyncratic``)
and ``phases`` (``phases phases-lagged phases-gaps phases-expressive``, :mod:`musefusion.data.phases`). For every
(variant, task) this synthesises the corpus once and runs ``reproduce`` once per value of the candidate option
(e.g. ``normalise``: ``train``, the current default, and ``subject``), each in its own folder. Per cell and target
it prints the submission's test CCC with its 95 % subject-level interval for each value, the paired difference of
the candidate against the default on the same test subjects (interval and verdict), the best MuSe 2021 baseline
row and the paper's Bi-LSTM (test), the fused devel CV estimate (what a choice may look at) and the minutes.

The decision never looks at test scores to choose: on each family the value with the higher mean fused CV-devel
score is the one that family *chooses*; the choice is then judged on the *other* family's test scores (mean paired
difference against the default and the cells where its interval excludes 0). A value is adopted only when both
families choose it and it helps on the family it was not chosen on, both ways round. Cells where it does not help
are listed.

    python bench/defaults_across_families.py --out /tmp/lofo --option normalise --values train subject \\
        --variants default idiosyncratic phases phases-expressive --tasks stress --profile demo \\
        --split 24/8/8 --minutes 3

Resumable: a second call reuses every finished run under ``--out``; the page is ``docs/results/defaults_across_families.md``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_page import write_page  # noqa: E402

from musefusion.data.synth import SynthConfig, Variant, synthesize  # noqa: E402
from musefusion.fsutil import read_json  # noqa: E402
from musefusion.pipelines.reproduce import ReproduceConfig, headline_rows, hidden_labels_dir, reproduce  # noqa: E402
from musefusion.pipelines.runs import paired_runs  # noqa: E402
from musefusion.rundir import ReproduceDir  # noqa: E402
from musefusion.types import Task  # noqa: E402

FAMILIES = {"synth": ("default", "bio-led", "sparse-face", "idiosyncratic"),
            "phases": ("phases", "phases-lagged", "phases-gaps", "phases-expressive")}
#: The ReproduceConfig fields a cell can vary (their values are given as on the command line).
OPTIONS = ("normalise", "selection_rule", "attention")


def cell(args: argparse.Namespace, variant: str, task: str, value: str) -> tuple[ReproduceConfig, Path, float]:
    """Synthesise (or reuse) the corpus of ``variant``/``task`` and run (or resume) the reproduction with
    ``option = value``; returns its config, folder and wall minutes."""
    n_train, n_devel, n_test = (int(x) for x in args.split.split("/"))
    root = args.out / variant / task / "data"
    synthesize(root, SynthConfig(task=Task(task), variant=Variant(variant), n_train=n_train, n_devel=n_devel,
                                 n_test=n_test, minutes=args.minutes, seed=args.corpus_seed))
    cfg = ReproduceConfig(root=root, task=Task(task), profile=args.profile, workers=args.workers,
                          seeds=tuple(args.seeds), **{args.option: value})
    out = args.out / variant / task / f"{args.option}-{value}"
    t0 = time.perf_counter()
    reproduce(cfg, out)
    return cfg, out, (time.perf_counter() - t0) / 60


def cv_devel(out: Path, target: str) -> float:
    """The selection's nested cross-validated devel estimate of the chosen fuser (what a choice may use); where a
    corpus has too few devel subjects for the nested estimate, the chosen fuser's cross-validated devel CCC."""
    path = ReproduceDir(out).selected(target).metrics
    if not path.is_file():
        return math.nan
    m = read_json(path)
    nested = m.get("nested_cv_devel_ccc")
    return float(nested if nested is not None else m.get("cv_devel_ccc", {}).get(m.get("chosen"), math.nan))


def fmt(x: tuple | None) -> str:
    return "withheld" if x is None else f"{x[0]:.3f} {x[1]}"


def decide(rows: list[dict], values: list[str]) -> tuple[list[str], str | None]:
    """Leave-one-family-out: lines of evidence and the adopted value (None: keep the default ``values[0]``).

    ``rows``: one per (family, cell, target) with ``cv`` (value -> fused CV-devel) and ``diff`` (value -> paired test
    difference against the default, with ``low``/``high``)."""
    lines, chosen = [], {}
    for fam in FAMILIES:
        own = [r for r in rows if r["family"] == fam]
        if not own:
            continue
        means = {v: sum(r["cv"][v] for r in own) / len(own) for v in values}
        chosen[fam] = max(values, key=lambda v: (means[v], v == values[0]))  # a tie keeps the default
        lines.append(f"- {fam} chooses **{chosen[fam]}** on devel (mean fused CV-devel "
                     + ", ".join(f"{v} {means[v]:.3f}" for v in values) + f"; {len(own)} cells x targets)")
    adopted = None
    for fam, value in chosen.items():
        others = [r for r in rows if r["family"] != fam]
        if value == values[0] or not others:
            continue
        diffs = [r["diff"][value] for r in others]
        mean = sum(d["delta"] for d in diffs) / len(diffs)
        better = sum(d["low"] > 0 for d in diffs)
        worse = [f"{r['variant']}/{r['task']}/{r['target']}" for r, d in zip(others, diffs, strict=True)
                 if d["high"] < 0]
        no_help = [f"{r['variant']}/{r['task']}/{r['target']}" for r, d in zip(others, diffs, strict=True)
                   if d["delta"] <= 0]
        lines.append(f"- {value}, chosen on {fam}, on the other family's test: mean paired difference {mean:+.3f}; "
                     f"interval above 0 in {better} of {len(diffs)}, below 0 in {len(worse)}"
                     + (f" ({', '.join(worse)})" if worse else "")
                     + (f"; no gain in: {', '.join(no_help)}" if no_help else ""))
        chosen[fam] = value if mean > 0 and not worse else values[0]
    if len(chosen) == len(FAMILIES) and len(set(chosen.values())) == 1 and values[0] not in chosen.values():
        adopted = next(iter(chosen.values()))
    return lines, adopted


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for the corpora and reproductions")
    ap.add_argument("--option", default="normalise", choices=OPTIONS)
    ap.add_argument("--values", nargs="+", default=["train", "subject"], help="the current default first")
    ap.add_argument("--variants", nargs="+", default=[v for f in FAMILIES.values() for v in f],
                    choices=[v for f in FAMILIES.values() for v in f])
    ap.add_argument("--tasks", nargs="+", default=["stress", "physio"], choices=["stress", "physio"])
    ap.add_argument("--profile", default="quick", choices=["quick", "paper", "smoke", "demo"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--split", default="41/14/14", help="subjects per partition (TRAIN/DEVEL/TEST)")
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--corpus-seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[], help="seeds, overriding the profile's")
    args = ap.parse_args()
    t_start = time.perf_counter()
    family_of = {v: f for f, vs in FAMILIES.items() for v in vs}
    base, *others = args.values
    head = ("| family | variant | task | target | " + " | ".join(f"{args.option}={v} test [95 % CI]" for v in args.values)
            + " | " + " | ".join(f"{v} - {base} (paired)" for v in others)
            + " | baseline test | paper Bi-LSTM test | chosen | fused CV-devel | minutes |")
    table = [head, "|" + "---|" * (head.count("|") - 1)]
    rows = []
    for variant in args.variants:
        for task in args.tasks:
            runs = {v: cell(args, variant, task, v) for v in args.values}
            cfg0, out0, _ = runs[base]
            for target in cfg0.task.default_targets:
                heads = {v: {r.target: r for r in headline_rows(cfg, out)}[target] for v, (cfg, out, _) in runs.items()}
                labels = hidden_labels_dir(cfg0)
                diffs = {}
                for v in others:
                    p = paired_runs(ReproduceDir(runs[v][1]).selected(target).path,
                                    ReproduceDir(out0).selected(target).path, test_labels=labels)
                    diffs[v] = {"delta": p.difference.delta, "low": p.difference.interval.low,
                                "high": p.difference.interval.high, "verdict": p.difference.verdict}
                h0 = heads[base]
                table.append(
                    f"| {family_of[variant]} | {variant} | {task} | {target} | "
                    + " | ".join(f"{fmt(heads[v].submission)}" for v in args.values) + " | "
                    + " | ".join(f"{diffs[v]['delta']:+.3f} [{diffs[v]['low']:.3f}, {diffs[v]['high']:.3f}] "
                                 f"{diffs[v]['verdict'].replace('a higher', v + ' higher').replace('b higher', base + ' higher')}"
                                 for v in others)
                    + f" | {fmt(h0.baseline)} ({h0.baseline_row}) | {fmt(h0.paper_fusion)} | "
                    + ", ".join(f"{v}: {heads[v].chosen}" for v in args.values) + " | "
                    + ", ".join(f"{v}: {cv_devel(runs[v][1], target):.3f}" for v in args.values) + " | "
                    + ", ".join(f"{runs[v][2]:.1f}" for v in args.values) + " |")
                rows.append({"family": family_of[variant], "variant": variant, "task": task, "target": target,
                             "cv": {v: cv_devel(runs[v][1], target) for v in args.values},
                             "diff": {base: {"delta": 0.0, "low": 0.0, "high": 0.0}, **diffs}})
                print(table[-1], flush=True)
    lines, adopted = decide(rows, args.values)
    verdict = (f"**Adopted: {args.option} = {adopted}** (both families choose it on devel and it helps on the other "
               "family's test)." if adopted else
               f"**Kept: {args.option} = {base}**: no other value is chosen by both families on devel and helps on "
               "the family it was not chosen on.")
    body = "\n".join(["## Cells", "", *table, "", "## Leave-one-family-out", "", *lines, "", verdict])
    print(body)
    notes = (f"Option `{args.option}`, values {', '.join(args.values)} (the current default first); profile "
             f"`{args.profile}`, split {args.split}, {args.minutes} min per recording, corpus seed {args.corpus_seed}"
             + (f", seeds {' '.join(map(str, args.seeds))}" if args.seeds else "") + ". Test CCC of the submission "
             "(the selected fuser) against the hidden labels; intervals: 95 % subject-level bootstrap; paired: the "
             "same test subjects resampled for both.")
    write_page("defaults_across_families", "Defaults across corpus families (leave-one-family-out)", body,
               time.perf_counter() - t_start, notes)


if __name__ == "__main__":
    main()
