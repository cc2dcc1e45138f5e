"""One row of ``reproduce --profile paper`` trained for real, against its projection; and what the paper-schedule
stop (``stop_halvings``) would have changed.

For each row asked for, this measures one epoch the way ``reproduce --dry-run`` does
(``musefusion.pipelines.cost.measure_epoch``), projects the row's job (epochs x seeds, one thread), then trains
the row exactly as ``reproduce --profile paper`` would (its RunConfig, one torch thread, every seed) and prints the
measured wall time beside the projection.

The paper profile trains every seed for its 100 epochs (Sec. 5.2); ``TrainConfig.stop_halvings = k`` would stop a
seed once the learning rate has been halved k times since its best devel epoch. Training is the same up to the
epoch where it stops, so the full histories say exactly what that stop would have done: the epoch it stops at,
whether the kept epoch (and so the weights, predictions and devel CCC) would change, and the epochs it saves.

Usage::

    .venv/bin/python bench/paper_row.py --data demo/data --out /tmp/paper_row [--rows egemaps:lstm bio:bio_lstm]
        [--target arousal] [--halvings 1 2 3]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import pandas as pd

from musefusion.config import Schedule
from musefusion.pipelines import cost
from musefusion.pipelines.reproduce import ReproduceConfig, run_config
from musefusion.rundir import RunDir
from musefusion.training.run import resolve_run_config, train_run


def stop_epoch(history: pd.DataFrame, k: int) -> int:
    """The epoch at which ``stop_halvings = k`` stops the training that wrote ``history`` (its last epoch when it
    would not stop): as ``training.loop.fit`` decides it, the first epoch other than the best so far after whose
    scheduler step the rate has been halved k times since the best epoch's (a row's ``lr`` is the rate the epoch
    trained with, so the rate after its step is the next row's)."""
    best, best_lr = -math.inf, 0.0
    lrs = history["lr"].tolist()
    for i, row in enumerate(history.itertuples()):
        if row.devel_ccc > best:
            best, best_lr = row.devel_ccc, row.lr
            continue
        after = lrs[i + 1] if i + 1 < len(lrs) else lrs[i]
        if best_lr and round(math.log2(best_lr / after)) >= k:
            return int(row.epoch)
    return int(history["epoch"].iloc[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="data root with c3_muse_stress/ (e.g. demo/data)")
    ap.add_argument("--out", type=Path, required=True, help="folder for the runs")
    ap.add_argument("--task", default="stress")
    ap.add_argument("--target", default="arousal")
    ap.add_argument("--rows", nargs="+", default=["egemaps:lstm", "bio:bio_lstm"], help="FEATURES:MODEL ...")
    ap.add_argument("--halvings", type=int, nargs="+", default=[1, 2, 3])
    args = ap.parse_args()
    if min(args.halvings) < 1:
        ap.error("--halvings: give counts of at least 1 (stop_halvings = 0 is off)")
    cfg = ReproduceConfig(root=args.data, task=args.task, profile="paper")
    print(f"{'row':22} {'s/epoch':>8} {'projected min':>13} {'measured min':>12} {'ratio':>6}")
    histories = {}
    for spec in args.rows:
        features, model = spec.split(":")
        rc = resolve_run_config(run_config(cfg, features, model, args.target))
        sec, *_ = cost.measure_epoch(rc)
        projected = sec * rc.train.epochs * len(rc.train.seeds)
        t0 = time.perf_counter()
        run = train_run(rc, args.out / f"{features}-{model}", resume=False)
        measured = time.perf_counter() - t0
        print(f"{spec:22} {sec:8.2f} {projected / 60:13.1f} {measured / 60:12.1f} {measured / projected:6.2f}")
        if rc.train.schedule == Schedule.PAPER:  # stop_halvings applies to the paper schedule only (the baseline's
            # plateau schedule stops on its own early stop)
            histories[spec] = {s: pd.read_csv(RunDir(run.run_dir).seed(s).history) for s in rc.train.seeds}
    print(f"\n{'row':22} {'seed':>4} {'best epoch':>10} {'devel CCC':>9}  "
          + "  ".join(f"k={k}: stop, kept, CCC" for k in args.halvings))
    for spec, per_seed in histories.items():
        for seed, h in per_seed.items():
            best = int(h.loc[h["devel_ccc"].idxmax(), "epoch"])
            cells = []
            for k in args.halvings:
                stop = stop_epoch(h, k)
                kept = h[h["epoch"] <= stop]
                at = int(kept.loc[kept["devel_ccc"].idxmax(), "epoch"])
                cells.append(f"{stop:5d} {at:4d} {kept['devel_ccc'].max():.4f}")
            print(f"{spec:22} {seed:4d} {best:10d} {h['devel_ccc'].max():9.4f}  " + "  ".join(cells))


if __name__ == "__main__":
    from results_page import run_with_page

    run_with_page("paper_row", "One row of the paper profile trained for real beside its projection", main)
