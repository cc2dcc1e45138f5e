"""``check_corpus``: a summary of a good corpus and the list of problems of a broken one."""

from __future__ import annotations

import pandas as pd
import pytest

from musefusion.data.check import check_corpus
from musefusion.errors import MissingDataError
from musefusion.types import Task
from tests.corpus_faults import FAULTS, Fault, label_file
from tests.personal_corpus import write_personal_corpus

CHECKED = [f for f in FAULTS if f.in_check]


def test_synthetic_corpus_is_ok(synth_stress):
    report = check_corpus(synth_stress, Task.STRESS)
    assert report.ok and report.problems == []
    assert report.partitions.set_index("partition")["subjects"].to_dict() == {"train": 8, "devel": 3, "test": 3}
    features = report.features.set_index("feature")
    assert features.loc["egemaps", "dim"] == 88 and features.loc["vggface", "dim"] == 512
    assert features.loc["vggface", "fill_rate"] > features.loc["egemaps", "fill_rate"]  # faces go missing
    assert (report.targets.set_index("target")["labelled_rate"] == 1.0).all()


def test_tiny_corpus_is_ok(tiny_corpus):
    report = check_corpus(tiny_corpus, Task.STRESS)
    assert report.ok and report.warnings == []
    assert report.partitions["steps"].tolist() == [40, 40, 40]
    assert report.features["files"].tolist() == [3, 3]


@pytest.mark.parametrize("fault", CHECKED, ids=[f.name for f in CHECKED])
def test_a_broken_corpus_lists_the_problem_with_the_file(tiny_corpus, fault: Fault):
    named = fault.mutate(tiny_corpus / "c3_muse_stress")
    report = check_corpus(tiny_corpus, Task.STRESS)
    assert not report.ok
    assert any(f"'{named}'" in p for p in report.problems), report.problems
    assert all("\n" not in p for p in report.problems)


def test_a_missing_test_label_file_is_only_a_warning(tiny_corpus):
    path = label_file(tiny_corpus / "c3_muse_stress", "3")
    path.unlink()
    report = check_corpus(tiny_corpus, Task.STRESS)
    assert report.ok
    assert any(str(path) in w for w in report.warnings)


def test_a_missing_root_raises(tmp_path):
    with pytest.raises(MissingDataError, match="not found"):
        check_corpus(tmp_path / "nowhere", Task.STRESS)


def test_personalisation_corpus_lists_subjects_and_missing_chunks(tmp_path):
    corpus = write_personal_corpus(tmp_path)
    report = check_corpus(tmp_path, Task.PERSONALISATION)
    assert report.ok, report.problems
    assert list(report.subjects["subject"]) == ["p1", "p2"]
    assert report.subjects[["train_chunks", "devel_chunks", "test_chunks"]].to_numpy().tolist() == [[1, 1, 1]] * 2
    part = pd.read_csv(corpus / "metadata" / "partition.csv")
    part = part[part["Id"] != "p2_devel"]
    part.loc[part["Id"] == "p1_devel", "Proposal"] = "train"
    part.to_csv(corpus / "metadata" / "partition.csv", index=False)
    problems = check_corpus(tmp_path, Task.PERSONALISATION).problems
    assert any("'p2' has no devel chunk" in p for p in problems), problems
    assert any("chunk 'p1_devel' is listed as train" in p for p in problems), problems
