"""Acoustic features on the 500 ms grid: eGeMAPS functionals (openSMILE) and VGGish embeddings (PyTorch).

- eGeMAPS: the extended Geneva Minimalistic Acoustic Parameter Set v02, 88 functionals
  (Eyben et al., 2016, IEEE Trans. Affective Computing, doi:10.1109/TAFFC.2015.2457417), computed by
  openSMILE (Eyben et al., 2010) through the ``opensmile`` package.
- VGGish: the AudioSet-trained VGG-like audio embedding network (Hershey et al., 2017, ICASSP,
  "CNN Architectures for Large-Scale Audio Classification"), re-written here in PyTorch with its log-mel frontend.

.. _eGeMAPS: https://doi.org/10.1109/TAFFC.2015.2457417
.. _VGGish: https://arxiv.org/abs/1609.09430
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from musefusion import weights
from musefusion.data.grid import align_to_grid
from musefusion.errors import CheckpointError, DataFormatError, MissingDataError, MissingDependencyError

logger = logging.getLogger(__name__)

#: Sampling rate every audio extractor works at (VGGish's rate; eGeMAPS is defined for any rate).
AUDIO_SR_HZ = 16000
#: Default eGeMAPS window: 2 s centred on each step, as in the MuSe 2021 challenge eGeMAPS features
#: (2 s windows, 500 ms hop) -- long enough for the F0/voicing statistics and the temporal features
#: (voiced-segment rates) to see several syllables, short enough to follow 2 Hz labels.
EGEMAPS_WIN_S = 2.0
#: openSMILE drops list frames that end after its last complete LLD frame (60 ms F0 window + smoothing).
_EGEMAPS_END_MARGIN_S = 0.1
#: Environment variable naming the VGGish weights file when --vggish-weights is not given.
VGGISH_WEIGHTS_ENV = "MUSEFUSION_VGGISH_WEIGHTS"
VGGISH_HINT = (f"Pass --vggish-weights FILE or set ${VGGISH_WEIGHTS_ENV}; a working file is torchvggish's "
               "'vggish-10086976.pth' (see docs/extraction.md).")


def check_audible(signal: np.ndarray, path: str | os.PathLike[str] | None) -> None:
    """Refuse an empty or silent (all-zero) recording: its features would be constants, not missing data.

    Raises:
        DataFormatError: the signal has no samples or every sample is 0.
    """
    where = f"'{path}'" if path is not None else "the signal"
    if signal.size == 0:
        raise DataFormatError(f"Audio of {where} has no samples; re-export the recording.")
    if not np.any(signal):
        raise DataFormatError(f"Audio of {where} is silent (all samples are 0); check the recording's "
                              "audio channel, or leave audio features out (--features).")


# ----------------------------------------------------------------------------------------------- eGeMAPS


def _import_opensmile() -> Any:
    try:
        import opensmile  # optional: pip install musefusion[audio]
    except ImportError:
        raise MissingDependencyError("eGeMAPS needs openSMILE: pip install musefusion[audio]") from None
    return opensmile


def egemaps_windows(grid_ms: np.ndarray, duration_s: float, win_s: float = EGEMAPS_WIN_S) -> np.ndarray:
    """The analysis window ``[start, end]`` (s) of each grid step: ``win_s`` centred on the step, clipped.

    Returns:
        float64 array of shape ``(T, 2)``.

    Examples:
        >>> egemaps_windows(np.array([0, 500]), 10.0).tolist()
        [[0.0, 1.0], [0.0, 1.5]]
    """
    t = np.asarray(grid_ms, dtype=np.float64) / 1000.0
    end_max = max(duration_s - _EGEMAPS_END_MARGIN_S, 0.0)
    start = np.clip(t - win_s / 2, 0.0, None)
    end = np.clip(t + win_s / 2, None, end_max)
    return np.stack([start, end], axis=1)


def egemaps_smile(windows_s: np.ndarray) -> Any:
    """An ``opensmile.Smile`` for eGeMAPSv02 functionals over a list of windows, all in one openSMILE pass.

    The LLDs are computed once over the whole signal and each window's functionals are read from them
    (openSMILE's ``frameMode = list``), instead of one ``process_signal`` call per window (~60 ms fixed cost).
    """
    opensmile = _import_opensmile()
    conf = Path(opensmile.__file__).parent / "core" / "config" / "shared" / "FrameModeFunctionalsMulti.conf.inc"
    frame_list = ",".join(f"{s:.4f}s-{e:.4f}s" for s, e in windows_s)
    return opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                           feature_level=opensmile.FeatureLevel.Functionals,
                           options={"frameModeFunctionalsConf": str(conf), "frameList": frame_list})


def extract_egemaps(signal: np.ndarray, sr_hz: int, grid_ms: np.ndarray,
                    win_s: float = EGEMAPS_WIN_S) -> tuple[np.ndarray, list[str]]:
    """eGeMAPSv02 functionals (88-d) over a window centred on each grid step.

    Args:
        signal: mono samples in ``[-1, 1]``, shape ``(n_samples,)``.
        sr_hz: sampling rate.
        grid_ms: step times, int ms, shape ``(T,)``.
        win_s: window length in seconds (clipped at the recording's edges).

    Returns:
        ``(values, columns)``: float32 ``(T, 88)`` (NaN rows where a clipped window is shorter than 0.25 s)
        and openSMILE's feature names.

    Raises:
        DataFormatError: the recording is shorter than 0.5 s.
        MissingDependencyError: opensmile is not installed.
    """
    duration_s = len(signal) / sr_hz
    if duration_s < 0.5:
        raise DataFormatError(f"Audio is {duration_s:.2f} s long; eGeMAPS needs at least 0.5 s.")
    windows = egemaps_windows(grid_ms, duration_s, win_s)
    usable = (windows[:, 1] - windows[:, 0]) >= 0.25
    smile = egemaps_smile(windows[usable])
    df = smile.process_signal(np.asarray(signal, dtype=np.float32), sr_hz)
    if len(df) != int(usable.sum()):
        raise RuntimeError(f"openSMILE returned {len(df)} eGeMAPS rows for {int(usable.sum())} windows")
    out = np.full((len(grid_ms), df.shape[1]), np.nan, dtype=np.float32)
    out[usable] = df.to_numpy(dtype=np.float32)
    return out, [str(c) for c in df.columns]


# ----------------------------------------------------------------------------------------------- VGGish frontend

#: VGGish frontend constants (tensorflow/models research/audioset/vggish/vggish_params.py).
VGGISH_STFT_WIN_S = 0.025
VGGISH_STFT_HOP_S = 0.010
VGGISH_N_MELS = 64
VGGISH_FMIN_HZ = 125.0
VGGISH_FMAX_HZ = 7500.0
VGGISH_LOG_OFFSET = 0.01
VGGISH_PATCH_FRAMES = 96  # 0.96 s of 10 ms frames = 0.975 s of audio with the 25 ms window
#: Patch hop: 0.25 s, as in the paper (Sec. 3.2); the reference VGGish uses 0.96 s.
VGGISH_HOP_FRAMES = 25


def hz_to_mel_htk(f_hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale, ``1127 ln(1 + f / 700)`` (VGGish's ``mel_features.hertz_to_mel``).

    Examples:
        >>> float(np.round(hz_to_mel_htk(700.0), 3))
        781.177
    """
    return 1127.0 * np.log1p(np.asarray(f_hz, dtype=np.float64) / 700.0)


def vggish_mel_matrix(n_fft_bins: int = 257, sr_hz: int = AUDIO_SR_HZ, n_mels: int = VGGISH_N_MELS,
                      fmin_hz: float = VGGISH_FMIN_HZ, fmax_hz: float = VGGISH_FMAX_HZ) -> np.ndarray:
    """VGGish's mel filterbank: triangles in the HTK mel domain, unnormalised, DC bin zeroed.

    Returns:
        float64 ``(n_fft_bins, n_mels)``.
    """
    bins_mel = hz_to_mel_htk(np.linspace(0.0, sr_hz / 2.0, n_fft_bins))
    edges = np.linspace(hz_to_mel_htk(fmin_hz), hz_to_mel_htk(fmax_hz), n_mels + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins_mel[:, None] - lower) / (center - lower)
    falling = (upper - bins_mel[:, None]) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0
    return weights


def to_audio_sr(signal: np.ndarray, sr_hz: int) -> np.ndarray:
    """Resample ``signal`` to 16 kHz (polyphase, scipy); returned unchanged when already at 16 kHz."""
    if int(sr_hz) == AUDIO_SR_HZ:
        return signal
    # optional: pip install musefusion[audio]
    from scipy.signal import resample_poly

    g = np.gcd(int(sr_hz), AUDIO_SR_HZ)
    return resample_poly(np.asarray(signal, np.float64), AUDIO_SR_HZ // g, int(sr_hz) // g).astype(np.float32)


def vggish_log_mel(signal: np.ndarray, sr_hz: int = AUDIO_SR_HZ) -> np.ndarray:
    """VGGish's log-mel spectrogram: 25 ms periodic-Hann frames every 10 ms, 512-point FFT magnitude,
    64 HTK mel bands 125-7500 Hz, ``log(mel + 0.01)``.

    Args:
        signal: mono samples in ``[-1, 1]`` at ``sr_hz`` (16 kHz; other rates are resampled first).
        sr_hz: sampling rate.

    Returns:
        float32 ``(n_frames, 64)``; frame ``i`` covers samples ``[160 i, 160 i + 400)``.
    """
    x = to_audio_sr(np.asarray(signal, dtype=np.float64), sr_hz)
    win = int(round(VGGISH_STFT_WIN_S * AUDIO_SR_HZ))
    hop = int(round(VGGISH_STFT_HOP_S * AUDIO_SR_HZ))
    n_fft = 1 << int(np.ceil(np.log2(win)))
    if len(x) < win:
        x = np.pad(x, (0, win - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, win)[::hop]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)  # periodic Hann
    mag = np.abs(np.fft.rfft(frames * window, n=n_fft))
    mel = mag @ vggish_mel_matrix(n_fft // 2 + 1)
    return np.log(mel + VGGISH_LOG_OFFSET).astype(np.float32)


def vggish_patches(signal: np.ndarray, sr_hz: int, grid_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cut the log-mel spectrogram into 96x64 patches every 0.25 s, centred at ``t -/+ 125 ms`` of each step.

    The signal is reflect-padded by 0.6125 s so the first step (0 ms) has patches centred on it too.

    Returns:
        ``(patches, centres_ms)``: float32 ``(n_patches, 96, 64)`` and float64 ``(n_patches,)``.
    """
    x = np.asarray(signal, dtype=np.float32)
    hop_s = VGGISH_HOP_FRAMES * VGGISH_STFT_HOP_S
    half_span_s = ((VGGISH_PATCH_FRAMES - 1) * VGGISH_STFT_HOP_S + VGGISH_STFT_WIN_S) / 2  # 0.4875 s
    pad_s = half_span_s + hop_s / 2  # first patch centred at -125 ms
    last_s = float(grid_ms[-1]) / 1000.0 if len(grid_ms) else 0.0
    pad0 = int(round(pad_s * sr_hz))
    pad1 = max(0, int(np.ceil((last_s + pad_s) * sr_hz)) - len(x))
    padded = np.pad(x, (pad0, pad1), mode="reflect") if len(x) > max(pad0, pad1) else np.pad(x, (pad0, pad1))
    logmel = vggish_log_mel(padded, sr_hz)
    n = (len(logmel) - VGGISH_PATCH_FRAMES) // VGGISH_HOP_FRAMES + 1
    if n <= 0:
        return np.zeros((0, VGGISH_PATCH_FRAMES, VGGISH_N_MELS), np.float32), np.zeros(0)
    idx = np.arange(n)[:, None] * VGGISH_HOP_FRAMES + np.arange(VGGISH_PATCH_FRAMES)
    centres_ms = (np.arange(n) * hop_s + half_span_s - pad_s) * 1000.0
    return logmel[idx], centres_ms


# ----------------------------------------------------------------------------------------------- VGGish network


def _import_torch() -> Any:
    try:
        import torch  # torch: imported on first use, so the CLI starts without it
    except ImportError:  # pragma: no cover - torch is a core dependency
        raise MissingDependencyError("VGGish needs PyTorch: pip install torch") from None
    return torch


def build_vggish() -> Any:
    """The VGGish network (random init): conv64-pool-conv128-pool-conv256x2-pool-conv512x2-pool-
    fc4096-fc4096-fc128, input ``(batch, 1, 96, 64)`` log-mel patches, output ``(batch, 128)``.

    Parameter names follow harritaylor/torchvggish (``features.N``, ``embeddings.N``) so its
    ``vggish-10086976.pth`` state dict loads without conversion. The last layer (fc2, 128-d) has no ReLU,
    as in the current TensorFlow reference (torchvggish keeps one; the PCA/quantisation post-processor is
    not applied).
    """
    torch = _import_torch()
    from musefusion.features.networks import VGGish  # torch-based: imported when a network is built

    return VGGish().to(memory_format=torch.channels_last).eval()  # type: ignore[call-overload]  # torch's stub


def load_network(model: Any, path: str | os.PathLike[str], what: str, hint: str,
                 ignore_prefixes: tuple[str, ...] = ()) -> Any:
    """Load a weights file into ``model`` (every parameter must be present with its exact shape).

    Args:
        model: the network.
        path: safetensors or torch state dict file.
        what: the network's name for messages.
        hint: how to get the file (for the not-found message).
        ignore_prefixes: keys in the file that the model does not use (e.g. ``fc`` heads).

    Returns:
        The model, in eval mode.

    Raises:
        MissingDataError: the file does not exist.
        CheckpointError: pickled code, unreadable file, missing keys or wrong shapes.
    """
    state = weights.load_state_dict(path, what, hint)
    state = {k: v for k, v in state.items() if not k.startswith(ignore_prefixes)}
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise CheckpointError(f"{what} weights file '{path}' does not fit the network: "
                              f"{len(missing)} missing key(s) (e.g. {missing[:2]}), {len(unexpected)} unexpected "
                              f"(e.g. {unexpected[:2]}); see docs/extraction.md for the key layout.")
    for k, v in expected.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise CheckpointError(f"{what} weights file '{path}': '{k}' has shape {tuple(state[k].shape)}, "
                                  f"expected {tuple(v.shape)}; is it the right network's weights?")
    model.load_state_dict({k: state[k].to(v.dtype) for k, v in expected.items()})
    return model.eval()


def resolve_weights(path: str | os.PathLike[str] | None, env: str, what: str, hint: str) -> Path:
    """The weights file: the given path, else ``$env``.

    Raises:
        MissingDataError: neither is set, or the file does not exist.
    """
    if path is None or str(path) == "":
        path = os.environ.get(env) or None
    if path is None:
        raise MissingDataError(f"No {what} weights file given. {hint}")
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingDataError(f"{what} weights file '{path}' not found. {hint}")
    return path


def load_vggish(path: str | os.PathLike[str] | None = None) -> Any:
    """Build VGGish and load its weights from ``path`` (or ``$MUSEFUSION_VGGISH_WEIGHTS``).

    Raises:
        MissingDataError: no weights file given, or it does not exist.
        CheckpointError: the file holds pickled code or does not fit the network.
    """
    file = resolve_weights(path, VGGISH_WEIGHTS_ENV, "VGGish", VGGISH_HINT)
    return load_network(build_vggish(), file, "VGGish", VGGISH_HINT)


def extract_vggish(signal: np.ndarray, sr_hz: int, grid_ms: np.ndarray, model: Any,
                   batch_size: int = 64) -> tuple[np.ndarray, list[str]]:
    """VGGish embeddings (128-d) of 0.975 s patches every 0.25 s, averaged per 500 ms step.

    Each step gets the mean of the two patches centred 125 ms before and after it.

    Args:
        signal: mono samples in ``[-1, 1]``, shape ``(n_samples,)``.
        sr_hz: sampling rate (resampled to 16 kHz).
        grid_ms: step times, int ms, shape ``(T,)``.
        model: a loaded VGGish (:func:`load_vggish`).
        batch_size: patches per forward pass.

    Returns:
        ``(values, columns)``: float32 ``(T, 128)`` and ``vggish_0..vggish_127``.
    """
    torch = _import_torch()
    patches, centres_ms = vggish_patches(to_audio_sr(signal, sr_hz), AUDIO_SR_HZ, grid_ms)
    emb = np.zeros((len(patches), 128), dtype=np.float32)
    with torch.inference_mode():
        for i in range(0, len(patches), batch_size):
            x = torch.from_numpy(patches[i:i + batch_size]).unsqueeze(1).contiguous(
                memory_format=torch.channels_last)  # ~25% faster convolutions on CPU
            emb[i:i + batch_size] = model(x).numpy()
    values, _ = align_to_grid(grid_ms, np.rint(centres_ms).astype(np.int64), emb)
    return values, [f"vggish_{j}" for j in range(128)]
