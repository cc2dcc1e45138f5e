"""The fusion selection's rule, measured: ``interval`` (a fuser replaces the paper's Bi-LSTM only when the paired
subject-level bootstrap interval of its CV gain lies above 0) against ``max`` (the highest CV score wins).

For each synthetic variant and task it runs (or reuses) the reproduction that ``bench/robustness.py`` makes under
the same ``--out`` (layout ``<out>/<variant>/<task>/{data,reproduce}``), then rebuilds the selection of every target
under both rules from the runs' prediction files (seconds of NumPy; nothing is retrained) and scores each rule's
test predictions against the hidden labels, with the 95 % subject-level interval, and the paired difference of the
two rules' test CCCs. It prints the table and writes ``docs/results/selection_rules.md``.

Usage::

    .venv/bin/python bench/selection_rules.py --out /tmp/robust [--variants default bio-led ...]
        [--tasks stress physio] [--profile quick] [--seeds 1 2 3] [--workers 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from results_page import write_page
from variant_runs import add_options, reproduction

from musefusion.data import formats
from musefusion.data.corpus import find_corpus_dir, hidden_label_path, join_by_timestamp
from musefusion.evaluation.uncertainty import ccc_interval, concatenated_ccc, paired_difference
from musefusion.fusion.select import RULES
from musefusion.pipelines.reproduce import ReproduceConfig, hidden_labels_dir, selection_inputs
from musefusion.pipelines.selection import write_selection
from musefusion.rundir import RunDir


def _test(folder: Path, cfg: ReproduceConfig, target: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A selection's test predictions and the hidden labels, per test subject (joined by timestamp)."""
    labels = hidden_labels_dir(cfg)
    assert labels is not None, "the synthetic corpus writes its test labels beside it"
    corpus = find_corpus_dir(cfg.root, cfg.task)
    preds = formats.read_predictions(folder)
    ps, ys = [], []
    for sid in sorted(preds):
        p, y = join_by_timestamp(preds[sid], formats.read_label_csv(hidden_label_path(labels, corpus.name, target,
                                                                                       sid)), sid)
        ps.append(p)
        ys.append(y)
    return ps, ys


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_options(ap)
    args = ap.parse_args()
    t_start = time.perf_counter()
    lines = ["| variant | task | target | " + " | ".join(f"{r}: chosen | {r}: test [95 % CI]" for r in RULES)
             + " | interval - max (test) [95 % CI] |", "|" + "---|" * (4 + 2 * len(RULES))]
    wins = {r: 0 for r in RULES}
    for variant in args.variants:
        for task in args.tasks:
            cfg, out = reproduction(args, variant, task)
            for target in cfg.task.default_targets:
                cells, tests = [], {}
                with tempfile.TemporaryDirectory() as tmp:
                    for rule in RULES:
                        d = Path(tmp) / rule
                        m = write_selection(*selection_inputs(cfg, out, target), d, folds=cfg.settings.folds,
                                            root=cfg.root, task=cfg.task, rule=rule)
                        tests[rule] = _test(RunDir(d).predictions("test"), cfg, target)
                        score = concatenated_ccc(*tests[rule])
                        cells += [m["chosen"], f"{score:.4f} {ccc_interval(*tests[rule])}"]
                diff = paired_difference(tests["interval"][0], tests["max"][0], tests["interval"][1])
                if diff.delta:
                    wins["interval" if diff.delta > 0 else "max"] += 1
                lines.append(f"| {variant} | {task} | {target} | " + " | ".join(cells)
                             + f" | {diff.delta:+.4f} {diff.interval} |")
                print(lines[-1], flush=True)
    notes = (f"Profile `{args.profile}`, seeds {args.seeds or 'the profile'}, corpora {args.split} subjects of "
             f"{args.minutes} min. Where both rules choose the same fuser the difference is 0. Cells where the "
             f"rules differ: interval higher on test in {wins['interval']}, max higher in {wins['max']}; a "
             "difference whose interval contains 0 is indistinguishable.")
    print(write_page("selection_rules", "The fusion selection's rule: interval against max", "\n".join(lines),
                     time.perf_counter() - t_start, notes))


if __name__ == "__main__":
    main()
