"""The paper's search space (Sec. 5.2), space files and the pure grid expansion."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from musefusion.config import DataConfig, RunConfig, SweepConfig, TrainConfig, model_preset
from musefusion.errors import ConfigError
from musefusion.sweep.grid import apply_params, check_space, expand_grid, grid_points, load_space, paper_space

LR = (2e-4, 1e-3, 2e-3, 5e-3)
BATCH = (64, 128, 256)


def _sweep(model: str, space: dict | None = None, attention: str | None = None, **kw) -> SweepConfig:
    base = RunConfig(DataConfig("data"), model_preset(model, **({"attention": attention} if attention else {})),
                     TrainConfig(epochs=3))
    return SweepConfig(base=base, space=tuple((space or paper_space(model)).items()), **kw)


def test_paper_grid_selfattn_lstm_is_the_full_product():
    cfgs = expand_grid(_sweep("selfattn_lstm"))
    assert len(cfgs) == 2 * 3 * 3 * 2 * 4 * 3 == 432
    got = {(c.model.heads, c.model.attn_layers, c.model.hidden, c.model.lstm_layers, c.train.lr, c.train.batch_size)
           for c in cfgs}
    assert got == set(itertools.product((4, 8), (1, 2, 4), (64, 128, 256), (2, 4), LR, BATCH))
    # the fixed part is untouched
    assert {(c.model.name, c.model.d_model, c.train.epochs, c.data.root) for c in cfgs} == {
        ("selfattn_lstm", 128, 3, Path("data"))}


def test_paper_grid_gcnn_lstm_uses_its_own_hidden_sizes_and_no_attention():
    space = paper_space("gcnn_lstm")
    assert space == {"channels": (64, 128), "hidden": (128, 256, 1024), "lr": LR, "batch_size": BATCH}
    cfgs = expand_grid(_sweep("gcnn_lstm"))
    assert len(cfgs) == 2 * 3 * 4 * 3
    assert {c.model.hidden for c in cfgs} == {128, 256, 1024}
    assert {c.model.heads for c in cfgs} == {model_preset("gcnn_lstm").heads}  # not swept


@pytest.mark.parametrize(("model", "params", "size"), [
    ("lstm", {"hidden", "lstm_layers", "lr", "batch_size"}, 3 * 2 * 12),
    ("selfattn", {"heads", "attn_layers", "lr", "batch_size"}, 2 * 3 * 12),
    ("gcnn", {"channels", "lr", "batch_size"}, 2 * 12),
    ("bio_lstm", {"hidden", "lstm_layers", "lr", "batch_size"}, 3 * 2 * 12),
])
def test_paper_space_has_only_the_parameters_the_model_uses(model, params, size):
    assert set(paper_space(model)) == params
    assert len(grid_points(paper_space(model))) == size


def test_grid_points_order_and_apply_params():
    pts = grid_points({"heads": (4, 8), "lr": (1e-3, 5e-3)})
    assert pts == [{"heads": 4, "lr": 1e-3}, {"heads": 4, "lr": 5e-3}, {"heads": 8, "lr": 1e-3},
                   {"heads": 8, "lr": 5e-3}]
    cfg = apply_params(RunConfig(DataConfig("d"), model_preset("selfattn")), {"heads": 8, "batch_size": 256})
    assert (cfg.model.heads, cfg.train.batch_size) == (8, 256)


def test_space_file_narrows_and_widens(tmp_path):
    f = tmp_path / "space.toml"
    f.write_text("[space]\nheads = [8]\nlr = [0.001, 0.01]\ndropout = [0.0, 0.3]\n")
    space = load_space(f, "selfattn_lstm")
    assert space["heads"] == (8,) and space["lr"] == (0.001, 0.01) and space["dropout"] == (0.0, 0.3)
    assert space["hidden"] == (64, 128, 256)  # kept from the paper
    f.write_text("paper_space = false\n[space]\nlr = [0.001]\n")
    assert load_space(f, "gcnn") == {"lr": (0.001,)}


def test_sweep_config_round_trip():
    sw = _sweep("gcnn_lstm", trials=7, sampler="grid", storage="postgresql://u@h/db")
    assert SweepConfig.from_dict(sw.to_dict()) == sw


@pytest.mark.parametrize(("space", "match"), [
    ({}, "space is empty"),
    ({"channels": ()}, "has no values"),
    ({"heads": (4, 8)}, "not used by model 'gcnn'"),
    ({"epochs": (1, 2)}, "cannot be swept"),
    ({"lr": (1e-3, 1e-3)}, "lists a value twice"),
])
def test_bad_spaces_raise(space, match):
    with pytest.raises(ConfigError, match=match):
        _sweep("gcnn", space=space) if space else SweepConfig(
            base=RunConfig(DataConfig("d"), model_preset("gcnn")), space=())


def test_space_file_value_must_be_a_list(tmp_path):
    f = tmp_path / "space.toml"
    f.write_text("[space]\nlr = 0.001\n")
    with pytest.raises(ConfigError, match="give a list of values"):
        load_space(f, "gcnn")


def test_check_space_rejects_heads_that_do_not_divide_d_model():
    with pytest.raises(ConfigError, match="invalid for model 'selfattn'"):  # the transformer projects to d_model
        check_space(_sweep("selfattn", {"heads": (4, 3)}, attention="transformer"))
    check_space(_sweep("selfattn", {"heads": (4, 3)}))  # the paper attention falls back to gcd(d_a, h) heads
