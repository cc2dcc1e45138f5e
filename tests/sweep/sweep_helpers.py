"""Helpers for the sweep tests: a tiny synthetic corpus and the CLI in a subprocess."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import musefusion
from musefusion.data.synth import SynthConfig, synthesize
from musefusion.types import Task

#: Small enough that one trial of 2-3 epochs takes about a second on one CPU thread.
FAST = ["--features", "egemaps", "--win-len", "40", "--hop-len", "20"]


def make_tiny_root(tmp_path_factory) -> Path:
    """A 4/2/2-subject synthetic stress corpus of half a minute per subject (egemaps only)."""
    root = tmp_path_factory.mktemp("sweep_data")
    synthesize(root, SynthConfig(task=Task.STRESS, seed=1, n_train=4, n_devel=2, n_test=2, minutes=0.5,
                                 features=("egemaps",)))
    return root


def cli_command(*args: str) -> list[str]:
    """``musefusion ARGS`` as a subprocess command line using this interpreter and this source tree."""
    return [sys.executable, "-c", "from musefusion.cli.app import main; main()", *args]


def cli_env() -> dict[str, str]:
    """The environment for CLI subprocesses: this tree first on PYTHONPATH, one torch thread."""
    src = str(Path(musefusion.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
            "OMP_NUM_THREADS": "1"}
