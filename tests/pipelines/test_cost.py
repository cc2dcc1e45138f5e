"""``reproduce --dry-run``: the jobs of every stage and their projected time, with nothing trained or written."""

from __future__ import annotations

import re

import pytest

from musefusion.errors import ConfigError
from musefusion.pipelines import cost
from musefusion.pipelines.reproduce import ReproduceConfig, plan, run_config, unimodal_rows
from tests.cli_helpers import run_cli
from tests.pipelines import synth_tiny


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("cost_data")
    synth_tiny(root)
    return root


def test_dry_run_counts_the_jobs_and_writes_nothing(tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_cli(["reproduce", "--data", tiny, "--profile", "smoke", "--dry-run", "--tune", "--tune-trials", "3"]) == 0
    text = capsys.readouterr().out
    # smoke: 1 seed, 2 epochs, 2 folds; 7 paper rows + 3 baseline peers (never tuned) x 2 targets; 3 streams;
    # 4 fusion rows + 2 more fits of the full row
    assert re.search(r"tuning \(at most\)\s*│\s*14 │\s*84 │", text)  # 14 studies x 3 trials x 2 epochs
    assert re.search(r"seed runs\s*│\s*20 │\s*40 │", text)
    assert re.search(r"folds\s*│\s*12 │\s*24 │", text)
    assert re.search(r"fusion\s*│\s*12 │\s*24 │", text)
    assert "final models" not in text  # MuSe-Stress: no train+devel retraining by default (Sec. 5.5)
    assert re.search(r"projected reproduce --profile smoke --task stress --tune: \d+ min with 2 worker", text)
    assert list(tmp_path.iterdir()) == []


def test_the_projection_adds_up_from_the_measured_epochs(tiny, monkeypatch):
    cfg = ReproduceConfig(root=tiny, profile="smoke", retrain="yes", workers=1)
    monkeypatch.setattr(cost, "measure_epoch", lambda rc: (2.0 if rc.model.name == "bio_lstm" else 1.0, 100, 4, 2))
    monkeypatch.setattr(cost, "measure_fusion_epoch", lambda n, w, t: 0.5)
    stages = {s.name: s for s in plan(cfg)}
    # seed runs: 6 paper rows and 3 baseline peers at 1 s + bio at 2 s, 2 targets, 1 seed, 2 epochs
    assert stages["seed runs"].cpu_s == pytest.approx((9 * 1.0 + 2.0) * 2 * 1 * 2)
    # folds of A (1 s), V (1 s), B (2 s): 2 targets x 2 epochs x 2 folds x 1/2 of the train subjects, and the final
    # models on train+devel (6 of 4 train subjects' worth) in the same stage, as reproduce runs them
    assert stages["folds + final models"].cpu_s == pytest.approx(4.0 * 2 * 2 * 2 * 0.5 + 4.0 * 2 * 2 * 1.5)
    assert stages["folds + final models"].jobs == 3 * 2 * 2 + 3 * 2
    assert stages["fusion"].jobs == 12 and stages["seed runs"].wall_s == stages["seed runs"].cpu_s  # one worker


def test_the_report_masks_a_storage_password(tiny):
    from musefusion.pipelines.report import io_toml

    text = io_toml(ReproduceConfig(root=tiny, tune=True, storage="postgresql://sweeper:s3cret@dbhost/sweeps"))
    assert "s3cret" not in text and "postgresql://sweeper:***@dbhost/sweeps" in text


def test_reproduce_precision_reaches_every_row_and_a_bad_value_is_refused(tiny):
    cfg = ReproduceConfig(root=tiny, precision="bf16")
    rows = unimodal_rows(cfg)
    assert {run_config(cfg, f, m, "arousal").train.precision.value for f, _mod, m in rows} == {"bf16"}
    assert run_config(ReproduceConfig(root=tiny), *rows[0][::2], "arousal").train.precision.value == "fp32"
    with pytest.raises(ConfigError, match="precision"):
        ReproduceConfig(root=tiny, precision="fp8")


def test_makespan_of_longest_first_scheduling():
    assert cost.makespan([], 2) == 0.0
    assert cost.makespan([3.0, 1.0], 4) == 3.0  # never more workers than jobs
    # longest first: 5 | 4, then 3 joins the 4 (free first at 4), 3 the 5: 7 | 8 -> 8 (the given order 3,3,4,5
    # would give 3+4=7 | 3+5=8 as well; 1,1,1,5 on two workers: 1+1=2 | 1+5=6 in the given order, 5 | 3 longest first)
    assert cost.makespan([3.0, 3.0, 4.0, 5.0], 2) == 8.0
    assert cost.makespan([1.0, 1.0, 1.0, 5.0], 2) == 5.0
    assert cost.makespan([2.0] * 6, 3) == 4.0


def test_jobs_start_longest_first(tmp_path):
    from musefusion.pipelines.jobs import longest_first, run_jobs

    jobs = [(_record, (str(tmp_path / "order.txt"), name), name) for name in ("a", "b", "c", "d")]
    assert [j[2] for j in longest_first(jobs, [1.0, 5.0, 1.0, 3.0])] == ["b", "d", "a", "c"]  # ties keep their order
    assert longest_first(jobs, None) == jobs
    with pytest.raises(ValueError, match="3 weights for 4 jobs"):
        longest_first(jobs, [1.0, 2.0, 3.0])
    run_jobs(jobs, tmp_path / "jobs.log", lambda label: None, workers=1, weights=[1.0, 5.0, 1.0, 3.0])
    assert (tmp_path / "order.txt").read_text().split() == ["b", "d", "a", "c"]


def test_job_weights_rank_a_heavy_row_above_a_light_one(tiny):
    cfg = ReproduceConfig(root=tiny, profile="quick")
    face = run_config(cfg, "vggface", "selfattn", "arousal")  # 512 columns, two attention layers over 300 steps
    bio = run_config(cfg, "bio", "bio_lstm", "arousal")  # 3 columns, one small LSTM
    w_face, w_bio, w_face_again = cost.job_weights([face, bio, face])
    assert w_face > 3 * w_bio and w_face == w_face_again  # measured once per distinct model (about 20x here)


def test_job_weights_scale_with_epochs_seeds_hop_and_the_given_factor(tiny, monkeypatch):
    monkeypatch.setattr(cost, "window_seconds", lambda rc: 0.01 if rc.model.name == "bio_lstm" else 0.5)
    cfg = ReproduceConfig(root=tiny, profile="quick")
    bio = run_config(cfg, "bio", "bio_lstm", "arousal")  # 30 epochs, 2 seeds, hop 100
    longer = bio.replace(train=bio.train.replace(epochs=60, seeds=(1, 2, 3)), data=bio.data.replace(hop_len=50))
    w = cost.job_weights([bio, longer, bio], scale=[1.0, 1.0, 0.5])
    assert w == pytest.approx([30 * 2 * 0.01 / 100, 60 * 3 * 0.01 / 50, 30 * 2 * 0.01 / 100 / 2])


def _record(path: str, name: str) -> bool:
    with open(path, "a") as f:
        f.write(name + "\n")
    return True


def test_the_dry_run_costs_the_beyond_stage_and_only_the_stages_that_run(tiny, tmp_path, monkeypatch, capsys):
    """``--beyond`` was left out of the projection (79 min of a measured run); ``--stage unimodal`` was projected
    with the stages it never runs."""
    monkeypatch.chdir(tmp_path)
    assert run_cli(["reproduce", "--data", tiny, "--profile", "smoke", "--dry-run", "--beyond"]) == 0
    text = capsys.readouterr().out
    # per target: the early-fusion LSTM, the cross-modal attention, the fixed delay and 6 more searched delays
    # (2 epochs, 1 seed each), and the full fusion row again with the observed shares (2 fusion epochs)
    assert re.search(r"beyond the paper\s*│\s*20 │\s*40 │", text)
    assert run_cli(["reproduce", "--data", tiny, "--profile", "smoke", "--dry-run", "--stage", "unimodal"]) == 0
    text = capsys.readouterr().out
    assert re.search(r"seed runs\s*│\s*20 │", text) and "folds" not in text and "fusion" not in text
    assert list(tmp_path.iterdir()) == []


def test_a_new_stage_is_one_entry_that_runs_and_is_costed(tiny, tmp_path, monkeypatch):
    """A stage added to ``reproduce.STAGES`` alone is run by ``reproduce`` (its jobs through the job runner, its
    progress under its name) and projected by the plan."""
    from musefusion.pipelines import reproduce as rp

    def execute(ctx):
        ctx.run([(_record, (str(tmp_path / "extra.txt"), name), f"extra {name}") for name in ("a", "b")])

    extra = rp.ReproduceStage("extra stage", execute, lambda p: ([1.5, 2.5], 7), plan_name="extra")
    monkeypatch.setattr(rp, "STAGES", (*(st for st in rp.STAGES if st.name == "unimodal runs"), extra))
    monkeypatch.setattr(cost, "measure_epoch", lambda rc: (1.0, 100, 4, 2))
    cfg = ReproduceConfig(root=tiny, profile="smoke", stage="unimodal", workers=1)
    planned = {s.name: s for s in rp.plan(cfg)}
    assert list(planned) == ["seed runs", "extra"]
    assert planned["extra"].jobs == 2 and planned["extra"].epochs == 7 and planned["extra"].cpu_s == 4.0
    stages = []
    rp.reproduce(cfg, tmp_path / "rep", progress=lambda stage, n: stages.append((stage, n)) or (lambda label: None))
    assert stages[-1] == ("extra stage", 2) and (tmp_path / "extra.txt").read_text().split() == ["a", "b"]
    assert (tmp_path / "rep" / "report.md").is_file()
