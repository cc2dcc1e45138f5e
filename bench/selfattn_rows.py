"""Tables 2-3's Self-Attn rows under each attention variant and loss pooling, beside the LSTM row on the same
features and target: does a Self-Attn row converge, and how far is it from the LSTM?

Every row trains with exactly the settings ``reproduce --profile quick`` gives it (``reproduce.run_config``), with
the attention variant (``encoder``: stock encoder layers, the default; ``literal``: bare Eq. 1-3 at its one-layer
preset; ``transformer``), the CCC loss pooling (``sequence``, the default; ``batch``) and sinusoidal positions
(``off``, the paper's; ``on``) varied, each seed its own run. It prints and writes ``docs/results/selfattn_rows.md``: devel CCC mean ± std over the seeds, the kept seed's
95 % subject-level bootstrap interval, and the gap to the LSTM row's mean. Runs are kept under ``--out`` and reused
when the bench is run again with the same settings.

Usage::

    .venv/bin/python bench/selfattn_rows.py --data demo/data --physio-data demo/physio \
        [--attention encoder literal transformer] [--loss sequence batch] [--seeds 1 2 3] [--task stress physio] \
        [--positions off on] [--models selfattn selfattn_lstm]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from results_page import write_page  # bench/ is the script's folder

from musefusion.config import Attention, LossMode
from musefusion.evaluation import paper
from musefusion.pipelines.reproduce import Profile, ReproduceConfig, run_config
from musefusion.training.run import train_run
from musefusion.types import Task

FAMILIES = ("lstm", "selfattn", "selfattn_lstm")
#: feature widths (d_a) of the tables' feature sets, for --ff-dim 0 (twice the width)
DIMS = {"egemaps": 88, "vggish": 128, "vggface": 512}


def _row(root: Path, task: Task, features: str, model: str, target: str, attention: str, loss: str, seed: int,
         out: Path, ff_dim: int, threads: int, positions: bool = False, lr: float = 0.0) -> dict:
    rc = run_config(ReproduceConfig(root=root, task=task, profile=Profile.QUICK, attention=Attention(attention)),
                    features, model, target)
    rc = rc.replace(train=rc.train.replace(seeds=(seed,), loss=LossMode(loss), num_threads=threads))
    name = f"{features}-{model}-{attention}-{loss}"
    if ff_dim != rc.model.ff_dim and attention == "encoder" and model != "lstm":
        rc, name = rc.replace(model=rc.model.replace(ff_dim=ff_dim)), f"{name}-ff{ff_dim}"
    if positions and model != "lstm":
        rc, name = rc.replace(model=rc.model.replace(positions=True)), f"{name}-pos"
    if lr and lr != rc.train.lr and model != "lstm":
        rc, name = rc.replace(train=rc.train.replace(lr=lr)), f"{name}-lr{lr:g}"
    return train_run(rc, out / task.value / target / name / f"seed{seed}").metrics


def _profile_lr(root: Path, task: Task, features: str, model: str, target: str) -> float:
    return run_config(ReproduceConfig(root=root, task=task, profile=Profile.QUICK), features, model, target).train.lr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="data root with c3_muse_stress/")
    ap.add_argument("--physio-data", type=Path, help="data root with c4_muse_physio/ (physio skipped without it)")
    ap.add_argument("--task", nargs="+", default=["stress", "physio"])
    ap.add_argument("--features", nargs="+", help="only these feature sets (default: the tables' own)")
    ap.add_argument("--targets", nargs="+", help="only these targets (default: the task's)")
    ap.add_argument("--attention", nargs="+", default=["encoder"], choices=[a.value for a in Attention])
    ap.add_argument("--loss", nargs="+", default=["sequence"], choices=[m.value for m in LossMode])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--ff-dim", type=int, nargs="+", default=[2048],
                    help="encoder feed-forward widths (2048: PyTorch's default; 0: twice the feature width)")
    ap.add_argument("--positions", nargs="+", default=["off"], choices=["off", "on"],
                    help="sinusoidal positions added before the attention (on) or not (off, the paper's)")
    ap.add_argument("--lr", type=float, nargs="+", default=[0.0],
                    help="learning rates of the attention rows (0: the profile's; the paper's grid: 2e-4 1e-3 2e-3 5e-3)")
    ap.add_argument("--models", nargs="+", default=list(FAMILIES[1:]), choices=FAMILIES[1:],
                    help="the Self-Attn families to run (the LSTM row, the reference, always runs)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("runs/bench-selfattn"))
    ap.add_argument("--page", default="selfattn_rows", help="results page name under docs/results/")
    args = ap.parse_args()
    roots = {Task.STRESS: args.data, Task.PHYSIO: args.physio_data}
    t_start = time.perf_counter()
    lines = ["| task | target | features | model | attention | ff | positions | lr | loss | devel CCC (mean ± std) | "
             "seeds | kept seed [95 % CI] | gap to LSTM | minutes |", "|" + "---|" * 14]
    for task in (Task(t) for t in args.task):
        if roots[task] is None:
            continue
        rows = [(f, m) for (f, _mod, m) in paper.unimodal_table(task) if m in ("lstm", *args.models)
                and (not args.features or f in args.features)]
        for target in args.targets or task.default_targets:
            lstm_mean: dict[tuple[str, str], float] = {}
            for features, model in sorted(rows, key=lambda r: (r[0], FAMILIES.index(r[1]))):
                width = DIMS.get(features, 0)
                variants = ([("-", 0, "off", 0.0)] if model == "lstm" else
                            [(a, ff or 2 * width, p, lr) for a in args.attention for p in args.positions
                             for lr in args.lr for ff in (args.ff_dim if a == "encoder" else [2048])])
                for attention, ff, positions, lr in variants:
                    for loss in args.loss:
                        t0 = time.perf_counter()
                        ms = [_row(roots[task], task, features, model, target,
                                   "encoder" if attention == "-" else attention, loss, s, args.out, ff or 2048,
                                   args.threads, positions == "on", lr)
                              for s in args.seeds]
                        scores = np.array([m["devel_ccc_mean"] for m in ms])
                        kept = max(ms, key=lambda m: m["best"]["devel_ccc"])["best"]
                        ci = kept.get("devel_ccc_ci") or [float("nan")] * 2
                        if model == "lstm":
                            lstm_mean[(features, loss)] = float(scores.mean())
                        gap = scores.mean() - lstm_mean.get((features, loss), float("nan"))
                        shown_ff = ff if attention == "encoder" else "-"
                        shown_lr = "-" if model == "lstm" else \
                            f"{lr or _profile_lr(roots[task], task, features, model, target):g}"
                        line = (f"| {task.value} | {target} | {features} | {model} | {attention} | {shown_ff} | "
                                f"{'-' if model == 'lstm' else positions} | "
                                f"{shown_lr} | {loss} | "
                                f"{scores.mean():.4f} ± {scores.std():.4f} | "
                                f"{' '.join(f'{v:.3f}' for v in scores)} | {kept['devel_ccc']:.4f} "
                                f"[{ci[0]:.3f}, {ci[1]:.3f}] | {'' if model == 'lstm' else f'{gap:+.4f}'} | "
                                f"{(time.perf_counter() - t0) / 60:.1f} |")
                        lines.append(line)
                        print(line, flush=True)
                        _page(args.page, lines, time.perf_counter() - t_start)  # so far: a stopped bench keeps it
    print(_page(args.page, lines, time.perf_counter() - t_start))


def _page(name: str, lines: list[str], wall_s: float) -> Path:
    notes = ("Quick-profile settings of `reproduce` (30 epochs, early stop after 5 stale epochs, window hop 100); "
             "each seed its own run; *gap to LSTM*: the row's mean minus the LSTM row's mean on the same features, "
             "target and loss (minutes: all seeds of the row, 2 threads; rows found finished under --out are "
             "reused and cost nothing).")
    return write_page(name, "Self-Attn rows: attention variant and loss pooling against the LSTM row",
                      "\n".join(lines), wall_s, notes)


if __name__ == "__main__":
    main()
