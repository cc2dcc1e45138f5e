"""Seconds per training epoch and peak memory of every model at the paper's smallest and largest settings.

Sec. 5.2 grid (smallest / largest member):

* ``selfattn_lstm``: heads 4 / 8, attention layers 1 / 4, LSTM hidden 64 / 256, LSTM layers 2 / 4
* ``gcnn_lstm``: channels 64 / 128, LSTM hidden 128 / 1024
* ``lstm``, ``bio_lstm``: hidden 64 / 256
* ``selfattn``: attention layers 1 / 4 (heads 4 / 8, as for ``selfattn_lstm``)
* ``gcnn``: channels 64 / 128

Everything else is the model's preset (``config.MODEL_PRESETS``). Data: the default synthetic stress corpus
(``synthesize(tmp, SynthConfig())``: 41/14/14 subjects, about 5 min each), egemaps features (bio = ECG+RESP+BPM
for ``bio_lstm``), arousal, windows of 300 steps at hop 50, batches of 64 (the MuSe 2021 baseline's defaults).

Each configuration runs in a fresh Python process: build the model, one warm-up batch (forward and backward), then
two epochs of ``training.loop.fit`` without devel scoring (``s/epoch`` is the mean of the two), then one devel
pass with ``predict_arrays`` (``devel s``). ``peak MiB`` is the growth of the process's peak RSS (``ru_maxrss``)
from just before the warm-up batch to the end, i.e. what training and the devel pass added on top of the loaded
corpus and the interpreter.

``reference`` rows are a plain PyTorch loop written here with the official MuSe 2021 baseline's model shape
(``Linear(d_in, d_rnn, bias=False)`` → ``nn.LSTM(d_rnn, d_rnn, 2 layers)`` → ``Linear(d_rnn, 64)`` + ReLU →
``Linear(64, 1)``), Adam, ``1 − CCC``, and exactly the same batches (the same seeded permutation per epoch);
``x ref`` divides a row's ``s/epoch`` by the reference's on the same features at the same size (d_rnn 64 for the
smallest settings, 256 for the largest).

Usage::

    .venv/bin/python bench/train_speed.py [--models lstm gcnn] [--sizes small] [--threads N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WIN_LEN, HOP_LEN, BATCH, EPOCHS = 300, 50, 64, 2

#: (model, size) -> ModelConfig overrides (the paper's grid ends); see the module docstring.
GRID: dict[tuple[str, str], dict[str, int]] = {
    ("lstm", "small"): {"hidden": 64}, ("lstm", "large"): {"hidden": 256},
    ("bio_lstm", "small"): {"hidden": 64}, ("bio_lstm", "large"): {"hidden": 256},
    ("selfattn", "small"): {"heads": 4, "attn_layers": 1}, ("selfattn", "large"): {"heads": 8, "attn_layers": 4},
    ("selfattn_lstm", "small"): {"heads": 4, "attn_layers": 1, "hidden": 64, "lstm_layers": 2},
    ("selfattn_lstm", "large"): {"heads": 8, "attn_layers": 4, "hidden": 256, "lstm_layers": 4},
    ("gcnn", "small"): {"channels": 64}, ("gcnn", "large"): {"channels": 128},
    ("gcnn_lstm", "small"): {"channels": 64, "hidden": 128}, ("gcnn_lstm", "large"): {"channels": 128, "hidden": 1024},
}
#: The reference loop's LSTM width per size.
REF_D_RNN = {"small": 64, "large": 256}


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _reference_model(d_in: int, d_rnn: int):
    """The MuSe 2021 baseline's shape: input projection, unidirectional LSTM, two linear layers."""
    from torch import nn

    class Reference(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inp = nn.Linear(d_in, d_rnn, bias=False)
            self.rnn = nn.LSTM(d_rnn, d_rnn, num_layers=2, batch_first=True)
            self.out = nn.Sequential(nn.Linear(d_rnn, 64), nn.ReLU(), nn.Linear(64, 1))

        def forward(self, x, mask=None):  # noqa: ANN001, ANN202 - the mask is ignored, as in predict_arrays' call
            return self.out(self.rnn(self.inp(x))[0]).squeeze(-1)

    return Reference()


def _reference_epochs(model, windows, seed: int) -> list[float]:  # noqa: ANN001
    """A plain loop: Adam, 1 - CCC over the masked steps, the batches ``fit`` would draw for ``seed``."""
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)  # fit draws one permutation per epoch from such a generator
    x_all, y_all = torch.from_numpy(windows.x), torch.from_numpy(windows.y)
    m_all = torch.from_numpy(windows.label_mask)
    seconds = []
    for _ in range(EPOCHS):
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(len(windows), generator=gen)
        for b in range(0, len(perm), BATCH):
            idx = perm[b:b + BATCH]
            x, y, m = x_all[idx], y_all[idx], m_all[idx].float()
            opt.zero_grad(set_to_none=True)
            p = model(x)
            n = m.sum()
            mp, my = (p * m).sum() / n, (y * m).sum() / n
            vp, vy = (((p - mp) * m) ** 2).sum() / n, (((y - my) * m) ** 2).sum() / n
            cov = ((p - mp) * (y - my) * m).sum() / n
            loss = 1 - 2 * cov / (vp + vy + (mp - my) ** 2)
            loss.backward()
            opt.step()
        seconds.append(time.perf_counter() - t0)
    return seconds


def _measure(spec: dict) -> dict:
    """Run one configuration in this process."""
    import torch

    from musefusion.config import DataConfig, TrainConfig, model_preset
    from musefusion.data.corpus import load_corpus
    from musefusion.models import build_model
    from musefusion.training.loop import fit, predict_arrays
    from musefusion.training.losses import CCCLoss
    from musefusion.training.run import make_train_windows
    from musefusion.training.seeds import seed_everything

    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    features = ("bio",) if spec["features"] == "bio" else (spec["features"],)
    data = load_corpus(DataConfig(root=Path(spec["root"]), features=features, win_len=WIN_LEN, hop_len=HOP_LEN))
    windows = make_train_windows(data.fit_sequences(), WIN_LEN, HOP_LEN)
    devel = [s.x for s in data.partition("devel")]
    seed_everything(1)
    if spec["model"] == "reference":
        model = _reference_model(data.d_in, REF_D_RNN[spec["size"]])
    else:
        model = build_model(model_preset(spec["model"], **GRID[(spec["model"], spec["size"])]), data.d_in)
    rss0 = _peak_rss_mib()

    # warm-up: one forward and backward pass on the first batch (allocator, thread pool, kernel selection)
    x = torch.from_numpy(windows.x[:BATCH])
    mask = torch.from_numpy(windows.step_mask[:BATCH])
    CCCLoss()(model(x, mask), torch.from_numpy(windows.y[:BATCH]), torch.from_numpy(windows.label_mask[:BATCH])
              ).backward()
    model.zero_grad(set_to_none=True)

    if spec["model"] == "reference":
        seconds = _reference_epochs(model, windows, seed=1)
    else:
        cfg = TrainConfig(epochs=EPOCHS, batch_size=BATCH, device="cpu", seeds=(1,))
        seconds = [row["seconds"] for row in fit(model, windows, [], [], cfg, seed=1).history]
    t0 = time.perf_counter()
    predict_arrays(model, devel, torch.device("cpu"))
    devel_s = time.perf_counter() - t0
    return {"s_per_epoch": sum(seconds) / len(seconds), "epochs_s": seconds, "devel_s": devel_s,
            "peak_mib": _peak_rss_mib() - rss0, "params": sum(p.numel() for p in model.parameters()),
            "windows": len(windows), "batches": -(-len(windows) // BATCH), "threads": torch.get_num_threads()}


def _run(spec: dict) -> dict:
    cmd = [sys.executable, __file__, "--one", json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{spec['model']} {spec['size']} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _settings(model: str, size: str) -> str:
    if model == "reference":
        return f"d_rnn={REF_D_RNN[size]} layers=2 fc=64"
    return " ".join(f"{k}={v}" for k, v in GRID[(model, size)].items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["lstm", "bio_lstm", "selfattn", "selfattn_lstm", "gcnn",
                                                         "gcnn_lstm"])
    parser.add_argument("--sizes", nargs="+", default=["small", "large"], choices=["small", "large"])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default).")
    parser.add_argument("--keep", type=Path, help="Write the corpus (and its cache) here and keep it.")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(_measure(json.loads(args.one))))
        return

    import torch

    from musefusion.data.synth import SynthConfig, synthesize

    root = args.keep or Path(tempfile.mkdtemp(prefix="train_speed-"))
    os.environ["MUSEFUSION_CACHE"] = str(root / "cache")  # the children inherit it; never ~/.cache
    load0 = os.getloadavg()
    print("# musefusion training speed (bench/train_speed.py)")
    print(f"# {platform.platform()}; {platform.processor() or platform.machine()}; {os.cpu_count()} CPU cores; "
          f"torch {torch.__version__}, {args.threads or torch.get_num_threads()} threads; no GPU used")
    print(f"# NOTE: a small shared machine ({os.cpu_count()} cores) on which other jobs may be running "
          f"(load average at start {load0[0]:.2f}); read the numbers as rough and compare rows, not machines.")
    print("# With other jobs on the cores, torch's default of one thread per core stalls for seconds in OpenMP "
          "barriers (see the (e1, e2) column); --threads 1 gives steadier numbers there.")
    print(f"# windows {WIN_LEN} steps, hop {HOP_LEN}, batch {BATCH}; s/epoch = mean of {EPOCHS} epochs after a "
          "warm-up batch (train only); devel s = one pass over the 14 devel subjects; peak MiB = ru_maxrss growth")
    t0 = time.perf_counter()
    if not (root / "c3_muse_stress").is_dir():
        synthesize(root, SynthConfig())
    print(f"# corpus: synthesize(tmp, SynthConfig()) -> {root} ({time.perf_counter() - t0:.1f} s)")
    print()

    specs = [("reference", s, f) for f in ("egemaps", "bio") if any((m == "bio_lstm") == (f == "bio")
                                                                    for m in args.models) for s in args.sizes]
    specs += [(m, s, "bio" if m == "bio_lstm" else "egemaps") for m in args.models for s in args.sizes]
    results: dict[tuple[str, str, str], dict] = {}
    header = (f"{'model':<14} {'size':<5} {'features':<8} {'settings':<44} {'params':>9} {'s/epoch':>8} "
              f"{'(e1, e2)':>13} {'devel s':>8} {'peak MiB':>9} {'x ref':>6}")
    print(header)
    print("-" * len(header))
    for model, size, feats in specs:
        r = _run({"root": str(root), "model": model, "size": size, "features": feats, "threads": args.threads})
        results[(model, size, feats)] = r
        ref = results.get(("reference", size, feats))
        ratio = f"{r['s_per_epoch'] / ref['s_per_epoch']:.2f}" if ref and model != "reference" else "-"
        epochs = "(" + ", ".join(f"{e:.2f}" for e in r["epochs_s"]) + ")"
        print(f"{model:<14} {size:<5} {feats:<8} {_settings(model, size):<44} {r['params']:>9,} "
              f"{r['s_per_epoch']:>8.2f} {epochs:>13} {r['devel_s']:>8.2f} "
              f"{r['peak_mib']:>9.0f} {ratio:>6}", flush=True)
    any_r = next(iter(results.values()))
    load1 = os.getloadavg()
    print()
    print(f"# {any_r['windows']} train windows = {any_r['batches']} batches per epoch; total "
          f"{time.perf_counter() - t0:.0f} s; load average at end {load1[0]:.2f}")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
