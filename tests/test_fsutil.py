"""``musefusion.fsutil`` atomic writes: a failing writer leaves neither a half-written file nor a temp file."""

from __future__ import annotations

import numpy as np
import pytest

from musefusion import fsutil
from musefusion.data import formats
from musefusion.rundir import RunDir


class WriterError(RuntimeError):
    pass


def test_atomic_path_moves_the_file_into_place_on_success(tmp_path):
    dest = tmp_path / "sub" / "out.txt"
    with fsutil.atomic_path(dest) as tmp:
        assert tmp.parent == dest.parent and tmp != dest
        tmp.write_text("done")
        assert not dest.exists()  # nothing visible until the block ends
    assert dest.read_text() == "done"
    assert [p.name for p in dest.parent.iterdir()] == ["out.txt"]


def test_an_exception_inside_atomic_path_leaves_nothing_behind(tmp_path):
    dest = tmp_path / "out.csv"
    with pytest.raises(WriterError):
        with fsutil.atomic_path(dest) as tmp:
            tmp.write_text("timestamp,value\n0,")
            raise WriterError
    assert list(tmp_path.iterdir()) == []


def test_an_exception_inside_atomic_path_keeps_the_previous_file(tmp_path):
    dest = tmp_path / "out.txt"
    dest.write_text("old")
    with pytest.raises(WriterError):
        with fsutil.atomic_path(dest) as tmp:
            tmp.write_text("half")
            raise WriterError
    assert dest.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_an_exception_inside_atomic_dir_leaves_nothing_behind(tmp_path):
    dest = tmp_path / "predictions"
    with pytest.raises(WriterError):
        with fsutil.atomic_dir(dest) as tmp:
            (tmp / "1.csv").write_text("x")
            raise WriterError
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_replaces_the_whole_folder(tmp_path):
    dest = tmp_path / "predictions"
    dest.mkdir()
    (dest / "stale.csv").write_text("x")
    with fsutil.atomic_dir(dest) as tmp:
        (tmp / "new.csv").write_text("y")
    assert [p.name for p in dest.iterdir()] == ["new.csv"]
    assert [p.name for p in tmp_path.iterdir()] == ["predictions"]


def test_a_failing_writer_function_leaves_no_partial_folder(tmp_path):
    good = (np.arange(4) * 500, np.zeros(4))
    bad = (np.arange(4) * 500, np.zeros(3))  # one value short: fails after the first file was written
    with pytest.raises(Exception, match="length"):
        formats.write_predictions(RunDir(tmp_path / "run").predictions("devel"), {"1": good, "2": bad})
    assert list((tmp_path / "run" / "predictions").iterdir()) == []  # no devel/, no temp folder
    formats.write_predictions(RunDir(tmp_path / "run").predictions("devel"), {"1": good})
    assert [p.name for p in (tmp_path / "run" / "predictions" / "devel").iterdir()] == ["1.csv"]
