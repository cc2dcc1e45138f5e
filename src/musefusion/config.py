"""Frozen, typed configs. Each round-trips through ``to_dict``/``from_dict`` and is saved beside every result."""

from __future__ import annotations

import dataclasses
import os
import types as _pytypes
import typing
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from musefusion.errors import ConfigError
from musefusion.types import FillPolicy, Task, expand_features

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
        args = typing.get_args(tp)
        inner = args[0] if args else Any
        return tuple(_decode(inner, v) for v in value)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(value)
    if tp is Path:
        return Path(value)
    if tp is float and isinstance(value, int):
        return float(value)
    return value


class ConfigBase:
    """Shared ``to_dict``/``from_dict``/``replace`` for the frozen config dataclasses."""

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of TOML-able values (Enums as their values, tuples as lists, no ``None``)."""
        return {f.name: _encode(getattr(self, f.name)) for f in dataclasses.fields(self)  # type: ignore[arg-type]
                if getattr(self, f.name) is not None}

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
            raise ConfigError(f"Unknown {cls.__name__} field(s) {unknown}; allowed: {sorted(names)}.")
        kwargs = {k: _decode(hints[k], v) for k, v in data.items()}
        try:
            return cls(**kwargs)
        except ValueError as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"{cls.__name__}: {exc}") from exc

    def replace(self: C, **changes: Any) -> C:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


def _enum_field(cls_name: str, name: str, value: Any, enum: type[Enum]) -> Enum:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(e.value for e in enum)  # type: ignore[attr-defined]
        raise ConfigError(f"{cls_name}.{name}: '{value}' is not one of {allowed}.") from None


@dataclasses.dataclass(frozen=True)
class DataConfig(ConfigBase):
    """What to read from a MuSe corpus and how to shape it into model inputs."""

    root: Path  # data root holding c3_muse_stress/ c4_muse_physio/, or a corpus folder itself
    task: Task = Task.STRESS  # sub-challenge
    target: str = "arousal"  # label_segments/<target>/ folder
    features: tuple[str, ...] = ("egemaps",)  # feature_segments/<feature>/ folders, concatenated in this order
    win_len: int = 300  # train window length in 2 Hz steps (MuSe2021 baseline default)
    hop_len: int = 50  # train window hop in steps (MuSe2021 baseline default)
    fill: FillPolicy = FillPolicy.ZERO  # how steps without a feature row are filled (mask marks them)
    normalize: bool = True  # z-normalise every feature column with train-partition statistics
    train_partitions: tuple[str, ...] = ("train",)  # partitions used for fitting (add "devel" for the final model)
    cache: bool = True  # cache aligned arrays keyed by a hash of the options and the files' contents
    cache_dir: Path | None = None  # default $MUSEFUSION_CACHE or ~/.cache/musefusion

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))
        object.__setattr__(self, "task", _enum_field("DataConfig", "task", self.task, Task))
        object.__setattr__(self, "fill", _enum_field("DataConfig", "fill", self.fill, FillPolicy))
        feats = expand_features(self.features)
        if not feats:
            raise ConfigError("DataConfig.features: give at least one feature set, e.g. --features egemaps.")
        object.__setattr__(self, "features", feats)
        object.__setattr__(self, "train_partitions", tuple(self.train_partitions))
        bad = [p for p in self.train_partitions if p not in ("train", "devel")]
        if bad or not self.train_partitions:
            raise ConfigError(f"DataConfig.train_partitions: {bad or '[]'} not allowed; use train and/or devel "
                              "(test labels are never used for fitting).")
        if self.win_len < 1:
            raise ConfigError(f"DataConfig.win_len: {self.win_len} must be >= 1 step (--win-len).")
        if not 1 <= self.hop_len <= self.win_len:
            raise ConfigError(f"DataConfig.hop_len: {self.hop_len} must be between 1 and win_len={self.win_len} "
                              "(--hop-len).")
        if not self.target:
            raise ConfigError("DataConfig.target: give a target, e.g. --target arousal.")
