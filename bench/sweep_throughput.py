"""Sweep throughput: trials per hour with 1 and with 2 local workers on one study (SQLite by default).

    PYTHONPATH=src python bench/sweep_throughput.py [--trials 12] [--epochs 3] [--storage postgresql://...]

Each worker uses one torch thread, so 2 workers on 2 cores should give close to 2x. Prints the figures; asserts
nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

from musefusion.config import DataConfig, RunConfig, SweepConfig, TrainConfig, model_preset
from musefusion.data.synth import SynthConfig, synthesize
from musefusion.sweep.grid import paper_space
from musefusion.sweep.runner import run_sweep
from musefusion.types import Task


def measure(root: Path, out: Path, workers: int, trials: int, epochs: int, storage: str | None, study: str) -> float:
    """Trials per hour of one sweep of ``trials`` trials with ``workers`` workers (including process start)."""
    base = RunConfig(DataConfig(root, features=("egemaps",), win_len=100, hop_len=50), model_preset("selfattn_lstm"),
                     TrainConfig(epochs=epochs))
    sweep = SweepConfig(base=base, space=tuple(paper_space("selfattn_lstm").items()), study=study, storage=storage,
                        out=out, trials=trials, workers=workers, threads=1, prune=False, seed=1)
    t0 = time.perf_counter()
    counts = run_sweep(sweep)
    seconds = time.perf_counter() - t0
    assert counts.done == trials
    return trials / seconds * 3600


def main() -> None:
    """Run the benchmark and print trials/hour for 1 and 2 workers and their ratio."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--storage", default=None, help="database URL (default: a SQLite file per run)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        os.environ.setdefault("MUSEFUSION_CACHE", str(tmp_path / "cache"))
        root = tmp_path / "data"
        synthesize(root, SynthConfig(task=Task.STRESS, seed=1, n_train=8, n_devel=3, n_test=2, minutes=2.0,
                                     features=("egemaps",)))
        stamp = int(time.time())
        rates = {}
        for workers in (1, 2):
            rates[workers] = measure(root, tmp_path / f"w{workers}", workers, args.trials, args.epochs,
                                     args.storage, f"bench-{stamp}-{workers}")
            print(f"{workers} worker(s): {rates[workers]:.0f} trials/hour", flush=True)
        print(f"speed-up 2 vs 1 worker: {rates[2] / rates[1]:.2f}x on {os.cpu_count()} cores "
              f"({args.trials} trials x {args.epochs} epochs, selfattn_lstm, storage "
              f"{'sqlite' if args.storage is None else args.storage.split(':', 1)[0]})")


if __name__ == "__main__":
    from results_page import run_with_page

    run_with_page("sweep_throughput", "Sweep throughput: trials per hour with 1 and 2 local workers", main)
