"""What ``reproduce`` shows while it runs: one plain line per epoch naming the run when redirected (worker
processes included), a row per running job with its best devel CCC in a terminal."""

from __future__ import annotations

import io
import logging
import os
import re
import sys

import pytest
from rich.console import Console
from rich.progress import Progress

from musefusion.progress import JobDisplay, PlainProgress
from tests.cli_helpers import run_bounded
from tests.pipelines import synth_tiny


@pytest.mark.slow
def test_redirected_reproduce_prints_a_line_per_epoch_naming_the_run(tmp_path):
    root = synth_tiny(tmp_path / "data", minutes=0.4)
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["MUSEFUSION_CACHE"] = str(tmp_path / "cache")
    res = run_bounded([sys.executable, "-m", "musefusion", "reproduce", "--data", root, "--profile", "smoke",
                       "--stage", "unimodal", "--no-baseline", "--workers", "2", "--out", out], 600, env=env)
    assert res.returncode == 0, res.stderr
    jobs = [line.split("\t")[0] for line in (out / "jobs.log").read_text().splitlines()]
    assert len(jobs) == 14  # 7 paper rows, 2 targets, each in a worker process
    for job in jobs:
        epochs = re.findall(rf"^{re.escape(job)} seed 1 epoch (\d+)/2: devel CCC -?\d\.\d{{4}} \(best ", res.stderr,
                            re.MULTILINE)
        assert epochs == ["1", "2"], (job, res.stderr)
        assert re.search(rf"^{re.escape(job)} seed 1: best epoch \d of 2, devel CCC", res.stderr, re.MULTILINE)
    assert re.search(r"^unimodal runs: 14/14 .*\(\d+ s\)$", res.stderr, re.MULTILINE)  # the stage's last line
    assert "Traceback" not in res.stderr


def _record(job: str, seed: int, epoch: int, best: float) -> logging.LogRecord:
    rec = logging.LogRecord("musefusion.progress", logging.INFO, __file__, 0, f"{job} epoch {epoch}", None, None)
    rec.progress = {"job": job, "seed": seed, "epoch": epoch, "epochs": 30, "ccc": best - 0.1, "best": best}
    return rec


def test_the_live_display_has_a_row_per_running_job():
    progress = Progress(console=Console(file=io.StringIO(), force_terminal=True))
    display = JobDisplay(progress)
    display.emit(_record("arousal/egemaps-lstm", 1, 3, 0.41))
    display.emit(_record("valence/vggface-lstm", 2, 7, 0.52))
    display.emit(_record("arousal/egemaps-lstm", 1, 4, 0.45))
    rows = {t.description.strip(): (t.completed, t.total, t.fields["last"]) for t in progress.tasks}
    assert rows == {"arousal/egemaps-lstm seed 1": (4, 30, "best devel CCC 0.4500"),
                    "valence/vggface-lstm seed 2": (7, 30, "best devel CCC 0.5200")}
    display.done("arousal/egemaps-lstm")
    assert [t.description.strip() for t in progress.tasks] == ["valence/vggface-lstm seed 2"]
    display.emit(_record("arousal/egemaps-lstm", 1, 5, 0.46))  # a late record of the finished job: no new row
    assert [t.description.strip() for t in progress.tasks] == ["valence/vggface-lstm seed 2"]


def test_off_a_terminal_the_records_print_as_lines(capsys):
    display = JobDisplay(PlainProgress(Console(file=io.StringIO())))
    display.lines.console = Console(file=sys.stderr, soft_wrap=True)
    display.emit(_record("arousal/egemaps-lstm", 1, 3, 0.41))
    assert capsys.readouterr().err.strip() == "arousal/egemaps-lstm epoch 3"
