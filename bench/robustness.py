"""Do the defaults hold on corpora they were not developed on? The quick reproduction on every synthetic variant.

For each variant (``synth --variant``) and task this synthesises the corpus, runs ``reproduce`` (its profile, the
MuSe 2021 baseline peer rows included) and prints, per target: musefusion's fused test CCC (the selected fuser:
the submission), the paper's Bi-LSTM fusion's test CCC, the best baseline row's test CCC, the fused devel CCC
and the best unimodal devel CCC (best seed), with the two checks of issue 14: fused test >= baseline test + 0.05
and fused devel >= best unimodal devel. The fused devel CCC is the selected fuser's in-sample one (a fitted fuser
is fitted on every devel subject); ``fused CV`` beside it is the nested cross-validated estimate of the whole
selection on devel subjects it did not see.

With ``--beyond`` (issue 16) the reproductions add the later Ulm-TSST methods, and a second table gives, per
target, the paper's full fusion Bi-LSTM (devel: mean over seeds / kept seed; test), the later method with the best test CCC and
every method above the paper on devel and test (``*``: chosen on devel; its cross-validated devel estimate is
compared where it has one; rows derived from kept predictions against the paper row's kept seed: see
``beyond.above_paper``).

Usage::

    .venv/bin/python bench/robustness.py --out /tmp/robust [--variants default bio-led ...] [--tasks stress physio]
        [--profile quick] [--workers 2] [--seeds 1 2 3] [--beyond]

Everything is resumable: a second call reuses every finished run under ``--out``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from variant_runs import add_options, reproduction

from musefusion.evaluation.scoring import score_predictions
from musefusion.pipelines import beyond
from musefusion.pipelines.beyond import METHODS
from musefusion.pipelines.reproduce import (
    ReproduceConfig,
    hidden_labels_dir,
    summarize,
    unimodal_rows,
)
from musefusion.pipelines.results import ReproduceSummary
from musefusion.rundir import ReproduceDir
from musefusion.types import Partition


def _baseline_test(out: Path, cfg: ReproduceConfig, target: str) -> tuple[float, str]:
    """The best test CCC of the baseline peer rows (each row's best seed)."""
    labels = hidden_labels_dir(cfg)
    best = (float("-inf"), "-")
    for features, _mod, model in unimodal_rows(cfg):
        run = ReproduceDir(out).run(target, features, model)
        if model == "baseline" and run.finished and labels is not None:
            ccc = score_predictions(run.test_predictions(), cfg.root, cfg.task, target, Partition.TEST, labels)["ccc"]
            best = max(best, (ccc, features))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_options(ap)  # the four generator variants, as before null and one-modality existed
    ap.add_argument("--beyond", action="store_true", help="also reproduce --beyond, and its table")
    args = ap.parse_args()
    lines, beyond_lines = [], []
    head = (f"{'variant':14} {'task':6} {'target':10} {'fused test':>10} {'Bi-LSTM test':>12} {'baseline test':>13} "
            f"{'+0.05?':>6} {'fused devel':>11} {'fused CV':>8} {'best uni devel':>14} {'>=?':>4} {'chosen':>13}  minutes")
    for variant in args.variants:
        for task in args.tasks:
            t0 = time.perf_counter()
            cfg, out = reproduction(args, variant, task, beyond=args.beyond)
            minutes = (time.perf_counter() - t0) / 60
            summary = summarize(out, cfg)
            for target in cfg.task.default_targets:
                sel = (summary.selection or {}).get(target, {})
                test = summary.test or {}
                base, base_feats = _baseline_test(out, cfg, target)
                uni = max(v["best"] for k, v in summary.runs["unimodal"].items() if k.target == target)
                fused_dev = sel.get("chosen_devel_ccc", float("nan"))
                fused_cv = sel.get("nested_cv_devel_ccc", float("nan"))
                fused = test.get(target, float("nan"))
                lines.append(f"{variant:14} {task:6} {target:10} {fused:10.4f} {test.get(f'bilstm:{target}', float('nan')):12.4f} "
                             f"{base:8.4f} ({base_feats[:3]}) {'yes' if fused >= base + 0.05 else 'NO':>6} "
                             f"{fused_dev:11.4f} {fused_cv:8.4f} {uni:14.4f} {'yes' if fused_dev >= uni - 1e-12 else 'NO':>4} "
                             f"{sel.get('chosen', '-'):>13}  {minutes:.1f}")
                print(lines[-1], flush=True)
                if args.beyond:
                    beyond_lines.append(f"{variant:14} {task:6} {target:10} " + _beyond_verdict(summary, cfg, target))
                    print(beyond_lines[-1], flush=True)
    print()
    print(head)
    print("\n".join(lines))
    if beyond_lines:
        print()
        print(f"{'variant':14} {'task':6} {'target':10} {'paper devel':>13} {'paper test':>10}  "
              f"{'best later method (test)':28} {'devel':>6} {'test':>6}  above the paper on devel and test")
        print("\n".join(beyond_lines))


def _beyond_verdict(summary: ReproduceSummary, cfg: ReproduceConfig, target: str) -> str:
    """One line of the beyond table: the paper's Bi-LSTM, the best later method (by test, else by devel as judged)
    and the methods above the paper on both (the report's verdict)."""
    found = beyond.verdict(summary, cfg.task, target)
    rows = (summary.beyond or {}).get(target, [])
    if found is None or not rows:
        return "(not finished)"
    (devel_mean, devel_best, test), above = found
    best = max(rows, key=lambda r: (r["test"] is not None, r["test"] or 0.0, beyond.own_devel(r)))
    star = {m: "*" if method.chosen_on_devel else "" for m, method in METHODS.items()}
    nan = float("nan")
    return (f"{devel_mean:6.4f}/{devel_best:6.4f} {nan if test is None else test:10.4f}  "
            f"{best['method'] + star[best['method']]:28} {beyond.own_devel(best):6.4f} "
            f"{nan if best['test'] is None else best['test']:6.4f}  " + (", ".join(m + star[m] for m in above) or "none"))


if __name__ == "__main__":
    from results_page import run_with_page

    run_with_page("robustness", "Robustness: the quick reproduction on every corpus variant beside the baseline peers", main)
