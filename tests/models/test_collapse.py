"""No registered model collapses at initialisation: its output varies within a window and the per-window CCC loss
has a gradient on its output layer.

Why this exists: the ``literal`` self-attention (bare Eq. 1, no residual) is a convex average of its value
vectors, nearly uniform at initialisation; two stacked layers make the output constant within a window. A
per-window CCC scores a constant 0 and its gradient vanishes with the variance, so those rows sat at devel CCC 0.
Measured here (d_in = 88, 300-step windows of z-scored AR(1) inputs, PyTorch's default initialisation, eval mode;
columns: the output's within-window std / a per-step linear readout's, within-window std / the output's std over
all windows, |gradient| of the output layer):

=============================  =======  =======  =======
preset                         readout  shape    grad
=============================  =======  =======  =======
``selfattn`` encoder (default)  1.06     0.98     2.7
``selfattn`` literal, 1 layer   4.5e-2   0.40     0.14
``selfattn`` literal, 2 layers  4.2e-6   8.0e-5   1.6e-5
``baseline`` (4 bi-LSTM layers) 5.7e-3   0.98     9.0e-3
other families                  ≥1.8e-2  ≥0.95    ≥7e-2
=============================  =======  =======  =======

So the floors: a collapsed output is a window constant (shape below 0.1) of vanishing size (readout ratio below
1e-3; the issue asked 1e-2, which the official baseline's four stacked bidirectional LSTMs miss at 5.7e-3 while
varying freely within the window and training well) with no gradient (below 1e-3).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from musefusion import families
from musefusion.config import model_preset
from musefusion.models.registry import build_model
from musefusion.training.losses import CCCLoss

D_IN, DIMS, T, B = 88, (40, 48), 300, 4
#: floors: within-window std / a linear readout's, within-window std / the output's overall std, |grad| of the head
READOUT_FLOOR, SHAPE_FLOOR, GRAD_FLOOR = 1e-3, 0.1, 1e-3


def _inputs(d_in: int) -> tuple[torch.Tensor, torch.Tensor]:
    """z-scored AR(1) features (coefficient 0.9, like slow 2 Hz descriptors) and a full mask."""
    g = torch.Generator().manual_seed(0)
    e = torch.randn(B, T, d_in, generator=g)
    x = torch.empty_like(e)
    x[:, 0] = e[:, 0]
    for t in range(1, T):
        x[:, t] = 0.9 * x[:, t - 1] + (1 - 0.81) ** 0.5 * e[:, t]
    x = (x - x.mean(dim=(0, 1))) / x.std(dim=(0, 1))
    return x, torch.ones(B, T, dtype=torch.bool)


def _measure(cfg_name: str, **fields: object) -> tuple[float, float, float]:
    """(within-window std of the output / that of a per-step linear readout, within-window std / the output's std
    over all steps of all windows, |grad| of the output layer)."""
    torch.manual_seed(0)
    fam = families.family(cfg_name)
    cfg = model_preset(cfg_name, **fields)
    x, mask = _inputs(D_IN)
    if fam.observed_inputs:  # features followed by one observed column per set
        x = torch.cat([x, torch.ones(B, T, len(DIMS))], dim=-1)
        model = build_model(cfg, D_IN, DIMS)
    else:
        model = build_model(cfg, D_IN)
    model.eval()  # dropout off: its noise would vary a collapsed output per step and hide the collapse
    out = model(x, mask)
    readout = nn.Linear(D_IN, 1)(x[..., :D_IN]).squeeze(-1)
    within = out.detach().std(dim=1).mean()
    ratio = float(within / readout.detach().std(dim=1).mean())
    shape = float(within / out.detach().std().clamp_min(1e-30))
    target = torch.randn(B, T, generator=torch.Generator().manual_seed(1))
    CCCLoss("sequence")(out, target, mask).backward()
    head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    assert head.weight.grad is not None
    return ratio, shape, float(head.weight.grad.abs().sum())


@pytest.mark.parametrize("name", families.names())
def test_no_registered_preset_collapses_at_initialisation(name: str) -> None:
    ratio, shape, grad = _measure(name)
    assert ratio >= READOUT_FLOOR, f"{name}: output within-window std is {ratio:.2e} of a linear readout's"
    assert shape >= SHAPE_FLOOR, f"{name}: the output is nearly constant within a window ({shape:.2e})"
    assert grad >= GRAD_FLOOR, f"{name}: the per-window CCC loss has no gradient on the output layer ({grad:.2e})"


@pytest.mark.parametrize("attention", ["encoder", "literal", "transformer"])
@pytest.mark.parametrize("name", ["selfattn", "selfattn_lstm"])
def test_each_attention_with_its_preset_keeps_within_window_variance(name: str, attention: str) -> None:
    ratio, shape, grad = _measure(name, attention=attention)
    assert ratio >= READOUT_FLOOR and shape >= SHAPE_FLOOR and grad >= GRAD_FLOOR


def test_two_bare_literal_layers_collapse() -> None:
    """The ``selfattn`` preset before 0.2 (two literal layers): a window constant, and the check catches it."""
    ratio, shape, grad = _measure("selfattn", attention="literal", attn_layers=2)
    assert ratio < READOUT_FLOOR and shape < SHAPE_FLOOR and grad < GRAD_FLOOR
    one, one_shape, _ = _measure("selfattn", attention="literal", attn_layers=1)
    assert ratio < one / 100 and shape < one_shape / 100  # each bare layer averages the window again


def test_literal_preset_is_one_layer_and_paper_reads_as_literal() -> None:
    assert model_preset("selfattn", attention="literal").attn_layers == 1
    assert model_preset("selfattn", attention="paper").attention.value == "literal"  # runs written before 0.2
    assert model_preset("selfattn").attention.value == "encoder"
    assert model_preset("selfattn", attention="literal", attn_layers=2).attn_layers == 2  # an override wins
