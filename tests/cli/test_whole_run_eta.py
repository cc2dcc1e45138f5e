"""The whole run's ETA: projected before a fresh reproduction starts, rescaled by the pace measured so far."""

from __future__ import annotations

import time

import pytest

from musefusion.cli.reproduce import WholeRunEta, projection
from musefusion.pipelines.cost import StageCost
from musefusion.pipelines.reproduce import ReproduceConfig


def stage(name: str, jobs: list[float], workers: int = 1) -> StageCost:
    return StageCost(name, len(jobs), 1, sum(jobs), sum(jobs) / workers, tuple(sorted(jobs, reverse=True)))


def test_eta_counts_the_projected_work_left_and_rescales_by_the_pace(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(time, "perf_counter", lambda: clock[0])
    eta = WholeRunEta([stage("seed runs", [60.0, 20.0, 20.0]), stage("folds", [50.0])])
    assert eta() is None  # before the first stage
    eta.start_stage(3)
    assert eta() == pytest.approx(150.0)  # nothing done yet: the projection as it stands
    clock[0] = 30.0
    eta.job_done()  # the heaviest job (60 projected) done in 30 s: the run goes twice as fast as projected
    assert eta() == pytest.approx((40.0 + 50.0) * 0.5)
    clock[0] = 50.0
    eta.job_done()
    eta.job_done()
    eta.start_stage(1)  # seed runs took 50 s for 100 projected
    assert eta() == pytest.approx(50.0 * 0.5)
    eta.start_stage(4)  # a stage the plan does not know (--beyond): no whole-run ETA rather than a wrong one
    assert eta() is None


def test_a_resumed_smoke_or_cluster_run_is_not_projected(tiny_corpus, tmp_path):
    out = tmp_path / "rep"
    out.mkdir()
    (out / "report.md").write_text("earlier\n")
    assert projection(ReproduceConfig(root=tiny_corpus, profile="demo"), out) is None  # resumed
    assert projection(ReproduceConfig(root=tiny_corpus, profile="smoke"), tmp_path / "new") is None
    assert projection(ReproduceConfig(root=tiny_corpus, profile="demo", cluster="tcp://127.0.0.1:1"),
                      tmp_path / "new") is None


@pytest.mark.slow
def test_a_fresh_unimodal_reproduction_projects_only_its_own_stages(synth_stress, tmp_path, capsys):
    stages = projection(ReproduceConfig(root=synth_stress, profile="smoke", stage="unimodal"), tmp_path / "new",
                        smoke_too=True)
    assert stages is not None and [st.name for st in stages] == ["seed runs"]
    assert stages[0].jobs == len(stages[0].job_s) and stages[0].wall_s > 0
    assert "projected reproduce --profile smoke" in capsys.readouterr().out
