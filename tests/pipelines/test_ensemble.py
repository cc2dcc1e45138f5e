"""``musefusion ensemble``: the mean of runs' or seeds' predictions, scored like any run."""

from __future__ import annotations

import contextlib
import io
import json
import shutil

import numpy as np
import pytest

from musefusion import fsutil
from musefusion.data import formats
from musefusion.pipelines.ensemble import mean_streams
from tests.cli_helpers import run_cli, the_error_line


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, synth_stress):
    root = tmp_path_factory.mktemp("ens")
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(io.StringIO()):
        mp.setenv("MUSEFUSION_CACHE", str(tmp_path_factory.mktemp("cache")))
        for name, model in (("a", "lstm"), ("b", "gcnn")):
            assert run_cli(["train", "--data", synth_stress, "--epochs", "2", "--win-len", "40", "--hop-len", "20",
                            "--model", model, "--seeds", "1", "2", "3", "--out", root / name]) == 0
    return root


def test_the_mean_of_identical_streams_is_the_stream():
    ts = np.arange(10) * 500
    s = {"1": (ts, np.sin(ts / 1e3)), "2": (ts, np.cos(ts / 1e3))}
    got = mean_streams([s, s, s], ["x", "y", "z"])
    assert all(np.allclose(got[k][1], s[k][1]) for k in s)


def test_an_ensemble_of_runs_and_of_seeds(two_runs, tmp_path, capsys):
    out = tmp_path / "ab"
    assert run_cli(["ensemble", two_runs / "a", two_runs / "b", "--out", out]) == 0
    m = fsutil.read_json(out / "metrics.json")
    a, b = (formats.read_predictions(two_runs / n / "predictions" / "devel") for n in ("a", "b"))
    mine = formats.read_predictions(out / "predictions" / "devel")
    assert all(np.allclose(mine[s][1], (a[s][1] + b[s][1]) / 2, atol=1e-5) for s in a)
    assert set(m["members"]) == {"a", "b"}
    capsys.readouterr()
    assert run_cli(["evaluate", out, "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)["scores"]["devel"]["ccc"]
    assert scored == pytest.approx(m["best"]["devel_ccc"], abs=1e-5)

    seeds = tmp_path / "a-seeds"
    assert run_cli(["ensemble", two_runs / "a", "--seeds", "--top", "2", "--out", seeds]) == 0
    m = fsutil.read_json(seeds / "metrics.json")
    every = {f"seed_{s}": fsutil.read_json(two_runs / "a" / f"seed_{s}" / "result.json")["devel_ccc"]
             for s in (1, 2, 3)}
    best_two = sorted(every, key=every.get, reverse=True)[:2]
    assert sorted(m["members"]) == sorted(f"a/{s}" for s in best_two) and len(m["left_out"]) == 1
    assert (seeds / "predictions" / "test").is_dir()
    # ranked on devel, so a cross-validated estimate beside it; with every member kept there is nothing to rank
    assert -1 <= m["cv_devel_ccc"] <= 1 and m["cv_folds"] == 3
    every_seed = tmp_path / "a-all"
    capsys.readouterr()
    assert run_cli(["ensemble", two_runs / "a", "--seeds", "--top", "3", "--folds", "2", "--out", every_seed]) == 0
    assert "cross-validated over 2 folds of devel subjects" in capsys.readouterr().out
    m = fsutil.read_json(every_seed / "metrics.json")
    assert m["cv_devel_ccc"] == pytest.approx(m["best"]["devel_ccc"], abs=1e-6)


def test_ensemble_errors_are_one_line(two_runs, tmp_path, capsys):
    assert run_cli(["ensemble", two_runs / "a", "--out", tmp_path / "x"]) == 2
    assert "at least two members" in the_error_line(capsys.readouterr().err)
    assert run_cli(["ensemble", two_runs / "a", two_runs / "b", "--top", "5", "--out", tmp_path / "x"]) == 2
    assert "--top 5" in the_error_line(capsys.readouterr().err)
    other = tmp_path / "valence"
    shutil.copytree(two_runs / "b", other)
    rec = fsutil.read_toml(other / "config.toml")
    rec["data"]["target"] = "valence"
    fsutil.write_toml(other / "config.toml", rec)
    assert run_cli(["ensemble", two_runs / "a", other, "--out", tmp_path / "x"]) == 2
    assert "different tasks/targets" in the_error_line(capsys.readouterr().err)
    assert run_cli(["ensemble", two_runs / "a", two_runs / "b", "--folds", "4", "--out", tmp_path / "x"]) == 2
    assert "--folds 4 applies only with --top" in the_error_line(capsys.readouterr().err)
    assert run_cli(["ensemble", two_runs / "a", "--seeds", "--top", "2", "--folds", "1", "--out", tmp_path / "x"]) == 2
    assert "--folds 1" in the_error_line(capsys.readouterr().err)
    assert not (tmp_path / "x").exists()
