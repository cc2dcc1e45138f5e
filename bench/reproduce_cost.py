"""Projected wall time of ``reproduce`` on this machine, per row and stage, from one measured epoch per row.

Runs the same measurement as ``musefusion reproduce --dry-run`` (``musefusion.pipelines.cost``): one training
epoch of every distinct row (feature set x model) on one torch thread with the profile's window settings, then
projects seed runs, folds, final models, tuning and fusion. Prints one line per row (seconds per epoch, its
share of the seed-run stage), one per stage, and last::

    projected reproduce --profile paper --task stress: N min

Usage::

    .venv/bin/python bench/reproduce_cost.py --data demo/data [--task stress] [--profile paper] [--workers 2]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from musefusion.pipelines.reproduce import ReproduceConfig, plan


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="data root (e.g. demo/data)")
    ap.add_argument("--task", default="stress")
    ap.add_argument("--profile", default="paper")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"], help="the rows' training forward pass")
    args = ap.parse_args()
    cfg = ReproduceConfig(root=args.data, task=args.task, profile=args.profile, workers=args.workers,
                          precision=args.precision)
    s = cfg.settings
    measured: dict[tuple[str, str], float] = {}
    stages = plan(cfg, on_measured=lambda f, m, sec: measured.__setitem__((f, m), sec))
    row_total = sum(measured.values())
    print(f"{'row':28} {'s/epoch':>8} {'seed-run share':>15}")
    for (f, m), sec in sorted(measured.items(), key=lambda kv: -kv[1]):
        print(f"{f + ' ' + m:28} {sec:8.2f} {sec / row_total:15.0%}")
    print(f"\n{'stage':18} {'jobs':>5} {'epochs':>7} {'cpu min':>8} {'wall min':>9}")
    for st in stages:
        print(f"{st.name:18} {st.jobs:5d} {st.epochs:7d} {st.cpu_s / 60:8.1f} {st.wall_s / 60:9.1f}")
    total = sum(st.wall_s for st in stages)
    print(f"\n({s.epochs} epochs, seeds {list(s.seeds)}, hop {s.hop_len}, {s.folds} folds, "
          f"{args.workers} workers)")
    print(f"projected reproduce --profile {cfg.profile.value} --task {cfg.task.value}: {total / 60:.0f} min")


if __name__ == "__main__":
    from results_page import run_with_page

    run_with_page("reproduce_cost", "Projected cost of a reproduction, per row and stage", main)
