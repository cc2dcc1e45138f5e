"""The search space of paper Sec. 5.2 and its expansion into RunConfigs (pure functions, no I/O but
:func:`load_space`)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from typing import Any

from musefusion import families, fsutil
from musefusion.config import SWEEP_PARAMS, RunConfig, SweepConfig
from musefusion.errors import ConfigError


def paper_space(model: str) -> dict[str, tuple[Any, ...]]:
    """The paper's grid (Sec. 5.2) for one model family, only the parameters that model uses.

    Args:
        model: a model name (``selfattn_lstm``, ``gcnn_lstm``, ...).

    Returns:
        ``{parameter: values}``.

    Raises:
        ConfigError: unknown model.

    Examples:
        >>> paper_space("gcnn_lstm")["hidden"]
        (128, 256, 1024)
        >>> sorted(paper_space("selfattn"))
        ['attn_layers', 'batch_size', 'heads', 'lr']
    """
    return dict(families.family(model).space)


def merge_space(model: str, overrides: Mapping[str, Any], paper: bool = True) -> dict[str, tuple[Any, ...]]:
    """Narrow or widen the paper space: each key of ``overrides`` replaces (or adds) that parameter's values.

    Args:
        model: the model family whose paper space is the start.
        overrides: ``{parameter: [values]}``, e.g. from a ``[space]`` TOML table.
        paper: start from the paper space (False: the space is exactly ``overrides``).

    Returns:
        ``{parameter: values}``.

    Raises:
        ConfigError: a value list is not a list.

    Examples:
        >>> merge_space("gcnn", {"lr": [1e-3], "dropout": [0.1, 0.3]})
        {'channels': (64, 128), 'lr': (0.001,), 'batch_size': (64, 128, 256), 'dropout': (0.1, 0.3)}
    """
    space = paper_space(model) if paper else {}
    for name, values in overrides.items():
        if not isinstance(values, (list, tuple)):
            raise ConfigError(f"Space parameter '{name}': give a list of values, e.g. {name} = [{values!r}], "
                              f"not {values!r}.")
        space[name] = tuple(values)
    return space


def load_space(path: str | os.PathLike[str], model: str) -> dict[str, tuple[Any, ...]]:
    """Read a space file: a ``[space]`` table of ``parameter = [values]`` over the paper space of ``model``.

    ``paper_space = false`` at the top level starts from an empty space instead of the paper's.

    Raises:
        MissingDataError: the file does not exist.
        DataFormatError: the file is not valid TOML.
        ConfigError: no ``[space]`` table, or an unknown top-level key.
    """
    data = fsutil.read_toml(path)
    unknown = sorted(set(data) - {"space", "paper_space"})
    if unknown:
        raise ConfigError(f"Space file '{path}': unknown key(s) {unknown}; allowed: paper_space, [space].")
    if not isinstance(data.get("space", {}), dict):
        raise ConfigError(f"Space file '{path}': 'space' must be a table ([space]).")
    return merge_space(model, data.get("space", {}), paper=bool(data.get("paper_space", True)))


def apply_params(base: RunConfig, params: Mapping[str, Any]) -> RunConfig:
    """The RunConfig of one trial: ``base`` with the swept parameters set.

    Raises:
        ConfigError: an unknown parameter, or a combination the config rejects (e.g. d_model not divisible by heads).

    Examples:
        >>> from musefusion.config import DataConfig
        >>> cfg = apply_params(RunConfig(DataConfig("data")), {"heads": 8, "lr": 0.002})
        >>> cfg.model.heads, cfg.train.lr
        (8, 0.002)
    """
    changes: dict[str, dict[str, Any]] = {"data": {}, "model": {}, "train": {}}
    for name, value in params.items():
        if name not in SWEEP_PARAMS:
            raise ConfigError(f"Space parameter '{name}' cannot be swept; choose from {', '.join(SWEEP_PARAMS)}.")
        changes[SWEEP_PARAMS[name]][name] = value
    return RunConfig(base.data.replace(**changes["data"]), base.model.replace(**changes["model"]),
                     base.train.replace(**changes["train"]))


def grid_points(space: Mapping[str, tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Every combination of the space, in a fixed order (first parameter slowest).

    Examples:
        >>> grid_points({"heads": (4, 8), "lr": (1e-3,)})
        [{'heads': 4, 'lr': 0.001}, {'heads': 8, 'lr': 0.001}]
    """
    names = list(space)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(space[n] for n in names))]


def expand_grid(sweep: SweepConfig) -> list[RunConfig]:
    """The sweep as one RunConfig per grid point (what ``--sampler grid`` trains, in some order).

    Raises:
        ConfigError: a grid point the config rejects.
    """
    return [apply_params(sweep.base, p) for p in grid_points(sweep.space_dict)]


def check_space(sweep: SweepConfig, max_checked: int = 10_000) -> None:
    """Fail early on values the config rejects: every grid point when the grid is small, else each value alone.

    Raises:
        ConfigError: naming the offending parameter values.
    """
    space = sweep.space_dict
    n = 1
    for values in space.values():
        n *= len(values)
    points = grid_points(space) if n <= max_checked else [{k: v} for k, vs in space.items() for v in vs]
    for p in points:
        try:
            apply_params(sweep.base, p)
        except (ConfigError, TypeError) as exc:
            raise ConfigError(f"Space point {p} is invalid for model '{sweep.base.model.name}': {exc}") from None


__all__ = ["apply_params", "check_space", "expand_grid", "grid_points",
           "load_space", "merge_space", "paper_space"]
