"""The run directory has one home: ``musefusion.rundir``. No other module spells its file names."""

from __future__ import annotations

import ast
from pathlib import Path

import musefusion
from musefusion.rundir import ReproduceDir, RunDir

SRC = Path(musefusion.__file__).parent
#: File and folder names of a run directory (exact string constants) and the prefixes of its nested folders.
NAMES = {"config.toml", "metrics.json", "checkpoint.pt", "history.csv", "result.json", "last.pt", "evaluation.json",
         "trial.json", "log.txt", "predictions", "plots", "final", "report.md", "report.html"}
PREFIXES = ("seed_", "oof_k", "fold_")


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def test_no_run_directory_file_name_outside_the_rundir_module():
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "rundir.py":
            continue
        tree = ast.parse(path.read_text())
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
                v = node.value
                if v in NAMES or (v.startswith(PREFIXES) and len(v) <= 8):
                    found.append(f"{path.relative_to(SRC)}:{node.lineno}: {v!r}")
    assert not found, "\n".join(found)


def test_the_layout_of_every_kind_of_run(tmp_path):
    run = RunDir(tmp_path / "r")
    assert run.fold(3, 1).path == tmp_path / "r" / "oof_k3" / "fold_1"
    assert run.oof_predictions(3) == tmp_path / "r" / "oof_k3" / "predictions" / "train"
    assert run.final.checkpoint == tmp_path / "r" / "final" / "checkpoint.pt"
    assert run.test_predictions() == tmp_path / "r" / "predictions" / "test"
    run.final.predictions("test").mkdir(parents=True)
    assert run.test_predictions() == run.final.predictions("test")  # the final model's, once it exists
    for s in (10, 2):
        run.seed(s).path.mkdir()
    assert [d.path.name for d in run.seed_dirs()] == ["seed_2", "seed_10"]
    rep = ReproduceDir(tmp_path / "rep")
    assert rep.run("arousal", "bio", "bio_lstm").path == tmp_path / "rep" / "runs" / "arousal" / "bio-bio_lstm"
    assert rep.fusion("valence", ("A", "V"), "oof").path == tmp_path / "rep" / "fusion" / "valence" / "A+V-oof"
