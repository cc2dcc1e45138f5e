"""``musefusion runs`` and ``runs compare`` on three tiny real runs (and a fold model of one of them)."""

from __future__ import annotations

import contextlib
import io as _io
import json
from pathlib import Path

import pytest

import musefusion.cli.runs as runs_cli
from musefusion import fsutil
from musefusion.data import formats
from musefusion.data.corpus import load_labels
from musefusion.evaluation.uncertainty import paired_difference
from musefusion.fusion.oof import train_fold
from musefusion.pipelines.runs import compare_runs, find_runs, run_info, runs_frame, sort_runs
from musefusion.types import Task
from tests.cli_helpers import run_cli, the_error_line

FAST = ["--epochs", "2", "--win-len", "40", "--hop-len", "20"]


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory, synth_stress) -> Path:
    """runs/{a,b,c}: lstm seeds 1 2; lstm lr 0.005 seed 3; selfattn valence; plus fold 1 of 2 of run a."""
    root = tmp_path_factory.mktemp("runs_cli") / "runs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MUSEFUSION_CACHE", str(tmp_path_factory.mktemp("cache")))
        mp.delenv("MUSEFUSION_DATA", raising=False)
        for name, extra in (("a", ["--model", "lstm", "--seeds", "1", "2"]),
                            ("b", ["--model", "lstm", "--seeds", "3", "--lr", "0.005"]),
                            ("c", ["--model", "selfattn", "--target", "valence"])):
            with contextlib.redirect_stdout(_io.StringIO()):
                assert run_cli(["train", "--data", synth_stress, *FAST, *extra, "--out", root / name]) == 0
        train_fold(root / "a", 2, 0)
    return root


def _cli(argv: list, monkeypatch) -> tuple[int, str]:
    monkeypatch.setattr(runs_cli.console, "width", 3000)
    buf = _io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = run_cli(argv)
    return code, buf.getvalue()


def test_every_run_records_what_it_is(three_runs):
    m = fsutil.read_json(three_runs / "a" / "metrics.json")
    assert (m["kind"], m["task"], m["target"], m["features"], m["model"], m["fit"], m["seed_list"], m["parent"]) == (
        "run", "stress", "arousal", ["egemaps"], "lstm", "train", [1, 2], None)
    fold = fsutil.read_json(three_runs / "a" / "oof_k2" / "fold_0" / "metrics.json")
    assert fold["fit"] == "fold 1/2" and fold["parent"] == str(three_runs / "a")
    assert fold["seed_list"] == [m["best"]["seed"]]
    # a fold model draws no plots (its parent run has them)
    assert (three_runs / "a" / "plots" / "learning_curves.png").is_file()
    assert not (three_runs / "a" / "oof_k2" / "fold_0" / "plots").exists()


def test_runs_lists_filters_and_sorts(three_runs, monkeypatch):
    infos = find_runs(three_runs)
    assert sorted(i.path for i in infos) == ["a", "a/oof_k2/fold_0", "b", "c"]
    ranked = sort_runs(infos)
    assert [r.devel_ccc for r in ranked] == sorted((r.devel_ccc for r in infos), reverse=True)
    assert [i.path for i in find_runs(three_runs, model="self*")] == ["c"]
    assert sorted(i.path for i in find_runs(three_runs, fit="train")) == ["a", "b", "c"]
    assert list(runs_frame(infos)["path"]) == [i.path for i in infos]

    code, out = _cli(["runs", three_runs, "--target", "arousal", "--json"], monkeypatch)
    assert code == 0
    listed = json.loads(out)["runs"]
    assert [r["path"] for r in listed] == [r.path for r in sort_runs(find_runs(three_runs, target="arousal"))]
    assert {r["model"] for r in listed} == {"lstm"}
    a = next(r for r in listed if r["path"] == "a")
    assert a["devel_ccc"] == pytest.approx(fsutil.read_json(three_runs / "a" / "metrics.json")["best"]["devel_ccc"])

    code, out = _cli(["runs", "list", three_runs, "--sort", "path"], monkeypatch)
    assert code == 0
    lines = [ln for ln in out.splitlines() if ln.startswith("│")]
    assert [ln.split("│")[1].strip() for ln in lines] == ["a", "a/oof_k2/fold_0", "b", "c"]
    assert "fold 1/2" in out


def test_compare_shows_only_the_differing_fields(three_runs, monkeypatch, tmp_path):
    cmp = compare_runs([three_runs / "a", three_runs / "b"])
    assert set(cmp.differing) == {"train.lr", "train.seeds"}
    assert cmp.differing["train.lr"] == [0.001, 0.005] and cmp.same > 20
    three = compare_runs([three_runs / "a", three_runs / "b", three_runs / "c"])
    assert {"data.target", "model.name", "train.lr", "train.seeds"} <= set(three.differing)

    png = tmp_path / "curves.png"
    code, out = _cli(["runs", "compare", three_runs / "a", three_runs / "b", "--plot", png, "--json"], monkeypatch)
    assert code == 0
    rec = json.loads(out)
    assert set(rec["differing"]) == {"train.lr", "train.seeds"} and rec["plot"] == str(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [r["devel_ccc"] for r in rec["runs"]] == pytest.approx([run_info(three_runs / p).devel_ccc
                                                                   for p in ("a", "b")])
    code, out = _cli(["runs", "compare", three_runs / "a", three_runs / "c"], monkeypatch)
    assert code == 0 and "model.name" in out and "selfattn" in out and "devel CCC (kept seed)" in out
    assert "no paired comparison: other targets (arousal, valence)" in out


def test_compare_gives_the_paired_interval_of_the_difference(three_runs, monkeypatch):
    """Two runs of one target: each devel CCC on the common subjects with its interval, the paired difference
    with its interval and whether it excludes 0; the same numbers as the bootstrap computed from the files."""
    code, out = _cli(["runs", "compare", three_runs / "a", three_runs / "b", "--json"], monkeypatch)
    pair = json.loads(out)["paired"]
    assert code == 0 and pair["subjects"] == 3 and not pair["note"]
    a, b = (fsutil.read_json(three_runs / r / "metrics.json")["best"]["devel_ccc"] for r in ("a", "b"))
    assert pair["ccc"] == pytest.approx([a, b], abs=1e-6)
    root = fsutil.read_toml(three_runs / "a" / "config.toml")["data"]["root"]
    labels, part = load_labels(Path(root), Task.STRESS, "arousal")
    ids = sorted(s for s, p in part.items() if p.value == "devel")
    preds = [formats.read_predictions(three_runs / r / "predictions" / "devel") for r in ("a", "b")]
    d = paired_difference([preds[0][s][1] for s in ids], [preds[1][s][1] for s in ids], [labels[s][1] for s in ids])
    assert pair["difference"] == pytest.approx(a - b, abs=1e-6) == pytest.approx(d.delta, abs=1e-6)
    assert pair["difference_ci"] == pytest.approx(d.interval.as_list(), abs=1e-6) and pair["verdict"] == d.verdict
    code, out = _cli(["runs", "compare", three_runs / "a", three_runs / "b"], monkeypatch)
    assert "paired difference (first - second)" in out and "95 % CI" in out
    assert ("the interval excludes 0" in out) == d.interval.excludes_zero()


def test_runs_errors_are_one_line(three_runs, tmp_path, capsys):
    assert run_cli(["runs", tmp_path / "nowhere"]) == 2
    assert "nowhere" in the_error_line(capsys.readouterr().err)
    assert run_cli(["runs", "compare", three_runs / "a"]) == 2
    assert "at least two" in the_error_line(capsys.readouterr().err)
    assert run_cli(["runs", "compare", three_runs / "a", tmp_path]) == 2
    assert "not a finished run" in the_error_line(capsys.readouterr().err)
    assert run_cli(["runs", three_runs, "--sort", "speed"]) == 2
    assert "--sort" in the_error_line(capsys.readouterr().err)
