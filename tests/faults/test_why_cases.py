"""Where each case of the third hostile-input round (issue 30, "Why") is tested, and the cases that had no
black-box CLI test of their own. Most cases live in this folder; four live beside the code they exercise (their
fixtures are there). The index test fails when one of them is renamed or removed, so the list cannot rot."""

from __future__ import annotations

import importlib

import pytest

from musefusion.data.synth import SynthConfig, synthesize
from musefusion.types import Task
from tests.cli_helpers import run_cli as run
from tests.cli_helpers import the_error_line, tree_digest

#: case -> "module::test" that asserts it
CASES = {
    "submit --out <label_segments> / <hidden test labels>":
        "tests.faults.test_output_guard::test_no_output_inside_or_over_a_corpus_even_with_overwrite",
    "postprocess --out <data root> --overwrite":
        "tests.faults.test_output_guard::test_no_output_inside_or_over_a_corpus_even_with_overwrite",
    "ensemble A B --out A, postprocess A --out A": "tests.faults.test_output_guard::test_no_output_onto_an_input",
    "ensemble A B --out V, predict A --out B":
        "tests.faults.test_output_guard::test_no_output_over_a_finished_run_of_another_kind",
    "ensemble --overwrite keeps the user's files":
        "tests.faults.test_output_guard::test_overwrite_replaces_only_the_commands_own_entries",
    "two train processes on one --out":
        "tests.faults.test_output_guard::test_two_train_processes_on_one_out_one_proceeds_the_other_is_refused",
    "every other writer, --out in the corpus":
        "tests.faults.test_output_guard::test_no_other_writer_writes_inside_or_over_a_corpus",
    "sweep report --out anywhere": "tests.faults.test_output_guard::test_the_sweep_report_writes_only_where_a_report_belongs",
    "synth/extract --out in the corpus or a run":
        "tests.faults.test_output_guard::test_synth_and_extract_write_only_into_a_data_root",
    "personalise --out over its general run":
        "tests.faults.test_output_guard::test_personalisation_never_writes_onto_its_inputs",
    "a recording longer than 16 min 40 s":
        "tests.faults.test_hostile_inputs::test_a_recording_longer_than_16_minutes_is_data_not_an_absurd_value",
    "a crafted --data path in report.html":
        "tests.faults.test_report_escaping::test_a_crafted_path_is_shown_as_code_and_no_foreign_file_is_embedded",
    "--track-uri with a password":
        "tests.faults.test_tracking_faults::test_an_unreachable_store_with_a_password_is_one_line_without_it",
    "--track after the store is deleted": "tests.faults.test_tracking_faults::test_a_deleted_store_gets_the_run_logged_again",
    "a rerun of reproduce --track logs nothing again":
        "tests.pipelines.test_reproduce::test_a_reproduction_logs_to_mlflow_as_one_parent_with_every_run",
    "a malformed --cluster address (CLI)": "tests.faults.test_why_cases::test_a_malformed_cluster_address_is_one_line",
    "a malformed --cluster address (API)": "tests.pipelines.test_cluster::test_a_malformed_address_is_one_clear_error",
    "a scheduler with no workers, then gone":
        "tests.pipelines.test_cluster::test_a_scheduler_without_workers_says_so_at_once",
    "--label-delay: the kept epoch": "tests.training.test_label_delay::test_the_kept_epoch_is_chosen_on_the_reported_number",
    "a video with no face at any step":
        "tests.cli.test_predict_recording::test_a_video_with_no_face_at_any_step_is_an_error_not_a_curve",
    "reproduce --beyond under another spelling of --out":
        "tests.fusion.test_late::test_a_fusion_is_the_same_whatever_the_streams_spelling_and_after_a_move",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_case_has_its_test(case):
    module, name = CASES[case].split("::")
    assert callable(getattr(importlib.import_module(module), name, None)), f"{case}: {CASES[case]} is gone"


@pytest.mark.parametrize("address", ["not an address", "tcp//127.0.0.1:9", "tcp://127.0.0.1:notaport"])
def test_a_malformed_cluster_address_is_one_line(tmp_path, capsys, monkeypatch, address):
    """Through the CLI: exit 2, one line naming --cluster, no traceback, nothing written."""
    monkeypatch.delenv("MUSEFUSION_DATA", raising=False)
    synthesize(tmp_path / "data", SynthConfig(task=Task.STRESS, seed=1, n_train=3, n_devel=2, n_test=2, minutes=0.3))
    before = tree_digest(tmp_path)
    capsys.readouterr()
    assert run(["reproduce", "--data", tmp_path / "data", "--profile", "smoke", "--stage", "unimodal",
                "--cluster", address, "--out", tmp_path / "out"]) == 2
    line = the_error_line(capsys.readouterr().err)
    assert "--cluster" in line and "tcp://HOST:PORT" in line, line
    assert tree_digest(tmp_path) == before and not (tmp_path / "out").exists()
