"""The ``--beyond`` verdict: which later methods are above the paper's full fusion row."""

from __future__ import annotations

from musefusion.pipelines.beyond import above_paper


def _row(method: str, devel: float, test: float | None) -> dict:
    return {"method": method, "devel_mean": devel, "test": test}


def test_a_method_is_above_the_paper_only_on_devel_and_test_both():
    rows = [_row("early-lstm", 0.75, 0.69), _row("crossmodal", 0.70, 0.80), _row("top4-rows", 0.76, 0.72),
            _row("postprocess", 0.74, 0.75), _row("mean-streams", 0.73, 0.70)]
    # paper: devel 0.73, test 0.70; a tie is not above
    assert above_paper(rows, 0.73, 0.70) == ["postprocess", "top4-rows"]  # best test first
    assert above_paper(rows, 0.80, 0.60) == []


def test_without_test_labels_devel_decides():
    rows = [_row("early-lstm", 0.75, None), _row("crossmodal", 0.70, None), _row("postprocess", 0.78, None)]
    assert above_paper(rows, 0.73, None) == ["postprocess", "early-lstm"]
