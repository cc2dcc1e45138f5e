"""RunConfig (config.py) as the training code uses it: round trips and one error per bad field.

Lives here because the run configs are written and read by training.run; see also tests for the data config.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from musefusion import fsutil
from musefusion.config import (
    MODEL_NAMES,
    DataConfig,
    ModelConfig,
    RunConfig,
    Schedule,
    TrainConfig,
    model_preset,
)
from musefusion.errors import ConfigError
from musefusion.types import FillPolicy, Task


def _full_config(tmp_path: Path) -> RunConfig:
    return RunConfig(
        DataConfig(root=tmp_path, task=Task.PHYSIO, target="anno12_EDA", features=("vggish", "bio"), win_len=120,
                   hop_len=30, fill=FillPolicy.FFILL, normalize=False, train_partitions=("train", "devel"),
                   cache=False, cache_dir=tmp_path / "cache"),
        model_preset("gcnn_lstm", channels=128, hidden=1024, kernel=5, dropout=0.25),
        TrainConfig(epochs=7, lr=2e-3, batch_size=128, schedule=Schedule.PLATEAU, lr_patience=4, early_stop=9,
                    weight_decay=1e-5, seeds=(3, 1, 2), device="cpu", num_threads=2, eval_every=3))


def test_round_trip_through_dict(tmp_path):
    cfg = _full_config(tmp_path)
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    default = RunConfig(DataConfig(root=tmp_path))
    assert RunConfig.from_dict(default.to_dict()) == default


def test_round_trip_through_toml(tmp_path):
    cfg = _full_config(tmp_path)
    fsutil.write_toml(tmp_path / "config.toml", cfg.to_dict())
    assert RunConfig.from_dict(fsutil.read_toml(tmp_path / "config.toml")) == cfg


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_preset_round_trips(name):
    cfg = model_preset(name)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.name == name


def test_dict_is_plain_toml_values(tmp_path):
    d = _full_config(tmp_path).to_dict()
    assert d["data"]["task"] == "physio" and d["data"]["features"] == ["vggish", "ECG", "resp", "BPM"]
    assert d["train"]["schedule"] == "plateau" and d["train"]["seeds"] == [3, 1, 2]
    assert d["data"]["root"] == str(tmp_path)


def test_from_dict_coerces_toml_types(tmp_path):
    cfg = TrainConfig.from_dict({"lr": 1, "seeds": [1, 2], "schedule": "plateau"})
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert cfg.seeds == (1, 2) and cfg.schedule is Schedule.PLATEAU


@pytest.mark.parametrize("section, data, match", [
    ("data", {"win_len": 0}, "DataConfig.win_len"),
    ("data", {"win_len": 10, "hop_len": 11}, "DataConfig.hop_len"),
    ("data", {"task": "sentiment"}, "DataConfig.task: 'sentiment' is not one of"),
    ("data", {"fill": "mean"}, "DataConfig.fill"),
    ("data", {"features": []}, "DataConfig.features"),
    ("data", {"train_partitions": ["test"]}, "DataConfig.train_partitions"),
    ("data", {"target": ""}, "DataConfig.target"),
    ("data", {"window": 3}, r"Unknown key 'window' in \[data\]; did you mean 'win_len'\?"),
    ("model", {"name": "transformer"}, "Unknown model 'transformer'"),
    ("model", {"hidden": 0}, "ModelConfig.hidden"),
    ("model", {"d_model": 10, "heads": 4, "attention": "transformer"},
     r"ModelConfig.d_model \(10\) must be divisible by heads \(4\)"),
    ("model", {"d_model": 10, "heads": 4, "project_input": True}, r"ModelConfig.d_model \(10\) must be divisible"),
    ("model", {"attention": "linear"}, r"ModelConfig.attention: .linear. is not one of encoder, literal, transformer"),
    ("model", {"kernel": 4}, "ModelConfig.kernel"),
    ("model", {"dropout": 1.0}, "ModelConfig.dropout"),
    ("model", {"layers": 2}, r"Unknown key 'layers' in \[model\]; did you mean '\w+_layers'\?"),
    ("train", {"epochs": 0}, "TrainConfig.epochs"),
    ("train", {"lr": -1e-3}, "TrainConfig.lr"),
    ("train", {"batch_size": 0}, "TrainConfig.batch_size"),
    ("train", {"schedule": "cosine"}, "TrainConfig.schedule: 'cosine' is not one of paper, plateau"),
    ("train", {"seeds": []}, "TrainConfig.seeds"),
    ("train", {"seeds": [1, 1]}, "TrainConfig.seeds"),
    ("train", {"device": "tpu"}, "TrainConfig.device"),
    ("train", {"eval_every": 0}, "TrainConfig.eval_every"),
])
def test_invalid_fields_raise_config_error_naming_the_field(tmp_path, section, data, match):
    d = RunConfig(DataConfig(root=tmp_path)).to_dict()
    d[section].update(data)
    with pytest.raises(ConfigError, match=match):
        RunConfig.from_dict(d)


def test_unknown_or_missing_sections_raise(tmp_path):
    with pytest.raises(ConfigError, match=r"Unknown key 'optim' in the config \(sections\)"):
        RunConfig.from_dict({"data": {"root": str(tmp_path)}, "optim": {}})
    with pytest.raises(ConfigError, match=r"needs a \[data\] section"):
        RunConfig.from_dict({"model": {}})


def test_model_preset_fills_the_paper_defaults_and_keeps_overrides():
    assert model_preset("gcnn_lstm").lstm_layers == 1  # Sec. 5.2: 'a unidirectional LSTM layer'
    cfg = model_preset("selfattn_lstm", heads=8, hidden=256)
    assert (cfg.heads, cfg.hidden, cfg.attn_layers) == (8, 256, 1)
    with pytest.raises(ConfigError, match="Unknown model 'cnn'"):
        model_preset("cnn")


def test_replace_validates_again(tmp_path):
    cfg = TrainConfig()
    assert cfg.replace(epochs=3).epochs == 3
    with pytest.raises(ConfigError, match="TrainConfig.epochs"):
        cfg.replace(epochs=0)


def test_reproduce_rows_take_the_attention_and_its_preset(tmp_path):
    """The Self-Attn rows default to the stock encoder layers (two, the family's preset); ``--attention literal``
    brings the literal preset's one layer (two bare layers collapse), and the feed-forward width is PyTorch's."""
    from musefusion.pipelines.reproduce import ReproduceConfig, run_config

    enc = run_config(ReproduceConfig(root=tmp_path), "egemaps", "selfattn", "arousal").model
    lit = run_config(ReproduceConfig(root=tmp_path, attention="literal"), "egemaps", "selfattn", "arousal").model
    assert (enc.attention.value, enc.attn_layers, enc.ff_dim) == ("encoder", 2, 2048)
    assert (lit.attention.value, lit.attn_layers) == ("literal", 1)
    assert run_config(ReproduceConfig(root=tmp_path, attention="literal"), "egemaps", "selfattn_lstm",
                      "arousal").model.attn_layers == 1
