"""Collecting out-of-fold predictions: several fusion jobs read the collected folder at once, so it is rewritten
only when a fold's predictions changed."""

from __future__ import annotations

import pytest

from musefusion import fsutil
from musefusion.errors import ConfigError
from musefusion.fusion.oof import collect_oof
from musefusion.rundir import RunDir


def _fold(run: RunDir, k: int, fold: int, ids: list[str]) -> None:
    d = run.fold(k, fold)
    d.predictions("test").mkdir(parents=True)
    for sid in ids:
        (d.predictions("test") / f"{sid}.csv").write_text(f"timestamp,segment_id,value\n0,0,0.{sid}\n")
    fsutil.write_json(d.metrics, {"kind": "run"})


def test_a_second_collection_leaves_the_folder_alone_until_a_fold_changes(tmp_path):
    run = RunDir(tmp_path / "run")
    _fold(run, 2, 0, ["1", "2"])
    _fold(run, 2, 1, ["3"])
    target = collect_oof(run.path, 2)
    assert sorted(p.name for p in target.iterdir()) == ["1.csv", "2.csv", "3.csv"]
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in target.iterdir()}
    inode = target.stat().st_ino
    assert collect_oof(run.path, 2) == target
    assert target.stat().st_ino == inode  # not replaced: a reader in another process keeps its files
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in target.iterdir()} == before
    # a retrained fold: the collected folder follows
    (run.fold(2, 1).predictions("test") / "3.csv").write_text("timestamp,segment_id,value\n0,0,0.9\n")
    collect_oof(run.path, 2)
    assert (target / "3.csv").read_text().endswith("0.9\n")


def test_an_untrained_fold_is_refused(tmp_path):
    run = RunDir(tmp_path / "run")
    _fold(run, 2, 0, ["1"])
    with pytest.raises(ConfigError, match="Fold 1 of .* is not trained"):
        collect_oof(run.path, 2)
