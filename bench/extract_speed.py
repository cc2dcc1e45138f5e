"""Real-time factor (input seconds / compute seconds) of each extractor on this machine's CPU threads.

Inputs are synthetic, made on the fly: espeak-ng speech (a harmonic tone if espeak-ng is absent), a video of
scikit-image's astronaut, neurokit2's simulated ECG/respiration at 1 kHz. Networks use random weights (speed
does not depend on them). Model loading is excluded; decoding is included for video.

    python bench/extract_speed.py [--seconds 60] [--video-seconds 30]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from musefusion.data.grid import step_grid
from musefusion.features import audio, media, physio, video

TEXT = ("Please describe why you are the right person for this job. I have worked in teams for many years, "
        "and I enjoy solving hard problems under time pressure. ")


def _speech(seconds: float, tmp: Path) -> np.ndarray:
    exe = shutil.which("espeak-ng")
    if exe is None:
        t = np.arange(int(seconds * 16000)) / 16000
        return (0.3 * np.sin(2 * np.pi * 150 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    wav = tmp / "speech.wav"
    subprocess.run([exe, "-w", str(wav), TEXT * 8], check=True, capture_output=True)
    x = media.read_audio(wav, 16000)
    return np.resize(x, int(seconds * 16000))


def _video(seconds: float, tmp: Path) -> Path:
    import av
    from skimage import data

    path = tmp / "video.mp4"
    frame = data.astronaut()
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 512, 512, "yuv420p"
        for i in range(int(seconds * 25)):
            vf = av.VideoFrame.from_ndarray(np.roll(frame, i % 7, axis=1), format="rgb24")
            vf.pts = i
            for pkt in vs.encode(vf):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
    return path


_CPU: dict[float, float] = {}


def _timeit(fn) -> float:
    """Wall seconds of ``fn()``; its process CPU seconds are kept in ``_CPU`` (keyed by the wall time)."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    wall = time.perf_counter() - t0
    _CPU[wall] = time.process_time() - c0
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="audio and bio length")
    ap.add_argument("--video-seconds", type=float, default=30.0, help="video length")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    print(f"torch threads: {torch.get_num_threads()}")
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        x = _speech(args.seconds, tmp)
        dur = len(x) / 16000
        grid = step_grid(dur)
        audio.extract_egemaps(x[:32000], 16000, step_grid(2.0))  # warm-up
        rows.append(("egemaps (88-d)", dur, _timeit(lambda: audio.extract_egemaps(x, 16000, grid)), 25))
        model = audio.build_vggish()
        audio.extract_vggish(x[:32000], 16000, step_grid(2.0), model)
        rows.append(("vggish (128-d)", dur, _timeit(lambda: audio.extract_vggish(x, 16000, grid, model)), 10))

        import neurokit2 as nk

        sr = 1000
        ecg = nk.ecg_simulate(duration=args.seconds, sampling_rate=sr, heart_rate=70, random_state=0)
        resp = nk.rsp_simulate(duration=args.seconds, sampling_rate=sr, method="sinusoidal", random_state=0)
        n = min(len(ecg), len(resp))
        t = np.arange(n) / sr
        bgrid = step_grid(t[-1])
        rows.append(("bio ECG+RESP+BPM", t[-1], _timeit(lambda: physio.extract_bio(t, sr, ecg[:n], resp[:n], bgrid)),
                     50))

        vpath = _video(args.video_seconds, tmp)
        mtcnn, vgg = video.load_mtcnn(), video.build_vggface()
        video.embed_faces(np.zeros((1, 3, 224, 224), np.float32), vgg)
        vdur = media.media_duration_s(vpath)
        secs = _timeit(lambda: video.extract_vggface(vpath, mtcnn, vgg))
        rows.append(("vggface (MTCNN+VGG-Face, 2 Hz)", vdur, secs, 1))
        secs = _timeit(lambda: video.extract_vggface(vpath, mtcnn, vgg, bf16=True))
        rows.append(("vggface, --vggface-bf16", vdur, secs, 1))
        from skimage import data

        img = data.astronaut()
        video.detect_faces(img, mtcnn)
        det = _timeit(lambda: [video.detect_faces(img, mtcnn) for _ in range(10)]) / 10
        emb = _timeit(lambda: video.embed_faces(np.zeros((8, 3, 224, 224), np.float32), vgg)) / 8
        emb16 = _timeit(lambda: video.embed_faces(np.zeros((8, 3, 224, 224), np.float32), vgg, True)) / 8
    # cpu s close to wall s on 2 threads means the process got about one core (a shared machine).
    print(f"{'extractor':34s} {'input s':>8s} {'wall s':>8s} {'cpu s':>8s} {'RTF':>7s} {'goal':>6s}")
    for name, secs_in, wall, goal in rows:
        rtf = secs_in / wall
        print(f"{name:34s} {secs_in:8.1f} {wall:8.2f} {_CPU[wall]:8.2f} {rtf:6.1f}x {goal:5d}x "
              f"{'ok' if rtf >= goal else 'BELOW'}")
    print(f"per 512x512 frame: MTCNN {det * 1000:.0f} ms; VGG-Face per face (batch 8): {emb * 1000:.0f} ms fp32, "
          f"{emb16 * 1000:.0f} ms bf16")


if __name__ == "__main__":
    from results_page import run_with_page

    run_with_page("extract_speed", "Feature extraction speed (real-time factors)", main)
