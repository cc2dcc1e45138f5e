"""The training loop: schedules, early stopping, model selection on devel, whole-sequence prediction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musefusion.config import DataConfig, Schedule, TrainConfig, model_preset
from musefusion.data.corpus import load_corpus
from musefusion.errors import ConfigError
from musefusion.evaluation.metrics import ccc_concatenated
from musefusion.models import build_model
from musefusion.training import loop
from musefusion.training.loop import Windows, cpu_has_bf16, fit, predict_arrays, resolve_device
from musefusion.training.run import make_train_windows
from musefusion.training.seeds import seed_everything

SMALL = {"hidden": 16, "d_model": 16, "channels": 8}


@pytest.fixture(scope="module")
def corpus(synth_stress):
    return load_corpus(DataConfig(root=synth_stress, features=("egemaps",), win_len=40, hop_len=20, cache=False))


@pytest.fixture(scope="module")
def windows(corpus) -> Windows:
    return make_train_windows(corpus.partition("train"), 40, 20)


def _fit(corpus, windows, name="lstm", seed=1, devel=True, **train):
    seed_everything(seed)
    model = build_model(model_preset(name, **SMALL), corpus.d_in)
    cfg = TrainConfig(**{"batch_size": 8, "lr": 5e-3, "device": "cpu", **train})
    dev = corpus.partition("devel") if devel else []
    result = fit(model, windows, [s.x for s in dev], [s.y for s in dev], cfg, seed)
    return model, result


def test_train_windows_cover_every_train_step(corpus, windows):
    seqs = corpus.partition("train")
    assert windows.x.shape[1:] == (40, corpus.d_in)
    assert windows.step_mask.sum() >= sum(len(s) for s in seqs)
    assert (windows.label_mask <= windows.step_mask).all()
    assert np.isfinite(windows.x).all() and np.isfinite(windows.y).all()


def test_plateau_schedule_stops_early(corpus, windows):
    _, r = _fit(corpus, windows, schedule="plateau", epochs=40, early_stop=3, lr_patience=1, lr=1e-2)
    h = r.history
    assert len(h) < 40
    devel = [row["devel_ccc"] for row in h]
    assert r.best_epoch == int(np.argmax(devel)) + 1
    assert len(h) - r.best_epoch == 3  # stopped after exactly early_stop epochs without improvement
    assert r.best_score == max(devel)
    lrs = [row["lr"] for row in h]
    assert all(b <= a for a, b in zip(lrs, lrs[1:], strict=False))
    assert all(np.log2(1e-2 / lr) == pytest.approx(round(np.log2(1e-2 / lr))) for lr in lrs)  # halvings only


def test_paper_schedule_never_stops_early_by_default(corpus, windows):
    _, r = _fit(corpus, windows, schedule="paper", epochs=6, lr_patience=1, lr=1e-2)
    assert [row["epoch"] for row in r.history] == [1, 2, 3, 4, 5, 6]


def test_paper_schedule_stops_on_a_devel_plateau_when_asked(corpus, windows):
    """early_stop under the paper schedule (the quick profile's convergence budget): training ends after exactly
    that many epochs without a better devel CCC, and the kept epoch is the best one."""
    _, r = _fit(corpus, windows, schedule="paper", epochs=40, early_stop=2, lr_patience=1, lr=5e-2)
    devel = [row["devel_ccc"] for row in r.history]
    assert len(devel) < 40
    assert r.best_epoch == int(np.argmax(devel)) + 1
    assert len(devel) - r.best_epoch == 2


def test_paper_schedule_halves_the_lr_when_the_train_loss_stalls(corpus, windows):
    """With a learning rate too small to move the weights the train loss stalls at once; lr_patience 2 halves it
    once 2 epochs in a row brought no decrease (the replay checks every epoch against the paper's rule)."""
    _, r = _fit(corpus, windows, schedule=Schedule.PAPER, epochs=8, lr_patience=2, lr=1e-6)
    lrs = [row["lr"] for row in r.history]
    losses = [row["train_loss"] for row in r.history]
    assert lrs[0] == 1e-6 and min(lrs) < 1e-6
    best, stale = np.inf, 0
    for k, loss in enumerate(losses[:-1]):  # replay: any decrease resets the count; 2 stale epochs halve
        if loss < best:
            best, stale = loss, 0
        else:
            stale += 1
        if stale == 2:
            assert lrs[k + 1] == lrs[k] / 2
            stale = 0
        else:
            assert lrs[k + 1] == lrs[k]


class _Constant(torch.nn.Module):
    """Predicts 0.5 everywhere: the CCC loss is exactly 1 in every epoch and its weight never moves."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return x[..., 0] * 0.0 + self.w * 0.0 + 0.5


@pytest.mark.parametrize("monitor", ["train", "devel"])
def test_paper_schedule_halves_after_15_epochs_without_a_decrease_and_not_before(corpus, windows, monitor):
    """Sec. 5.2: "when the loss does not decrease in 15 consecutive epochs, the learning rate will be halved".
    A constant loss from epoch 1: epochs 2-16 are the 15 without a decrease, so epoch 17 runs at half the rate,
    and epochs 17-31 the next 15 (epoch 32 at a quarter)."""
    dev = corpus.partition("devel")
    cfg = TrainConfig(schedule="paper", lr_patience=15, lr_monitor=monitor, epochs=33, batch_size=64, lr=1e-3,
                      device="cpu")
    r = fit(_Constant(), windows, [s.x for s in dev], [s.y for s in dev], cfg, seed=1)
    lrs = [row["lr"] for row in r.history]
    assert {row["train_loss"] for row in r.history} == {1.0}
    assert lrs[:16] == [1e-3] * 16  # epochs 1-16
    assert lrs[16:31] == [5e-4] * 15  # epochs 17-31
    assert lrs[31:] == [2.5e-4] * 2  # epochs 32-33


def test_paper_schedule_stops_after_k_halvings_without_a_new_best(corpus, windows):
    """stop_halvings = 2 with a constant model: the best devel epoch is the first, the rate halves after epochs 4
    and 7 (lr_patience 3), so training ends after epoch 7; with stop_halvings = 0 it runs every epoch."""
    dev = corpus.partition("devel")
    base = {"schedule": "paper", "lr_patience": 3, "epochs": 12, "batch_size": 64, "lr": 1e-3, "device": "cpu"}
    r = fit(_Constant(), windows, [s.x for s in dev], [s.y for s in dev], TrainConfig(**base, stop_halvings=2), seed=1)
    assert r.best_epoch == 1 and len(r.history) == 7
    assert [row["lr"] for row in r.history] == [1e-3] * 4 + [5e-4] * 3
    full = fit(_Constant(), windows, [s.x for s in dev], [s.y for s in dev], TrainConfig(**base), seed=1)
    assert len(full.history) == 12


def test_the_best_devel_epoch_is_kept(corpus, windows):
    model, r = _fit(corpus, windows, epochs=4)
    devel = [row["devel_ccc"] for row in r.history]
    assert r.best_epoch == int(np.argmax(devel)) + 1
    model.load_state_dict(r.state_dict)
    preds = predict_arrays(model, [s.x for s in corpus.partition("devel")], torch.device("cpu"))
    assert ccc_concatenated(preds, [s.y for s in corpus.partition("devel")]) == pytest.approx(r.best_score, abs=1e-6)


def test_without_devel_the_last_epoch_is_kept(corpus, windows):
    model, r = _fit(corpus, windows, epochs=3, devel=False)
    assert r.best_epoch == 3
    assert np.isnan(r.best_score)
    assert all(np.isnan(row["devel_ccc"]) for row in r.history)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in r.state_dict.items())


def test_eval_every_skips_devel_scoring_but_not_the_last_epoch(corpus, windows):
    _, r = _fit(corpus, windows, epochs=5, eval_every=2)
    scored = [row["epoch"] for row in r.history if not np.isnan(row["devel_ccc"])]
    assert scored == [2, 4, 5]


def test_train_loss_falls(corpus, windows):
    _, r = _fit(corpus, windows, epochs=4)
    losses = [row["train_loss"] for row in r.history]
    assert losses[-1] < losses[0]
    assert all(0.0 <= loss <= 2.0 for loss in losses)  # 1 - CCC


def test_predict_arrays_keeps_order_and_lengths(corpus):
    torch.manual_seed(0)
    model = build_model(model_preset("gcnn_lstm", **SMALL), corpus.d_in)
    model.train()
    seqs = [s.x for s in corpus.partition("train")]
    seqs = [seqs[0][:30], seqs[1], seqs[2][:5], seqs[3][:100]]
    preds = predict_arrays(model, seqs, torch.device("cpu"), batch_size=3)
    assert model.training  # restored
    assert [len(p) for p in preds] == [len(x) for x in seqs]
    model.eval()
    with torch.no_grad():
        for x, p in zip(seqs, preds, strict=True):
            alone = model(torch.from_numpy(x)[None], torch.ones(1, len(x), dtype=torch.bool))[0].numpy()
            np.testing.assert_allclose(p, alone, atol=1e-5, rtol=1e-5)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no native bfloat16: bf16 is refused here (tested below)")
@pytest.mark.parametrize("name", ["selfattn_lstm", "lstm"])
def test_bf16_autocast_trains_to_within_a_stated_tolerance_of_fp32(corpus, windows, name):
    """``precision = bf16``: the same seed reaches a devel CCC within 0.05 of float32's (the forward pass is
    rounded to bfloat16, so the numbers differ, but not the outcome)."""
    _, fp32 = _fit(corpus, windows, name=name, epochs=6)
    _, bf16 = _fit(corpus, windows, name=name, epochs=6, precision="bf16")
    assert [r["train_loss"] for r in bf16.history] != [r["train_loss"] for r in fp32.history]  # it was used
    assert abs(bf16.best_score - fp32.best_score) <= 0.05, (fp32.best_score, bf16.best_score)
    assert fp32.best_score > 0.1  # and both learned something


def test_cpu_bf16_is_read_from_the_cpu_flags():
    assert cpu_has_bf16("processor : 0\nflags : fpu sse avx512f avx512_bf16 fma\n")
    assert cpu_has_bf16("flags\t\t: fpu amx_bf16 amx_tile\n")
    assert not cpu_has_bf16("flags : fpu sse avx2 avx512f avx512bw\n")  # AVX-512 without BF16: emulated
    assert not cpu_has_bf16("model name : bf16 in a name is not a flag\n")


def test_bf16_is_refused_where_the_cpu_lacks_it(corpus, windows, tmp_path, monkeypatch):
    from musefusion.config import RunConfig
    from musefusion.training.run import train_run

    monkeypatch.setattr(loop, "cpu_has_bf16", lambda cpuinfo=None: False)
    with pytest.raises(ConfigError, match=r"--precision bf16: this CPU has no native bfloat16.*--precision fp32"):
        _fit(corpus, windows, epochs=1, precision="bf16")
    cfg = RunConfig(corpus.config, model_preset("lstm"), TrainConfig(epochs=1, seeds=(1,), precision="bf16"))
    with pytest.raises(ConfigError, match="--precision bf16"):
        train_run(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()  # refused before any work
    _fit(corpus, windows, epochs=1)  # float32 is never refused
