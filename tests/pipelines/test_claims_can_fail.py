"""Corpora on which the paper's claims can fail: the pipeline must not report a fusion gain its own intervals call
real where there is none.

``synth --variant null``: no feature carries the labels, so no fused test score may have an interval excluding 0.
``--variant one-modality``: only the voice carries them, so adding the face or the bio stream to a fusion must not
be called a real gain, while the voice's own signal must be found (the control that lets the test fail).

Two smoke reproductions (8/6/6 subjects of 1.5 min, seeded) with a budget that learns: the smoke profile's 2
epochs at window hop 50 train nothing (every fused interval contains 0 on the *default* corpus too, so a test on
them could not fail); here 6 epochs at hop 15, batches of 8 at lr 5e-3, about 1.5 min each.

Judged on **test** scores (hidden labels, against which nothing was chosen): on the null corpus the devel scores
of models whose epoch and seed were kept on devel are optimistic (measured here: the A+V fusion's devel interval
[0.03, 0.33] on a corpus with no signal, its test interval [-0.02, 0.30]), which is why the report's devel
intervals say "the kept seed's" and the selection's rule is judged by nested cross-validation.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from musefusion.cli.app import main
from musefusion.data.synth import SynthConfig, synthesize
from musefusion.evaluation import paper
from musefusion.pipelines import reproduce
from musefusion.pipelines.runs import paired_runs
from musefusion.rundir import ReproduceDir
from musefusion.types import Task
from tests.pipelines import STRESS_FEATURES

pytestmark = pytest.mark.slow  # two whole reproductions

LEARNING_SMOKE = dataclasses.replace(reproduce.PROFILES[reproduce.Profile.SMOKE], epochs=6, hop_len=15, fusion_epochs=6,
                                     fusion_hop=15, peer_epochs=6, lr=5e-3, batch_size=8)


def _reproduce(tmp_path_factory, variant: str) -> tuple[Path, Path]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(reproduce.PROFILES, reproduce.Profile.SMOKE, LEARNING_SMOKE)
        root, out = tmp_path_factory.mktemp(f"{variant}_data"), tmp_path_factory.mktemp(f"{variant}_out")
        synthesize(root, SynthConfig(task=Task.STRESS, seed=5, n_train=8, n_devel=6, n_test=6, minutes=1.5,
                                     features=STRESS_FEATURES, variant=variant))
        try:
            main(["reproduce", "--data", str(root), "--profile", "smoke", "--out", str(out), "--workers", "1",
                  "--no-baseline", "--quiet"])
        except SystemExit as exc:
            assert exc.code in (0, None)
    return root, out


@pytest.fixture(scope="module")
def null(tmp_path_factory) -> tuple[Path, Path]:
    """(data root, reproduction) of the null corpus (one fixture per corpus: xdist may run the tests apart)."""
    return _reproduce(tmp_path_factory, "null")


@pytest.fixture(scope="module")
def one_modality(tmp_path_factory) -> tuple[Path, Path]:
    """(data root, reproduction) of the one-modality corpus."""
    return _reproduce(tmp_path_factory, "one-modality")


def _fusion(out: Path, target: str, row: tuple[str, ...]) -> Path:
    return ReproduceDir(out).fusion(target, row, "oof").path


def _test_pair(root: Path, a: Path, b: Path):  # noqa: ANN202
    pair = paired_runs(a, b, test_labels=root / "test_labels")
    assert not pair.note and pair.subjects == 6, pair.note
    return pair


def test_on_the_null_corpus_no_fused_test_score_is_called_real(null):
    root, out = null
    for target in Task.STRESS.default_targets:
        selected = ReproduceDir(out).selected(target).path
        for row in paper.fusion_table(Task.STRESS):
            pair = _test_pair(root, _fusion(out, target, row), selected)
            assert not pair.intervals[0].excludes_zero(), (target, row, pair.ccc[0], pair.intervals[0])
        assert not pair.intervals[1].excludes_zero(), (target, "submission", pair.ccc[1], pair.intervals[1])


def test_on_the_one_modality_corpus_the_voice_is_found_and_fusion_is_no_real_gain_over_it(one_modality):
    """The voice carries arousal and the pipeline finds it; a fusion of the face and bio alone finds nothing (this
    check failed while every recording's arousal rose with time: the models learned the time since the start); and
    the five-stream fusion is not called a real gain over the best voice row (chosen on devel), for either target.
    Between two *fusion* rows no such check is made: with one seed, two Bi-LSTMs trained on different streams
    differ by ±0.05 test CCC from training alone (measured here: A+V 0.435, A+B 0.543, A+V+B 0.492 on arousal),
    which a subject-level interval, holding the models fixed, does not cover."""
    root, out = one_modality
    full = paper.full_fusion_row(Task.STRESS)  # A+V+B
    voiced = _test_pair(root, _fusion(out, "arousal", full), _fusion(out, "arousal", ("V", "B")))
    assert voiced.intervals[0].low > 0, voiced.intervals[0]
    for target in Task.STRESS.default_targets:
        silent = _test_pair(root, _fusion(out, target, ("V", "B")), _fusion(out, target, full))
        assert not silent.intervals[0].excludes_zero(), (target, silent.ccc[0], silent.intervals[0])
        rows = {m: ReproduceDir(out).run(target, f, m) for f, _mod, m in paper.unimodal_table(Task.STRESS)
                if f == "egemaps"}
        best = max(rows.values(), key=lambda r: r.read_metrics()["best"]["devel_ccc"])
        gain = _test_pair(root, _fusion(out, target, full), best.path).difference
        assert gain.verdict != "a higher", (target, best.path.name, gain)
