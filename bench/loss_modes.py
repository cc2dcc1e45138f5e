"""The CCC loss's pooling (``TrainConfig.loss``): one CCC per batch against the mean of per-window CCCs.

The paper (Eq. 20-21) does not say how a batch is pooled; the MuSe 2021 baseline's ``loss.py`` averages
per-sequence CCCs (``sequence``). This trains the stream models of both tasks with both modes under the
``quick`` profile's settings (8 epochs, window hop 100) and seeds 1, 2, 3 on the default synthetic corpora,
and prints devel CCC (one CCC over all devel subjects concatenated) mean ± std per row and mode.

Usage::

    .venv/bin/python bench/loss_modes.py --data demo/data [--physio-data DIR] [--epochs 8] [--seeds 1 2 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from musefusion.config import DataConfig, RunConfig, TrainConfig, model_preset
from musefusion.training.run import train_run
from musefusion.types import Task

ROWS = {Task.STRESS: [("arousal", "egemaps", "selfattn_lstm"), ("valence", "vggface", "selfattn_lstm"),
                      ("arousal", "bio", "bio_lstm")],
        Task.PHYSIO: [("anno12_EDA", "vggish", "selfattn_lstm"), ("anno12_EDA", "vggish", "gcnn_lstm"),
                      ("anno12_EDA", "bio", "bio_lstm")]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="data root with c3_muse_stress/")
    ap.add_argument("--physio-data", type=Path, help="data root with c4_muse_physio/ (skipped when not given)")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = ap.parse_args()
    roots = {Task.STRESS: args.data, Task.PHYSIO: args.physio_data}
    print(f"{'task':7} {'target':11} {'row':24} {'batch':>17} {'sequence':>17}  seconds")
    with tempfile.TemporaryDirectory() as tmp:
        for task, rows in ROWS.items():
            if roots[task] is None:
                continue
            for target, features, model in rows:
                cells, t0 = [], time.perf_counter()
                for mode in ("batch", "sequence"):
                    scores = []
                    for seed in args.seeds:
                        cfg = RunConfig(DataConfig(root=roots[task], task=task, target=target, features=(features,),
                                                   hop_len=100),
                                        model_preset(model),
                                        TrainConfig(epochs=args.epochs, seeds=(seed,), loss=mode, num_threads=2))
                        m = train_run(cfg, Path(tmp) / f"{task}-{target}-{features}-{model}-{mode}-{seed}")
                        scores.append(m.metrics["devel_ccc_mean"])
                    cells.append(f"{np.mean(scores):.4f} ± {np.std(scores):.4f}")
                print(f"{task.value:7} {target:11} {features + ' ' + model:24} {cells[0]:>17} {cells[1]:>17}  "
                      f"{time.perf_counter() - t0:.0f}", flush=True)


if __name__ == "__main__":
    from results_page import run_with_page

    run_with_page("loss_modes", "CCC loss pooling: one CCC per window against one per batch", main)
