"""Frozen, typed configs. Each round-trips through ``to_dict``/``from_dict`` and is saved beside every result."""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import types as _pytypes
import typing
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any, TypeVar

from musefusion import families
from musefusion.errors import ConfigError
from musefusion.types import FillPolicy, Normalise, Task, expand_features

C = TypeVar("C", bound="ConfigBase")

#: Environment variable that names the data root when no option gives one.
DATA_ENV = "MUSEFUSION_DATA"
#: Environment variable that names the cache folder (default: ~/.cache/musefusion).
CACHE_ENV = "MUSEFUSION_CACHE"


def resolve_data_root(root: str | os.PathLike[str] | None) -> Path:
    """The data root: the given path, else ``$MUSEFUSION_DATA``.

    Raises:
        ConfigError: neither is set.
    """
    if root is None or str(root) == "":
        root = os.environ.get(DATA_ENV)
    if not root:
        raise ConfigError(f"No data root given: pass --data ROOT or set ${DATA_ENV}.")
    return Path(root).expanduser()


def resolve_cache_dir(cache_dir: str | os.PathLike[str] | None) -> Path:
    """The cache folder: the given path, else ``$MUSEFUSION_CACHE``, else ``~/.cache/musefusion``."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "musefusion"


def _encode(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


def _type_problem(tp: Any, value: Any) -> str | None:
    """Why ``value`` does not fit the annotation ``tp`` (None when it fits); TOML gives int/float/str/bool/list."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, _pytypes.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        problems = [_type_problem(a, value) for a in args]
        return None if any(p is None for p in problems) else problems[0]
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return "must be a list, e.g. [1, 2]"
        inner = (typing.get_args(tp) or (Any,))[0]
        return next((p for p in (_type_problem(inner, v) for v in value) if p), None)
    if tp is bool:
        return None if isinstance(value, bool) else "must be true or false"
    if tp is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "must be a whole number"
    if tp is float:
        return (None if isinstance(value, (int, float)) and not isinstance(value, bool)
                else "must be a number")
    if isinstance(tp, type) and issubclass(tp, Enum) and not isinstance(value, (str, Path, Enum)):
        try:  # a value an earlier version wrote (e.g. ``normalize = true``) that the Enum still reads
            tp(value)
        except ValueError:
            return "must be a string"
        return None
    if tp in (str, Path):
        return None if isinstance(value, (str, Path, Enum)) else "must be a string"
    return None


def _decode(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, _pytypes.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        for a in args:
            try:
                return _decode(a, value)
            except (TypeError, ValueError):
                continue
        return value
    if origin is tuple:
        inner = next(iter(typing.get_args(tp)), Any)
        return tuple(_decode(inner, v) for v in value)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(value)
    if tp is Path:
        return Path(value)
    if tp is float and isinstance(value, int):
        return float(value)
    return value


def unknown_key_error(where: str, key: str, allowed: typing.Iterable[str]) -> ConfigError:
    """A ConfigError for a mistyped key: names the section, the key and the nearest allowed one.

    Examples:
        >>> str(unknown_key_error("[model]", "hiden", ["hidden", "heads"]))
        "Unknown key 'hiden' in [model]; did you mean 'hidden'? Allowed: heads, hidden."
    """
    allowed = sorted(allowed)
    near = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.4)
    hint = f"; did you mean '{near[0]}'?" if near else "."
    return ConfigError(f"Unknown key '{key}' in {where}{hint} Allowed: {', '.join(allowed)}.")


class ConfigBase:
    """Shared ``to_dict``/``from_dict``/``replace`` for the frozen config dataclasses."""

    #: How messages name this config's section (``[model]`` in a config file).
    _section: typing.ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of TOML-able values (Enums as their values, tuples as lists, no ``None``)."""
        return {f.name: _encode(getattr(self, f.name)) for f in dataclasses.fields(self)  # type: ignore[arg-type]
                if getattr(self, f.name) is not None}

    @classmethod
    def field_defaults(cls) -> dict[str, Any]:
        """The fields' defaults as ``to_dict`` writes them: how a run record written before a field existed reads
        (a field is added with the default that keeps the earlier behaviour)."""
        return {f.name: _encode(f.default) for f in dataclasses.fields(cls)  # type: ignore[arg-type]
                if f.default is not dataclasses.MISSING and f.default is not None}

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        """Build a config from ``to_dict`` output (unknown keys raise ConfigError).

        Raises:
            ConfigError: a key is not a field of this config.
        """
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown:
            raise unknown_key_error(cls._section or cls.__name__, unknown[0], names)
        kwargs = {}
        for k, v in data.items():
            origin = typing.get_origin(hints[k])
            tuple_field = origin is tuple or any(typing.get_origin(a) is tuple for a in typing.get_args(hints[k]))
            if isinstance(v, str) and tuple_field:
                v = [v]  # features = "egemaps" means ["egemaps"], not its letters
            problem = _type_problem(hints[k], v)
            if problem:
                raise ConfigError(f"{cls._section or cls.__name__}.{k}: {v!r} {problem}.")
            try:
                kwargs[k] = _decode(hints[k], v)
            except (TypeError, ValueError):  # e.g. a bad Enum value: __post_init__ rejects it naming the field
                kwargs[k] = v
        try:
            return cls(**kwargs)
        except ConfigError:
            raise
        except (ValueError, TypeError) as exc:  # a value of the wrong type, e.g. epochs = "ten"
            raise ConfigError(f"{cls._section or cls.__name__}: {exc}") from None

    def replace(self: C, **changes: Any) -> C:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


def enum_field(cls_name: str, name: str, value: Any, enum: type[Enum]) -> Enum:
    """``value`` as a member of ``enum``, for a config's ``__post_init__``.

    Raises:
        ConfigError: ``value`` is none of the members; the message names ``cls_name.name`` and the choices.
    """
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(e.value for e in enum)
        raise ConfigError(f"{cls_name}.{name}: '{value}' is not one of {allowed}.") from None


@dataclasses.dataclass(frozen=True)
class DataConfig(ConfigBase):
    """What to read from a MuSe corpus and how to shape it into model inputs."""

    _section: typing.ClassVar[str] = "[data]"

    root: Path  # data root holding c3_muse_stress/ c4_muse_physio/, or a corpus folder itself
    task: Task = Task.STRESS  # sub-challenge
    target: str = "arousal"  # label_segments/<target>/ folder
    features: tuple[str, ...] = ("egemaps",)  # feature_segments/<feature>/ folders, concatenated in this order
    win_len: int = 300  # train window length in 2 Hz steps (MuSe2021 baseline default)
    hop_len: int = 50  # train window hop in steps (MuSe2021 baseline default)
    fill: FillPolicy = FillPolicy.ZERO  # how steps without a feature row are filled (mask marks them)
    normalize: Normalise = Normalise.TRAIN  # z-score feature columns with train (or each subject's own) statistics
    subject_prior: int = 0  # normalize = subject: pseudo-steps of train statistics a subject's are shrunk toward
    train_partitions: tuple[str, ...] = ("train",)  # partitions used for fitting (add "devel" for the final model)
    cache: bool = True  # cache aligned arrays keyed by a hash of the options and the files' contents
    cache_dir: Path | None = None  # default $MUSEFUSION_CACHE or ~/.cache/musefusion
    label_delay: int = 0  # steps the labels lag the signal: fit y(t + d) at t, predictions moved d steps later

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))
        object.__setattr__(self, "task", enum_field("DataConfig", "task", self.task, Task))
        object.__setattr__(self, "fill", enum_field("DataConfig", "fill", self.fill, FillPolicy))
        object.__setattr__(self, "normalize", enum_field("DataConfig", "normalize", self.normalize, Normalise))
        if not 0 <= self.subject_prior <= 1_000_000:
            raise ConfigError(f"DataConfig.subject_prior: {self.subject_prior} must be between 0 and 1000000 steps "
                              "(--subject-prior).")
        feats = expand_features(self.features)
        if not feats:
            raise ConfigError("DataConfig.features: give at least one feature set, e.g. --features egemaps.")
        object.__setattr__(self, "features", feats)
        object.__setattr__(self, "train_partitions", tuple(self.train_partitions))
        bad = [p for p in self.train_partitions if p not in ("train", "devel")]
        if bad or not self.train_partitions:
            raise ConfigError(f"DataConfig.train_partitions: {bad or '[]'} not allowed; use train and/or devel "
                              "(test labels are never used for fitting).")
        if not 1 <= self.win_len <= 100_000:
            raise ConfigError(f"DataConfig.win_len: {self.win_len} must be between 1 and 100000 steps (--win-len).")
        if not 1 <= self.hop_len <= self.win_len:
            raise ConfigError(f"DataConfig.hop_len: {self.hop_len} must be between 1 and win_len={self.win_len} "
                              "(--hop-len).")
        if not self.target:
            raise ConfigError("DataConfig.target: give a target, e.g. --target arousal.")
        if not 0 <= self.label_delay <= 200:
            raise ConfigError(f"DataConfig.label_delay: {self.label_delay} must be between 0 and 200 steps "
                              "(0-100 s at 2 Hz; --label-delay).")


#: Upper bounds of the architecture fields (far above the paper's grid, below what would exhaust memory).
_MODEL_LIMITS = {"d_model": 8192, "heads": 64, "attn_layers": 32, "ff_dim": 65536, "hidden": 8192, "lstm_layers": 32,
                 "channels": 8192, "gcnn_blocks": 64, "kernel": 99, "fc_hidden": 8192}

#: The paper's model families (Tab. 2-3); :func:`musefusion.families.names` also lists families registered later.
MODEL_NAMES = families.names()


class Attention(StrEnum):
    """Which self-attention the ``selfattn`` families use (``musefusion.models.sequence`` explains each)."""

    ENCODER = "encoder"  # PyTorch's stock TransformerEncoderLayer (2021 defaults) on the raw features, d_model = d_a
    LITERAL = "literal"  # Eq. 1-3 alone: bare multi-head attention, no residual (an ablation; 'paper' before 0.2)
    TRANSFORMER = "transformer"  # projection to d_model, positions, pre-norm Transformer encoder layers

    @classmethod
    def _missing_(cls, value: object) -> Attention | None:
        """Runs and configs written before 0.2 say ``paper`` for what is now ``literal``."""
        return cls.LITERAL if isinstance(value, str) and value.lower() == "paper" else None


@dataclasses.dataclass(frozen=True)
class ModelConfig(ConfigBase):
    """Architecture of a unimodal sequence regressor (one output per 2 Hz step)."""

    _section: typing.ClassVar[str] = "[model]"

    name: str = "selfattn_lstm"  # a registered family (musefusion.families): lstm, selfattn, selfattn_lstm, ...
    d_model: int = 128  # width of the input projection (transformer attention, project_input); paper silent
    attention: Attention = Attention.ENCODER  # encoder (stock encoder layers) | literal (bare Eq. 1-3) | transformer
    project_input: bool = False  # lstm / encoder / literal attention: project the features linearly to d_model first
    heads: int = 4  # attention heads (paper grid: 4 or 8)
    attn_layers: int = 1  # self-attention layers (paper grid: 1, 2 or 4)
    ff_dim: int = 2048  # encoder attention: feed-forward width (PyTorch's default dim_feedforward; paper silent)
    positions: bool = False  # encoder / literal attention: add sinusoidal positions (the paper has none)
    hidden: int = 64  # LSTM hidden size (paper grid: 64/128/256; GCNN+LSTM 128/256/1024)
    lstm_layers: int = 2  # stacked unidirectional LSTM layers (paper grid: 2 or 4)
    channels: int = 64  # gated-conv channels (paper grid: 64 or 128)
    gcnn_blocks: int = 2  # stacked gated conv blocks (paper silent)
    kernel: int = 3  # gated conv kernel size in steps (paper silent)
    fc_hidden: int = 64  # baseline family: hidden width of its two-layer output head (the baseline's d_fc_out)
    dropout: float = 0.1  # dropout between layers (paper silent)
    bidirectional: bool = False  # gru family: a bidirectional GRU (the MuSe 2023 baseline's rnn_bi)
    tanh_output: bool = False  # gru family: a Tanh on the output (the MuSe 2023 baseline's, labels in [-1, 1])

    def __post_init__(self) -> None:
        used = families.family(self.name).params  # ConfigError naming the choices for an unknown model
        for flag in ("bidirectional", "tanh_output", "positions"):  # an option is used or refused, never dropped
            if getattr(self, flag) and flag not in used:
                users = [f for f in families.names() if flag in families.family(f).params]
                raise ConfigError(f"ModelConfig.{flag}: model '{self.name}' has no such switch (--"
                                  f"{flag.replace('_', '-')} is for {', '.join(users) or 'no model'}).")
        object.__setattr__(self, "attention", enum_field("ModelConfig", "attention", self.attention, Attention))
        for f, most in _MODEL_LIMITS.items():  # checked before any allocation: hidden = 1e9 is refused, not tried
            if not 1 <= getattr(self, f) <= most:
                raise ConfigError(f"ModelConfig.{f}: {getattr(self, f)} must be between 1 and {most} (--{f.replace('_', '-')}).")
        if ((self.attention == Attention.TRANSFORMER or self.project_input or self.name == "crossmodal")
                and self.d_model % self.heads):
            raise ConfigError(f"ModelConfig.d_model ({self.d_model}) must be divisible by heads ({self.heads}).")
        if self.kernel % 2 == 0:
            raise ConfigError(f"ModelConfig.kernel: {self.kernel} must be odd (centred 'same' convolution).")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"ModelConfig.dropout: {self.dropout} must be in [0, 1).")


def model_preset(name: str, **overrides: Any) -> ModelConfig:
    """The default :class:`ModelConfig` of a model family, with some fields overridden (an ``attention`` override
    brings the family's preset for that attention, e.g. one layer for ``literal`` Self-Attn).

    Raises:
        ConfigError: unknown model name or bad override.
    """
    fam = families.family(name)
    attention = overrides.get("attention")
    variant = fam.attention_presets.get(str(Attention(attention).value) if attention is not None else "", {})
    return ModelConfig.from_dict({**fam.preset, **variant, **overrides, "name": name})


class Schedule(StrEnum):
    """Learning-rate schedules."""

    PAPER = "paper"  # Sec. 5.2: halve the LR when the train loss has not decreased for 15 epochs (no early stop)
    PLATEAU = "plateau"  # MuSe 2021 baseline: halve on devel-loss plateau (patience 5), early stop 15 by default


class Monitor(StrEnum):
    """The loss whose stalling halves the learning rate under the paper schedule."""

    TRAIN = "train"  # Sec. 5.2 reads "when the loss does not decrease": the training loss
    DEVEL = "devel"  # 1 - devel CCC


class Precision(StrEnum):
    """The arithmetic of the training forward pass."""

    FP32 = "fp32"  # float32 throughout (the default)
    BF16 = "bf16"  # bfloat16 autocast of the forward pass (CPUs with AVX-512 BF16/AMX, CUDA); the loss in float32


class LossMode(StrEnum):
    """How the CCC loss (Eq. 20-21) pools a batch of windows."""

    BATCH = "batch"  # one CCC over every labelled step of the batch
    SEQUENCE = "sequence"  # the mean of per-window CCCs (the MuSe 2021 baseline's loss.py)


@dataclasses.dataclass(frozen=True)
class TrainConfig(ConfigBase):
    """How a model is fitted (defaults: paper Sec. 5.2)."""

    _section: typing.ClassVar[str] = "[train]"

    epochs: int = 100  # paper Sec. 5.2
    lr: float = 1e-3  # Adam learning rate (paper grid: 2e-4, 1e-3, 2e-3, 5e-3)
    batch_size: int = 64  # windows per batch (paper grid: 64, 128, 256)
    schedule: Schedule = Schedule.PAPER  # paper | plateau
    lr_patience: int = 15  # paper: halve once the monitored loss has not decreased for this many epochs in a row
    lr_monitor: Monitor = Monitor.TRAIN  # paper schedule: the loss that must decrease (train, as Sec. 5.2 reads)
    loss: LossMode = LossMode.SEQUENCE  # CCC loss pooling: sequence (mean per window; measured better) | batch
    early_stop: int = 0  # stop after this many epochs without a better devel CCC (0: the schedule's own, see stop_after)
    stop_halvings: int = 0  # paper schedule: stop once the LR was halved this often since the best devel CCC (0: never)
    weight_decay: float = 0.0  # Adam weight decay (paper silent)
    seeds: tuple[int, ...] = (1,)  # one model per seed; the best on devel is kept
    device: str = "auto"  # auto (cuda when available) | cpu | cuda
    num_threads: int = 0  # torch intra-op threads (0 = torch default)
    eval_every: int = 1  # evaluate on devel every N epochs
    precision: Precision = Precision.FP32  # fp32 | bf16 (autocast forward; 1.6x faster on the 512-d face rows here)

    def __post_init__(self) -> None:
        object.__setattr__(self, "schedule", enum_field("TrainConfig", "schedule", self.schedule, Schedule))
        object.__setattr__(self, "lr_monitor", enum_field("TrainConfig", "lr_monitor", self.lr_monitor, Monitor))
        object.__setattr__(self, "loss", enum_field("TrainConfig", "loss", self.loss, LossMode))
        object.__setattr__(self, "precision", enum_field("TrainConfig", "precision", self.precision, Precision))
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        if not 1 <= self.epochs <= 100_000:
            raise ConfigError(f"TrainConfig.epochs: {self.epochs} must be between 1 and 100000 (--epochs).")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and 0 < self.lr <= 10):
            raise ConfigError(f"TrainConfig.lr: {self.lr} must be a number in (0, 10] (--lr).")
        if not 1 <= self.batch_size <= 1_000_000:
            raise ConfigError(f"TrainConfig.batch_size: {self.batch_size} must be between 1 and 1000000 "
                              "(--batch-size).")
        if not (math.isfinite(self.weight_decay) and 0 <= self.weight_decay < 1):
            raise ConfigError(f"TrainConfig.weight_decay: {self.weight_decay} must be in [0, 1).")
        if any(s < 0 or s >= 2**32 for s in self.seeds):
            raise ConfigError(f"TrainConfig.seeds: {list(self.seeds)} must be whole numbers in [0, 2^32).")
        if self.lr_patience < 1 or self.early_stop < 0 or self.num_threads < 0 or self.stop_halvings < 0:
            raise ConfigError("TrainConfig: lr_patience must be >= 1, early_stop, num_threads and stop_halvings "
                              ">= 0 (--early-stop, --stop-halvings).")
        if not self.seeds:
            raise ConfigError("TrainConfig.seeds: give at least one seed (--seeds 1 2 3).")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"TrainConfig.seeds: {self.seeds} has duplicates.")
        if not isinstance(self.device, str) or (self.device not in ("auto", "cpu", "cuda")
                                                and not (self.device.startswith("cuda:") and self.device[5:].isdigit())):
            raise ConfigError(f"TrainConfig.device: '{self.device}' must be auto, cpu or cuda[:N] (--device).")
        if self.eval_every < 1:
            raise ConfigError(f"TrainConfig.eval_every: {self.eval_every} must be >= 1.")

    @property
    def stop_after(self) -> int:
        """Epochs without a better devel CCC after which training stops (0: never).

        ``early_stop`` when set; else the schedule's own: ``plateau`` 15 (the MuSe 2021 baseline's), ``paper``
        never (Sec. 5.2 trains all its epochs).
        """
        return self.early_stop or (15 if self.schedule == Schedule.PLATEAU else 0)


@dataclasses.dataclass(frozen=True)
class RunConfig(ConfigBase):
    """One training run: data, model and training configs (saved as config.toml in the run dir)."""

    data: DataConfig
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """Nested dict with sections data, model, train."""
        return {"data": self.data.to_dict(), "model": self.model.to_dict(), "train": self.train.to_dict()}

    @staticmethod
    def record_defaults() -> dict[str, dict[str, Any]]:
        """Each section's field defaults (see :meth:`ConfigBase.field_defaults`), for comparing run records."""
        return {"data": DataConfig.field_defaults(), "model": ModelConfig.field_defaults(),
                "train": TrainConfig.field_defaults()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Build from sections ``data``, ``model``, ``train`` (as in a config TOML).

        Raises:
            ConfigError: an unknown section or field, or a missing ``data`` section.
        """
        unknown = sorted(set(data) - {"data", "model", "train"})
        if unknown:
            raise unknown_key_error("the config (sections)", unknown[0], ("data", "model", "train"))
        if "data" not in data:
            raise ConfigError("The config needs a [data] section with at least root (or pass --data).")
        return cls(DataConfig.from_dict(data["data"]), ModelConfig.from_dict(data.get("model", {})),
                   TrainConfig.from_dict(data.get("train", {})))


class Sampler(StrEnum):
    """How a sweep picks the next trial's parameters."""

    TPE = "tpe"  # Optuna's tree-structured Parzen estimator, seeded
    GRID = "grid"  # every combination of the space once (paper Sec. 5.2 grid)


#: Parameters a sweep may vary, with the config section that holds them.
SWEEP_PARAMS: dict[str, str] = {
    "d_model": "model", "heads": "model", "attn_layers": "model", "hidden": "model", "lstm_layers": "model",
    "channels": "model", "gcnn_blocks": "model", "kernel": "model", "fc_hidden": "model", "dropout": "model",
    "lr": "train", "batch_size": "train", "weight_decay": "train",
    "label_delay": "data",  # a label-delay search (0-20 steps = 0-10 s), as AVEC 2018 searched it
}

@dataclasses.dataclass(frozen=True)
class SweepConfig(ConfigBase):
    """A hyper-parameter sweep: a fixed base run and the values each swept parameter may take."""

    base: RunConfig  # fixed part of every trial: data, model name and unswept fields, epochs, seeds
    space: tuple[tuple[str, tuple[Any, ...]], ...]  # (parameter, allowed values) pairs, e.g. ("heads", (4, 8))
    study: str = "sweep"  # Optuna study name (one study per model/space/base)
    storage: str | None = None  # database URL; None = sqlite:///<out>/study.db
    out: Path = Path("sweeps/sweep")  # sweep folder: trials/<number>/ run dirs, study.db, report/
    trials: int = 20  # COMPLETE + PRUNED trials the study should hold in total (not 'this many more')
    sampler: Sampler = Sampler.TPE  # tpe | grid
    seed: int = 0  # sampler seed (TPE worker i > 0 uses a hash of seed and i; the grid uses seed in every worker)
    prune: bool = True  # stop weak trials early on intermediate devel CCC (Optuna MedianPruner)
    prune_warmup: int = 0  # epochs before a trial may be pruned (0 = a quarter of the epochs)
    workers: int = 1  # local worker processes on this machine
    threads: int = 1  # torch threads per worker (workers x threads should not exceed the cores)
    heartbeat_s: int = 10  # trial heartbeat; a RUNNING trial silent for 3 heartbeats is failed and retried

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "sampler", enum_field("SweepConfig", "sampler", self.sampler, Sampler))
        space = tuple((str(k), tuple(v)) for k, v in (self.space.items() if isinstance(self.space, dict)
                                                       else self.space))
        object.__setattr__(self, "space", space)
        if not space:
            raise ConfigError("SweepConfig.space is empty: give at least one parameter with values "
                              "(e.g. heads = [4, 8] in the --space file).")
        model = self.base.model.name
        for name, values in space:
            if name not in SWEEP_PARAMS:
                raise ConfigError(f"Space parameter '{name}' cannot be swept; choose from "
                                  f"{', '.join(SWEEP_PARAMS)}.")
            used = families.family(model).params
            if SWEEP_PARAMS[name] == "model" and name not in used:
                raise ConfigError(f"Space parameter '{name}' is not used by model '{model}'; it uses "
                                  f"{', '.join(sorted(used))}.")
            if not values:
                raise ConfigError(f"Space parameter '{name}' has no values: give at least one, e.g. {name} = [..].")
            if len(set(values)) != len(values):
                raise ConfigError(f"Space parameter '{name}' lists a value twice: {list(values)}.")
        if len({n for n, _ in space}) != len(space):
            raise ConfigError("SweepConfig.space names a parameter twice.")
        if not self.study:
            raise ConfigError("SweepConfig.study: give a study name (--study).")
        for f in ("trials", "workers", "threads", "heartbeat_s"):
            if getattr(self, f) < 1:
                raise ConfigError(f"SweepConfig.{f}: {getattr(self, f)} must be >= 1 (--{f.replace('_s', '')}).")
        if self.prune_warmup < 0:
            raise ConfigError(f"SweepConfig.prune_warmup: {self.prune_warmup} must be >= 0.")

    @property
    def space_dict(self) -> dict[str, tuple[Any, ...]]:
        """The space as ``{parameter: values}``."""
        return dict(self.space)

    @property
    def storage_url(self) -> str:
        """The storage URL, defaulting to a SQLite file in the sweep folder."""
        return self.storage or f"sqlite:///{(self.out / 'study.db').resolve()}"

    def to_dict(self) -> dict[str, Any]:
        """Nested dict: ``base`` as a RunConfig dict, ``space`` as ``{parameter: [values]}``."""
        d = {f.name: _encode(getattr(self, f.name)) for f in dataclasses.fields(self)
             if f.name not in ("base", "space") and getattr(self, f.name) is not None}
        return {**d, "base": self.base.to_dict(), "space": {k: list(v) for k, v in self.space}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepConfig:
        """Inverse of :meth:`to_dict`.

        Raises:
            ConfigError: a missing ``base`` or ``space``, or a bad field.
        """
        for key in ("base", "space"):
            if key not in data:
                raise ConfigError(f"SweepConfig needs '{key}'.")
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise unknown_key_error("the sweep config", unknown[0], names)
        kwargs = {k: _decode(hints[k], v) for k, v in data.items() if k not in ("base", "space")}
        space = tuple((k, tuple(v)) for k, v in data["space"].items())
        return cls(base=RunConfig.from_dict(data["base"]), space=space, **kwargs)
