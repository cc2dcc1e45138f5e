"""What ``reproduce.summarize_runs`` reads from the run directories: rows still improving when their budget ended."""

from __future__ import annotations

from musefusion import fsutil
from musefusion.pipelines.reproduce import ReproduceConfig, summarize_runs
from musefusion.rundir import ReproduceDir


def test_rows_still_improving_at_the_end_of_their_budget_are_found(tmp_path):
    """A seed whose kept epoch is the last of its budget was still improving: the summary lists it; an early-stopped
    seed or one whose best came earlier is not listed."""
    cfg = ReproduceConfig(root=tmp_path)
    seeds = {"lstm": {"1": {"best_epoch": 8, "epochs_run": 8, "epochs": 8}, "2": {"best_epoch": 5, "epochs_run": 8,
                                                                                  "epochs": 8}},
             "baseline": {"1": {"best_epoch": 30, "epochs_run": 45, "epochs": 100}}}
    for model, per_seed in seeds.items():
        run = ReproduceDir(tmp_path).run("arousal", "egemaps", model)
        run.path.mkdir(parents=True)
        fsutil.write_json(run.metrics, {"devel_ccc_mean": 0.5, "devel_ccc_std": 0.0,
                                        "best": {"seed": 1, "devel_ccc": 0.5},
                                        "seeds": {s: {**v, "devel_ccc": 0.5} for s, v in per_seed.items()}})
    res = summarize_runs(tmp_path, cfg)["unimodal"]
    assert res[("egemaps", "A", "lstm", "arousal")]["still_improving"] == [1]
    assert res[("egemaps", "A", "baseline", "arousal")]["still_improving"] == []
