"""``python -m build`` makes an sdist and a wheel; the wheel installs into a fresh virtual environment and its
command and package work from outside the source tree.

The fresh environment gets the wheel installed for real by its own pip (``pip install --no-deps``: the package, its data and its console script); its dependencies, the pinned
ones of ``constraints.txt``, are read from this test's own environment through a path entry, so the test needs no
download of PyTorch and runs offline.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import tomllib
import venv
from pathlib import Path

import pytest

from tests.cli_helpers import run_bounded

ROOT = Path(__file__).resolve().parent.parent


def run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = run_bounded(argv, 600, cwd=cwd, env=env)
    assert done.returncode == 0, f"{argv}: {done.stdout[-2000:]} {done.stderr[-3000:]}"
    return done.stdout


@pytest.mark.slow
def test_wheel_installs_and_runs_in_a_fresh_venv(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, ROOT], cwd=tmp_path)
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    wheel = dist / f"musefusion-{version}-py3-none-any.whl"
    assert wheel.is_file() and (dist / f"musefusion-{version}.tar.gz").is_file(), sorted(os.listdir(dist))

    fresh = tmp_path / "fresh"
    venv.create(fresh, with_pip=True)
    py = fresh / "bin" / "python"
    site = Path(run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp_path).strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # the pinned dependencies, no download
    run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel], cwd=tmp_path)

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    code = ("import musefusion, pathlib; p = pathlib.Path(musefusion.__file__).resolve(); "
            f"assert str(p).startswith({str(site.resolve())!r}), p; print(musefusion.__version__)")
    assert run([py, "-c", code], cwd=outside, env=env).strip() == version
    cli = [fresh / "bin" / "musefusion"]  # the wheel's console script
    assert version in run([*cli, "--version"], cwd=outside, env=env)
    run([*cli, "synth", "tiny", "--split", "3/2/2", "--minutes", "1"], cwd=outside, env=env)
    assert (outside / "tiny" / "c3_muse_stress" / "metadata" / "partition.csv").is_file()
    assert (site / "musefusion" / "py.typed").is_file()
