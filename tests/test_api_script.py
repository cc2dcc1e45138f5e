"""The Python API from a plain script file, as a user writes one: no ``if __name__ == "__main__":`` guard, worker
processes started by the call, progress on stderr while it runs (and none with ``progress=False``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.cli_helpers import run_bounded, run_cli

SCRIPT = """
import musefusion as mf
rep = mf.reproduce({data!r}, task="stress", profile="smoke", stage="unimodal", workers=2, out={out!r},
                   progress={progress})
print("REPORT", rep.report.is_file(), len(rep.unimodal()))
"""


@pytest.mark.slow
@pytest.mark.parametrize("progress", [True, False])
def test_reproduce_from_a_plain_script(tmp_path: Path, progress: bool) -> None:
    data = tmp_path / "data"
    assert run_cli(["synth", data, "--split", "3/2/2", "--minutes", "1"]) == 0
    script = tmp_path / "plain.py"
    script.write_text(SCRIPT.format(data=str(data), out=str(tmp_path / "rep"), progress=progress))
    done = run_bounded([sys.executable, script], 600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert done.stdout.strip().endswith("REPORT True 20")  # 10 rows x 2 targets, trained in two spawned workers
    if progress:
        assert "unimodal runs: 20/20" in done.stderr  # one line per finished job, redirected as here
        assert "arousal/egemaps-lstm seed 1 epoch 1/2" in done.stderr  # a worker's epoch line, naming its run
    else:
        assert done.stderr.strip() == "", done.stderr[-2000:]
