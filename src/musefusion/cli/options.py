"""Options shared by several commands, each declared once (the same name means the same thing everywhere)."""

from __future__ import annotations

import dataclasses
import enum
import importlib.util
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from musefusion import families, progress
from musefusion.config import DataConfig, ModelConfig, TrainConfig
from musefusion.errors import ConfigError, MissingDependencyError
from musefusion.types import Normalise, Task


def shown(value: Any) -> str:
    """A value as ``--help`` shows it: an enum by its value, a sequence space-separated, a bool as yes/no."""
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple | list):
        return " ".join(shown(v) for v in value)
    return "none" if value is None else str(value)


def field_default(cls: type, name: str) -> str:
    """The default of config field ``cls.name`` as ``--help`` shows it: read from the dataclass, its one home, so no
    help string types it."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    if f.default is not dataclasses.MISSING:
        return shown(f.default)
    if f.default_factory is not dataclasses.MISSING:
        return shown(f.default_factory())
    raise ConfigError(f"{cls.__name__}.{name} has no default to show.")


def with_default(help: str, cls: type, name: str) -> str:
    """``help`` ending in the ``[default: ...]`` of config field ``cls.name``, read from the dataclass."""
    return f"{help}  [default: {field_default(cls, name)}]"


def field_option(cls: type, name: str, help: str, *decls: str, **kw: Any) -> Any:
    """A ``typer.Option`` for config field ``cls.name`` (None when not given: the config file's value or the
    dataclass default holds), its help ending in the ``[default: ...]`` read from the dataclass."""
    return typer.Option(*decls, help=with_default(help, cls, name), show_default=False, **kw)

DataOpt = Annotated[Optional[Path], typer.Option(  # noqa: UP045 - typer needs Optional here
    "--data", help="Data root holding c3_muse_stress/ or c4_muse_physio/ (or a corpus folder). "
                   "Default: $MUSEFUSION_DATA.", show_default=False)]
TaskOpt = Annotated[Task, typer.Option("--task", help="MuSe sub-challenge.", case_sensitive=False)]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed.")]

# The run options of `train` and `sweep run` (None: not given, the config file's or the default value holds).
TaskOverrideOpt = Annotated[Optional[Task], typer.Option(  # noqa: UP045
    "--task", help=with_default("MuSe sub-challenge.", DataConfig, "task"), case_sensitive=False,
    show_default=False)]
TargetOpt = Annotated[Optional[str], typer.Option(  # noqa: UP045
    "--target", help=with_default("Label folder: arousal, valence, anno12_EDA, ...", DataConfig, "target"),
    show_default=False)]
FeaturesOpt = Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
    "--features", help=with_default("Feature set(s), space- or comma-separated or repeated; join with '+' to "
                                    "concatenate (bio = ECG+resp+BPM, or a biosignals folder); names match the "
                                    "corpus folders in any case.", DataConfig, "features"), show_default=False)]
ModelOpt = Annotated[Optional[str], typer.Option(  # noqa: UP045
    "--model", help=with_default(f"Model family: {', '.join(families.names())}.", ModelConfig, "name"),
    show_default=False)]
EpochsOpt = Annotated[Optional[int], typer.Option(  # noqa: UP045
    "--epochs", help=with_default("Epochs (paper Sec. 5.2: 100).", TrainConfig, "epochs"), show_default=False)]
WinLenOpt = Annotated[Optional[int], typer.Option(  # noqa: UP045
    "--win-len", help=with_default("Train window length in steps.", DataConfig, "win_len"), show_default=False)]
HopLenOpt = Annotated[Optional[int], typer.Option(  # noqa: UP045
    "--hop-len", help=with_default("Train window hop in steps.", DataConfig, "hop_len"), show_default=False)]
NormaliseOpt = Annotated[Optional[Normalise], typer.Option(  # noqa: UP045
    "--normalise", "--normalize", help=with_default(
        "Whose statistics z-score the features: train (the train partition's, as the MuSe 2021 baseline), subject "
        "(each recording's own over its observed steps, test subjects too: no label is read) or none.", DataConfig,
        "normalize"), show_default=False, case_sensitive=False)]
SubjectPriorOpt = Annotated[Optional[int], typer.Option(  # noqa: UP045
    "--subject-prior", help=with_default(
        "--normalise subject: shrink a recording's statistics toward the train statistics as if these many steps "
        "of train data were pooled with it (0: its own statistics alone).", DataConfig, "subject_prior"),
    metavar="STEPS", show_default=False)]
ConfigOpt = Annotated[Optional[Path], typer.Option(  # noqa: UP045
    "--config", help="TOML file with [data], [model] and [train] sections; flags override it.",
    show_default=False)]
OverwriteOpt = Annotated[bool, typer.Option(
    "--overwrite", help="Replace runs in --out that were made with another configuration (without it they are "
                        "refused); files musefusion did not write are kept.")]

TrackOpt = Annotated[Optional[str], typer.Option(  # noqa: UP045
    "--track", metavar="mlflow", help="Log the finished runs to MLflow: params, per-epoch metrics, plots and the "
                                      "run directories as artifacts (pip install 'musefusion[track]').",
    show_default=False)]
TrackUriOpt = Annotated[Optional[str], typer.Option(  # noqa: UP045
    "--track-uri", metavar="URI", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else "
                                       "sqlite:///mlruns/mlflow.db with artifacts in mlruns/artifacts).",
    show_default=False)]


def check_track(track: str | None, uri: str | None) -> None:
    """Refuse a tracker other than mlflow, and --track-uri without --track (an option is used or refused)."""
    if track is not None and track.lower() != "mlflow":
        raise ConfigError(f"--track {track!r}: the one tracker is mlflow (--track mlflow).")
    if uri is not None and track is None:
        raise ConfigError("--track-uri is given without --track mlflow; add --track mlflow or drop --track-uri.")
    if track is not None and importlib.util.find_spec("mlflow") is None:  # before any training, not after it
        raise MissingDependencyError("--track mlflow needs MLflow: pip install 'musefusion[track]' (mlflow-skinny).")


def _quiet(value: bool) -> bool:
    if value:
        progress.set_quiet()
    return value


def _json(value: bool) -> bool:
    if value:
        progress.set_json()
    return value


QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Warnings and errors only: no progress display, no "
                                        "log lines.", callback=_quiet, is_eager=True)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object with the command's result on stdout "
                                       "when it ends (and nothing else there); an error prints {\"ok\": false, "
                                       "\"error\": ...}.", callback=_json, is_eager=True)]
