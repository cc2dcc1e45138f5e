"""Two workers (two processes, as on two machines) on one PostgreSQL study: each trial runs once.

The server is a throw-away cluster started by scripts/pg_test_server.sh, which installs the Debian package
'postgresql' when its binaries are missing. The test is skipped only when that script reports (exit 3) that
PostgreSQL cannot be installed or started here.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import optuna
import pytest

from musefusion import fsutil
from musefusion.sweep.runner import open_storage
from tests.cli_helpers import run_bounded
from tests.sweep.sweep_helpers import FAST, cli_command, cli_env

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "pg_test_server.sh"


@pytest.fixture(scope="module")
def pg_url():
    """URL of a fresh database on a throw-away local PostgreSQL server (stopped and deleted afterwards)."""
    cluster = tempfile.mkdtemp(prefix="musefusion-pg-", dir="/tmp")
    res = run_bounded(["bash", SCRIPT, "start", cluster], 600)
    if res.returncode == 3:
        pytest.skip(f"PostgreSQL cannot be installed or started here: {res.stderr.strip().splitlines()[-1]}")
    assert res.returncode == 0, res.stderr
    try:
        yield res.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", cluster], capture_output=True, timeout=120)


@pytest.mark.slow
def test_two_workers_share_one_postgres_study(tiny_root, tmp_path, pg_url):
    n = 6
    space = tmp_path / "space.toml"
    space.write_text("paper_space = false\n[space]\nhidden = [8, 16, 32]\nlr = [0.001, 0.005]\n")
    outs = [tmp_path / "machine_a", tmp_path / "machine_b"]
    procs = [subprocess.Popen(cli_command("sweep", "run", "--data", str(tiny_root), *FAST, "--model", "lstm",
                                          "--trials", str(n), "--epochs", "2", "--study", "pg", "--storage", pg_url,
                                          "--space", str(space), "--seed", str(i), "--out", str(out)),
                              env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i, out in enumerate(outs)]
    logs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs

    study = optuna.load_study(study_name="pg", storage=open_storage(pg_url))
    counted = sorted(t.number for t in study.trials if t.state.name in ("COMPLETE", "PRUNED"))
    assert len(counted) == n
    assert [t.number for t in study.trials if t.state.name in ("RUNNING", "FAIL")
            and "duplicate_of" not in t.user_attrs] == []  # a skipped repeat of a finished configuration is not a failure
    dirs = [int(p.name) for out in outs if (out / "trials").is_dir() for p in (out / "trials").iterdir()]
    assert sorted(dirs) == counted  # every trial trained exactly once, in one worker's out dir
    for out in outs:
        for d in (out / "trials").iterdir():
            assert fsutil.read_json(d / "trial.json")["number"] == int(d.name)
