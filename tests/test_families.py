"""A model family is one registry entry: registered in a test, it trains, sweeps and appears in a report."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from musefusion import families
from musefusion.config import DataConfig, RunConfig, SweepConfig, TrainConfig, model_preset
from musefusion.data.synth import SynthConfig, synthesize
from musefusion.errors import ConfigError
from musefusion.evaluation import paper
from musefusion.sweep.grid import paper_space
from musefusion.sweep.runner import run_sweep
from musefusion.types import Task
from tests.cli_helpers import run_cli


class StepMLP(nn.Module):
    """A per-step MLP: no temporal context at all (a family the paper does not have)."""

    def __init__(self, config, d_in: int) -> None:  # noqa: ANN001 - ModelConfig
        super().__init__()
        self.hidden = nn.Linear(d_in, config.hidden)
        self.out = nn.Linear(config.hidden, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.hidden(x))).squeeze(-1)


@pytest.fixture
def step_mlp():
    fam = families.register(families.ModelFamily(
        name="step_mlp", builder=StepMLP, preset={"hidden": 8}, params=frozenset({"hidden", "dropout"}),
        space={"hidden": (4, 8)}, label="Step-MLP", doc="a per-step MLP"))
    yield fam
    families.unregister("step_mlp")


@pytest.mark.slow
def test_a_registered_family_trains_sweeps_and_is_reported(step_mlp, tmp_path, capsys):
    root = tmp_path / "data"
    synthesize(root, SynthConfig(task=Task.STRESS, seed=2, n_train=3, n_devel=2, n_test=1, minutes=0.3))
    # trains, from the CLI, with its preset
    assert run_cli(["train", "--data", root, "--features", "egemaps", "--model", "step_mlp", "--epochs", "1",
                    "--win-len", "40", "--hop-len", "20", "--out", tmp_path / "run"]) == 0
    assert model_preset("step_mlp").hidden == 8 and paper.MODEL_LABELS["step_mlp"] == "Step-MLP"
    # sweeps over its own space
    assert paper_space("step_mlp") == {"hidden": (4, 8)}
    base = RunConfig(DataConfig(root, features=("egemaps",), win_len=40, hop_len=20), model_preset("step_mlp"),
                     TrainConfig(epochs=1))
    sweep = SweepConfig(base=base, space=tuple(paper_space("step_mlp").items()), study="mlp", out=tmp_path / "sw",
                        trials=2, sampler="grid")
    assert run_sweep(sweep).done == 2
    # and appears in the all-models table of a reproduction
    assert run_cli(["reproduce", "--data", root, "--profile", "smoke", "--stage", "unimodal", "--all-models",
                    "--workers", "1", "--out", tmp_path / "rep"]) == 0
    report = (tmp_path / "rep" / "report.md").read_text()
    assert "| eGeMAPS | step_mlp |" in report and "| ECG+RESP+BPM | step_mlp |" in report


def test_a_family_must_use_what_its_space_varies():
    with pytest.raises(ConfigError, match=r"its space varies \['heads'\], which it does not use"):
        families.register(families.ModelFamily("bad", StepMLP, {}, frozenset({"hidden"}), {"heads": (4, 8)}, "Bad"))
    with pytest.raises(ConfigError, match="is registered already"):
        families.register(families.family("lstm"))
    with pytest.raises(ConfigError, match="Unknown model 'nope' \\(--model\\); choose one of lstm, selfattn"):
        model_preset("nope")
