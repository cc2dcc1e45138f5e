"""The Python API: what the commands do, callable from a notebook or a script.

Each function takes the same settings as its command, by name, and returns the result object the command prints
from; the commands in ``musefusion.cli`` are thin shells over these (progress display and messages only).

A session in a notebook (``tests/test_api.py`` runs the same on a small corpus)::

    import musefusion as mf
    run = mf.train("demo/data", target="valence", features=["vggface"], model="lstm", epochs=8)
    run.devel_ccc, run.run_dir
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from musefusion import fsutil, rundir
from musefusion.config import (
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    model_preset,
    resolve_data_root,
    unknown_key_error,
)
from musefusion.data.corpus import find_corpus_dir, load_corpus
from musefusion.errors import ConfigError
from musefusion.pipelines.reproduce import ReproduceConfig
from musefusion.pipelines.reproduce import reproduce as run_reproduce

logger = logging.getLogger(__name__)

#: Which config section each run field belongs to (``model`` names the family: [model] name).
_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def build_run_config(config: Path | None, overrides: dict[str, dict[str, Any]]) -> RunConfig:
    """Defaults < ``config`` file < ``overrides`` (by section; a None value means 'not given').

    Raises:
        ConfigError: an unknown section or key (naming the nearest valid one), a bad value.
    """
    base: dict[str, dict[str, Any]] = {"data": {}, "model": {}, "train": {}}
    if config is not None:
        file_cfg = fsutil.read_toml(config)
        file_cfg.pop("versions", None)
        file_cfg.pop("inputs", None)  # a run's config.toml may be given as --config
        unknown = sorted(set(file_cfg) - set(base))
        if unknown:
            raise unknown_key_error(f"the sections of '{config}'", unknown[0], list(base))
        for k, cls in (("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig)):
            section = file_cfg.get(k, {})
            if not isinstance(section, dict):
                raise ConfigError(f"'{config}': [{k}] must be a table of keys, not {section!r}.")
            fields = {f.name for f in dataclasses.fields(cls)}
            bad = sorted(set(section) - fields)
            if bad:
                raise unknown_key_error(f"[{k}] of '{config}'", bad[0], fields)
            base[k].update(section)
    for section, values in overrides.items():
        base[section].update({k: v for k, v in values.items() if v is not None})
    if "root" not in base["data"]:
        base["data"]["root"] = str(resolve_data_root(None))
    name = base["model"].get("name", "selfattn_lstm")
    model_fields = {k: v for k, v in base["model"].items() if k != "name"}
    model = model_preset(name, **model_fields)
    return RunConfig(DataConfig.from_dict(base["data"]), model, TrainConfig.from_dict(base["train"]))


def run_config(data: str | Path | None = None, *, config_file: str | Path | None = None, **fields: Any) -> RunConfig:
    """A :class:`RunConfig` from keyword fields of any section: defaults < ``config_file`` < ``fields``.

    Args:
        data: the data root (default ``$MUSEFUSION_DATA``).
        config_file: a TOML file with ``[data]``, ``[model]``, ``[train]`` sections (a run's config.toml works).
        **fields: any field of DataConfig, ModelConfig or TrainConfig by name; ``model`` is the family's name.

    Raises:
        ConfigError: an unknown field (naming the nearest valid one) or a bad value.

    Examples:
        >>> cfg = run_config("/data", target="valence", features=["vggface"], model="lstm", epochs=8, hidden=128)
        >>> (cfg.data.target, cfg.model.name, cfg.model.hidden, cfg.train.epochs)
        ('valence', 'lstm', 128, 8)
    """
    overrides: dict[str, dict[str, Any]] = {"data": {}, "model": {}, "train": {}}
    if data is not None:
        overrides["data"]["root"] = str(data)
    for key, value in fields.items():
        if key == "model":
            overrides["model"]["name"] = value
            continue
        section = next((sec for sec, cls in _SECTIONS.items()
                        if key in {f.name for f in dataclasses.fields(cls)}), None)
        if section is None:
            every = {f.name for cls in _SECTIONS.values() for f in dataclasses.fields(cls)} | {"model"}
            raise unknown_key_error("the run settings", key, every)
        if isinstance(value, tuple):
            value = list(value)
        overrides[section][key] = value
    return build_run_config(Path(config_file) if config_file is not None else None, overrides)


def prepare_train(cfg: RunConfig, out: str | Path | None = None, *, overwrite: bool = False
                  ) -> tuple[RunConfig, Path]:
    """Check a training request before anything is written: the device, the feature names, the output folder.

    Returns:
        ``cfg`` with the corpus's feature names, and the run directory (default
        ``runs/<task>-<target>-<features>-<model>-<config hash>``).

    Raises:
        ConfigError: a device this machine lacks; ``out`` holds another config's run, lies inside the corpus or
            holds foreign files.
    """
    # torch: imported on first use, so the CLI starts without it
    from musefusion.training.loop import resolve_device

    # torch: imported on first use, so the CLI starts without it
    from musefusion.training.run import resolve_run_config, run_status

    resolve_device(cfg.train.device)  # a device this machine lacks is refused before any work
    cfg = resolve_run_config(cfg)
    if out is None:
        out = rundir.default_run_dir(Path("runs"), [cfg.data.task.value, cfg.data.target, "+".join(cfg.data.features),
                                                    cfg.model.name], cfg.to_dict())
    out = Path(out)
    rundir.refuse_inside(out, find_corpus_dir(cfg.data.root, cfg.data.task))
    rundir.check_out(out, "run", overwrite)
    if run_status(cfg, out, overwrite=overwrite) is rundir.Status.FINISHED and not overwrite:
        logger.info("%s: finished with the same config and corpus files; reusing it (overwrite to retrain)", out)
    return cfg, out


def train_config(cfg: RunConfig, out: str | Path | None = None, *, overwrite: bool = False,
                 on_epoch: Callable[[int, dict[str, float]], None] | None = None) -> Any:
    """Train ``cfg`` into a run directory (``musefusion train``); returns the :class:`RunResult`.

    Args:
        cfg: what to train.
        out: the run directory (default ``runs/<task>-<target>-<features>-<model>-<config hash>``).
        overwrite: replace a run of another config (or retrain this one) instead of refusing / reusing it.
        on_epoch: called as ``on_epoch(seed, row)`` after each epoch.

    Raises:
        ConfigError: as :func:`prepare_train`.
    """
    # torch: imported on first use, so the CLI starts without it
    from musefusion.training.run import train_run

    cfg, out = prepare_train(cfg, out, overwrite=overwrite)
    corpus = load_corpus(cfg.data)
    return train_run(cfg, out, data=corpus, on_epoch=on_epoch, resume=not overwrite)


def train(data: str | Path | None = None, *, out: str | Path | None = None, overwrite: bool = False,
          config_file: str | Path | None = None, on_epoch: Callable[[int, dict[str, float]], None] | None = None,
          **fields: Any) -> Any:
    """Train a unimodal model, one per seed, keep the best epoch and seed on devel (``musefusion train``).

    Args:
        data: the data root.
        out: the run directory (see :func:`train_config`).
        overwrite: replace what ``out`` holds.
        config_file: a TOML file the fields override.
        on_epoch: progress callback ``on_epoch(seed, row)``.
        **fields: run settings by name (``target``, ``features``, ``model``, ``epochs``, ``seeds``, ``hidden``, ...).

    Returns:
        The :class:`musefusion.training.run.RunResult` (``.metrics``, ``.devel_ccc``, ``.run_dir``).
    """
    return train_config(run_config(data, config_file=config_file, **fields), out, overwrite=overwrite,
                        on_epoch=on_epoch)


def default_fusion_out(cfg: Any) -> Path:
    """``runs/fusion-<names>-<8 hex of the FusionConfig>``: the default folder of a fusion run."""
    return rundir.default_run_dir(Path("runs"), ["fusion", "+".join(cfg.names)], {"fusion": cfg.to_dict()})


def default_reproduce_out(cfg: Any) -> Path:
    """``runs/reproduce-<task>-<profile>`` (``-tuned`` with ``--tune``): the default folder of a reproduction."""
    return Path("runs") / f"reproduce-{cfg.task.value}-{cfg.profile}{'-tuned' if cfg.tune else ''}"


def fuse(streams: Iterable[str | Path], *, out: str | Path | None = None, overwrite: bool = False,
         **fields: Any) -> dict[str, Any]:
    """Late fusion of unimodal runs' prediction streams (``musefusion fuse``); returns the fusion's metrics.

    Args:
        streams: unimodal run directories.
        out: the fusion run directory (default ``runs/fusion-<names>-<config hash>``).
        overwrite: refit and replace what ``out`` holds.
        **fields: FusionConfig fields by name (``names``, ``train_on``, ``folds``, ``epochs``, ``seeds``, ...).
    """
    # torch: imported on first use, so the CLI starts without it
    from musefusion.fusion.late import FusionConfig

    # torch: imported on first use, so the CLI starts without it
    from musefusion.fusion.late import fuse as fuse_streams

    known = {f.name for f in dataclasses.fields(FusionConfig)} - {"streams"}
    for key in fields:
        if key not in known:
            raise unknown_key_error("the fusion settings", key, known)
    cfg = FusionConfig.from_dict({"streams": [str(s) for s in streams],
                                  **{k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}})
    out = Path(out) if out is not None else default_fusion_out(cfg)
    rundir.check_out(out, "run", overwrite)
    return fuse_streams(cfg, Path(out), resume=not overwrite, overwrite=overwrite)


def reproduce(data: str | Path | None = None, *, out: str | Path | None = None, **fields: Any) -> Path:
    """Every table of the paper on one corpus (``musefusion reproduce``); returns the report's path.

    Args:
        data: the data root.
        out: the output folder (default ``runs/reproduce-<task>-<profile>``).
        **fields: ReproduceConfig fields by name (``task``, ``profile``, ``workers``, ``seeds``, ``stage``, ...).
    """
    known = {f.name for f in dataclasses.fields(ReproduceConfig)} - {"root"}
    for key in fields:
        if key not in known:
            raise unknown_key_error("the reproduce settings", key, known)
    cfg = ReproduceConfig(root=resolve_data_root(data), **fields)
    out = Path(out) if out is not None else default_reproduce_out(cfg)
    rundir.check_out(out, "reproduce", cfg.overwrite)
    return run_reproduce(cfg, out)


__all__ = ["build_run_config", "default_fusion_out", "default_reproduce_out", "fuse", "prepare_train", "reproduce", "run_config", "train", "train_config"]
