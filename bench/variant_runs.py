"""What the benches that run a reproduction per synthetic variant share: their options and the corpus and
reproduction of one (variant, task) under ``<out>/<variant>/<task>/{data,reproduce}``, made or reused."""

from __future__ import annotations

import argparse
from pathlib import Path

from musefusion.data.synth import SynthConfig, Variant, synthesize
from musefusion.pipelines.reproduce import Profile, ReproduceConfig, reproduce
from musefusion.types import Task

#: The generator variants the defaults are judged on (``null`` and ``one-modality`` carry nothing to fuse).
GENERATORS = ("default", "bio-led", "sparse-face", "idiosyncratic")


def add_options(ap: argparse.ArgumentParser, variants: tuple[str, ...] = GENERATORS) -> None:
    """``--out --variants --tasks --profile --workers --split --minutes --seeds``."""
    ap.add_argument("--out", type=Path, required=True, help="folder for the corpora and reproductions")
    ap.add_argument("--variants", nargs="+", default=list(variants), choices=[v.value for v in Variant])
    ap.add_argument("--tasks", nargs="+", default=["stress", "physio"], choices=["stress", "physio"])
    ap.add_argument("--profile", default="quick", choices=[p.value for p in Profile])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--split", default="41/14/14", help="subjects per partition (TRAIN/DEVEL/TEST)")
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[], help="seeds, overriding the profile's")


def reproduction(args: argparse.Namespace, variant: str, task: str, **fields: object) -> tuple[ReproduceConfig,
                                                                                                  Path]:
    """Synthesise (or reuse) the corpus of ``variant`` and ``task`` and run (or resume) its reproduction."""
    n_train, n_devel, n_test = (int(x) for x in args.split.split("/"))
    root = args.out / variant / task / "data"
    synthesize(root, SynthConfig(task=Task(task), variant=Variant(variant), n_train=n_train, n_devel=n_devel,
                                 n_test=n_test, minutes=args.minutes))
    cfg = ReproduceConfig(root=root, task=Task(task), profile=args.profile, workers=args.workers,
                          seeds=tuple(args.seeds), **fields)  # type: ignore[arg-type]
    out = args.out / variant / task / "reproduce"
    reproduce(cfg, out)
    return cfg, out
