"""Tracking failures are one line without secrets, bounded in time; a deleted store is not trusted to hold runs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from musefusion.data.synth import SynthConfig, synthesize
from musefusion.types import Task
from tests.cli_helpers import run_bounded, the_error_line
from tests.cli_helpers import run_cli as run

pytest.importorskip("mlflow")

TINY = ["--model", "lstm", "--hidden", "8", "--epochs", "1", "--win-len", "40", "--hop-len", "20"]


@pytest.fixture
def corpus(tmp_path) -> Path:
    synthesize(tmp_path / "data", SynthConfig(task=Task.STRESS, seed=4, n_train=4, n_devel=2, n_test=2, minutes=0.4,
                                              features=("egemaps",)))
    return tmp_path / "data"


@pytest.mark.slow
@pytest.mark.parametrize("as_json", [False, True])
def test_an_unreachable_store_with_a_password_is_one_line_without_it(corpus, tmp_path, capsys, as_json):
    out = tmp_path / "run"
    argv = ["train", "--data", corpus, "--features", "egemaps", *TINY, "--out", out, "--track", "mlflow",
            "--track-uri", "http://me:hunter2@127.0.0.1:9", *(["--json"] if as_json else [])]
    t0 = time.perf_counter()
    assert run(argv) == 2
    assert time.perf_counter() - t0 < 120  # bounded retries, not minutes of them
    captured = capsys.readouterr()
    assert "hunter2" not in captured.out + captured.err and "Traceback" not in captured.err
    line = the_error_line(captured.err)
    assert "--track-uri http://me:***@127.0.0.1:9" in line and "run the same command again" in line
    if as_json:
        assert json.loads(captured.out)["ok"] is False
    assert (out / "metrics.json").is_file()  # the run itself is finished and kept
    assert not any("hunter2" in p.read_text(errors="ignore") for p in out.rglob("*") if p.is_file()
                   and p.suffix in (".json", ".toml", ".txt", ".csv"))


@pytest.mark.slow
def test_a_deleted_store_gets_the_run_logged_again(corpus, tmp_path):
    import sys

    db = tmp_path / "store" / "mlflow.db"
    argv = [sys.executable, "-c", "from musefusion.cli.app import main; main()", "train", "--data", str(corpus),
            "--features", "egemaps", *TINY, "--out", str(tmp_path / "run"), "--track", "mlflow", "--track-uri",
            f"sqlite:///{db}"]
    assert run_bounded(argv, 300).returncode == 0
    first = json.loads((tmp_path / "run" / "tracked.json").read_text())["run_id"]
    db.unlink()
    # the run is reused; its marker names a run the new store does not hold, so it is logged again
    assert run_bounded(argv, 300).returncode == 0
    second = json.loads((tmp_path / "run" / "tracked.json").read_text())["run_id"]
    assert second != first
    from mlflow.tracking import MlflowClient

    assert MlflowClient(tracking_uri=f"sqlite:///{db}").get_run(second).info.status == "FINISHED"
