"""Shared fixtures: tiny MuSe-format corpora generated in tmp folders."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from musefusion.data import formats
from musefusion.data.synth import SynthConfig, synthesize
from musefusion.types import Task


@pytest.fixture(autouse=True, scope="module")
def _share_cores_between_xdist_workers():
    """With ``-n N``, give each worker 1/N of torch's threads: N workers x all cores oversubscribes the CPU and
    made the model tests about 4x slower on 2 cores (93 s against 25 s)."""
    import torch

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, before // workers))
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own corpus cache folder (never ~/.cache)."""
    monkeypatch.setenv("MUSEFUSION_CACHE", str(tmp_path_factory.mktemp("cache")))


def write_tiny_corpus(root: Path, n_rows: int = 40, dims: tuple[int, int] = (4, 4), seed: int = 0,
                      task: Task = Task.STRESS) -> Path:
    """3 subjects (train/devel/test), 2 feature sets (feat_a, feat_b) x 4 dims, ~40 rows at 500 ms."""
    rng = np.random.default_rng(seed)
    corpus = root / task.corpus_dirs[0]
    ids = {"1": "train", "2": "devel", "3": "test"}
    formats.write_partition(corpus / "metadata" / "partition.csv", ids)
    targets = task.default_targets
    for sid, part in ids.items():
        ts = np.arange(n_rows, dtype=np.int64) * 500
        latent = np.cumsum(rng.normal(0, 0.1, n_rows))
        for t in targets:
            vals = latent if part != "test" else np.full(n_rows, np.nan)
            formats.write_sequence_csv(corpus / "label_segments" / t / f"{sid}.csv", ts, vals)
        for name, d in zip(("feat_a", "feat_b"), dims, strict=True):
            x = latent[:, None] + rng.normal(0, 0.1, (n_rows, d))
            formats.write_sequence_csv(corpus / "feature_segments" / name / f"{sid}.csv", ts, x,
                                  columns=[f"{name}_{j}" for j in range(d)])
    return corpus


@pytest.fixture
def tiny_corpus(tmp_path) -> Path:
    """Root folder of a hand-made 3-subject corpus (see :func:`write_tiny_corpus`)."""
    write_tiny_corpus(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def synth_stress(tmp_path_factory) -> Path:
    """Root of a small synthetic stress corpus (8/3/3 subjects, ~1.5 min each); shared, do not modify."""
    root = tmp_path_factory.mktemp("synth_stress")
    synthesize(root, SynthConfig(task=Task.STRESS, seed=1, n_train=8, n_devel=3, n_test=3, minutes=1.5,
                                 features=("egemaps", "vggface", "ECG", "resp", "BPM")))
    return root


@pytest.fixture(scope="session")
def synth_physio(tmp_path_factory) -> Path:
    """Root of a small synthetic physio corpus (6/2/2 subjects, ~1 min each); shared, do not modify."""
    root = tmp_path_factory.mktemp("synth_physio")
    synthesize(root, SynthConfig(task=Task.PHYSIO, seed=2, n_train=6, n_devel=2, n_test=2, minutes=1.0,
                                 features=("vggish", "vggface", "ECG", "resp", "BPM")))
    return root


# ----------------------------------------------------------------------------------------------- raw recordings
# Real signals made on the machine (no downloads): espeak-ng speech, a PyAV-encoded video of scikit-image's
# astronaut, neurokit2's ECG/respiration simulators.

SPEECH_TEXT = ("The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore, "
               "and the weather is calm today.")


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory) -> Path:
    """About 6 s of espeak-ng speech (22.05 kHz mono wav)."""
    import shutil
    import subprocess

    exe = shutil.which("espeak-ng")
    if exe is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng, or `make sysdeps`)")
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    subprocess.run([exe, "-s", "170", "-w", str(path), SPEECH_TEXT], check=True, capture_output=True)
    return path


def write_video(path: Path, frame: np.ndarray, duration_s: float, fps: int = 10,
                audio: np.ndarray | None = None, sr_hz: int = 16000) -> Path:
    """Encode a still ``frame`` (uint8 RGB) as an MPEG-4 video in Matroska, with an optional PCM audio track."""
    import av

    with av.open(str(path), "w") as out:
        vs = out.add_stream("mpeg4", rate=fps)
        vs.width, vs.height, vs.pix_fmt = frame.shape[1], frame.shape[0], "yuv420p"
        as_ = None
        if audio is not None:
            as_ = out.add_stream("pcm_s16le", rate=sr_hz, layout="mono")
        for i in range(int(round(duration_s * fps))):
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts = i
            for pkt in vs.encode(vf):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
        if as_ is not None:
            pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
            for start in range(0, len(pcm), 1024):
                af = av.AudioFrame.from_ndarray(pcm[None, start:start + 1024], format="s16", layout="mono")
                af.sample_rate, af.pts = sr_hz, start
                for pkt in as_.encode(af):
                    out.mux(pkt)
            for pkt in as_.encode():
                out.mux(pkt)
    return path


@pytest.fixture(scope="session")
def speech_16k(speech_wav) -> np.ndarray:
    """The speech fixture decoded at 16 kHz mono float32."""
    from musefusion.features import media

    return media.read_audio(speech_wav, 16000)


@pytest.fixture(scope="session")
def astronaut_video(tmp_path_factory, speech_16k) -> Path:
    """4 s of scikit-image's astronaut (512x512, face at about x 150-250, y 30-140) with the speech as audio."""
    from skimage import data

    path = tmp_path_factory.mktemp("video") / "astronaut.mkv"
    return write_video(path, data.astronaut(), 4.0, audio=speech_16k[:4 * 16000])


@pytest.fixture(scope="session")
def silent_video(tmp_path_factory) -> Path:
    """3 s of black 320x240 frames and no audio track."""
    path = tmp_path_factory.mktemp("video") / "black.mkv"
    return write_video(path, np.zeros((240, 320, 3), np.uint8), 3.0)


def simulated_bio(duration_s: float = 6.0, sr_hz: int = 250, heart_rate: int = 70, seed: int = 0
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(time_s, ecg, resp)`` from neurokit2's simulators."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import neurokit2 as nk

        ecg = nk.ecg_simulate(duration=duration_s, sampling_rate=sr_hz, heart_rate=heart_rate, random_state=seed)
        resp = nk.rsp_simulate(duration=duration_s, sampling_rate=sr_hz, respiratory_rate=15,
                               method="sinusoidal", random_state=seed)
    n = min(len(ecg), len(resp))
    return np.arange(n) / sr_hz, ecg[:n], resp[:n]


@pytest.fixture(name="simulated_bio")
def _simulated_bio_fixture():
    """The :func:`simulated_bio` generator, for tests outside this module."""
    return simulated_bio


@pytest.fixture(scope="session")
def bio_csv(tmp_path_factory) -> Path:
    """6 s of simulated ECG (70 bpm) and respiration at 250 Hz, time in ms."""
    import pandas as pd

    t, ecg, resp = simulated_bio()
    path = tmp_path_factory.mktemp("bio") / "bio.csv"
    pd.DataFrame({"time": t * 1000, "ecg": ecg, "resp": resp}).to_csv(path, index=False)
    return path


def write_bio_record(path: Path, channels: list[tuple[str, str, float, np.ndarray]]) -> Path:
    """Write ``channels`` (label, unit, rate in Hz, physical samples) with the formats' own writers.

    ``path``'s suffix picks the format: ``.hea`` -> a WFDB record (``wfdb.wrsamp``, 16-bit; channels at
    different rates become samples per frame of the slowest rate, which must divide the others), ``.edf`` ->
    EDF+ with one annotation, ``.bdf`` -> BDF+ (``pyedflib``; 16-/24-bit, physical range = the signal's + 1 %).
    EDF/BDF store whole 1 s data records, so give whole seconds of samples.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".hea":
        import wfdb

        frame_hz = min(fs for _, _, fs, _ in channels)
        per_frame = [int(round(fs / frame_hz)) for _, _, fs, _ in channels]
        wfdb.wrsamp(path.stem, fs=frame_hz, units=[u for _, u, _, _ in channels],
                    sig_name=[n for n, _, _, _ in channels], e_p_signal=[np.asarray(x, float) for *_, x in channels],
                    samps_per_frame=per_frame, fmt=["16"] * len(channels), write_dir=str(path.parent))
        return path
    from pyedflib import highlevel

    digital = 2 ** 23 if path.suffix == ".bdf" else 2 ** 15
    headers = []
    for label, unit, fs, x in channels:
        pad = 0.01 * (float(np.ptp(x)) or 1.0)
        # the header keeps 8 characters per limit: round outwards to 2 decimals (fits for |x| < 10^4)
        lo, hi = np.floor((x.min() - pad) * 100) / 100, np.ceil((x.max() + pad) * 100) / 100
        headers.append({"label": label, "dimension": unit, "sample_frequency": fs, "physical_min": float(lo),
                        "physical_max": float(hi), "digital_min": -digital, "digital_max": digital - 1,
                        "transducer": "", "prefilter": ""})
    header = {"annotations": [[0.5, -1, "start"]]} if path.suffix == ".edf" else None
    highlevel.write_edf(str(path), [np.ascontiguousarray(x, float) for *_, x in channels], headers, header=header)
    return path


@pytest.fixture(name="write_bio_record")
def _write_bio_record_fixture():
    """The :func:`write_bio_record` writer (WFDB, EDF+ or BDF+ by suffix), for tests outside this module."""
    return write_bio_record
