"""The unimodal sequence regressors: shapes, padding is ignored, a tiny run overfits."""

from __future__ import annotations

import pytest
import torch

from musefusion import families
from musefusion.config import MODEL_NAMES, model_preset
from musefusion.evaluation.metrics import ccc_masked
from musefusion.models import build_model
from musefusion.training.losses import CCCLoss

D_IN = 5
SMALL = {"hidden": 16, "d_model": 16, "channels": 8}


class _EveryStepObserved(torch.nn.Module):
    """A family that reads observed-mask columns (crossmodal), fed one feature set that is observed wherever the
    step is real: the same ``model(x, mask)`` as the others."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, mask.unsqueeze(-1).to(x.dtype)], dim=-1), mask)


def _build(name: str, **fields) -> torch.nn.Module:
    net = build_model(model_preset(name, **fields), D_IN, (D_IN,))
    return _EveryStepObserved(net) if families.family(name).observed_inputs else net


def _model(name: str, seed: int = 0, **overrides) -> torch.nn.Module:
    torch.manual_seed(seed)
    return _build(name, **{**SMALL, **overrides}).eval()


def _padded_batch(lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    t_max = max(lengths)
    x = torch.randn(len(lengths), t_max, D_IN, generator=g)
    mask = torch.arange(t_max)[None, :] < torch.tensor(lengths)[:, None]
    return x * mask.unsqueeze(-1), mask


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("lengths", [[30], [30, 17, 1], [7, 25]])
def test_output_is_one_value_per_step(name, lengths):
    x, mask = _padded_batch(lengths)
    with torch.no_grad():
        out = _model(name)(x, mask)
    assert out.shape == (len(lengths), max(lengths))
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_padded_values_do_not_change_real_outputs(name):
    lengths = [30, 17, 9]
    x, mask = _padded_batch(lengths)
    g = torch.Generator().manual_seed(5)
    noisy = torch.where(mask.unsqueeze(-1), x, 10 * torch.randn(x.shape, generator=g))
    model = _model(name)
    with torch.no_grad():
        a, b = model(x, mask), model(noisy, mask)
    assert not torch.equal(x, noisy)
    assert torch.equal(a[mask], b[mask])


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_padded_batch_equals_each_sequence_alone(name):
    lengths = [30, 17, 9]
    x, mask = _padded_batch(lengths)
    model = _model(name)
    with torch.no_grad():
        batched = model(x, mask)
        for i, n in enumerate(lengths):
            alone = model(x[i:i + 1, :n], mask[i:i + 1, :n])
            torch.testing.assert_close(batched[i, :n], alone[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_dropout_only_acts_in_train_mode(name):
    x, mask = _padded_batch([20, 12])
    model = _model(name, dropout=0.5)
    with torch.no_grad():
        assert torch.equal(model(x, mask), model(x, mask))
        model.train()
        torch.manual_seed(1)
        a = model(x, mask)
        torch.manual_seed(2)
        b = model(x, mask)
    assert not torch.equal(a, b)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_same_seed_builds_identical_weights(name):
    a, b, c = _model(name, seed=3), _model(name, seed=3), _model(name, seed=4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_stages_follow_the_model_name():
    def stages(name):
        m = _model(name)
        return (m.proj is not None, m.attn is not None, m.gcnn is not None, m.lstm is not None)

    assert stages("lstm") == (False, False, False, True)  # the paper describes no input projection
    assert stages("selfattn") == (False, True, False, False)  # Eq. 1-3 on the raw features
    assert stages("selfattn_lstm") == (False, True, False, True)
    assert stages("gcnn") == (False, False, True, False)
    assert stages("gcnn_lstm") == (False, False, True, True)
    assert stages("bio_lstm") == (False, False, False, True)


def test_the_transformer_variant_and_the_projection_option():
    def stages(name, **o):
        m = _model(name, **o)
        return (m.proj is not None, m.pos is not None, type(m.attn[0]).__name__ if m.attn else None)

    assert stages("selfattn", attention="transformer") == (True, True, "SelfAttentionLayer")
    assert stages("selfattn_lstm") == (False, False, "EncoderSelfAttention")
    assert stages("selfattn_lstm", attention="literal") == (False, False, "PaperSelfAttention")
    assert stages("selfattn_lstm", attention="literal", project_input=True) == (True, False, "PaperSelfAttention")
    assert stages("selfattn", positions=True) == (False, True, "EncoderSelfAttention")
    assert _model("lstm", project_input=True).proj.out_features == SMALL["d_model"]
    assert _model("selfattn_lstm", attention="literal").attn[0].qkv.in_features == D_IN  # C has width d_a
    enc = _model("selfattn_lstm").attn[0].layer  # the stock encoder layer on the raw features, 2021 defaults
    assert enc.self_attn.embed_dim == D_IN and not enc.norm_first and enc.linear1.out_features == 2048
    assert _model("selfattn_lstm", ff_dim=2 * D_IN).attn[0].layer.linear1.out_features == 2 * D_IN


def test_grid_sizes_are_honoured():
    torch.manual_seed(0)
    m = build_model(model_preset("selfattn_lstm", heads=8, attn_layers=4, hidden=32, lstm_layers=4), 16)
    assert len(m.attn) == 4 and m.attn[0].heads == 8 and m.attn[0].layer.self_attn.num_heads == 8
    assert m.lstm.hidden_size == 32 and m.lstm.num_layers == 4
    g = _model("gcnn_lstm", channels=12, hidden=24)
    assert g.gcnn[-1].conv.out_channels == 12 and g.lstm.hidden_size == 24 and g.lstm.num_layers == 1


def _overfit(name: str, steps: int, lr: float = 1e-2, **model) -> float:
    """Fit one 40-step sequence (random inputs, a smooth target) and return the final CCC."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    t = 40
    x = torch.randn(1, t, D_IN, generator=g)
    y = torch.sin(torch.linspace(0, 6, t)).unsqueeze(0) + 0.3 * torch.randn(1, t, generator=g)
    mask = torch.ones(1, t, dtype=torch.bool)
    model = _build(name, **SMALL, dropout=0.0, **model)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = CCCLoss()
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(model(x, mask), y, mask).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        return float(ccc_masked(model(x, mask), y, mask))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_a_tiny_run_overfits_one_sequence(name):
    if name == "selfattn":  # Eq. 1-3 alone: no positions, no non-linearity but the softmax; it learns slower
        assert _overfit(name, steps=400) > 0.8
    else:
        assert _overfit(name, steps=150) > 0.9


def test_a_tiny_run_of_the_transformer_variant_overfits_one_sequence():
    assert _overfit("selfattn", steps=150, attention="transformer") > 0.9
