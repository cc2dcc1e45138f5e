"""Personalisation (MuSe 2023 step 2): subjects' chunks, what fine-tuning reads, the keep-the-general-model rule,
resuming, the weighted-average fusion and the 2023-format files."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import musefusion as mf
from musefusion.data import formats
from musefusion.data.synth import SynthConfig, synthesize
from musefusion.errors import ConfigError
from musefusion.fsutil import read_json
from musefusion.pipelines.personalise import PersonaliseConfig, fuse_personalised, personalise
from musefusion.rundir import PersonalDir
from musefusion.types import Partition, Task
from tests.cli_helpers import run_bounded, run_cli, the_error_line, tree_digest
from tests.personal_corpus import CORPUS, train_general, write_personal_corpus

FAST = PersonaliseConfig(seeds=(1, 2), epochs=3, early_stop=0, lr=1e-3)


@pytest.fixture(scope="module")
def general(tmp_path_factory) -> tuple[Path, Path]:
    """(data root, general run) of the hand-made corpus; shared, do not modify."""
    root = tmp_path_factory.mktemp("personal")
    write_personal_corpus(root)
    return root, train_general(root, root / "general")


def test_chunk_ids_group_by_subject():
    partition = {"12_train": Partition.TRAIN, "12_devel": Partition.DEVEL, "12_devel_2": Partition.DEVEL,
                 "12_test": Partition.TEST, "12_test3": Partition.TEST, "ab_c_devel": Partition.DEVEL, "7": Partition.TRAIN}
    groups = formats.chunks_by_subject(partition)
    assert groups["12"] == {Partition.TRAIN: ["12_train"], Partition.DEVEL: ["12_devel", "12_devel_2"],
                            Partition.TEST: ["12_test", "12_test3"]}
    assert groups["ab_c"] == {Partition.DEVEL: ["ab_c_devel"]}
    assert groups["7"] == {Partition.TRAIN: ["7"]}  # a general subject is its own group
    assert formats.chunk_partition("12_devel_2") == Partition.DEVEL and formats.chunk_partition("7") is None


def test_synth_personalisation_layout(tmp_path):
    synthesize(tmp_path, SynthConfig(task=Task.PERSONALISATION, seed=1, n_train=3, n_devel=1, n_test=1, minutes=2))
    corpus = tmp_path / CORPUS
    partition = formats.read_partition(corpus / "metadata" / "partition.csv")
    chunked = {s: c for s, c in formats.chunks_by_subject(partition).items() if Partition.TEST in c}
    assert len(chunked) == 2  # the devel and test subjects of the split are chunked
    for s, chunks in chunked.items():
        assert chunks[Partition.TRAIN] == [f"{s}_train"] and chunks[Partition.DEVEL]
        for cid in chunks[Partition.TEST]:  # test chunk labels: empty in the corpus, true ones apart
            assert np.isnan(formats.read_label_csv(corpus / "label_segments" / "valence" / f"{cid}.csv")[1]).all()
            hidden = tmp_path / "test_labels" / CORPUS / "label_segments" / "valence" / f"{cid}.csv"
            assert np.isfinite(formats.read_label_csv(hidden)[1]).all()
    header = (corpus / "feature_segments" / "egemaps" / f"{next(iter(chunked))}_train.csv").read_text().split("\n")[0]
    assert header.startswith("timestamp,subject_id,egemaps_0")
    data = mf.load_corpus(tmp_path, task="personalisation", target="physio-arousal", features=["egemaps", "bio"])
    assert data.feature_dims == {"egemaps": 88, "biosignals": 3}  # subject_id is a meta column, not a feature
    with pytest.raises(ConfigError, match="variant"):
        SynthConfig(task=Task.PERSONALISATION, variant="bio-led")


def test_fine_tuning_reads_only_its_subject_and_never_a_test_label(general, tmp_path):
    """Real values in the subject's test labels and scrambled labels of every other id change nothing."""
    root, run = general
    first = personalise(run, FAST, out=tmp_path / "a", subjects=["p1"])
    corpus = root / CORPUS
    saved = {p: p.read_bytes() for p in (corpus / "label_segments").rglob("*.csv")}
    try:
        for p in saved:
            ts, vals = formats.read_label_csv(p)
            if p.stem == "p1_test":
                formats.write_sequence_csv(p, ts, np.linspace(-1, 1, len(ts)), meta_column="subject_id")
            elif not p.stem.startswith("p1_"):
                formats.write_sequence_csv(p, ts, np.random.default_rng(5).uniform(-1, 1, len(ts)),
                                           meta_column="subject_id")
        second = personalise(run, FAST, data=root, out=tmp_path / "b", subjects=["p1"])
    finally:
        for p, data in saved.items():
            p.write_bytes(data)
    a, b = PersonalDir(first.out).subject("p1"), PersonalDir(second.out).subject("p1")
    assert read_json(a.result)["seeds"] == read_json(b.result)["seeds"]
    assert tree_digest(a.predictions_root) == tree_digest(b.predictions_root)


def test_general_model_is_kept_where_fine_tuning_cannot_help(tmp_path):
    root = tmp_path / "data"
    corpus = write_personal_corpus(root, seed=1)
    noise = corpus / "label_segments" / "valence" / "p2_train.csv"
    ts, _ = formats.read_label_csv(noise)
    formats.write_sequence_csv(noise, ts, np.random.default_rng(0).uniform(-1, 1, len(ts)), meta_column="subject_id")
    run = train_general(root, tmp_path / "general")
    cfg = PersonaliseConfig(seeds=(1, 2), epochs=5, early_stop=0, lr=0.05)
    res = personalise(run, cfg, test_labels=root / "test_labels")
    rows = res.metrics["subjects"]
    noisy = read_json(PersonalDir(res.out).subject("p2").result)
    assert rows["p2"]["general_devel_ccc"] > 0.5  # the general model is good on this subject
    assert max(s["devel_ccc"] for s in noisy["seeds"].values()) < rows["p2"]["general_devel_ccc"]
    assert noisy["kept"] == "general" and not rows["p2"]["personalised"] and "p2" in res.metrics["kept_general"]
    sdir = PersonalDir(res.out).subject("p2")
    assert tree_digest(sdir.predictions_root) == tree_digest(PersonalDir(res.out).subject_general("p2", "devel").parent)
    assert not sdir.checkpoint.exists()
    forced = personalise(run, cfg.replace(keep_general=False), out=tmp_path / "forced")
    assert forced.metrics["subjects"]["p2"]["kept"].startswith("seed")  # --always-personalise keeps a seed


def test_scores_submission_and_plot(general, tmp_path):
    root, run = general
    res = personalise(run, FAST, out=tmp_path / "p", test_labels=root / "test_labels")
    m, pdir = res.metrics, PersonalDir(res.out)
    assert set(m["subjects"]) == {"p1", "p2"} and m["n_subjects"] == 2
    for part in ("devel", "test"):
        assert set(m[part]) >= {"general", "personalised"}
        ids = {p.stem for p in pdir.predictions(part).glob("*.csv")}
        assert ids == {f"p1_{part}", f"p2_{part}"}
    # the general model's devel CCC over the chunks equals scoring the general run's own devel predictions
    own = mf.evaluate(run)
    assert m["devel"]["general"] == pytest.approx(float(own.loc["devel", "ccc"]), abs=1e-4)
    sub = pd.read_csv(pdir.submission_file("test"))
    assert list(sub.columns) == ["meta_subject_id", "meta_timestamp", "prediction"]
    assert set(sub["meta_subject_id"]) == {"p1_test", "p2_test"}
    assert "label_gs" in pd.read_csv(pdir.submission_file("devel")).columns
    assert pdir.plot("gains.png").stat().st_size > 1000
    assert list(res.subjects()["subject"]) == ["p1", "p2"]


def test_fusion_of_identical_streams_is_the_stream_and_weights_are_checked(general, tmp_path):
    root, run = general
    a = personalise(run, FAST, out=tmp_path / "a")
    shutil.copytree(a.out, tmp_path / "b")
    fused = fuse_personalised([a.out, tmp_path / "b"], tmp_path / "fused", weights=[3, 1])
    for part in ("devel", "test"):
        want, got = formats.read_predictions(PersonalDir(a.out).predictions(part)), \
            formats.read_predictions(PersonalDir(fused.out).predictions(part))
        for sid in want:
            np.testing.assert_allclose(got[sid][1], want[sid][1], atol=1e-6)
    assert fused.metrics["weights"] == [0.75, 0.25]
    assert fused.metrics["devel"]["fused"] == pytest.approx(a.metrics["devel"]["personalised"], abs=1e-5)
    with pytest.raises(ConfigError, match="one per folder"):
        fuse_personalised([a.out, tmp_path / "b"], tmp_path / "f2", weights=[1])
    with pytest.raises(ConfigError, match="at least two"):
        fuse_personalised([a.out], tmp_path / "f3")


def test_cli_errors_are_one_line(general, synth_stress, tmp_path, capsys):
    root, run = general
    stress_run = tmp_path / "stress"
    mf.train(synth_stress, features=["egemaps"], model="lstm", epochs=1, hidden=8, out=stress_run)
    cases = [([stress_run], "trained on a stress corpus"), ([tmp_path / "nothing"], "is not a finished run"),
             ([run, "--subject", "zz"], "not a test subject"), ([run, "--hop-len", "50"], "hop_len"),
             ([run, "--seeds", "1", "--seeds", "1"], "distinct")]
    for args, message in cases:
        assert run_cli(["personalise", *args]) != 0
        assert message in the_error_line(capsys.readouterr().err)
    assert not (stress_run / "personalised").exists()
    assert run_cli(["train", "--data", root, "--task", "personalisation", "--model", "lstm", "--tanh-output",
                    "--out", tmp_path / "x"]) != 0
    assert "tanh-output is for gru" in the_error_line(capsys.readouterr().err)


def test_a_killed_personalise_resumes_at_the_next_subject(tmp_path):
    root = tmp_path / "data"
    write_personal_corpus(root, subjects=("p1", "p2", "p3", "p4"), steps=300)
    run = train_general(root, tmp_path / "general", epochs=2)
    pdir = PersonalDir(run / "personalised")
    cmd = [sys.executable, "-m", "musefusion", "personalise", str(run), "--seeds", "1", "--seeds", "2",
           "--epochs", "15", "--early-stop", "0", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while not pdir.subject("p1").result.is_file() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert pdir.subject("p1").result.is_file() and not pdir.metrics.is_file()
    done_before = {s for s in ("p2", "p3", "p4") if pdir.subject(s).result.is_file()}
    assert len(done_before) < 3, "the run finished before it could be killed"
    kept = pdir.subject("p1").result.stat().st_mtime_ns
    assert run_bounded(cmd, 600).returncode == 0
    ledger = (pdir.path / "jobs.log").read_text().splitlines()
    reruns = [line.split("\t")[:2] for line in ledger if "already-finished" in line]
    assert ["subject p1", "already-finished"] in reruns
    assert pdir.subject("p1").result.stat().st_mtime_ns == kept
    assert read_json(pdir.metrics)["n_subjects"] == 4


def test_reproduce_personalisation_smoke(tmp_path):
    synthesize(tmp_path / "data", SynthConfig(task=Task.PERSONALISATION, seed=4, n_train=3, n_devel=1, n_test=1,
                                              minutes=1.0))
    res = mf.reproduce(tmp_path / "data", task="personalisation", profile="smoke", workers=1, out=tmp_path / "out")
    text = res.report.read_text()
    table = res.personalisation()
    assert len(table) == 2 * 4 and {"devel_personalised_mean", "test_general_std"} <= set(table.columns)
    for target in Task.PERSONALISATION.default_targets:
        assert f"## {target}" in text and (tmp_path / "out" / "plots" / f"gains_{target}.png").is_file()
    assert "| fusion (devel-weighted mean) |" in text and "| bio gru |" in text
    summary = read_json(tmp_path / "out" / "personalisation.json")
    row = summary["targets"]["valence"]["egemaps"]
    assert set(row) >= {"devel_general", "devel_personalised", "test_general", "test_personalised"}
    assert np.isfinite(row["test_personalised"][0])  # the synthetic corpus's test labels are found and used
    with pytest.raises(ConfigError, match="all-models"):
        mf.reproduce(tmp_path / "data", task="personalisation", profile="smoke", all_models=True,
                     out=tmp_path / "out2")


def test_python_api_personalise(general, tmp_path):
    _, run = general
    res = mf.personalise(run, out=tmp_path / "api", seeds=[1], epochs=2)
    assert list(res.subjects()["subject"]) == ["p1", "p2"]
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        mf.personalise(run, out=tmp_path / "bad", epoch=2)


def test_subjects_in_parallel_give_the_same_models(general, tmp_path):
    _, run = general
    one = personalise(run, FAST, out=tmp_path / "one")
    two = personalise(run, FAST, out=tmp_path / "two", workers=2)
    for s in ("p1", "p2"):  # a worker runs torch on 1 thread: the same models up to float summation order
        a, b = (read_json(PersonalDir(r.out).subject(s).result)["seeds"] for r in (one, two))
        assert {k: v["best_epoch"] for k, v in a.items()} == {k: v["best_epoch"] for k, v in b.items()}
        for k in a:
            assert a[k]["devel_ccc"] == pytest.approx(b[k]["devel_ccc"], abs=1e-6)
    pids = {line.split("\t")[3] for line in PersonalDir(two.out).jobs_log.read_text().splitlines()}
    assert str(os.getpid()) not in pids  # the subjects ran in worker processes
