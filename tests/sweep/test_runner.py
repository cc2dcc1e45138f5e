"""The resumable runner on a SQLite study: budgets, resume after kill -9, study checks."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest

from musefusion import fsutil
from musefusion.config import DataConfig, RunConfig, SweepConfig, TrainConfig, model_preset
from musefusion.errors import ConfigError, StorageError
from musefusion.sweep.runner import open_storage, open_study, run_sweep, study_counts
from tests.sweep.sweep_helpers import FAST, cli_command, cli_env

SPACE = {"hidden": (8, 16), "lr": (1e-3, 5e-3)}


def _sweep(root: Path, out: Path, trials: int, model: str = "lstm", epochs: int = 2, **kw) -> SweepConfig:
    base = RunConfig(DataConfig(root, features=("egemaps",), win_len=40, hop_len=20), model_preset(model),
                     TrainConfig(epochs=epochs))
    space = kw.pop("space", SPACE)
    return SweepConfig(base=base, space=tuple(space.items()), study="t", out=out, trials=trials, **kw)


def _run_dirs(out: Path) -> list[int]:
    return sorted(int(p.name) for p in (out / "trials").iterdir()) if (out / "trials").is_dir() else []


def _numbers(study, *states) -> list[int]:
    return sorted(t.number for t in study.get_trials(deepcopy=False) if t.state.name in states)


def test_sqlite_study_counts_trials_in_total(tiny_root, tmp_path):
    out = tmp_path / "sw"
    counts = run_sweep(_sweep(tiny_root, out, 3))
    assert (counts.complete + counts.pruned, counts.running, counts.failed) == (3, 0, 0)
    assert _run_dirs(out) == [0, 1, 2]
    for n in _run_dirs(out):
        assert (out / "trials" / str(n) / "metrics.json").is_file()
        assert fsutil.read_json(out / "trials" / str(n) / "trial.json")["number"] == n
    # the same command again adds nothing; a larger budget adds the difference
    assert run_sweep(_sweep(tiny_root, out, 3)).done == 3
    assert run_sweep(_sweep(tiny_root, out, 4)).done == 4
    dirs = _run_dirs(out)  # a proposal repeating a finished configuration is skipped and leaves no run dir
    assert dirs[:3] == [0, 1, 2] and len(dirs) == 4
    study = open_study(_sweep(tiny_root, out, 4), heartbeat=False)
    rec = study.user_attrs["musefusion_sweep"]
    assert rec["base"]["model"]["name"] == "lstm" and rec["base"]["train"]["epochs"] == 2
    assert study.best_value == max(t.value for t in study.trials if t.value is not None)


def test_grid_sampler_covers_the_grid_once(tiny_root, tmp_path):
    out = tmp_path / "grid"
    counts = run_sweep(_sweep(tiny_root, out, 99, sampler="grid", space={"hidden": (8, 16)}, epochs=1))
    assert counts.done == 2  # capped at the grid size
    study = open_study(_sweep(tiny_root, out, 99, sampler="grid", space={"hidden": (8, 16)}, epochs=1),
                       heartbeat=False)
    assert sorted(t.params["hidden"] for t in study.trials) == [8, 16]


def test_kill_9_mid_trial_then_resume(tiny_root, tmp_path):
    out = tmp_path / "killed"
    args = ["sweep", "run", "--data", str(tiny_root), *FAST, "--model", "lstm", "--trials", "3", "--epochs", "6",
            "--study", "t", "--out", str(out), "--seed", "3"]
    space = tmp_path / "space.toml"
    space.write_text("paper_space = false\n[space]\nhidden = [8, 16]\nlr = [0.001, 0.005]\n")
    args += ["--space", str(space)]
    proc = subprocess.Popen(cli_command(*args), env=cli_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    def second_trial_state() -> Path | None:  # the second evaluated trial (a proposal repeating trial 0 is skipped)
        found = [p for p in out.glob("trials/*/seed_1/last.pt") if p.parts[-3] != "0"]
        return found[0] if found else None

    deadline = time.monotonic() + 60
    while second_trial_state() is None and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    state = second_trial_state()
    assert state is not None, "the second trial never reached its first epoch"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = int(state.parts[-3])

    storage = open_storage(f"sqlite:///{out / 'study.db'}")
    study = optuna.load_study(study_name="t", storage=storage)
    assert _numbers(study, "COMPLETE") == [0] and _numbers(study, "RUNNING") == [killed]
    interrupted = study.trials[killed].params

    from musefusion.cli.app import main

    main(args)  # the same command again
    study = optuna.load_study(study_name="t", storage=storage)
    done = _numbers(study, "COMPLETE", "PRUNED")
    assert len(done) == 3  # --trials is a total, not 'three more'
    failed = [t.number for t in study.trials if t.state.name == "FAIL" and "duplicate_of" not in t.user_attrs]
    assert failed == [killed] and _numbers(study, "RUNNING", "WAITING") == []
    retry = [t for t in study.trials if t.user_attrs.get("retry_of") == killed]
    assert len(retry) == 1 and retry[0].state.name == "COMPLETE" and retry[0].params == interrupted
    # one run dir per counted trial; the interrupted trial's dir became the retry's and resumed its epochs
    assert _run_dirs(out) == done
    hist = fsutil.read_json(out / "trials" / str(retry[0].number) / "trial.json")
    assert hist["number"] == retry[0].number and hist["retry_of"] == killed
    log = (out / "log.txt").read_text()
    assert "resuming seed 1" in log


def test_a_study_for_another_model_is_refused(tiny_root, tmp_path):
    out = tmp_path / "sw"
    run_sweep(_sweep(tiny_root, out, 1, epochs=1))
    with pytest.raises(ConfigError, match="created for model 'lstm' with another setup"):
        run_sweep(_sweep(tiny_root, out, 1, epochs=1, model="gcnn", space={"channels": (4, 8)}))
    with pytest.raises(ConfigError, match="train.epochs 1 vs 2"):
        run_sweep(_sweep(tiny_root, out, 1, epochs=2))


@pytest.mark.parametrize(("url", "error", "match"), [
    ("mysql://u@localhost/db", ConfigError, "not supported"),
    ("postgresql://u:secret@127.0.0.1/", ConfigError, "names no database"),
    ("postgresql://u:secret@127.0.0.1:1/db", StorageError, r"Cannot open study storage 'postgresql://u:\*\*\*@"),
])
def test_bad_storage(url, error, match):
    with pytest.raises(error, match=match):
        open_storage(url)


def test_counts_of_an_empty_study(tmp_path, tiny_root):
    study = open_study(_sweep(tiny_root, tmp_path / "e", 2), heartbeat=False)
    assert study_counts(study).done == 0


def test_a_weak_trial_is_pruned_on_its_intermediate_devel_ccc(tiny_root, tmp_path):
    space = {"hidden": (8, 16), "lr": (5e-3, 1e-7)}
    sweep = _sweep(tiny_root, tmp_path / "prune", 6, epochs=4, space=space, prune_warmup=1)
    study = open_study(sweep, heartbeat=False)
    for _ in range(5):  # five sound trials first: the median pruner starts after five
        study.enqueue_trial({"hidden": 16, "lr": 5e-3})
    study.enqueue_trial({"hidden": 16, "lr": 1e-7})  # learns nothing in 4 epochs
    counts = run_sweep(sweep)
    assert (counts.complete, counts.pruned) == (5, 1)
    weak = open_study(sweep, heartbeat=False).trials[5]
    assert weak.params["lr"] == 1e-7 and weak.state.name == "PRUNED"
    sound = open_study(sweep, heartbeat=False).trials[0]
    assert len(weak.intermediate_values) < len(sound.intermediate_values)  # stopped before its last epoch


@pytest.mark.parametrize("sampler", ["tpe", "grid"])
def test_resuming_or_extending_never_repeats_a_finished_configuration(tiny_root, tmp_path, sampler):
    out = tmp_path / sampler
    assert run_sweep(_sweep(tiny_root, out, 2, sampler=sampler, epochs=1, prune=False)).done == 2
    counts = run_sweep(_sweep(tiny_root, out, 99, sampler=sampler, epochs=1, prune=False))
    assert counts.done == 4  # the space has 4 configurations: the sweep stops there, TPE included
    study = open_study(_sweep(tiny_root, out, 99, sampler=sampler, epochs=1, prune=False), heartbeat=False)
    finished = [t for t in study.get_trials(deepcopy=False) if t.state.name in ("COMPLETE", "PRUNED")]
    configs = [tuple(sorted(t.params.items())) for t in finished]
    assert len(configs) == 4 and len(set(configs)) == 4
    skipped = [t for t in study.get_trials(deepcopy=False) if "duplicate_of" in t.user_attrs]
    assert all(not (out / "trials" / str(t.number) / "metrics.json").exists() for t in skipped)
    assert run_sweep(_sweep(tiny_root, out, 99, sampler=sampler, epochs=1, prune=False)).done == 4


def test_a_study_is_never_resumed_on_changed_corpus_files(tiny_root, tmp_path):
    """The study records the digest of the corpus its trials read: resuming it after a feature file changed would
    mix trials of two corpora in one ranking. A study begun before the digest was recorded still opens."""
    import shutil

    root = tmp_path / "data"
    shutil.copytree(tiny_root, root)
    out = tmp_path / "sw"
    run_sweep(_sweep(root, out, 1, epochs=1))
    run_sweep(_sweep(root, out, 1, epochs=1))  # the same files: the finished study is reused
    feature = next((root / "c3_muse_stress" / "feature_segments" / "egemaps").glob("*.csv"))
    lines = feature.read_text().splitlines()
    cells = lines[1].split(",")
    cells[-1] = str(float(cells[-1]) + 1.0)
    feature.write_text("\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n")
    with pytest.raises(ConfigError, match="the corpus files it read have changed since"):
        run_sweep(_sweep(root, out, 2, epochs=1))
    study = optuna.load_study(study_name="t", storage=f"sqlite:///{out / 'study.db'}")
    legacy = {k: v for k, v in study.user_attrs["musefusion_sweep"].items() if k != "inputs"}
    study.set_user_attr("musefusion_sweep", legacy)
    assert study_counts(open_study(_sweep(root, out, 1, epochs=1))).complete == 1
