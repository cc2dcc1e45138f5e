"""``reproduce --tune``: a study per unimodal row, whose best parameters the row then trains with."""

from __future__ import annotations

import re

import pytest

from musefusion.pipelines import tune
from musefusion.pipelines.reproduce import ReproduceConfig, tune_sweep, tuned_rows, unimodal_rows
from musefusion.rundir import ReproduceDir
from musefusion.training.run import load_run_config
from tests.cli_helpers import run_cli
from tests.pipelines import synth_tiny

pytestmark = pytest.mark.slow  # 28 trials and 14 rows on a tiny corpus


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    root = tmp_path_factory.mktemp("tune_data")
    synth_tiny(root)
    out = tmp_path_factory.mktemp("tune_out")
    args = ["reproduce", "--data", root, "--profile", "smoke", "--tune", "--tune-trials", "2", "--stage", "unimodal",
            "--workers", "1", "--out", out]
    assert run_cli(args) == 0
    return root, out, args


def test_every_row_trains_with_its_studys_best_parameters(tuned):
    root, out, _ = tuned
    cfg = ReproduceConfig(root=root, profile="smoke", tune=True, tune_trials=2)
    rows = [(f, m, t) for (f, _mod, m) in tuned_rows(cfg) for t in ("arousal", "valence")]
    assert len(rows) == 14 and len(unimodal_rows(cfg)) == 10  # the 3 baseline peers keep their README settings
    seen_params = set()
    for f, m, t in rows:
        sweep = tune_sweep(cfg, out, f, m, t)
        best = tune.best_params(sweep)
        assert best and set(best) == set(sweep.space_dict)  # every Sec. 5.2 parameter of the family was chosen
        run = load_run_config(ReproduceDir(out).run(t, f, m).path)
        for name, value in best.items():
            section = run.train if name in ("lr", "batch_size") else run.model
            assert getattr(section, name) == value, (f, m, t, name)
        seen_params.add(tuple(sorted(best.items())))
    assert len(seen_params) > 3  # each row has its own sampler seed: rows of a family draw different trials


def test_the_report_shows_each_rows_search(tuned):
    _, out, _ = tuned
    text = (out / "report.md").read_text()
    assert "## Tuning (Sec. 5.2 grid, one Optuna study per row)" in text
    assert re.search(r"\| eGeMAPS \| Self-Attn\+LSTM \| arousal \| [0-2]/[0-2] of 432 \| -?0\.\d{4} \|", text)
    assert text.count(" of 72 |") + text.count(" of 432 |") == 14


def test_a_rerun_adds_no_trials_and_retrains_nothing(tuned):
    root, out, args = tuned
    before = (out / "jobs.log").read_text()
    assert run_cli(args) == 0
    assert (out / "jobs.log").read_text() == before  # nothing was left to do
    cfg = ReproduceConfig(root=root, profile="smoke", tune=True, tune_trials=2)
    for f, _mod, m in tuned_rows(cfg):
        counts = tune.summary(tune_sweep(cfg, out, f, m, "arousal"))
        assert counts["complete"] + counts["pruned"] == 2


def test_two_jobs_on_one_study_share_its_trials(tuned, tmp_path):
    """``--tune-jobs 2``: two processes work on one study; it ends with its budget, not twice it."""
    from musefusion.pipelines.jobs import job_tune, run_jobs

    root, _, _ = tuned
    cfg = ReproduceConfig(root=root, profile="smoke", tune=True, tune_trials=4, tune_jobs=2)
    sweep = tune_sweep(cfg, tmp_path, "bio", "bio_lstm", "arousal")
    run_jobs([(job_tune, (sweep.to_dict(), i), f"tune #{i}") for i in range(2)], tmp_path / "jobs.log",
             lambda label: None, workers=2)
    s = tune.summary(sweep)
    assert s["complete"] + s["pruned"] == 4
    assert (tmp_path / "jobs.log").read_text().count("\n") == 2  # both ended (the later may have found it done)
