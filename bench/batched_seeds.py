"""Would training a row's seeds as one batched model be faster? ``torch.func.vmap`` over stacked parameters
against the seeds one after the other.

For each model family and input width, builds one model per seed, stacks their parameters
(``torch.func.stack_module_state``) and times one training step (forward, loss, backward) of all seeds on one
batch of full windows: once vmapped, once seed by seed, on one torch thread as ``reproduce``'s jobs run.
A family whose layers have no vmap batching rule (``nn.LSTM``, ``nn.GRU`` in torch 2.13) prints the error.

Usage::

    .venv/bin/python bench/batched_seeds.py [--rows selfattn:512 selfattn:88 gcnn:88 lstm:88] [--seeds 3]
        [--batch 64] [--win 300]
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable

import torch
from torch.func import functional_call, stack_module_state, vmap

from musefusion import families
from musefusion.config import model_preset
from musefusion.models import build_model


def _seconds(step: Callable[[], None], repeats: int = 2) -> float:
    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - t0) / repeats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", nargs="+", default=["selfattn:512", "selfattn:88", "gcnn:88", "lstm:88"],
                    help="MODEL:WIDTH ...")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--win", type=int, default=300)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"{'row':14} {'seed by seed s':>14} {'vmapped s':>10} {'speed-up':>8}  ({args.seeds} seeds x one batch of "
          f"{args.batch} x {args.win} steps, one thread)")
    for spec in args.rows:
        name, width = spec.split(":")
        d = int(width)
        torch.manual_seed(0)
        width = d + (1 if families.family(name).observed_inputs else 0)  # crossmodal: an observed column per set
        models = [build_model(model_preset(name), width, (d,)) for _ in range(args.seeds)]
        x = torch.randn(args.seeds, args.batch, args.win, width)
        mask = torch.ones(args.seeds, args.batch, args.win, dtype=torch.bool)

        def one_by_one(models: list[torch.nn.Module] = models, x: torch.Tensor = x, mask: torch.Tensor = mask) -> None:
            for i, m in enumerate(models):
                m.zero_grad(set_to_none=True)
                m(x[i], mask[i]).pow(2).mean().backward()

        params, buffers = stack_module_state(models)
        skeleton = copy.deepcopy(models[0]).to("meta")

        def batched(params: dict = params, buffers: dict = buffers, skeleton: torch.nn.Module = skeleton,
                    x: torch.Tensor = x, mask: torch.Tensor = mask) -> None:
            for p in params.values():
                p.grad = None

            def call(p: dict, b: dict, xi: torch.Tensor, mi: torch.Tensor) -> torch.Tensor:
                return functional_call(skeleton, (p, b), (xi, mi))

            vmap(call, randomness="different")(params, buffers, x, mask).pow(2).mean().backward()

        alone = _seconds(one_by_one)
        try:
            together = _seconds(batched)
        except RuntimeError as exc:
            print(f"{spec:14} {alone:14.3f} {'-':>10} {'-':>8}  vmap: {str(exc).splitlines()[0][:90]}")
            continue
        print(f"{spec:14} {alone:14.3f} {together:10.3f} {alone / together:8.2f}")


if __name__ == "__main__":
    main()
