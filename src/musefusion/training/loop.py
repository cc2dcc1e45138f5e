"""The training loop: Adam, CCC loss, the paper's or the baseline's LR schedule, best epoch by devel CCC,
per-epoch resumable state."""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from musefusion.config import Monitor, Precision, Schedule, TrainConfig
from musefusion.data.segment import delay_later, pad_sequences
from musefusion.errors import ConfigError, TrainingError
from musefusion.evaluation.metrics import ccc_concatenated
from musefusion.training import checkpoint
from musefusion.training.losses import CCCLoss

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Windows:
    """Equal-length training windows."""

    x: np.ndarray  # (n, win, d) float32
    y: np.ndarray  # (n, win) float32
    label_mask: np.ndarray  # (n, win) bool: real and labelled steps (loss)
    step_mask: np.ndarray  # (n, win) bool: real steps (model padding mask)

    def __len__(self) -> int:
        return len(self.x)


@dataclasses.dataclass
class FitResult:
    """Outcome of one seed's fit."""

    seed: int
    best_epoch: int  # 1-based epoch whose weights were kept
    best_score: float  # devel CCC (concatenated) at that epoch; NaN when fitted without devel
    history: list[dict[str, float]]  # one row per epoch
    state_dict: dict[str, torch.Tensor]  # the kept weights


def resolve_device(device: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU.

    Raises:
        ConfigError: ``cuda`` is asked for where torch has no usable CUDA device (a CPU build, no GPU, bad index).
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda"):
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= n:
            raise ConfigError(f"--device {device}: this torch ({torch.__version__}) sees {n} CUDA device(s); use "
                              "--device cpu or auto, or install a CUDA build of torch on a machine with a GPU.")
    return torch.device(device)


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX-BF16).

    Reads the flags of ``/proc/cpuinfo`` (or ``cpuinfo``, that file's text); where there is no such file (not
    Linux), asks oneDNN (``torch.ops.mkldnn._is_mkldnn_bf16_supported``, which only checks AVX-512).
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    flags = {f for line in cpuinfo.splitlines() if line.startswith("flags") for f in line.split(":", 1)[-1].split()}
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def check_precision(precision: Precision, device: torch.device) -> None:
    """Refuse ``bf16`` where the device has no native bfloat16: it would run emulated, slower than float32.

    Raises:
        ConfigError: naming ``--precision`` and what to use instead.
    """
    if precision != Precision.BF16:
        return
    if device.type == "cuda":
        if not torch.cuda.is_bf16_supported():
            raise ConfigError(f"--precision bf16: {torch.cuda.get_device_name(device)} has no bfloat16 support; use "
                              "--precision fp32.")
    elif device.type == "cpu" and not cpu_has_bf16():
        raise ConfigError("--precision bf16: this CPU has no native bfloat16 (neither AVX-512 BF16 nor AMX), so "
                          "autocast would emulate it more slowly than float32; use --precision fp32 (the default).")


@torch.no_grad()
def predict_arrays(model: nn.Module, xs: Sequence[np.ndarray], device: torch.device, batch_size: int = 8
                   ) -> list[np.ndarray]:
    """Run ``model`` on whole sequences (padded in batches of similar length) and return one array per sequence."""
    was_training = model.training
    model.eval()
    out: list[np.ndarray | None] = [None] * len(xs)
    order = np.argsort([len(x) for x in xs])
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        x, _, mask = pad_sequences([xs[i] for i in idx])
        pred = model(torch.from_numpy(x).to(device), torch.from_numpy(mask).to(device)).float().cpu().numpy()
        for k, i in enumerate(idx):
            out[i] = pred[k, : len(xs[i])]
    model.train(was_training)
    return out  # type: ignore[return-value]


def _score(preds: list[np.ndarray], ys: Sequence[np.ndarray]) -> float:
    return ccc_concatenated(preds, list(ys))


def _lr_schedule(opt: torch.optim.Optimizer, cfg: TrainConfig) -> torch.optim.lr_scheduler.ReduceLROnPlateau:
    """The learning-rate schedule of ``cfg``.

    ``paper`` (Sec. 5.2): "when the loss does not decrease in 15 consecutive epochs, the learning rate will be
    halved": with a constant loss from epoch 1, epochs 2-16 are the 15 without a decrease and the rate halves
    after epoch 16. torch's ``patience`` counts the stale epochs it tolerates, so it is ``lr_patience - 1``; any
    decrease counts (``threshold=0``; torch's default ignores decreases under 0.01 %). The count restarts after
    each halving.
    ``plateau``: the MuSe 2021 baseline's own call, ``ReduceLROnPlateau(patience=5)`` on the devel loss (halves
    after the 6th stale epoch, never below its ``min_lr=1e-5``).
    Either schedule stops after ``cfg.stop_after`` epochs without a better devel CCC (``early_stop``; by default
    15 under ``plateau``, the baseline's early stop, and never under ``paper``).
    ``stop_halvings = k`` (paper schedule, off by default): stop once the rate has been halved k times since the
    epoch with the best devel CCC, which the paper's 100 epochs would otherwise spend without a new best.
    """
    if cfg.schedule == Schedule.PAPER:
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=cfg.lr_patience - 1,
                                                          threshold=0.0)
    return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=min(cfg.lr_patience, 5),
                                                      min_lr=1e-5)


def fit(model: nn.Module, windows: Windows, devel_x: Sequence[np.ndarray], devel_y: Sequence[np.ndarray],
        cfg: TrainConfig, seed: int, state_path: Path | None = None,
        on_epoch: Callable[[dict[str, float]], None] | None = None, epochs: int | None = None,
        label_delay: int = 0, name: str = "") -> FitResult:
    """Fit ``model`` on ``windows``; keep the weights of the epoch with the best devel CCC.

    Without devel sequences (a final train+devel model, trained for a fixed epoch count: the kept model's) the kept
    epoch is the one with the lowest training loss, not necessarily the last: with dropout the loss is noisy, and
    the lowest-loss epoch is the best fit of the data the model was given that can be named without devel labels.

    Args:
        model: a freshly built model (its initial weights already depend on the seed).
        windows: training windows.
        devel_x: devel sequences (inputs) for model selection; may be empty (then the lowest-training-loss epoch
            is kept, see above).
        devel_y: devel labels, NaN where unlabelled.
        cfg: optimiser, schedule, epochs, batch size, device.
        seed: seeds the batch order and dropout.
        state_path: where the per-epoch resume state goes; if it exists, training continues from it.
        on_epoch: called after each epoch with that epoch's row (may raise to stop, e.g. pruning).
        epochs: overrides ``cfg.epochs`` (e.g. a fixed count for the final train+devel model).
        label_delay: the model predicts ``label_delay`` steps ahead (``DataConfig.label_delay``); its devel
            predictions are moved that many steps later and scored against ``devel_y``, the true labels, so the
            epoch is kept on the very number the run reports.
        name: the run the log lines name (``arousal/egemaps-lstm``), so a redirected log says whose they are.

    Returns:
        The kept weights, their epoch and devel score, and the per-epoch history.
    """
    n_epochs = epochs or cfg.epochs
    who = f"{name} " if name else ""
    device = resolve_device(cfg.device)
    check_precision(cfg.precision, device)
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = _lr_schedule(opt, cfg)
    loss_fn = CCCLoss(cfg.loss.value)
    gen = torch.Generator().manual_seed(seed)
    history: list[dict[str, float]] = []
    best: dict[str, Any] = {"score": -np.inf, "epoch": 0, "state": copy.deepcopy(model.state_dict())}
    stale, start_epoch = 0, 1
    if state_path is not None and state_path.is_file():
        st = checkpoint.load_checkpoint(state_path)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        gen.set_state(st["rng_gen"])
        torch.set_rng_state(st["rng_torch"])
        history, stale, start_epoch = st["history"], st["stale"], st["epoch"] + 1
        best = {"score": st["best_score"], "epoch": st["best_epoch"], "state": st["best_state"]}
        logger.info("%sresuming seed %d from epoch %d (%s)", who, seed, st["epoch"], state_path)

    x_all = torch.from_numpy(windows.x)
    y_all = torch.from_numpy(windows.y)
    lm_all = torch.from_numpy(windows.label_mask)
    sm_all = torch.from_numpy(windows.step_mask)
    has_devel = len(devel_x) > 0
    bf16 = cfg.precision == Precision.BF16  # training forward only; devel scoring and predictions stay float32
    for epoch in range(start_epoch, n_epochs + 1):
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(len(windows), generator=gen)
        losses, weights = [], []
        for b in range(0, len(perm), cfg.batch_size):
            idx = perm[b:b + cfg.batch_size]
            x, y = x_all[idx].to(device), y_all[idx].to(device)
            lm, sm = lm_all[idx].to(device), sm_all[idx].to(device)
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                out = model(x, sm)
            loss = loss_fn(out.float(), y, lm)  # the CCC loss (Eq. 20-21) in float32 whatever the forward pass
            value = float(loss.detach())
            if not math.isfinite(value):  # never let a NaN/inf loss end in a 'successful' run of untrained weights
                raise TrainingError(f"The training loss is {value} at epoch {epoch}, batch {b // cfg.batch_size + 1} "
                                    f"(seed {seed}); check the learning rate (--lr {cfg.lr:g}) and the data for "
                                    "absurd values (musefusion data check).")
            loss.backward()
            opt.step()
            losses.append(value)
            weights.append(len(idx))
        train_loss = float(np.average(losses, weights=weights))
        row: dict[str, Any] = {"epoch": epoch, "lr": opt.param_groups[0]["lr"], "train_loss": train_loss,
                               "devel_ccc": float("nan")}
        if has_devel and (epoch % cfg.eval_every == 0 or epoch == n_epochs):
            preds = [delay_later(p, label_delay) for p in predict_arrays(model, devel_x, device)]
            row["devel_ccc"] = _score(preds, devel_y)
        # paper: LR halved when the monitored loss (train by default) stalls; baseline: when the devel loss stalls
        on_devel = cfg.schedule == Schedule.PLATEAU or cfg.lr_monitor == Monitor.DEVEL
        monitor = 1 - row["devel_ccc"] if on_devel and has_devel else train_loss
        if monitor == monitor:
            sched.step(monitor)
        score = row["devel_ccc"] if has_devel else -train_loss
        if score == score and score > best["score"]:
            best = {"score": score, "epoch": epoch, "state": copy.deepcopy(model.state_dict())}
            stale = 0
        else:
            stale += 1
        halvings = 0  # of the rate since the kept epoch (its row is in history), after this epoch's scheduler step
        if best["epoch"] not in (0, epoch):
            halvings = round(math.log2(history[best["epoch"] - 1]["lr"] / opt.param_groups[0]["lr"]))
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        logger.debug("seed %d epoch %d: train loss %.4f, devel CCC %.4f", seed, epoch, train_loss, row["devel_ccc"])
        if state_path is not None:
            checkpoint.save_checkpoint(state_path, {
                "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "rng_gen": gen.get_state(), "rng_torch": torch.get_rng_state(), "history": history,
                "stale": stale, "epoch": epoch, "best_score": float(best["score"]),
                "best_epoch": int(best["epoch"]), "best_state": best["state"]})
        if on_epoch is not None:
            on_epoch(row)
        if has_devel and cfg.stop_after and stale >= cfg.stop_after:
            logger.info("%sseed %d: early stop at epoch %d (%d epochs without devel improvement)", who, seed, epoch,
                        stale)
            break
        if cfg.schedule == Schedule.PAPER and has_devel and cfg.stop_halvings and halvings >= cfg.stop_halvings:
            logger.info("%sseed %d: stop at epoch %d (learning rate halved %d times since the best epoch %d)", who, seed,
                        epoch, halvings, best["epoch"])
            break
    score = float(best["score"]) if has_devel else float("nan")
    return FitResult(seed, int(best["epoch"]), score, history, best["state"])
