"""``musefusion train``, ``evaluate`` and ``predict`` through the real entry point, on the small synthetic corpus."""

from __future__ import annotations

import contextlib
import io as _io
import json
import shutil
import tomllib
from pathlib import Path

import pandas as pd
import pytest
import torch

import musefusion.cli.train as train_cli
from musefusion import fsutil
from musefusion.config import DataConfig, RunConfig, TrainConfig, model_preset
from musefusion.data import formats
from musefusion.training import checkpoint
from musefusion.types import Partition
from tests.cli_helpers import run_cli, the_error_line

FAST = ["--epochs", "2", "--win-len", "40", "--hop-len", "20"]


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch):
    """No wrapping of long tmp paths in rich's output, and no data root from the environment."""
    monkeypatch.setattr(train_cli.console, "width", 2000)
    monkeypatch.delenv("MUSEFUSION_DATA", raising=False)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, synth_stress) -> tuple[Path, str]:
    """``musefusion train`` with the default model, seeds 1 and 2 (shared: copy it before changing it)."""
    out = tmp_path_factory.mktemp("cli_train") / "run"
    stdout = _io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MUSEFUSION_CACHE", str(tmp_path_factory.mktemp("cache")))
        mp.delenv("MUSEFUSION_DATA", raising=False)
        mp.setattr(train_cli.console, "width", 2000)
        with contextlib.redirect_stdout(stdout):
            code = run_cli(["train", "--data", synth_stress, "--seeds", "1", "2", *FAST, "--out", out])
    assert code == 0, stdout.getvalue()
    return out, stdout.getvalue()


@pytest.fixture
def run_copy(cli_run, tmp_path) -> Path:
    dest = tmp_path / "run"
    shutil.copytree(cli_run[0], dest)
    return dest


def test_train_writes_the_run_dir(cli_run, synth_stress):
    out, stdout = cli_run
    rec = fsutil.read_toml(out / "config.toml")
    assert rec["train"]["seeds"] == [1, 2] and rec["train"]["epochs"] == 2
    assert rec["model"]["name"] == "selfattn_lstm"  # the default model
    assert rec["data"]["root"] == str(synth_stress) and rec["data"]["win_len"] == 40
    assert {"musefusion", "torch", "numpy", "python"} <= set(rec["versions"])
    metrics = fsutil.read_json(out / "metrics.json")
    assert set(metrics["seeds"]) == {"1", "2"}
    assert (out / "checkpoint.pt").is_file()
    ids = formats.read_partition(synth_stress / "c3_muse_stress" / "metadata" / "partition.csv")
    for part in Partition:
        expected = sorted(f"{s}.csv" for s, p in ids.items() if p == part)
        files = sorted((out / "predictions" / part.value).glob("*.csv"))
        assert [f.name for f in files] == expected
        df = pd.read_csv(files[0])
        assert list(df.columns) == ["timestamp", "segment_id", "value"]
        assert df["timestamp"].diff().dropna().eq(500).all() and df["value"].notna().all()
    for seed in (1, 2):
        assert pd.read_csv(out / f"seed_{seed}" / "history.csv")["epoch"].tolist() == [1, 2]
    assert {p.name for p in (out / "plots").glob("*.png")} == {"learning_curves.png", "devel_predictions.png"}
    log = (out / "log.txt").read_text()
    assert "seed 1: best epoch" in log and "seed 2: best epoch" in log
    best = metrics["best"]
    assert (f"devel CCC {metrics['devel_ccc_mean']:.4f} ± {metrics['devel_ccc_std']:.4f} over seeds [1, 2]; "
            f"best seed {best['seed']} ({best['devel_ccc']:.4f}, epoch {best['best_epoch']})") in stdout


def test_rerunning_a_finished_run_does_not_retrain(cli_run, run_copy, synth_stress, capsys):
    before = (run_copy / "seed_1" / "history.csv").stat().st_mtime_ns
    code = run_cli(["train", "--data", synth_stress, "--seeds", "1", "2", *FAST, "--out", run_copy])
    assert code == 0
    assert (run_copy / "seed_1" / "history.csv").stat().st_mtime_ns == before
    assert "over seeds [1, 2]" in capsys.readouterr().out


def test_a_run_recorded_before_a_field_existed_is_reused_at_its_default(run_copy, synth_stress, capsys):
    """A config.toml written before label_delay and precision existed reads them as their defaults (0, fp32):
    the same request reuses the run; asking for another value is still refused."""
    rec = fsutil.read_toml(run_copy / "config.toml")
    del rec["data"]["label_delay"], rec["train"]["precision"]
    fsutil.write_toml(run_copy / "config.toml", rec)
    before = (run_copy / "seed_1" / "history.csv").stat().st_mtime_ns
    assert run_cli(["train", "--data", synth_stress, "--seeds", "1", "2", *FAST, "--out", run_copy]) == 0
    assert (run_copy / "seed_1" / "history.csv").stat().st_mtime_ns == before
    capsys.readouterr()
    assert run_cli(["train", "--data", synth_stress, "--seeds", "1", "2", *FAST, "--label-delay", "2",
                    "--out", run_copy]) == 2
    assert "data.label_delay 0 -> 2" in the_error_line(capsys.readouterr().err)


def test_evaluate_prints_and_saves_ccc_for_every_partition(run_copy, synth_stress, capsys):
    code = run_cli(["evaluate", run_copy, "--test-labels", synth_stress / "test_labels"])
    assert code == 0
    out = capsys.readouterr().out
    saved = json.loads((run_copy / "evaluation.json").read_text())
    assert set(saved) == {"train", "devel", "test"}
    rows = {line.split()[1]: line for line in out.splitlines() if line.split()[1:2] in (["train"], ["devel"],
                                                                                         ["test"])}
    for part, r in saved.items():
        assert f"{r['ccc']:.4f}" in rows[part]
        assert f"{r['rmse']:.4f}" in rows[part]
    metrics = fsutil.read_json(run_copy / "metrics.json")
    assert saved["devel"]["ccc"] == pytest.approx(metrics["best"]["devel_ccc"], abs=1e-5)
    assert saved["train"]["ccc"] == pytest.approx(metrics["best"]["train_ccc"], abs=1e-5)
    assert saved["test"]["subjects"] == 3


def test_evaluate_without_test_labels_skips_test(run_copy, capsys):
    assert run_cli(["evaluate", run_copy]) == 0
    assert set(json.loads((run_copy / "evaluation.json").read_text())) == {"train", "devel"}


def test_predict_reproduces_the_runs_own_predictions(run_copy, tmp_path, capsys):
    code = run_cli(["predict", run_copy, "--out", tmp_path / "pred"])
    assert code == 0
    assert "wrote predictions for 14 subjects" in capsys.readouterr().out
    ours = sorted((run_copy / "predictions").glob("*/*.csv"))
    theirs = sorted((tmp_path / "pred" / "predictions").glob("*/*.csv"))
    assert [p.relative_to(run_copy) for p in ours] == [p.relative_to(tmp_path / "pred") for p in theirs]
    for a, b in zip(ours, theirs, strict=True):
        assert a.read_bytes() == b.read_bytes(), a


class Pickled:
    """Not a tensor or plain value: must never be unpickled."""


def test_predict_refuses_a_pickled_checkpoint(run_copy, capsys):
    payload = checkpoint.load_checkpoint(run_copy / "checkpoint.pt")
    payload["extra"] = Pickled()
    torch.save(payload, run_copy / "checkpoint.pt")
    code = run_cli(["predict", run_copy])
    assert code == 2
    line = the_error_line(capsys.readouterr().err)
    assert "Refusing to load" in line and "pickled code or objects" in line and "Pickled" in line
    assert not (run_copy / "predict").exists()


def test_dry_run_prints_the_resolved_config(synth_stress, tmp_path, capsys):
    code = run_cli(["train", "--data", synth_stress, "--model", "gcnn_lstm", "--seeds", "4", "5", "--features",
                    "bio", *FAST, "--out", tmp_path / "run", "--dry-run"])
    assert code == 0
    printed = RunConfig.from_dict(tomllib.loads(capsys.readouterr().out))
    expected = RunConfig(DataConfig(root=synth_stress, features=("bio",), win_len=40, hop_len=20),
                         model_preset("gcnn_lstm"), TrainConfig(epochs=2, seeds=(4, 5)))
    assert printed == expected
    assert not (tmp_path / "run").exists()


def test_every_field_flag_reaches_the_config(synth_stress, tmp_path, capsys):
    """The flags of the fields that had none before (the Sec. 5.2 schedule's patience and monitor, weight decay,
    the gated convolutions' blocks and kernel, the projection width, the cache, threads, evaluation and the fitted
    partitions) set their fields."""
    code = run_cli(["train", "--data", synth_stress, "--model", "gcnn_lstm", "--features", "bio", *FAST,
                    "--lr-patience", "7", "--lr-monitor", "devel", "--weight-decay", "0.01", "--gcnn-blocks", "3",
                    "--kernel", "5", "--d-model", "32", "--no-cache", "--cache-dir", tmp_path / "c", "--threads", "1",
                    "--eval-every", "2", "--train-partitions", "train", "devel", "--out", tmp_path / "run",
                    "--dry-run"])
    assert code == 0
    rc = RunConfig.from_dict(tomllib.loads(capsys.readouterr().out))
    assert (rc.train.lr_patience, rc.train.lr_monitor.value, rc.train.weight_decay) == (7, "devel", 0.01)
    assert (rc.train.num_threads, rc.train.eval_every) == (1, 2)
    assert (rc.model.gcnn_blocks, rc.model.kernel, rc.model.d_model) == (3, 5, 32)
    assert (rc.data.cache, rc.data.cache_dir, rc.data.train_partitions) == (False, tmp_path / "c", ("train", "devel"))


def test_config_file_works_and_flags_override_it(synth_stress, tmp_path, capsys):
    cfg = tmp_path / "exp.toml"
    cfg.write_text(f'[data]\nroot = "{synth_stress}"\ntarget = "valence"\nfeatures = ["egemaps"]\nwin_len = 40\n'
                   'hop_len = 20\n\n[model]\nname = "gcnn"\nchannels = 8\n\n'
                   '[train]\nepochs = 5\nbatch_size = 8\nseeds = [7]\n')
    out = tmp_path / "run"
    code = run_cli(["train", "--config", cfg, "--epochs", "1", "--out", out])
    assert code == 0
    rec = fsutil.read_toml(out / "config.toml")
    assert rec["data"]["target"] == "valence" and rec["model"]["name"] == "gcnn" and rec["model"]["channels"] == 8
    assert rec["model"]["gcnn_blocks"] == 3  # the gcnn preset fills what the file leaves out
    assert rec["train"]["epochs"] == 1 and rec["train"]["seeds"] == [7] and rec["train"]["batch_size"] == 8
    assert pd.read_csv(out / "seed_7" / "history.csv")["epoch"].tolist() == [1]
    capsys.readouterr()
    assert run_cli(["train", "--config", cfg, "--model", "lstm", "--out", tmp_path / "r2", "--dry-run"]) == 0
    printed = tomllib.loads(capsys.readouterr().out)
    assert printed["model"]["name"] == "lstm" and printed["train"]["epochs"] == 5
    assert printed["data"]["target"] == "valence"


def test_a_config_file_with_an_unknown_section_is_refused(synth_stress, tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(f'[data]\nroot = "{synth_stress}"\n[optimizer]\nlr = 1\n')
    assert run_cli(["train", "--config", cfg, "--dry-run"]) == 2
    assert "Unknown key 'optimizer' in the sections of" in the_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("flags, message", [
    (["--model", "transformer"], "Unknown model 'transformer' (--model); choose one of lstm, selfattn"),
    (["--features", "mfcc"], "Unknown feature 'mfcc' for task 'stress'"),
    (["--target", "dominance"], "Unknown target 'dominance' for task 'stress'"),
    (["--epochs", "0"], "TrainConfig.epochs: 0 must be between 1 and 100000 (--epochs)"),
    (["--win-len", "10", "--hop-len", "20"], "DataConfig.hop_len: 20 must be between 1 and win_len=10"),
])
def test_bad_flags_give_one_error_line(synth_stress, tmp_path, capsys, flags, message):
    code = run_cli(["train", "--data", synth_stress, *flags, "--out", tmp_path / "run"])
    assert code == 2
    line = the_error_line(capsys.readouterr().err)
    assert line.startswith("error: ")
    assert message in line
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_a_choice_outside_its_enum_is_a_usage_error(synth_stress, tmp_path, capsys):
    code = run_cli(["train", "--data", synth_stress, "--schedule", "cosine", "--out", tmp_path / "run"])
    assert code == 2
    err = capsys.readouterr().err
    assert "Invalid value for '--schedule'" in err and "'cosine' is not one of 'paper', 'plateau'" in err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_a_feature_the_task_does_not_have(synth_physio, tmp_path, capsys):
    code = run_cli(["train", "--data", synth_physio, "--task", "physio", "--features", "egemaps",
                    "--target", "anno12_EDA", "--out", tmp_path / "run"])
    assert code == 2
    line = the_error_line(capsys.readouterr().err)
    assert "Unknown feature 'egemaps' for task 'physio'" in line
    assert "Available: BPM, ECG, resp, vggface, vggish" in line


def test_train_on_physio_with_the_gcnn_lstm(synth_physio, tmp_path, capsys):
    code = run_cli(["train", "--data", synth_physio, "--task", "physio", "--features", "vggish", "--target",
                    "anno12_EDA", "--model", "gcnn_lstm", "--channels", "8", "--hidden", "16", "--batch-size", "8",
                    *FAST, "--out", tmp_path / "run"])
    assert code == 0
    assert len(list((tmp_path / "run" / "predictions" / "devel").glob("*.csv"))) == 2
    assert fsutil.read_toml(tmp_path / "run" / "config.toml")["data"]["task"] == "physio"


def test_the_paper_options_reach_the_config(synth_stress, tmp_path, capsys):
    code = run_cli(["train", "--data", synth_stress, "--model", "selfattn_lstm", "--features", "egemaps", *FAST,
                    "--attention", "transformer", "--loss", "sequence", "--schedule", "plateau", "--out",
                    tmp_path / "run", "--dry-run"])
    assert code == 0
    printed = RunConfig.from_dict(tomllib.loads(capsys.readouterr().out))
    assert (printed.model.attention, printed.train.loss, printed.train.schedule) == ("transformer", "sequence",
                                                                                    "plateau")
    assert run_cli(["train", "--data", synth_stress, "--model", "lstm", "--project-input", *FAST, "--out",
                    tmp_path / "run", "--dry-run"]) == 0
    assert RunConfig.from_dict(tomllib.loads(capsys.readouterr().out)).model.project_input is True
