"""Tests of musefusion.pipelines."""

from __future__ import annotations

from pathlib import Path

from musefusion.data.synth import SynthConfig, synthesize
from musefusion.types import Task

STRESS_FEATURES = ("egemaps", "vggface", "ECG", "resp", "BPM")


def synth_tiny(root: Path, minutes: float = 0.5) -> Path:
    """A 4/2/2-subject MuSe-Stress corpus with every paper feature (seed 3): a whole reproduction in seconds."""
    synthesize(root, SynthConfig(task=Task.STRESS, seed=3, n_train=4, n_devel=2, n_test=2, minutes=minutes,
                                 features=STRESS_FEATURES))
    return root
