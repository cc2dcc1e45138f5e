"""A second synthetic corpus family, ``phases``: written apart from :mod:`musefusion.data.synth`'s generator.

Defaults tuned on one generator can fit its assumptions; this family makes other ones, so a default is judged on
data it was not developed on (leave-one-family-out, ``bench/defaults_across_families.py``). Only the file layout
(written by :func:`musefusion.data.synth.synthesize`) is shared. Designed from what is published about Ulm-TSST
(Stappen et al. 2021, the MuSe 2021 baseline paper) and the MuSe feature sets, not from ``synth``'s code:

* **latent state**: a regime-switching process over the TSST's phases. A subject moves between four affective
  regimes (settled, engaged, strained, amused) by a Markov chain with dwell times of tens of seconds; within a
  regime the state is a damped second-order (oscillating) process pulled toward the regime's target (arousal,
  valence); the interview panel's interjections (a Poisson process) add sharp arousal bumps.
* **annotations**: three simulated annotators, each with its own reaction lag (which drifts within the recording),
  own exponential smoothing, gain, offset and joystick quantisation; the gold standard is their mean after each is
  z-scored (an RAAW-like fusion), scaled per recording into [-1, 1] (so its level carries no subject offset).
* **features** are windowed functionals of low-level streams, not a mixing of the state: eGeMAPS columns are
  means, spreads and ranges over 2 s of twelve voice descriptors (pitch with a per-subject register, loudness,
  spectral slope, jitter, ...); VGGish columns are 8-bit quantised rectified projections of a log-mel-like
  spectrum; VGGFace columns are an L2-normalised identity vector plus expression and head-pose directions; AU
  intensities are clipped to [0, 5]; the bio signals follow arousal through a cardiac delay (BPM), heart-rate
  variability (ECG) and breathing depth (resp).
* **missing data**: voice descriptors fall to a silence floor between utterances (rows exist); the face is lost
  in long bursts while the speaker looks at the panel and at the recording's start; bio sensors drop out in
  chunks (rows absent).
* **subject effects**: an expressiveness factor (how strongly features follow the state), a pitch register and a
  resting heart rate per subject, identity offsets of every face and voice column.

Variants (``synth --variant``): ``phases``; ``phases-lagged`` (annotator lags of 4-10 s drifting within the
recording); ``phases-gaps`` (the face lost 35 % of the time, bio drop-outs, more silence); ``phases-expressive``
(expressiveness 0.3-2.5x and large identity offsets: subjects differ far more than in the base variant).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from musefusion.types import BIOSIGNALS, Task

#: The regimes' (arousal, valence) targets and mean dwell times in steps (2 Hz).
REGIMES = {"settled": ((-0.35, 0.1), 70.0), "engaged": ((0.15, 0.25), 50.0), "strained": ((0.6, -0.45), 40.0),
           "amused": ((0.35, 0.65), 20.0)}
#: Regime transition preferences (rows: from, columns: to; the diagonal is handled by the dwell times).
_TRANSITIONS = np.array([[0.0, 0.5, 0.3, 0.2],
                         [0.35, 0.0, 0.45, 0.2],
                         [0.3, 0.5, 0.0, 0.2],
                         [0.3, 0.5, 0.2, 0.0]])
#: Twelve voice descriptors (eGeMAPS's groups) and what drives them: (arousal, valence, speech-only).
_VOICE = {"f0": (0.9, 0.15, True), "f0_range": (0.6, 0.3, True), "loudness": (1.0, 0.0, True),
          "alpha_ratio": (0.5, -0.2, True), "hammarberg": (-0.5, 0.1, True), "slope": (0.3, 0.45, True),
          "jitter": (-0.3, -0.4, True), "shimmer": (-0.2, -0.3, True), "hnr": (0.2, 0.5, True),
          "f1": (0.2, 0.35, True), "rate": (0.7, 0.2, False), "pause": (-0.4, 0.0, False)}


@dataclasses.dataclass(frozen=True)
class PhasesSettings:
    """What a ``phases`` variant changes."""

    annotator_lag: tuple[float, float] = (1.5, 5.0)  # each annotator's mean reaction lag, seconds
    lag_drift: float = 0.5  # how far (seconds) an annotator's lag wanders within a recording
    face_lost: float = 0.12  # fraction of steps without a face (long bursts)
    bio_dropout: float = 0.03  # fraction of steps a bio sensor gives no row (chunks)
    silence: float = 0.2  # fraction of steps without speech
    expressiveness: tuple[float, float] = (0.7, 1.4)  # per-subject range (log-uniform)
    identity: float = 1.0  # per-subject identity offsets of voice/face columns, times the base


#: The family's variants (``synth --variant``).
VARIANTS = {
    "phases": PhasesSettings(),
    "phases-lagged": PhasesSettings(annotator_lag=(4.0, 10.0), lag_drift=2.0),
    "phases-gaps": PhasesSettings(face_lost=0.35, bio_dropout=0.12, silence=0.35),
    "phases-expressive": PhasesSettings(expressiveness=(0.3, 2.5), identity=3.0),
}


class World:
    """The corpus-wide 'feature extractors': fixed random maps from descriptors to feature columns."""

    def __init__(self, rng: np.random.Generator) -> None:
        n_lld = len(_VOICE)
        # eGeMAPS: 88 functionals, each (descriptor, functional, signed scale)
        self.egemaps = [(int(rng.integers(n_lld)), int(rng.integers(3)), float(rng.choice([-1, 1]) * rng.uniform(0.5, 2)))
                        for _ in range(88)]
        self.mel = rng.normal(0, 1, (n_lld + 4, 64)) / np.sqrt(n_lld + 4)  # descriptors + timbre -> 64 mel bands
        self.vggish = rng.normal(0, 1, (64, 128)) / 8.0
        self.face_expr = rng.normal(0, 1, (3, 512))  # valence, arousal, strain directions
        self.face_pose = rng.normal(0, 1, (3, 512))  # yaw, pitch, roll
        self.au = {"smile": [5, 11], "brow": [3, 4], "tense": [6, 13, 16]}  # AU columns (of 17) each expression moves
        self.au_base = rng.uniform(0.2, 1.0, 20)


def _regime_path(rng: np.random.Generator, n: int) -> np.ndarray:
    """The regime index at each step (a semi-Markov chain with exponential dwell times)."""
    names = list(REGIMES)
    out = np.empty(n, dtype=int)
    t, k = 0, int(rng.choice(len(names), p=[0.5, 0.3, 0.2, 0.0]))
    while t < n:
        dwell = max(4, int(rng.exponential(REGIMES[names[k]][1])))
        out[t:t + dwell] = k
        t += dwell
        k = int(rng.choice(len(names), p=_TRANSITIONS[k]))
    return out


def _damped(rng: np.random.Generator, target: np.ndarray, stiffness: float, damping: float, sigma: float
            ) -> np.ndarray:
    """A damped second-order process pulled toward ``target`` (it overshoots and rings, unlike an OU drift)."""
    x, vel = float(target[0]), 0.0
    out = np.empty(len(target))
    kick = rng.normal(0, sigma, len(target))
    for t in range(len(target)):
        vel += stiffness * (target[t] - x) - damping * vel + kick[t]
        x += vel
        out[t] = x
    return out


def _interjections(rng: np.random.Generator, n: int) -> np.ndarray:
    """The panel's interjections: sharp arousal bumps (rise 1 s, decay ~8 s)."""
    out = np.zeros(n)
    for onset in np.flatnonzero(rng.random(n) < 1.2 / 120):  # about 1.2 per minute
        tail = np.arange(n - onset)
        out[onset:] += rng.uniform(0.2, 0.6) * (1 - np.exp(-tail / 2.0)) * np.exp(-tail / 16.0)
    return out


def latent(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A subject's latent arousal and valence at 2 Hz."""
    path = _regime_path(rng, n)
    targets = np.array([REGIMES[k][0] for k in REGIMES])[path]
    a = _damped(rng, targets[:, 0], 0.02, 0.25, 0.012) + _interjections(rng, n)
    v = _damped(rng, targets[:, 1], 0.015, 0.3, 0.01)
    return a, v


def _bursts(rng: np.random.Generator, n: int, share: float, mean_len: float) -> np.ndarray:
    """Boolean mask, True in bursts covering about ``share`` of the steps (bursts of ~``mean_len`` steps)."""
    out = np.zeros(n, dtype=bool)
    if share <= 0:
        return out
    for start in np.flatnonzero(rng.random(n) < share / mean_len):
        out[start:start + max(1, int(rng.gamma(2.0, mean_len / 2)))] = True
    return out


def _ema(x: np.ndarray, alpha: float) -> np.ndarray:
    out = np.empty_like(x)
    acc = x[0]
    for t in range(len(x)):
        acc += alpha * (x[t] - acc)
        out[t] = acc
    return out


def _delayed(x: np.ndarray, lag_steps: np.ndarray) -> np.ndarray:
    """``x`` read ``lag_steps[t]`` (fractional, time-varying) steps in the past, by linear interpolation."""
    t = np.clip(np.arange(len(x)) - lag_steps, 0, len(x) - 1)
    return np.interp(t, np.arange(len(x)), x)


def annotate(rng: np.random.Generator, state: np.ndarray, s: PhasesSettings) -> np.ndarray:
    """The gold standard of three simulated annotators (see the module docstring), in [-1, 1]."""
    n = len(state)
    traces = []
    for _ in range(3):
        lag = rng.uniform(*s.annotator_lag) * 2 + s.lag_drift * 2 * np.sin(
            np.arange(n) / rng.uniform(60, 200) + rng.uniform(0, 6.3))
        trace = _ema(_delayed(state, np.maximum(lag, 0)), rng.uniform(0.08, 0.3))
        trace = rng.uniform(0.6, 1.4) * trace + rng.normal(0, 0.15) + 0.08 * np.cumsum(rng.normal(0, 0.05, n))
        trace = np.round(trace * 20) / 20  # a joystick's resolution
        traces.append((trace - trace.mean()) / (trace.std() + 1e-6))
    gold = np.mean(traces, axis=0)
    return np.clip(0.95 * gold / (np.abs(gold).max() + 1e-6), -1.0, 1.0)


def _functionals(x: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, std and range of each column over the last ``width`` steps."""
    pad = np.concatenate([np.repeat(x[:1], width - 1, axis=0), x], axis=0)
    win = np.lib.stride_tricks.sliding_window_view(pad, width, axis=0)  # (n, d, width)
    return win.mean(axis=-1), win.std(axis=-1), win.max(axis=-1) - win.min(axis=-1)


def subject(rng: np.random.Generator, world: World, n: int, task: Task, features: tuple[str, ...],
            s: PhasesSettings) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Labels and feature matrices (NaN rows: no row in the file) of one subject on the ``n``-step grid."""
    a, v = latent(rng, n)
    labels = {"arousal": annotate(rng, a, s), "valence": annotate(rng, v, s)}
    expr = float(np.exp(rng.uniform(*np.log(s.expressiveness))))
    speaking = ~_bursts(rng, n, s.silence, 6.0)
    register = rng.normal(0, 1.0)  # the subject's pitch register (a large, label-free offset)
    rest_hr = rng.normal(72, 9)
    # twelve voice descriptors: each a function of the state, silent steps at a floor, plus descriptor noise
    lld = np.empty((n, len(_VOICE)))
    for j, (wa, wv, speech_only) in enumerate(_VOICE.values()):
        drive = expr * (wa * np.tanh(1.2 * a) + wv * v) + rng.normal(0, 1.1, n)
        lld[:, j] = np.where(speaking | (not speech_only), drive, -1.5 + rng.normal(0, 0.1, n))
    lld[:, 0] += register
    if task == Task.PHYSIO:  # skin conductance: responses to arousal rises, onset 1-3 s, slow recovery
        rises = np.maximum(np.diff(a, prepend=a[0]), 0)
        eda = _ema(_delayed(rises, np.full(n, rng.uniform(2, 6))), 1 / rng.uniform(20, 40)) * 40
        eda = (eda - eda.mean()) / (eda.std() + 1e-6)
        labels = {"anno12_EDA": np.clip(0.5 * labels["arousal"] + 0.5 * np.tanh(0.5 * eda), -1, 1)}
    face_lost = _bursts(rng, n, s.face_lost, 24.0)
    face_lost[: int(rng.integers(0, 12))] = True  # the first seconds: the face not yet found
    pose = np.stack([_ema(rng.normal(0, 1, n), 0.05) * 6 for _ in range(3)], axis=1)
    feats: dict[str, np.ndarray] = {}
    for folder in features:
        name = folder.lower()
        if name == "egemaps":
            functionals = _functionals(lld, 4)
            x = np.stack([scale * functionals[how][:, j] for j, how, scale in world.egemaps], axis=1)
            x = x + s.identity * rng.normal(0, 0.6, 88)
        elif name == "vggish":
            timbre = np.stack([_ema(rng.normal(0, 1, n), 0.1) for _ in range(4)], axis=1) + rng.normal(0, 1, 4)
            spectrum = np.concatenate([lld, timbre], axis=1) @ world.mel
            x = np.maximum(spectrum @ world.vggish * 4 + s.identity * rng.normal(0, 0.3, 128), 0)
            x = np.round(np.clip(x, 0, 2) * 127.5) / 127.5  # VGGish's 8-bit quantised embedding
        elif name in ("vggface", "fau_intensity", "faus"):
            strain = np.maximum(a - v, 0)
            if name == "vggface":
                ident = s.identity * rng.normal(0, 1, 512) * 3
                expression = expr * np.stack([v, 0.15 * a, 0.15 * strain], axis=1) @ world.face_expr
                x = ident + expression + pose @ world.face_pose * 0.5 + rng.normal(0, 2.5, (n, 512))
                x = x / np.linalg.norm(x, axis=1, keepdims=True) * 10
            else:
                d = 17 if name == "fau_intensity" else 20
                x = world.au_base[:d] + s.identity * rng.normal(0, 0.3, d) + rng.normal(0, 0.6, (n, d))
                for key, drive in (("smile", np.maximum(v, 0)), ("brow", strain), ("tense", np.maximum(a, 0))):
                    x[:, world.au[key]] += 2.5 * expr * drive[:, None]
                x = np.clip(x, 0, 5)
            x[face_lost] = np.nan
        elif name in ("ecg", "resp", "bpm", BIOSIGNALS):
            hr = rest_hr + 14 * _delayed(_ema(a, 0.1), np.full(n, rng.uniform(6, 14)))
            cols = {"bpm": hr + rng.normal(0, 3.0, n),
                    "ecg": -0.4 * _ema(a, 0.2) + 0.3 * np.sin(np.arange(n) / 9) + rng.normal(0, 0.35, n),
                    "resp": 0.6 * _ema(np.maximum(a, -0.2), 0.15) + rng.normal(0, 0.4, n)}
            x = np.stack([cols[b] for b in ("ecg", "resp", "bpm")], axis=1) if name == BIOSIGNALS \
                else cols[name][:, None]
            x[_bursts(rng, n, s.bio_dropout, 30.0)] = np.nan
        else:
            raise AssertionError(name)
        feats[folder] = x
    return labels, feats
