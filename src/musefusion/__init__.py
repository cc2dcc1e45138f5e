"""musefusion: time-continuous multimodal emotion recognition (MuSe 2021, Hybrid Multimodal Fusion)."""

from importlib.metadata import PackageNotFoundError, version

from musefusion.api import (
    ReproduceResult,
    ccc,
    evaluate,
    extract,
    fuse,
    load_corpus,
    personalise,
    reproduce,
    run_config,
    train,
)
from musefusion.config import DataConfig
from musefusion.data.corpus import CorpusData, Sequence
from musefusion.data.synth import SynthConfig, synthesize
from musefusion.errors import (
    CheckpointError,
    ConfigError,
    DataFormatError,
    MissingDataError,
    MissingDependencyError,
    MuseFusionError,
)
from musefusion.types import FillPolicy, Modality, Partition, Task

try:
    __version__ = version("musefusion")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = [
    "CheckpointError", "ConfigError", "CorpusData", "DataConfig", "DataFormatError", "FillPolicy",
    "MissingDataError", "MissingDependencyError", "Modality", "MuseFusionError", "Partition", "ReproduceResult",
    "Sequence", "SynthConfig", "Task", "__version__", "ccc", "evaluate", "extract", "fuse", "load_corpus",
    "personalise", "reproduce", "run_config", "synthesize", "train",
]
