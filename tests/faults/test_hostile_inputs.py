"""Broken and hostile input (issue 12, first part): nothing lost, nothing written outside its folder, nothing
silently wrong, one line and no traceback. Each case checks the exit code, the one ``error:`` line naming the
file/column/option, and that the corpus and a sentinel folder are byte-for-byte unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from musefusion.data import formats
from musefusion.data.check import check_corpus
from musefusion.data.synth import SynthConfig, synthesize
from musefusion.types import Task
from tests.cli_helpers import run_bounded, tree_digest
from tests.cli_helpers import run_cli as run
from tests.cli_helpers import the_error_line as one_error_line

TINY = ["--model", "lstm", "--hidden", "8", "--epochs", "1", "--win-len", "40", "--hop-len", "20"]


@pytest.fixture(autouse=True)
def _no_data_env(monkeypatch):
    monkeypatch.delenv("MUSEFUSION_DATA", raising=False)


@pytest.fixture
def corpus(tmp_path) -> Path:
    root = tmp_path / "data"
    synthesize(root, SynthConfig(task=Task.STRESS, seed=4, n_train=4, n_devel=2, n_test=2, minutes=0.4,
                                 features=("egemaps", "ECG", "resp", "BPM")))
    return root


@pytest.fixture
def sentinel(tmp_path) -> Path:
    d = tmp_path / "sentinel"
    d.mkdir()
    (d / "keep.txt").write_text("do not touch\n")
    return d


def _unchanged(*folders_and_digests: tuple[Path, dict[str, str]]) -> None:
    for folder, before in folders_and_digests:
        assert tree_digest(folder) == before, folder


# ----------------------------------------------------------------------------------------------- data loss


def test_submit_never_deletes_a_folders_other_files(corpus, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert run(["train", "--data", corpus, "--features", "egemaps", *TINY, "--out", run_dir]) == 0
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "thesis.tex").write_text("months of work\n")
    capsys.readouterr()
    assert run(["submit", run_dir, "--out", dest]) == 2
    assert "already holds files that are not a submission" in one_error_line(capsys.readouterr().err)
    assert (dest / "thesis.tex").read_text() == "months of work\n" and not (dest / "arousal").exists()
    assert run(["submit", run_dir, "--out", dest, "--overwrite"]) == 0  # only the target folder is written
    assert (dest / "thesis.tex").is_file() and len(list((dest / "arousal").glob("*.csv"))) == 2
    assert run(["submit", run_dir, "--out", dest, "--overwrite"]) == 0
    fresh = tmp_path / "sub"
    assert run(["submit", run_dir, "--out", fresh]) == 0 and run(["submit", run_dir, "--out", fresh]) == 0


def test_synth_refuses_to_overwrite_a_corpus_it_did_not_write(corpus, tmp_path, capsys):
    (corpus / "c3_muse_stress" / "metadata" / "synth.toml").unlink()  # as a real download has none
    before = tree_digest(corpus)
    assert run(["synth", corpus, "--split", "2/1/1", "--minutes", "0.3"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "already holds a corpus not written by synth" in line and "--overwrite" in line
    _unchanged((corpus, before))


def test_synth_refuses_a_synthetic_corpus_of_other_settings_and_reuses_its_own(tmp_path, capsys):
    argv = ["synth", tmp_path, "--split", "2/1/1", "--minutes", "0.3", "--features", "ECG"]
    assert run(argv) == 0 and run(argv) == 0  # the same settings: the same bytes again
    assert run([*argv, "--seed", "9"]) == 2
    assert "a synthetic corpus of another config" in one_error_line(capsys.readouterr().err)
    assert run([*argv, "--seed", "9", "--overwrite"]) == 0


def test_train_refuses_an_output_inside_the_corpus(corpus, capsys):
    before = tree_digest(corpus)
    out = corpus / "c3_muse_stress" / "runs" / "r"
    assert run(["train", "--data", corpus, "--features", "egemaps", *TINY, "--out", out]) == 2
    assert "lies inside or holds a corpus" in one_error_line(capsys.readouterr().err)
    _unchanged((corpus, before))
    assert check_corpus(corpus, Task.STRESS).ok


# ----------------------------------------------------------------------------------------------- ids as paths


@pytest.mark.parametrize("bad_id", ["../../escape", "/etc/passwd", "a/b", "..", "x" * 201, "tab\there", ".hidden"])
def test_a_partition_id_that_is_not_a_file_name_is_refused(corpus, tmp_path, sentinel, capsys, bad_id):
    part = corpus / "c3_muse_stress" / "metadata" / "partition.csv"
    part.write_text(part.read_text().replace("\n1,", f"\n{bad_id},", 1) if "\n1," in part.read_text()
                    else part.read_text() + f"{bad_id},train\n")
    before, keep = tree_digest(corpus), tree_digest(sentinel)
    assert run(["train", "--data", corpus, "--features", "egemaps", *TINY, "--out", tmp_path / "r"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"Partition file '{part}'" in line and "cannot name a file" in line
    _unchanged((corpus, before), (sentinel, keep))
    assert not (tmp_path / "r" / "metrics.json").exists()


@pytest.mark.parametrize("bad_id", ["../out", "/tmp/abs", "a/b"])
def test_an_extract_id_that_is_not_a_file_name_is_refused(tmp_path, bio_csv, sentinel, capsys, bad_id):
    keep = tree_digest(sentinel)
    assert run(["extract", "--bio", bio_csv, "--id", bad_id, "--out", tmp_path / "o"]) == 2
    assert "Recording id (--id" in one_error_line(capsys.readouterr().err)
    _unchanged((sentinel, keep))
    assert not (tmp_path / "o").exists()


def test_a_manifest_id_that_is_not_a_file_name_is_refused(tmp_path, bio_csv, capsys):
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"id,audio,video,bio\n../../x,,,{bio_csv}\n")
    assert run(["extract", "--manifest", manifest, "--out", tmp_path / "o"]) == 2
    assert "subject id '../../x' cannot name a file" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "o").exists() and not (tmp_path.parent / "x.csv").exists()


# ----------------------------------------------------------------------------------------------- markup


def test_markup_in_a_submission_cell_is_printed_as_text(corpus, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert run(["train", "--data", corpus, "--features", "egemaps", *TINY, "--out", run_dir]) == 0
    sub = tmp_path / "sub"
    assert run(["submit", run_dir, "--out", sub]) == 0
    f = next((sub / "arousal").glob("*.csv"))
    lines = f.read_text().splitlines()
    lines[1] = lines[1].rsplit(",", 1)[0] + ",[/oops][link=http://x]y"
    f.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert run(["validate-submission", sub, "--data", corpus]) == 1
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "problem:" in out.out


# ----------------------------------------------------------------------------------------------- values


@pytest.mark.parametrize("value", ["inf", "-inf", "1e300"])
def test_an_absurd_feature_value_is_a_problem_and_stops_training(corpus, tmp_path, capsys, value):
    f = corpus / "c3_muse_stress" / "feature_segments" / "egemaps" / "1.csv"
    lines = f.read_text().splitlines()
    cells = lines[3].split(",")
    cells[5] = value
    lines[3] = ",".join(cells)
    f.write_text("\n".join(lines) + "\n")
    report = check_corpus(corpus, Task.STRESS)
    assert any(f"'{f}'" in p and "infinite or absurd" in p and "data row 3" in p for p in report.problems)
    assert run(["train", "--data", corpus, "--features", "egemaps", *TINY, "--out", tmp_path / "r"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"'{f}'" in line and "column 'egemaps_3'" in line
    assert not (tmp_path / "r" / "metrics.json").exists()


def test_an_absurd_label_stops_training(corpus, tmp_path, capsys):
    part = formats.read_partition(corpus / "c3_muse_stress" / "metadata" / "partition.csv")
    sid = next(s for s, p in part.items() if p.value == "train")
    f = corpus / "c3_muse_stress" / "label_segments" / "arousal" / f"{sid}.csv"
    lines = f.read_text().splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0] + ",1e300"
    f.write_text("\n".join(lines) + "\n")
    assert run(["train", "--data", corpus, "--features", "egemaps", *TINY, "--out", tmp_path / "r"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"'{f}'" in line and "column 'value'" in line


def test_a_recording_longer_than_16_minutes_is_data_not_an_absurd_value(tmp_path, capsys):
    """The 1e6 limit for label values once applied to label timestamps (ms), so a recording past 16 min 40 s was
    refused; a 20-minute corpus passes ``data check`` and trains. Malformed timestamps are still refused."""
    root = tmp_path / "long"
    assert run(["synth", root, "--split", "2/1/1", "--minutes", "20", "--features", "egemaps"]) == 0
    assert run(["data", "check", "--data", root]) == 0
    assert run(["train", "--data", root, "--features", "egemaps", *TINY, "--out", tmp_path / "r"]) == 0
    assert (tmp_path / "r" / "metrics.json").is_file()
    capsys.readouterr()
    part = formats.read_partition(root / "c3_muse_stress" / "metadata" / "partition.csv")
    f = root / "c3_muse_stress" / "label_segments" / "arousal" / f"{next(iter(part))}.csv"
    lines = f.read_text().splitlines()
    assert int(lines[-1].split(",")[0]) > 1_000_000  # past 16 min 40 s
    lines[3] = "1e300," + lines[3].split(",", 1)[1]
    f.write_text("\n".join(lines) + "\n")
    assert run(["data", "check", "--data", root]) != 0
    assert "timestamp" in capsys.readouterr().out + capsys.readouterr().err


@pytest.mark.parametrize("lr", ["inf", "nan", "1e9", "-1"])
def test_a_learning_rate_that_cannot_train_is_refused_before_any_work(corpus, tmp_path, capsys, lr):
    assert run(["train", "--data", corpus, "--features", "egemaps", *TINY, "--lr", lr, "--out", tmp_path / "r"]) == 2
    assert "TrainConfig.lr" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "r").exists()


def test_a_non_finite_loss_stops_the_run_naming_epoch_and_batch(corpus, tmp_path, monkeypatch):
    import torch

    from musefusion.config import DataConfig, RunConfig, TrainConfig, model_preset
    from musefusion.errors import TrainingError
    from musefusion.training import loop
    from musefusion.training.run import train_run

    real = loop.CCCLoss

    class Exploding(real):  # the loss of an optimiser that diverged
        def forward(self, *args, **kwargs):
            return super().forward(*args, **kwargs) * torch.tensor(float("nan"))

    monkeypatch.setattr(loop, "CCCLoss", Exploding)
    cfg = RunConfig(DataConfig(root=corpus, features=("egemaps",), win_len=40, hop_len=20, cache=False),
                    model_preset("lstm", hidden=8), TrainConfig(epochs=1))
    with pytest.raises(TrainingError, match=r"loss is nan at epoch 1, batch 1 \(seed 1\)"):
        train_run(cfg, tmp_path / "r")
    assert not (tmp_path / "r" / "metrics.json").exists()


def test_killing_reproduce_ends_its_workers(tmp_path):
    """kill -9 of the parent: its worker processes get SIGKILL too (PR_SET_PDEATHSIG), none keeps training."""
    import os
    import signal
    import subprocess
    import sys
    import time

    def children(pid: int) -> set[int]:
        out = set()
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == pid:
                    out.add(int(d.name))
        return out

    corpus = tmp_path / "data"
    synthesize(corpus, SynthConfig(task=Task.STRESS, seed=4, n_train=4, n_devel=2, n_test=2, minutes=0.4))
    proc = subprocess.Popen([sys.executable, "-c", "from musefusion.cli.app import main; main()", "reproduce",
                             "--data", str(corpus), "--profile", "smoke", "--workers", "2", "--out",
                             str(tmp_path / "rep")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: set[int] = set()
    deadline = time.time() + 120
    while time.time() < deadline and len(workers) < 2:  # the pool's two workers (plus spawn's resource tracker)
        workers = set()
        for c in children(proc.pid):
            try:
                if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes():
                    workers.add(c)
            except OSError:
                continue
        time.sleep(0.2)
    assert workers, "reproduce started no worker process"
    def alive(pid: int) -> bool:
        try:
            return (Path(f"/proc/{pid}") / "stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except OSError:
            return False

    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 20
    while time.time() < deadline and any(alive(w) for w in workers):
        time.sleep(0.2)
    assert not [w for w in workers if alive(w)], "workers outlived the killed reproduce"


@pytest.mark.slow
def test_kill_ends_reproduce_like_ctrl_c_with_a_resume_hint(tmp_path):
    """``kill`` (SIGTERM) of a reproduction with workers: exit 130, the resume hint, no traceback and no leaked
    semaphore warning; the same command then resumes and finishes."""
    import signal
    import subprocess
    import sys
    import time

    corpus = tmp_path / "data"
    synthesize(corpus, SynthConfig(task=Task.STRESS, seed=4, n_train=4, n_devel=2, n_test=2, minutes=0.4))
    cmd = [sys.executable, "-c", "from musefusion.cli.app import main; main()", "reproduce", "--data", str(corpus),
           "--profile", "smoke", "--stage", "unimodal", "--workers", "2", "--out", str(tmp_path / "rep")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / "rep").glob("runs/*/*/seed_1")):  # training has begun
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "run the same command again to resume" in err
    assert "Traceback" not in err and "leaked semaphore" not in err, err[-2000:]
    done = run_bounded(cmd, 600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "rep" / "report.md").is_file()
