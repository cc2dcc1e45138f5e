"""``--track mlflow``: a run logged to a local MLflow store and read back through MLflow's own client."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pandas as pd
import pytest

from musefusion import fsutil, rundir
from musefusion.pipelines import tracking
from tests.cli_helpers import run_cli, the_error_line

mlflow = pytest.importorskip("mlflow")

FAST = ["--epochs", "3", "--win-len", "40", "--hop-len", "20", "--model", "lstm", "--seeds", "1", "2"]


@pytest.fixture
def store(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"


def _train(root: Path, out: Path, *extra) -> int:
    with contextlib.redirect_stdout(io.StringIO()):
        return run_cli(["train", "--data", root, *FAST, "--out", out, *extra])


def test_a_train_run_round_trips_through_mlflow(synth_stress, tmp_path, store):
    out = tmp_path / "run"
    assert _train(synth_stress, out, "--track", "mlflow", "--track-uri", store) == 0
    rid = fsutil.read_json(out / "tracked.json")["run_id"]
    client = mlflow.tracking.MlflowClient(store)
    run = client.get_run(rid)
    assert run.data.params["data.target"] == "arousal" and run.data.params["model.name"] == "lstm"
    assert run.data.params["train.epochs"] == "3" and "versions.torch" in run.data.params
    assert run.data.tags["musefusion.kind"] == "run" and run.data.tags["musefusion.seeds"] == "1 2"
    metrics = fsutil.read_json(out / "metrics.json")
    assert run.data.metrics["devel_ccc"] == pytest.approx(metrics["best"]["devel_ccc"])
    for seed in (1, 2):
        hist = pd.read_csv(out / f"seed_{seed}" / "history.csv")
        logged = client.get_metric_history(rid, f"seed_{seed}/devel_ccc")
        logged = sorted(logged, key=lambda m: m.step)
        assert [m.step for m in logged] == list(hist["epoch"])
        assert [m.value for m in logged] == pytest.approx(list(hist["devel_ccc"]))
    names = {a.path for a in client.list_artifacts(rid)}
    assert {"config.toml", "metrics.json", "checkpoint.pt", "plots", "predictions", "seed_1"} <= names
    assert {a.path for a in client.list_artifacts(rid, "plots")} >= {"plots/learning_curves.png"}
    # logging again (a rerun reusing the finished run) adds no second MLflow run
    assert _train(synth_stress, out, "--track", "mlflow", "--track-uri", store) == 0
    assert len(client.search_runs([run.info.experiment_id])) == 1


def test_a_folder_of_runs_is_one_parent_with_nested_runs(synth_stress, tmp_path, store):
    root = tmp_path / "sweep"
    for name, lr in (("a", "0.001"), ("b", "0.005")):
        assert _train(synth_stress, root / "trials" / name, "--lr", lr) == 0
    parent = tracking.log_tree(root, "sweep", store)
    client = mlflow.tracking.MlflowClient(store)
    exp = client.get_run(parent).info.experiment_id
    children = client.search_runs([exp], filter_string=f"tags.mlflow.parentRunId = '{parent}'")
    assert sorted(r.data.params["train.lr"] for r in children) == ["0.001", "0.005"]
    assert tracking.log_tree(root, "sweep", store) == parent  # idempotent
    assert len(client.search_runs([exp])) == 3
    rundir.check_out(root, "sweep")  # the marker it leaves does not stop the sweep from resuming


def test_track_options_are_used_or_refused(synth_stress, tmp_path, capsys):
    assert _train(synth_stress, tmp_path / "r", "--track", "wandb") == 2
    assert "--track 'wandb'" in the_error_line(capsys.readouterr().err)
    assert _train(synth_stress, tmp_path / "r", "--track-uri", "sqlite:///x.db") == 2
    assert "--track-uri is given without --track" in the_error_line(capsys.readouterr().err)
    assert not (tmp_path / "r").exists()
