"""The CCC loss: value, finite gradients, and the mask (batch and sequence modes)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musefusion.training.losses import CCCLoss


def _reference_ccc(pred: np.ndarray, target: np.ndarray) -> float:
    mp, mt = pred.mean(), target.mean()
    cov = ((pred - mp) * (target - mt)).mean()
    return 2 * cov / (pred.var() + target.var() + (mp - mt) ** 2)


def _batch(seed: int = 0, b: int = 3, t: int = 20):
    g = torch.Generator().manual_seed(seed)
    target = torch.randn(b, t, generator=g, dtype=torch.float64)
    pred = 0.5 * target + torch.randn(b, t, generator=g, dtype=torch.float64)
    mask = torch.ones(b, t, dtype=torch.bool)
    mask[1, 12:] = False  # a shorter sequence
    mask[2, ::4] = False  # unlabelled steps
    return pred, target, mask


def _loss_and_grad(mode, pred, target, mask):
    pred = pred.clone().requires_grad_(True)
    loss = CCCLoss(mode)(pred, target, mask)
    loss.backward()
    return loss.detach(), pred.grad


def test_batch_mode_is_one_minus_ccc_over_all_masked_steps():
    pred, target, mask = _batch()
    loss = CCCLoss("batch")(pred, target, mask)
    m = mask.numpy()
    assert float(loss) == pytest.approx(1 - _reference_ccc(pred.numpy()[m], target.numpy()[m]), abs=1e-12)


def test_sequence_mode_is_one_minus_mean_of_per_sequence_cccs():
    pred, target, mask = _batch()
    loss = CCCLoss("sequence")(pred, target, mask)
    p, t, m = pred.numpy(), target.numpy(), mask.numpy()
    expected = 1 - np.mean([_reference_ccc(p[i][m[i]], t[i][m[i]]) for i in range(len(p))])
    assert float(loss) == pytest.approx(expected, abs=1e-12)
    assert float(loss) != pytest.approx(float(CCCLoss("batch")(pred, target, mask)), abs=1e-6)


def test_perfect_prediction_gives_zero_loss():
    _, target, mask = _batch()
    for mode in ("batch", "sequence"):
        assert float(CCCLoss(mode)(target, target, mask)) == pytest.approx(0.0, abs=1e-12)


def test_unknown_mode_raises():
    with pytest.raises(ValueError, match="CCCLoss mode 'frame' must be 'batch' or 'sequence'"):
        CCCLoss("frame")


@pytest.mark.parametrize("mode", ["batch", "sequence"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_constant_prediction_has_finite_gradients(mode, dtype):
    _, target, mask = _batch()
    pred = torch.full(target.shape, 0.3, dtype=dtype)
    loss, grad = _loss_and_grad(mode, pred, target.to(dtype), mask)
    assert float(loss) == pytest.approx(1.0, abs=1e-6)  # a constant has CCC 0
    assert torch.isfinite(grad).all()
    assert grad[mask].abs().sum() > 0  # and it still tells the model where to go


@pytest.mark.parametrize("mode", ["batch", "sequence"])
def test_constant_prediction_of_constant_target_has_finite_gradients(mode):
    pred = torch.zeros(2, 8)
    loss, grad = _loss_and_grad(mode, pred, torch.zeros(2, 8), torch.ones(2, 8, dtype=torch.bool))
    assert float(loss) == 1.0
    assert torch.isfinite(grad).all()


def test_fully_masked_sequence_has_finite_loss_and_zero_gradient():
    pred, target, mask = _batch()
    mask[0] = False
    loss, grad = _loss_and_grad("sequence", pred, target, mask)
    assert torch.isfinite(loss)
    assert torch.equal(grad[0], torch.zeros_like(grad[0]))


@pytest.mark.parametrize("mode", ["batch", "sequence"])
def test_masked_steps_get_zero_gradient(mode):
    pred, target, mask = _batch()
    _, grad = _loss_and_grad(mode, pred, target, mask)
    assert torch.equal(grad[~mask], torch.zeros(int((~mask).sum()), dtype=grad.dtype))
    assert (grad[mask] != 0).all()


@pytest.mark.parametrize("mode", ["batch", "sequence"])
def test_changing_masked_values_changes_neither_loss_nor_gradients(mode):
    pred, target, mask = _batch()
    loss, grad = _loss_and_grad(mode, pred, target, mask)
    g = torch.Generator().manual_seed(99)
    pred2 = torch.where(mask, pred, 100 * torch.randn(pred.shape, generator=g, dtype=pred.dtype))
    target2 = torch.where(mask, target, -50 * torch.randn(target.shape, generator=g, dtype=target.dtype))
    assert not torch.equal(pred2, pred) and not torch.equal(target2, target)
    loss2, grad2 = _loss_and_grad(mode, pred2, target2, mask)
    assert torch.equal(loss2, loss)
    assert torch.equal(grad2, grad)


@pytest.mark.parametrize("mode", ["batch", "sequence"])
def test_float_mask_weights_equal_bool_mask(mode):
    pred, target, mask = _batch()
    a = CCCLoss(mode)(pred, target, mask)
    b = CCCLoss(mode)(pred, target, mask.double())
    assert torch.equal(a, b)
