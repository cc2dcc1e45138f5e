"""The musefusion error hierarchy. Every message names the file, column or option at fault and the fix."""

from __future__ import annotations


class MuseFusionError(Exception):
    """Base class of every error musefusion raises on purpose (the CLI prints it on one line, exit 2)."""


class ConfigError(MuseFusionError, ValueError):
    """An option or config field has a bad value."""


class DataFormatError(MuseFusionError, ValueError):
    """A corpus file exists but its content is malformed."""


class MissingDataError(MuseFusionError, FileNotFoundError):
    """A file or folder the run needs does not exist."""


class MissingDependencyError(MuseFusionError, ImportError):
    """An optional dependency is not installed."""


class CheckpointError(MuseFusionError):
    """A checkpoint or weights file cannot be loaded safely."""


class StorageError(MuseFusionError):
    """A sweep's study storage (SQLite file or PostgreSQL server) cannot be reached or used."""


class ClusterError(MuseFusionError):
    """The distributed engine (a Dask scheduler) cannot be reached."""


class SweepError(MuseFusionError):
    """A sweep worker stopped with an error (its own message was printed first)."""


class TrainingError(MuseFusionError):
    """Training cannot go on (e.g. the loss became NaN or infinite)."""


class TrackingError(MuseFusionError):
    """The tracking store (MLflow) cannot be reached or used."""


class OutputError(MuseFusionError, OSError):
    """An output cannot be written (full disk, quota, read-only file system, no permission)."""
