"""``reproduce --tune --cluster``: the jobs run on a Dask cluster; a worker killed mid-run loses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from musefusion.errors import ClusterError
from musefusion.pipelines.jobs import run_jobs
from tests.cli_helpers import run_cli
from tests.pipelines import synth_tiny

pytest.importorskip("distributed", reason="the cluster extra is not installed (pip install musefusion[cluster])")
pytestmark = pytest.mark.slow  # a scheduler, two workers, 14 tuning and 14 training jobs


def _start(args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    return subprocess.Popen([sys.executable, "-m", *args], stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)


@pytest.fixture
def cluster(tmp_path):
    """A scheduler on 127.0.0.1 and two single-thread workers without nannies (a killed worker stays dead)."""
    info = tmp_path / "scheduler.json"
    procs = [_start(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                     "--scheduler-file", str(info)], tmp_path / "scheduler.log")]
    deadline = time.monotonic() + 60
    while not info.is_file() and time.monotonic() < deadline:
        time.sleep(0.2)
    address = json.loads(info.read_text())["address"]
    workers = [_start(["distributed.cli.dask_worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                       "--name", f"w{i}"], tmp_path / f"worker{i}.log") for i in (1, 2)]
    procs += workers
    try:
        from dask.distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield address, workers
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def test_a_worker_killed_mid_run_loses_nothing_and_no_job_runs_twice(cluster, tmp_path):
    address, workers = cluster
    root = tmp_path / "data"
    synth_tiny(root)
    out = tmp_path / "out"
    ledger = out / "jobs.log"
    killed = threading.Event()

    def kill_one_worker_after_the_first_job() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if ledger.is_file() and ledger.read_text().count("\n") >= 2:
                workers[0].send_signal(signal.SIGKILL)
                killed.set()
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_worker_after_the_first_job, daemon=True)
    killer.start()
    code = run_cli(["reproduce", "--data", root, "--profile", "smoke", "--tune", "--tune-trials", "2", "--stage",
                    "unimodal", "--no-baseline", "--cluster", address, "--out", out])
    killer.join(timeout=5)
    assert code == 0 and killed.is_set() and workers[0].poll() is not None
    lines = [line.split("\t") for line in ledger.read_text().splitlines()]
    did = Counter(label for label, what, *_ in lines if what == "did-work")
    assert len(did) == 28 and set(did.values()) == {1}, did  # 14 studies and 14 rows, each job's work done once
    assert sum(label.startswith("tune ") for label in did) == 14
    assert len(list(out.glob("runs/*/*/metrics.json"))) == 14
    assert {host_pid for *_, host_pid in lines} - {str(w.pid) for w in workers} == set()  # all ran on the cluster


def test_no_scheduler_is_one_clear_error(tmp_path):
    with pytest.raises(ClusterError, match=r"--cluster tcp://127.0.0.1:9: no Dask scheduler answers there"):
        run_jobs([(print, ("x",), "x")], tmp_path / "jobs.log", lambda label: None, cluster="tcp://127.0.0.1:9")


def test_personalise_runs_its_subjects_on_the_cluster(cluster, tmp_path):
    from musefusion.pipelines.personalise import PersonaliseConfig, personalise
    from tests.personal_corpus import train_general, write_personal_corpus

    address, workers = cluster
    write_personal_corpus(tmp_path / "data", subjects=("p1", "p2", "p3"))
    run = train_general(tmp_path / "data", tmp_path / "general", epochs=2)
    res = personalise(run, PersonaliseConfig(seeds=(1,), epochs=2), cluster=address)
    lines = [line.split("\t") for line in (res.out / "jobs.log").read_text().splitlines()]
    assert sorted(label for label, *_ in lines) == ["subject p1", "subject p2", "subject p3"]
    assert {pid for *_, pid in lines} <= {str(w.pid) for w in workers}  # every subject ran on a worker
    assert res.metrics["n_subjects"] == 3


@pytest.mark.parametrize("address", ["not an address", "tcp//127.0.0.1:9", "tcp://127.0.0.1:notaport"])
def test_a_malformed_address_is_one_clear_error(tmp_path, address):
    with pytest.raises(ClusterError, match=r"--cluster .*: no Dask scheduler answers there .*tcp://HOST:PORT"):
        run_jobs([(print, ("x",), "x")], tmp_path / "jobs.log", lambda label: None, cluster=address)


def test_a_scheduler_without_workers_says_so_at_once(tmp_path, caplog):
    """A scheduler with no workers: a warning at once that the jobs wait for one (it printed nothing for minutes)."""
    info = tmp_path / "scheduler.json"
    sched = _start(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                    "--scheduler-file", str(info)], tmp_path / "scheduler.log")
    try:
        deadline = time.monotonic() + 60
        while not info.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(info.read_text())["address"]
        done = threading.Event()

        def stop_the_scheduler_soon() -> None:  # and then the run ends as "stopped answering", in one error
            done.wait(8)
            sched.terminate()

        threading.Thread(target=stop_the_scheduler_soon, daemon=True).start()
        with caplog.at_level("WARNING"), pytest.raises(ClusterError, match="stopped answering mid-run"):
            run_jobs([(print, ("x",), "x")], tmp_path / "jobs.log", lambda label: None, cluster=address)
        assert any("has no workers yet" in r.getMessage() for r in caplog.records)
    finally:
        if sched.poll() is None:
            sched.kill()
