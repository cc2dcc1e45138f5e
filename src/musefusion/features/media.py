"""Decoding audio and video files (PyAV) for feature extraction."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from musefusion.errors import DataFormatError, MissingDataError, MissingDependencyError

# ----------------------------------------------------------------------------------------------- raw recordings


def check_media_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise MissingDataError(f"{what} file '{path}' not found; check the path (or the manifest row).")
    if path.stat().st_size == 0:
        raise DataFormatError(f"{what} file '{path}' is empty (0 bytes); re-export the recording.")


def _open_container(path: Path, what: str) -> Any:
    try:
        import av  # optional: pip install musefusion[audio] or [video]
    except ImportError:
        raise MissingDependencyError("Decoding media needs PyAV: pip install musefusion[audio]") from None
    check_media_file(path, what)
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise DataFormatError(f"{what} file '{path}' cannot be decoded ({str(exc).splitlines()[0]}); "
                              "is it a media file?") from None


def read_audio(path: str | os.PathLike[str], sr_hz: int = 16000, *,
               what: str = "Audio") -> np.ndarray | None:
    """Decode the first audio stream of a media file to mono float32 at ``sr_hz`` (PyAV, no ffmpeg binary).

    Args:
        path: an audio file (wav, flac, mp3, ...) or a video file with an audio track.
        sr_hz: output sampling rate; the stream is resampled (and down-mixed to mono) by libswresample.
        what: the file's role in error messages ("Audio", "Video").

    Returns:
        The samples in ``[-1, 1]``, shape ``(n_samples,)``, or None when the file has no audio stream.

    Raises:
        MissingDataError: the file does not exist.
        DataFormatError: the file is empty or cannot be decoded.
    """
    import av  # optional: pip install musefusion[audio] or [video]

    path = Path(path)
    container = _open_container(path, what)
    with container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sr_hz)
        chunks: list[np.ndarray] = []
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as exc:
            raise DataFormatError(f"{what} file '{path}': audio stream cannot be decoded "
                                  f"({str(exc).splitlines()[0]}).") from None
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32, copy=False)


def read_video_frames(path: str | os.PathLike[str], times_s: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """Decode a video and yield the frame shown at each requested time (PyAV).

    The frame for time ``t`` is the last frame whose presentation time is ``<= t`` (+1 ms); times after the
    last frame get the last frame when they lie within its duration, else nothing.

    Args:
        path: the video file.
        times_s: increasing times in seconds, shape ``(T,)``.

    Yields:
        ``(step_index, frame)`` with frame uint8 RGB of shape ``(height, width, 3)``.

    Raises:
        MissingDataError: the file does not exist.
        DataFormatError: empty file, no video stream, or undecodable.
    """
    import av  # optional: pip install musefusion[audio] or [video]

    path = Path(path)
    container = _open_container(path, "Video")
    with container:
        if not container.streams.video:
            raise DataFormatError(f"Video file '{path}' has no video stream; pass it as --audio instead.")
        stream = container.streams.video[0]
        stream.thread_count = 1  # decode on this thread: extra FFmpeg threads would compete with torch's
        tb = float(stream.time_base) if stream.time_base else 0.0
        rate = float(stream.average_rate) if stream.average_rate else 25.0
        tol = 1e-3
        k, prev, prev_t, n = 0, None, 0.0, len(times_s)
        try:
            for i, frame in enumerate(container.decode(stream)):
                ft = frame.pts * tb if frame.pts is not None and tb else i / rate
                while k < n and ft > times_s[k] + tol:
                    if prev is not None:
                        yield k, prev.to_ndarray(format="rgb24")
                    k += 1
                if k >= n:
                    break
                prev, prev_t = frame, ft
        except av.error.FFmpegError as exc:
            raise DataFormatError(f"Video file '{path}': video stream cannot be decoded "
                                  f"({str(exc).splitlines()[0]}).") from None
        if prev is None and k == 0:
            raise DataFormatError(f"Video file '{path}' holds no decodable frame; re-export the recording.")
        while k < n and prev is not None and times_s[k] < prev_t + 1.0 / rate - tol:
            yield k, prev.to_ndarray(format="rgb24")
            k += 1


def media_duration_s(path: str | os.PathLike[str]) -> float:
    """Duration of a media file in seconds (container metadata; 0.0 when unknown)."""
    path = Path(path)
    container = _open_container(path, "Media")
    with container:
        if container.duration:
            return container.duration / 1_000_000
        stream = (container.streams.video or container.streams.audio or [None])[0]
        if stream is not None and stream.duration and stream.time_base:
            return float(stream.duration * stream.time_base)
    return 0.0
