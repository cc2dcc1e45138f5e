"""The cross-modal model: a real step's output never depends on another branch's masked or padded steps, it
trains on several feature sets through the ordinary run, and its family reads each set's observed mask."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch

from musefusion import fsutil
from musefusion.config import model_preset
from musefusion.errors import ConfigError
from musefusion.models import build_model
from tests.cli_helpers import run_cli

DIMS = (3, 5, 2)


def _inputs(seed: int = 0, b: int = 2, t: int = 30):
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(b, t, sum(DIMS), generator=g)
    observed = torch.rand(b, t, len(DIMS), generator=g) > 0.3
    mask = torch.ones(b, t, dtype=torch.bool)
    mask[1, 22:] = False  # the second sequence is 22 steps long (padding after)
    return feats, observed, mask


def _net():
    torch.manual_seed(0)
    net = build_model(model_preset("crossmodal", d_model=16, heads=4, hidden=8, dropout=0.0), sum(DIMS), DIMS)
    return net.eval()


def _run(net, feats, observed, mask):
    with torch.no_grad():
        return net(torch.cat([feats, observed.float()], dim=-1), mask)


def test_masked_and_padded_steps_of_another_branch_do_not_reach_a_real_step():
    net = _net()
    feats, observed, mask = _inputs()
    base = _run(net, feats, observed, mask)
    changed = feats.clone()
    lo, hi = DIMS[0], DIMS[0] + DIMS[1]  # branch 2 (the face, say)
    hidden_steps = (~observed[..., 1]) | (~mask)
    noise = torch.randn(changed[..., lo:hi].shape) * 100
    changed[..., lo:hi] = torch.where(hidden_steps.unsqueeze(-1), changed[..., lo:hi] + noise, changed[..., lo:hi])
    after = _run(net, changed, observed, mask)
    assert torch.allclose(after[mask], base[mask], atol=1e-5)
    # a change at an observed step of that branch does reach the output (the test above can fail)
    seen = feats.clone()
    seen[..., lo:hi] = torch.where(observed[..., 1:2], seen[..., lo:hi] + 1.0, seen[..., lo:hi])
    assert not torch.allclose(_run(net, seen, observed, mask)[mask], base[mask], atol=1e-3)


def test_a_step_with_no_observed_set_still_has_a_finite_output():
    net = _net()
    feats, observed, mask = _inputs(seed=1)
    observed[:, 5] = False
    out = _run(net, feats, observed, mask)
    assert torch.isfinite(out[mask]).all() and out.shape == mask.shape


def test_crossmodal_trains_on_several_feature_sets(synth_stress, tmp_path):
    out = tmp_path / "run"
    with contextlib.redirect_stdout(io.StringIO()):
        assert run_cli(["train", "--data", synth_stress, "--model", "crossmodal", "--features", "egemaps+vggface+bio",
                        "--epochs", "3", "--win-len", "40", "--hop-len", "20", "--out", out]) == 0
    m = fsutil.read_json(out / "metrics.json")
    assert m["model"] == "crossmodal" and m["features"] == ["egemaps", "vggface", "ECG", "resp", "BPM"]
    assert np.isfinite(m["best"]["devel_ccc"]) and m["best"]["devel_ccc"] > 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        assert run_cli(["predict", out, "--out", tmp_path / "again"]) == 0  # the checkpoint rebuilds the branches
    a = (out / "predictions" / "devel").glob("*.csv")
    for f in a:
        assert f.read_bytes() == (tmp_path / "again" / "predictions" / "devel" / f.name).read_bytes()


def test_heads_that_do_not_divide_d_model_are_refused():
    with pytest.raises(ConfigError, match=r"d_model \(10\) must be divisible by heads \(4\)"):
        model_preset("crossmodal", d_model=10, heads=4)
