"""Extract MuSe features from raw recordings onto the 500 ms grid and write them in the corpus layout.

``extract_file`` -> one recording (any of audio, video, bio) in memory; ``extract_files`` -> many recordings
written to ``<out>/<corpus>/feature_segments/<feature>/<id>.csv``; ``extract_folder`` -> every recording in a
folder (the audinterface ``process_file/process_files/process_folder`` pattern).
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from musefusion import rundir
from musefusion.config import ConfigBase
from musefusion.data import formats
from musefusion.data.grid import step_grid
from musefusion.errors import ConfigError, DataFormatError, MissingDataError
from musefusion.features import audio as audio_mod
from musefusion.features import bio_records, media, physio
from musefusion.progress import track
from musefusion.types import Task, expand_features

logger = logging.getLogger(__name__)

AUDIO_FEATURES = ("egemaps", "vggish")
VIDEO_FEATURES = ("vggface",)
BIO_FEATURES = physio.BIO_FEATURES
#: Every feature set this module can make, in output order.
EXTRACTABLE = AUDIO_FEATURES + VIDEO_FEATURES + BIO_FEATURES
#: What ``extract`` makes when no features are named: the task's paper features (Sec. 3; stress: eGeMAPS,
#: VGGface, bio; physio: VGGish, VGGface, bio), as far as the inputs and the weight files at hand allow.
PAPER_FEATURES: dict[Task, tuple[str, ...]] = {
    Task.STRESS: ("egemaps", "vggface", *BIO_FEATURES),
    Task.PHYSIO: ("vggish", "vggface", *BIO_FEATURES),
}

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".aac", ".opus")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg")
#: Bio inputs: a CSV table, a WFDB record (its .hea header; the .dat beside it), an EDF(+) or BDF(+) file.
BIO_SUFFIXES = (".csv", *bio_records.RECORD_SUFFIXES)


def _torch_module(name: str) -> ModuleType:
    """``musefusion.features.<name>`` (``video`` or ``mtcnn``), imported on first use.

    Both import torch; the CLI imports this module at start-up for every command, and ``--help`` or an
    eGeMAPS-only extraction should not wait for torch.
    """
    return importlib.import_module(f"musefusion.features.{name}")


@dataclasses.dataclass(frozen=True)
class ExtractConfig(ConfigBase):
    """Which features to extract from raw recordings, and how."""

    features: tuple[str, ...] = ()  # feature sets to make; empty = the task's paper features the inputs allow
    task: Task = Task.STRESS  # decides the corpus folder: <out>/<task.corpus_dirs[0]>/feature_segments/
    egemaps_win_s: float = audio_mod.EGEMAPS_WIN_S  # eGeMAPS window centred on each step (MuSe 2021: 2 s)
    vggish_weights: Path | None = None  # VGGish state dict; default $MUSEFUSION_VGGISH_WEIGHTS
    vggface_weights: Path | None = None  # VGG-Face state dict; default $MUSEFUSION_VGGFACE_WEIGHTS
    mtcnn_weights: Path | None = None  # folder with pnet.pt/rnet.pt/onet.pt; default: facenet-pytorch's
    face_min_size_px: int = 40  # smallest face MTCNN looks for (px); smaller = slower
    vggface_bf16: bool = False  # VGG-Face in bfloat16: ~2x faster on CPUs with native bf16, ~3 digits
    bio_time_unit: str = "auto"  # unit of the bio CSV's time column: auto, s or ms (records carry their rates)
    ecg_channel: str | None = None  # ECG channel of a WFDB/EDF record (or CSV column); None: by name rules
    resp_channel: str | None = None  # respiration channel of a record (or CSV column); None: by name rules
    overwrite: bool = False  # re-extract recordings whose outputs already exist

    def __post_init__(self) -> None:
        object.__setattr__(self, "task", Task(self.task))
        feats = expand_features(self.features) if self.features else ()
        canonical = {f.lower(): f for f in EXTRACTABLE}
        unknown = [f for f in feats if f.lower() not in canonical]
        if unknown:
            raise ConfigError(f"ExtractConfig.features: cannot extract {unknown}; allowed: "
                              f"{', '.join(EXTRACTABLE)} (any case; or bio = ECG+resp+BPM).")
        feats = tuple(dict.fromkeys(canonical[f.lower()] for f in feats))
        object.__setattr__(self, "features", feats)
        for name in ("vggish_weights", "vggface_weights", "mtcnn_weights"):
            v = getattr(self, name)
            if v is not None:
                object.__setattr__(self, name, Path(v))
        if not 0.25 <= self.egemaps_win_s <= 60:
            raise ConfigError(f"ExtractConfig.egemaps_win_s: {self.egemaps_win_s} s must be in [0.25, 60] "
                              "(--egemaps-win-s).")
        if self.face_min_size_px < 12:
            raise ConfigError(f"ExtractConfig.face_min_size_px: {self.face_min_size_px} must be >= 12 "
                              "(MTCNN's P-Net cell size).")
        if self.bio_time_unit not in ("auto", "s", "ms"):
            raise ConfigError(f"ExtractConfig.bio_time_unit: '{self.bio_time_unit}' is not auto, s or ms.")
        for name in ("ecg_channel", "resp_channel"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, str) or not v.strip()):
                raise ConfigError(f"ExtractConfig.{name}: {v!r} is not a channel name; give the signal's name "
                                  f"as stored in the record (--{name.replace('_', '-')} NAME) or leave it out.")


@dataclasses.dataclass(frozen=True)
class Recording:
    """One subject's raw recordings (any may be None)."""

    id: str  # subject id: the output file name <id>.csv
    audio: Path | None = None  # audio file (or a video whose audio track to use)
    video: Path | None = None  # video file (frames for vggface; its audio track when ``audio`` is None)
    bio: Path | None = None  # CSV with time + ecg/resp columns, WFDB .hea record, or EDF/BDF file

    def __post_init__(self) -> None:
        formats.check_id(str(self.id), "Recording id (--id, a manifest row or a file name)")


class Extracted(dict):
    """Feature name -> ``(timestamps_ms, values)``; also ``columns`` (feature -> names) and ``face_rate``."""

    def __init__(self) -> None:
        super().__init__()
        self.columns: dict[str, list[str]] = {}
        self.face_rate: float | None = None  # share of video steps with a face (None without video)


def resolve_features(requested: Sequence[str], audio: bool, video: bool, bio: bool,
                     task: Task = Task.STRESS) -> tuple[str, ...]:
    """The features to make for the inputs at hand.

    ``requested`` empty: the task's paper features (:data:`PAPER_FEATURES`) the inputs allow (audio features also
    come from a video's track).

    Raises:
        ConfigError: a requested feature has no input to come from.

    Examples:
        >>> resolve_features((), audio=True, video=False, bio=True)
        ('egemaps', 'ECG', 'resp', 'BPM')
        >>> resolve_features((), audio=True, video=False, bio=False, task=Task.PHYSIO)
        ('vggish',)
    """
    has = {**dict.fromkeys(AUDIO_FEATURES, audio or video), **dict.fromkeys(VIDEO_FEATURES, video),
           **dict.fromkeys(BIO_FEATURES, bio)}
    if not requested:
        return tuple(f for f in PAPER_FEATURES[Task(task)] if has[f])
    source = {**dict.fromkeys(AUDIO_FEATURES, "--audio (or --video)"),
              **dict.fromkeys(VIDEO_FEATURES, "--video"), **dict.fromkeys(BIO_FEATURES, "--bio")}
    for f in requested:
        if not has[f]:
            raise ConfigError(f"Feature '{f}' needs {source[f]}, which was not given.")
    return tuple(requested)


class Extractor:
    """Holds the loaded networks so many recordings share one load (like audinterface's ``Feature``)."""

    def __init__(self, config: ExtractConfig | None = None) -> None:
        self.config = config or ExtractConfig()
        self._models: dict[str, Any] = {}
        self._skipped: set[str] = set()  # default features skipped for missing weights (warned once)

    def missing_weights(self, feature: str) -> str | None:
        """Why ``feature`` cannot be made here (its weights file is not given or absent), else None."""
        try:
            if feature == "vggish":
                audio_mod.resolve_weights(self.config.vggish_weights, audio_mod.VGGISH_WEIGHTS_ENV, "VGGish",
                                          audio_mod.VGGISH_HINT)
            elif feature == "vggface":
                video = _torch_module("video")
                video.resolve_weights(self.config.vggface_weights, video.VGGFACE_WEIGHTS_ENV, "VGG-Face",
                                      video.VGGFACE_HINT)
        except MissingDataError as exc:
            return str(exc)
        return None

    def default_features(self, audio: bool, video: bool, bio: bool) -> tuple[str, ...]:
        """The task's paper features the inputs allow, less those whose weights are missing (one warning each)."""
        feats = resolve_features((), audio, video, bio, self.config.task)
        kept = []
        for f in feats:
            why = self.missing_weights(f)
            if why is None:
                kept.append(f)
            elif f not in self._skipped:
                self._skipped.add(f)
                logger.warning("skipping %s: %s", f, why)
        return tuple(kept)

    def prepare(self, features: Iterable[str]) -> None:
        """Load the networks ``features`` need now, so a missing or bad weights file fails before any work.

        Raises:
            MissingDataError: a weights file is not given or does not exist.
            CheckpointError: a weights file holds pickled code or does not fit its network.
        """
        features = set(features)
        if "vggish" in features and "vggish" not in self._models:
            self._models["vggish"] = audio_mod.load_vggish(self.config.vggish_weights)
        if "vggface" in features and "vggface" not in self._models:
            self._models["vggface"] = _torch_module("video").load_vggface(self.config.vggface_weights)
            self._models["mtcnn"] = _torch_module("mtcnn").load_mtcnn(self.config.mtcnn_weights)

    def extract_file(self, audio: str | os.PathLike[str] | None = None, video: str | os.PathLike[str] | None = None,
                     bio: str | os.PathLike[str] | None = None, features: Sequence[str] | None = None) -> Extracted:
        """Extract features from one recording.

        Args:
            audio: an audio file, or a video whose audio track to use.
            video: a video file (frames -> vggface; its audio track -> audio features when ``audio`` is None).
            bio: a CSV with a time column (s or ms) and ``ecg`` and/or ``resp`` columns, a WFDB record's
                ``.hea`` header (its ``.dat`` beside it), or an EDF/BDF file (channels picked as in
                :func:`musefusion.features.physio.record_table`).
            features: feature sets to make (default: the config's, else all the inputs allow).

        Returns:
            Feature -> ``(timestamps_ms, values)``: int64 ``(T,)`` on the 500 ms grid from 0 and float32
            ``(T, d)``; NaN rows mark steps without data (no face). ``.face_rate`` holds the share of video
            steps with a face.

        Raises:
            ConfigError: no input, or a requested feature without its input.
            MissingDataError: an input or weights file does not exist.
            DataFormatError: an input is empty, undecodable, silent, or lacks the expected columns.
            CheckpointError: a weights file holds pickled code or has the wrong shapes.
        """
        if audio is None and video is None and bio is None:
            raise ConfigError("Nothing to extract: give --audio, --video and/or --bio.")
        requested = expand_features(tuple(features)) if features else self.config.features
        if requested:
            feats = resolve_features(requested, audio is not None, video is not None, bio is not None,
                                     self.config.task)
        else:
            feats = self.default_features(audio is not None, video is not None, bio is not None)
        if not feats:
            raise ConfigError("Nothing to extract: the inputs given allow none of the task's paper features "
                              f"({', '.join(PAPER_FEATURES[self.config.task])}) with the weight files at hand; "
                              "name features with --features.")
        self.prepare(feats)
        out = Extracted()
        audio_feats = [f for f in feats if f in AUDIO_FEATURES]
        if audio_feats:
            source = audio if audio is not None else video
            assert source is not None  # resolve_features asks for audio features only with audio or video
            self._extract_audio(Path(source), audio is None, audio_feats, out)
        if "vggface" in feats:
            assert video is not None
            self._extract_video(Path(video), out)
        bio_feats = tuple(f for f in feats if f in BIO_FEATURES)
        if bio_feats:
            assert bio is not None
            self._extract_bio(Path(bio), bio_feats, out)
        return out

    def _extract_audio(self, path: Path, from_video: bool, feats: list[str], out: Extracted) -> None:
        signal = media.read_audio(path, audio_mod.AUDIO_SR_HZ, what="Video" if from_video else "Audio")
        if signal is None:
            if not from_video:
                raise DataFormatError(f"Audio file '{path}' has no audio stream.")
            msg = f"video '{path}' has no audio track; skipping {', '.join(feats)}"
            logger.warning(msg)
            warnings.warn(msg, UserWarning, stacklevel=3)
            return
        audio_mod.check_audible(signal, path)
        sr = audio_mod.AUDIO_SR_HZ
        grid = step_grid(len(signal) / sr)
        for f in feats:
            try:
                if f == "egemaps":
                    vals, cols = audio_mod.extract_egemaps(signal, sr, grid, self.config.egemaps_win_s)
                else:
                    vals, cols = audio_mod.extract_vggish(signal, sr, grid, self._models["vggish"])
            except DataFormatError as exc:
                if str(path) in str(exc):
                    raise
                raise DataFormatError(f"{'Video' if from_video else 'Audio'} file '{path}': {exc}") from None
            out[f], out.columns[f] = (grid, vals), cols

    def _extract_video(self, path: Path, out: Extracted) -> None:
        grid, vals, face_rate = _torch_module("video").extract_vggface(path, self._models["mtcnn"], self._models["vggface"],
                                                      min_face_px=self.config.face_min_size_px,
                                                      bf16=self.config.vggface_bf16)
        out["vggface"], out.columns["vggface"] = (grid, vals), [f"vggface_{j}" for j in range(vals.shape[1])]
        out.face_rate = face_rate
        logger.info("%s: face found in %.1f%% of %d steps", path.name, 100 * face_rate, len(grid))

    def _extract_bio(self, path: Path, feats: tuple[str, ...], out: Extracted) -> None:
        cfg = self.config
        suffix = path.suffix.lower()
        if suffix == ".dat":
            raise ConfigError(f"Bio file '{path}' is a WFDB signal file; give its header "
                              f"'{path.with_suffix('.hea')}' instead (the .dat is read through it).")
        if suffix in bio_records.RECORD_SUFFIXES:
            df = physio.record_table(bio_records.read_bio_record(path), path, cfg.ecg_channel, cfg.resp_channel)
            t, sr, ecg, resp = physio.read_bio(df, path, "s")
        else:
            df = bio_records.read_table(path)
            t, sr, ecg, resp = physio.read_bio(df, path, cfg.bio_time_unit, cfg.ecg_channel, cfg.resp_channel)
        grid = step_grid(t[-1])
        try:
            values = physio.extract_bio(t, sr, ecg, resp, grid, feats)
        except DataFormatError as exc:
            raise DataFormatError(f"Bio file '{path}': {exc}") from None
        for f, v in values.items():
            out[f], out.columns[f] = (grid, v), [f]

    def output_paths(self, out_root: str | os.PathLike[str], rec: Recording) -> dict[str, Path]:
        """Where ``rec``'s features go: feature -> ``<out>/<corpus>/feature_segments/<feature>/<id>.csv``."""
        has = (rec.audio is not None, rec.video is not None, rec.bio is not None)
        feats = (resolve_features(self.config.features, *has, self.config.task) if self.config.features
                 else self.default_features(*has))
        corpus = Path(out_root) / self.config.task.corpus_dirs[0]
        return {f: corpus / "feature_segments" / f / f"{rec.id}.csv" for f in feats}

    def extract_files(self, recordings: Iterable[Recording], out_root: str | os.PathLike[str],
                      verbose: bool = False) -> pd.DataFrame:
        """Extract and write many recordings, skipping those whose outputs all exist (unless ``overwrite``).

        Each recording's features are computed in memory first and then written atomically, so a failure
        leaves none of that recording's files behind.

        Args:
            recordings: what to extract.
            out_root: data root; files go to ``<out_root>/<corpus>/feature_segments/<feature>/<id>.csv``.
            verbose: show a rich progress bar.

        Returns:
            One row per recording: ``id``, ``status`` (extracted/skipped), ``features``, ``n_steps``,
            ``face_rate``.

        Raises:
            ConfigError: duplicated ids, a recording without inputs, or an ``out_root`` that is not a data root
                (:func:`musefusion.rundir.check_data_root`).
            MuseFusionError: as :meth:`extract_file`, for the first recording that fails.
        """
        rundir.check_data_root(Path(out_root), "out_root")
        recordings = list(recordings)
        ids = [r.id for r in recordings]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ConfigError(f"Recording id(s) {dup[:3]} appear more than once; each id must be unique.")
        todo = []
        for rec in recordings:
            paths = self.output_paths(out_root, rec)
            todo.append((rec, paths))
        self.prepare({f for _, paths in todo for f in paths})
        rows = []
        iterator: Iterable[tuple[Recording, dict[str, Path]]] = todo
        if verbose:
            iterator = track(todo, description="extracting")
        for rec, paths in iterator:
            if not paths:
                raise ConfigError(f"Nothing to extract for '{rec.id}': its inputs allow none of the task's paper "
                                  f"features with the weight files at hand; name features with --features.")
            if not self.config.overwrite and all(p.is_file() for p in paths.values()):
                rows.append((rec.id, "skipped", ",".join(paths), 0, np.nan))
                continue
            result = self.extract_file(rec.audio, rec.video, rec.bio, features=list(paths))
            for f, (ts, vals) in result.items():
                formats.write_sequence_csv(paths[f], ts, vals, columns=result.columns[f])
            n_steps = max((len(ts) for ts, _ in result.values()), default=0)
            face = result.face_rate if result.face_rate is not None else np.nan
            rows.append((rec.id, "extracted", ",".join(result), n_steps, face))
            logger.debug("extracted %s: %s", rec.id, ", ".join(result))
        return pd.DataFrame(rows, columns=["id", "status", "features", "n_steps", "face_rate"])


def recordings_in_folder(folder: str | os.PathLike[str]) -> list[Recording]:
    """Group a folder's files by stem into recordings: ``<id>.wav`` (audio), ``<id>.mp4`` (video),
    ``<id>.csv``, ``<id>.hea`` (WFDB; ``<id>.dat`` beside it), ``<id>.edf`` or ``<id>.bdf`` (bio); see
    ``AUDIO_SUFFIXES``, ``VIDEO_SUFFIXES``, ``BIO_SUFFIXES``.

    Raises:
        MissingDataError: the folder does not exist or holds no recording.
        ConfigError: two files of the same kind share a stem.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingDataError(f"Input folder '{folder}' not found (--input-dir).")
    found: dict[str, dict[str, Path]] = {}
    for p in sorted(folder.iterdir()):
        suffix = p.suffix.lower()
        kind = ("audio" if suffix in AUDIO_SUFFIXES else "video" if suffix in VIDEO_SUFFIXES
                else "bio" if suffix in BIO_SUFFIXES else None)
        if kind is None or not p.is_file() or p.name.startswith("."):
            continue
        slot = found.setdefault(p.stem, {})
        if kind in slot:
            raise ConfigError(f"Input folder '{folder}': '{slot[kind].name}' and '{p.name}' are both {kind} for "
                              f"id '{p.stem}'; keep one, or list them in a --manifest.")
        slot[kind] = p
    if not found:
        raise MissingDataError(f"Input folder '{folder}' holds no recording ({', '.join(AUDIO_SUFFIXES)}, "
                               f"{', '.join(VIDEO_SUFFIXES)}, {', '.join(BIO_SUFFIXES)}).")
    return [Recording(sid, **kinds) for sid, kinds in found.items()]


def recordings_from_manifest(path: str | os.PathLike[str]) -> list[Recording]:
    """Read a manifest CSV with columns ``id,audio,video,bio`` (empty cells allowed; relative paths are
    relative to the manifest's folder).

    Raises:
        MissingDataError: the manifest does not exist.
        DataFormatError: no ``id`` column, no input column, or a row without any input.
    """
    path = Path(path)
    df = bio_records.read_table(path, "Manifest", "columns id,audio,video,bio")
    df.columns = [str(c).strip().lower() for c in df.columns]
    kinds = [k for k in ("audio", "video", "bio") if k in df.columns]
    if "id" not in df.columns or not kinds:
        raise DataFormatError(f"Manifest '{path}' needs columns id and at least one of audio, video, bio; "
                              f"found {list(df.columns)}.")
    out = []
    for i, row in enumerate(df.itertuples(index=False), start=2):
        row_d = row._asdict()
        files = {}
        for k in kinds:
            v = row_d[k]
            if isinstance(v, str) and v.strip():
                p = Path(v.strip()).expanduser()
                files[k] = p if p.is_absolute() else path.parent / p
        if not files:
            raise DataFormatError(f"Manifest '{path}' line {i} (id {row_d['id']}) names no audio, video or bio file.")
        out.append(Recording(str(row_d["id"]).strip(), **files))
    return out


def extract_file(audio: str | os.PathLike[str] | None = None, video: str | os.PathLike[str] | None = None,
                 bio: str | os.PathLike[str] | None = None, features: Sequence[str] | None = None,
                 config: ExtractConfig | None = None) -> Extracted:
    """Extract features from one recording into memory (see :meth:`Extractor.extract_file`).

    Returns:
        Feature -> ``(timestamps_ms, values)`` on the 500 ms grid.
    """
    return Extractor(config).extract_file(audio, video, bio, features)


def extract_files(recordings: Iterable[Recording], out_root: str | os.PathLike[str],
                  config: ExtractConfig | None = None, verbose: bool = False) -> pd.DataFrame:
    """Extract and write many recordings (see :meth:`Extractor.extract_files`)."""
    return Extractor(config).extract_files(recordings, out_root, verbose=verbose)


def extract_folder(folder: str | os.PathLike[str], out_root: str | os.PathLike[str],
                   config: ExtractConfig | None = None, verbose: bool = False) -> pd.DataFrame:
    """Extract and write every recording in ``folder`` (see :func:`recordings_in_folder`)."""
    return extract_files(recordings_in_folder(folder), out_root, config, verbose)


__all__ = ["EXTRACTABLE", "ExtractConfig", "Extracted", "Extractor", "Recording", "extract_file",
           "extract_files", "extract_folder", "recordings_from_manifest", "recordings_in_folder",
           "resolve_features"]
