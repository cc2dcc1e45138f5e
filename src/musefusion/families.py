"""Model families: one entry per family, and everything else derives from it.

An entry holds the family's name, its builder, the defaults it trains with where the paper gives a grid but not
the chosen value, the :class:`musefusion.config.ModelConfig` fields it uses, its Section 5.2 search space and the
label the paper's tables give it. Config validation, the CLI's choices, the sweep spaces, the ``--all-models``
table and the report labels all read this table, so a new family is one :func:`register` call::

    register(ModelFamily(name="mlp", builder="mypkg.models:MLP", preset={"hidden": 64},
                         params=frozenset({"hidden", "dropout"}), space={"hidden": (64, 128)}, label="MLP"))

This module imports nothing heavy (no torch): the builder is imported when a model is built.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from typing import Any

from musefusion.errors import ConfigError

#: Paper Sec. 5.2, shared by every model: Adam learning rate and batch size.
TRAIN_GRID: dict[str, tuple[Any, ...]] = {"lr": (2e-4, 1e-3, 2e-3, 5e-3), "batch_size": (64, 128, 256)}

#: The builder of the paper's six families: one configurable module (see ``musefusion.models.sequence``).
_SEQUENCE = "musefusion.models.sequence:SequenceRegressor"


@dataclasses.dataclass(frozen=True)
class ModelFamily:
    """One model family."""

    name: str  # --model value and config [model] name
    builder: str | Callable[..., Any]  # "module:callable" (imported when built) or a callable; (ModelConfig, d_in)
    preset: Mapping[str, Any]  # ModelConfig defaults of the family (paper grid value where it gives none)
    params: frozenset[str]  # the ModelConfig fields the family uses (a sweep may vary only these and lr/batch)
    space: Mapping[str, tuple[Any, ...]]  # paper Sec. 5.2 grid of the family (model fields and lr/batch_size)
    label: str  # how the paper's tables name it
    doc: str = ""  # one line for help texts
    #: per task ("stress", "physio"): {"model": ModelConfig fields, "train": TrainConfig fields, "data": window
    #: fields} that ``reproduce`` trains the family's rows with (the baseline's README settings); empty for the paper's
    task_presets: Mapping[str, Mapping[str, Mapping[str, Any]]] = dataclasses.field(default_factory=dict)
    #: the network reads each feature set on its own: its builder takes the sets' widths, and its inputs carry one
    #: observed-mask column per set after the features (``musefusion.training.run.model_inputs``)
    observed_inputs: bool = False
    #: per ``ModelConfig.attention`` value: preset fields that differ under that attention (applied by
    #: ``musefusion.config.model_preset`` when the attention is given)
    attention_presets: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)

    def build(self, config: Any, d_in: int, dims: tuple[int, ...] | None = None) -> Any:
        """The family's network for ``config`` and ``d_in`` input features (of the sets' widths ``dims``)."""
        builder = self.builder
        if isinstance(builder, str):
            module, _, attr = builder.partition(":")
            builder = getattr(importlib.import_module(module), attr)
        return builder(config, d_in, dims) if self.observed_inputs else builder(config, d_in)


FAMILIES: dict[str, ModelFamily] = {}


def register(family: ModelFamily, replace: bool = False) -> ModelFamily:
    """Add a model family (``replace`` an existing one of the same name).

    Raises:
        ConfigError: the name is taken and not ``replace``, or the family's space varies a field it does not use.
    """
    if family.name in FAMILIES and not replace:
        raise ConfigError(f"Model family '{family.name}' is registered already; pass replace=True to redefine it.")
    stray = sorted(set(family.space) - set(family.params) - set(TRAIN_GRID))
    if stray:
        raise ConfigError(f"Model family '{family.name}': its space varies {stray}, which it does not use.")
    FAMILIES[family.name] = family
    return family


def unregister(name: str) -> None:
    """Remove a model family (a test's, say)."""
    FAMILIES.pop(name, None)


def names() -> tuple[str, ...]:
    """The registered family names, paper families first."""
    return tuple(FAMILIES)


def family(name: str) -> ModelFamily:
    """The family called ``name``.

    Raises:
        ConfigError: no such family.
    """
    try:
        return FAMILIES[name]
    except KeyError:
        raise ConfigError(f"Unknown model '{name}' (--model); choose one of {', '.join(FAMILIES)}.") from None


#: The MuSe 2021 baseline's README calls (``lstappen/MuSe2021``): per sub-challenge its LSTM size and depth, learning
#: rate, batch size, epochs and windows; its ``train.py`` halves the rate on a devel plateau (patience 5) and stops
#: after 15 epochs without a better devel CCC (``schedule = "plateau"``). Features are z-normalised (its
#: ``--normalize``), as for every row here.
BASELINE_SETTINGS: dict[str, dict[str, dict[str, Any]]] = {
    "stress": {"model": {"hidden": 64, "lstm_layers": 4},
               "train": {"lr": 0.002, "batch_size": 1024, "epochs": 100, "schedule": "plateau", "early_stop": 15},
               "data": {"win_len": 300, "hop_len": 50}},
    "physio": {"model": {"hidden": 32, "lstm_layers": 2},
               "train": {"lr": 0.005, "batch_size": 1024, "epochs": 100, "schedule": "plateau", "early_stop": 15},
               "data": {"win_len": 300, "hop_len": 50}},
}
# The paper's families (Tab. 2-3). Presets: the smallest sensible member of the Sec. 5.2 grid where the paper gives
# none. Spaces: the paper gives heads/attention layers/LSTM hidden/LSTM layers for the MuSe-Stress model
# (Self-Attn+LSTM) and channels/LSTM hidden for the MuSe-Physio model (GCNN+LSTM, 'a unidirectional LSTM layer': its
# LSTM depth is not swept).
for _f in (
    ModelFamily("lstm", _SEQUENCE, {"hidden": 64, "lstm_layers": 2},
                frozenset({"d_model", "project_input", "hidden", "lstm_layers", "dropout"}),
                {"hidden": (64, 128, 256), "lstm_layers": (2, 4), **TRAIN_GRID}, "LSTM",
                "LSTM on the features ('LSTM' rows)"),
    # literal (bare Eq. 1-3) Self-Attn at one layer: two bare layers average a window to a constant at
    # initialisation (tests/models/test_collapse.py), which a per-window CCC scores 0 with a vanishing gradient
    ModelFamily("selfattn", _SEQUENCE, {"heads": 4, "attn_layers": 2},
                frozenset({"attention", "d_model", "project_input", "heads", "attn_layers", "ff_dim", "positions",
                           "dropout"}),
                {"heads": (4, 8), "attn_layers": (1, 2, 4), **TRAIN_GRID}, "Self-Attn",
                "self-attention encoder layers (Eq. 1-3; 'Self-Attn' rows)",
                attention_presets={"literal": {"attn_layers": 1}}),
    ModelFamily("selfattn_lstm", _SEQUENCE, {"heads": 4, "attn_layers": 1, "hidden": 64, "lstm_layers": 2},
                frozenset({"attention", "d_model", "project_input", "heads", "attn_layers", "ff_dim", "positions",
                           "hidden", "lstm_layers", "dropout"}),
                {"heads": (4, 8), "attn_layers": (1, 2, 4), "hidden": (64, 128, 256), "lstm_layers": (2, 4),
                 **TRAIN_GRID}, "Self-Attn+LSTM", "self-attention -> LSTM (Eq. 1-8)"),
    ModelFamily("gcnn", _SEQUENCE, {"channels": 64, "gcnn_blocks": 3},
                frozenset({"channels", "gcnn_blocks", "kernel", "dropout"}),
                {"channels": (64, 128), **TRAIN_GRID}, "GCNN", "gated convolutions (Eq. 15)"),
    ModelFamily("gcnn_lstm", _SEQUENCE, {"channels": 64, "hidden": 128, "lstm_layers": 1},
                frozenset({"channels", "gcnn_blocks", "kernel", "hidden", "lstm_layers", "dropout"}),
                {"channels": (64, 128), "hidden": (128, 256, 1024), **TRAIN_GRID}, "GCNN+LSTM",
                "gated convolutions -> LSTM (Eq. 15-18)"),
    ModelFamily("bio_lstm", _SEQUENCE, {"hidden": 64, "lstm_layers": 2},
                frozenset({"hidden", "lstm_layers", "dropout"}),
                {"hidden": (64, 128, 256), "lstm_layers": (2, 4), **TRAIN_GRID}, "LSTM",
                "LSTM on ECG+resp+BPM (Eq. 9-11)"),
    ModelFamily("baseline", "musefusion.models.baseline:MuseBaseline",
                {"hidden": 64, "lstm_layers": 4, "fc_hidden": 64, "dropout": 0.0},
                frozenset({"hidden", "lstm_layers", "fc_hidden", "dropout"}),
                {"hidden": (32, 64, 128), "lstm_layers": (1, 2, 4), **TRAIN_GRID}, "MuSe 2021 baseline",
                "the official MuSe 2021 baseline: projection -> bidirectional LSTM -> 2-layer head",
                task_presets=BASELINE_SETTINGS),
    # MuSe 2023's baseline (personalisation): GRU, Tanh output; its best calls use 2 bidirectional layers
    ModelFamily("gru", "musefusion.models.gru:GRURegressor",
                {"hidden": 64, "lstm_layers": 2, "fc_hidden": 64, "dropout": 0.1, "bidirectional": True,
                 "tanh_output": True},
                frozenset({"hidden", "lstm_layers", "fc_hidden", "dropout", "bidirectional", "tanh_output"}),
                {"hidden": (64, 128, 256), "lstm_layers": (1, 2, 4), **TRAIN_GRID}, "GRU (MuSe 2023 baseline)",
                "the MuSe 2023 baseline: projection -> GRU -> 2-layer head -> Tanh (personalisation)"),
    # beyond the paper (MuSe 2022): cross-modal attention at every step, an LSTM per branch, a modality gate
    ModelFamily("crossmodal", "musefusion.models.crossmodal:build",
                {"d_model": 64, "heads": 4, "hidden": 64, "lstm_layers": 1},
                frozenset({"d_model", "heads", "hidden", "lstm_layers", "dropout"}),
                {"d_model": (32, 64, 128), "heads": (2, 4), "hidden": (32, 64, 128), **TRAIN_GRID},
                "Cross-modal attention", "per-set branches, attention across them at each step, LSTM, gate "
                "(beyond the paper; use with several feature sets, e.g. egemaps+vggface+bio)",
                observed_inputs=True),
):
    register(_f)
