"""The leave-one-family-out rule of ``bench/defaults_across_families.py``: a value is adopted only when both corpus
families choose it on devel and it helps on the family it was not chosen on (never chosen on test scores)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from defaults_across_families import decide  # noqa: E402


def _row(family: str, cv: dict[str, float], delta: float, low: float, high: float) -> dict:
    return {"family": family, "variant": family, "task": "stress", "target": "arousal", "cv": cv,
            "diff": {"train": {"delta": 0.0, "low": 0.0, "high": 0.0},
                     "subject": {"delta": delta, "low": low, "high": high}}}


def test_adopted_when_both_families_choose_it_and_it_helps_on_the_other():
    rows = [_row("synth", {"train": 0.5, "subject": 0.6}, 0.05, 0.01, 0.09),
            _row("phases", {"train": 0.4, "subject": 0.45}, 0.03, -0.01, 0.07)]
    lines, adopted = decide(rows, ["train", "subject"])
    assert adopted == "subject", lines


def test_kept_when_one_family_chooses_the_default():
    rows = [_row("synth", {"train": 0.6, "subject": 0.5}, 0.05, 0.01, 0.09),
            _row("phases", {"train": 0.4, "subject": 0.45}, 0.03, -0.01, 0.07)]
    assert decide(rows, ["train", "subject"])[1] is None


def test_kept_when_the_choice_hurts_the_other_family_on_test():
    """Chosen on devel by both, but on one family's test its interval lies below 0: not adopted, and said where."""
    rows = [_row("synth", {"train": 0.5, "subject": 0.6}, -0.08, -0.15, -0.01),
            _row("phases", {"train": 0.4, "subject": 0.45}, 0.03, -0.01, 0.07)]
    lines, adopted = decide(rows, ["train", "subject"])
    assert adopted is None
    assert any("below 0 in 1" in line and "synth/stress/arousal" in line for line in lines), lines


def test_a_tie_on_devel_keeps_the_default():
    rows = [_row("synth", {"train": 0.5, "subject": 0.5}, 0.05, 0.01, 0.09),
            _row("phases", {"train": 0.4, "subject": 0.4}, 0.05, 0.01, 0.09)]
    assert decide(rows, ["train", "subject"])[1] is None
