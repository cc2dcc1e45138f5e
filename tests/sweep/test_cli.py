"""``musefusion sweep run`` / ``sweep report`` end to end, and their one-line errors (exit 2)."""

from __future__ import annotations

import tomllib

import pytest

from musefusion.cli.app import main
from tests.sweep.sweep_helpers import FAST


def _run(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_run_report_and_train_the_best_config(tiny_root, tmp_path, capsys):
    out = tmp_path / "sw"
    args = ["sweep", "run", "--data", str(tiny_root), *FAST, "--model", "gcnn", "--trials", "3", "--epochs", "2",
            "--study", "cli", "--out", str(out), "--seeds", "1", "2"]
    code, stdout, _ = _run(capsys, *args)
    assert code == 0 and "3 complete" in stdout
    code, stdout, _ = _run(capsys, "sweep", "report", "--study", "cli", "--storage", f"sqlite:///{out / 'study.db'}")
    assert code == 0
    rep = out / "report"
    for name in ("trials.csv", "best_trials.csv", "importances.json", "optimization_history.png",
                 "param_importances.png", "best_config.toml"):
        assert (rep / name).is_file(), name
    best = tomllib.loads((rep / "best_config.toml").read_text())
    assert best["model"]["name"] == "gcnn" and best["train"]["seeds"] == [1, 2] and best["train"]["epochs"] == 2
    assert best["model"]["channels"] in (64, 128) and best["train"]["lr"] in (2e-4, 1e-3, 2e-3, 5e-3)
    run_dir = tmp_path / "best"
    code, stdout, _ = _run(capsys, "train", "--config", str(rep / "best_config.toml"), "--epochs", "1",
                           "--seeds", "1", "--out", str(run_dir))
    assert code == 0 and (run_dir / "metrics.json").is_file()


def test_dry_run_prints_the_paper_grid(tiny_root, tmp_path, capsys):
    code, stdout, _ = _run(capsys, "sweep", "run", "--data", str(tiny_root), "--model", "selfattn_lstm",
                           "--sampler", "grid", "--trials", "1000", "--out", str(tmp_path / "d"), "--dry-run")
    assert code == 0 and "grid size 432; trials 432" in stdout


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    return lines[0]


@pytest.mark.parametrize(("storage", "match"), [
    ("postgresql://me:pw@127.0.0.1:1/sweeps", "Cannot open study storage 'postgresql://me:***@127.0.0.1:1/sweeps'"),
    ("mysql://me@localhost/sweeps", "is not supported"),
    ("nonsense", "is not supported"),
])
def test_storage_errors_exit_2_with_one_line(tiny_root, tmp_path, capsys, storage, match):
    code, _, err = _run(capsys, "sweep", "run", "--data", str(tiny_root), *FAST, "--model", "lstm", "--trials", "1",
                        "--epochs", "1", "--storage", storage, "--out", str(tmp_path / "x"))
    assert code == 2 and match in _one_error_line(err)


def test_study_of_another_model_exits_2(tiny_root, tmp_path, capsys):
    common = ["sweep", "run", "--data", str(tiny_root), *FAST, "--trials", "1", "--epochs", "1", "--study", "s",
              "--out", str(tmp_path / "s")]
    space = tmp_path / "space.toml"
    space.write_text("[space]\nlr = [0.001]\nbatch_size = [64]\nhidden = [8]\n")
    assert _run(capsys, *common, "--model", "lstm", "--space", str(space))[0] == 0
    code, _, err = _run(capsys, *common, "--model", "bio_lstm", "--space", str(space))
    assert code == 2 and "was created for model 'lstm'" in _one_error_line(err)


@pytest.mark.parametrize(("text", "match"), [
    ("paper_space = false\n[space]\n", "space is empty"),
    ("[space]\nhidden = []\n", "has no values"),
    ("[space]\nheads = [4]\n", "not used by model 'lstm'"),
])
def test_bad_space_file_exits_2(tiny_root, tmp_path, capsys, text, match):
    space = tmp_path / "space.toml"
    space.write_text(text)
    code, _, err = _run(capsys, "sweep", "run", "--data", str(tiny_root), "--model", "lstm", "--space", str(space),
                        "--out", str(tmp_path / "o"))
    assert code == 2 and match in _one_error_line(err)


def test_report_of_a_missing_study_exits_2(tmp_path, capsys):
    code, _, err = _run(capsys, "sweep", "report", "--study", "nope", "--storage",
                        f"sqlite:///{tmp_path / 'none.db'}")
    assert code == 2 and "not found" in _one_error_line(err)
