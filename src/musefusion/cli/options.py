"""Options shared by several commands, each declared once (the same name means the same thing everywhere)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated, Optional

import typer

from musefusion import families, progress
from musefusion.errors import ConfigError, MissingDependencyError
from musefusion.types import Normalise, Task

DataOpt = Annotated[Optional[Path], typer.Option(  # noqa: UP045 - typer needs Optional here
    "--data", help="Data root holding c3_muse_stress/ or c4_muse_physio/ (or a corpus folder). "
                   "Default: $MUSEFUSION_DATA.", show_default=False)]
TaskOpt = Annotated[Task, typer.Option("--task", help="MuSe sub-challenge.", case_sensitive=False)]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed.")]

# The run options of `train` and `sweep run` (None: not given, the config file's or the default value holds).
TaskOverrideOpt = Annotated[Optional[Task], typer.Option(  # noqa: UP045
    "--task", help="MuSe sub-challenge (default: stress).", case_sensitive=False, show_default=False)]
TargetOpt = Annotated[Optional[str], typer.Option(  # noqa: UP045
    "--target", help="Label folder: arousal, valence, anno12_EDA, ...", show_default=False)]
FeaturesOpt = Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
    "--features", help="Feature set(s), space- or comma-separated or repeated; join with '+' to concatenate "
                       "(bio = ECG+resp+BPM, or a biosignals folder); names match the corpus folders in any case.",
    show_default=False)]
ModelOpt = Annotated[Optional[str], typer.Option(  # noqa: UP045
    "--model", help=f"Model family: {', '.join(families.names())} (default: selfattn_lstm).", show_default=False)]
EpochsOpt = Annotated[Optional[int], typer.Option(  # noqa: UP045
    "--epochs", help="Epochs (default: 100, paper Sec. 5.2).", show_default=False)]
WinLenOpt = Annotated[Optional[int], typer.Option(  # noqa: UP045
    "--win-len", help="Train window length in steps (default: 300).", show_default=False)]
HopLenOpt = Annotated[Optional[int], typer.Option(  # noqa: UP045
    "--hop-len", help="Train window hop in steps (default: 50).", show_default=False)]
NormaliseOpt = Annotated[Optional[Normalise], typer.Option(  # noqa: UP045
    "--normalise", "--normalize", help="Whose statistics z-score the features: train (the train partition's, "
    "as the MuSe 2021 baseline), subject (each recording's own over its observed steps, test subjects too: no "
    "label is read) or none (default: train).", show_default=False, case_sensitive=False)]
SubjectPriorOpt = Annotated[Optional[int], typer.Option(  # noqa: UP045
    "--subject-prior", help="--normalise subject: shrink a recording's statistics toward the train statistics "
    "as if these many steps of train data were pooled with it (default: 0, its own statistics alone).",
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
