"""The ``--beyond`` verdict: which later methods are above the paper's full fusion row."""

from __future__ import annotations

import math

from musefusion.pipelines.beyond import above_paper


def _row(method: str, devel: float, test: float | None, cv: float = math.nan) -> dict:
    return {"method": method, "devel_mean": devel, "devel_cv": cv, "test": test}


def test_a_method_is_above_the_paper_only_on_devel_and_test_both():
    rows = [_row("early-lstm", 0.75, 0.69), _row("crossmodal", 0.70, 0.80), _row("label-delay", 0.76, 0.72),
            _row("bilstm-reliability", 0.74, 0.75), _row("early-lstm", 0.73, 0.70)]
    # paper: devel 0.73 (mean over seeds), test 0.70; a tie is not above
    assert above_paper(rows, 0.73, 0.73, 0.70) == ["bilstm-reliability", "label-delay"]  # best test first
    assert above_paper(rows, 0.80, 0.80, 0.60) == []
    # the paper row has no test score where labels exist: nothing is above
    assert above_paper(rows, 0.73, 0.73, math.nan) == []


def test_a_row_chosen_on_devel_is_judged_by_its_cross_validated_estimate():
    rows = [_row("top4-rows", 0.80, 0.75, cv=0.72), _row("postprocess", 0.80, 0.75, cv=0.74),
            _row("selected-all", 0.80, 0.75)]  # no estimate: its devel
    assert above_paper(rows, 0.70, 0.73, 0.70) == ["postprocess", "selected-all"]


def test_rows_from_kept_predictions_are_compared_with_the_kept_seed():
    # the paper row: mean over seeds 0.70, its kept (devel-best) seed 0.74
    rows = [_row("mean-streams", 0.72, 0.80), _row("crossmodal", 0.72, 0.80)]
    assert above_paper(rows, 0.70, 0.74, 0.70) == ["crossmodal"]


def test_without_test_labels_devel_decides():
    rows = [_row("early-lstm", 0.75, None), _row("crossmodal", 0.70, None), _row("postprocess", 0.90, None, cv=0.78)]
    assert above_paper(rows, 0.73, 0.73, None) == ["postprocess", "early-lstm"]


def test_without_test_labels_a_row_chosen_on_devel_needs_its_estimate():
    # the searched delay is the best of eight devel scores and has no cross-validated estimate: not above on devel
    rows = [_row("label-delay-search", 0.80, None), _row("label-delay", 0.76, None)]
    assert above_paper(rows, 0.73, 0.73, None) == ["label-delay"]
    # with test labels the test score checks it
    rows = [_row("label-delay-search", 0.80, 0.75), _row("label-delay", 0.76, 0.71)]
    assert above_paper(rows, 0.73, 0.73, 0.70) == ["label-delay-search", "label-delay"]
