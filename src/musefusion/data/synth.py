"""A synthetic corpus that behaves like Ulm-TSST, written in exactly the MuSe 2021 layout.

Generative story, per subject (2 Hz, about 5 minutes):

* latent **arousal** = baseline + slow Ornstein-Uhlenbeck drift + an anticipation ramp + stress *events*
  (fast rise, slow decay); latent **valence** = baseline + drift + positive moments (smiles) − part of the
  stress events. Speech is on/off in runs of seconds (TSST free speech with pauses).
* **labels** = latent shifted by a per-subject annotator lag (2-5 s), smoothed, plus slow annotation noise,
  squashed into (-1, 1) by tanh like the real gold standards (no clipped plateaus); ``anno12_EDA`` (physio)
  mixes the arousal annotation with a slow, lagged electrodermal response before the squash.
* **features** are nonlinear, noisy, partly delayed views of the latent state with per-subject offsets:
  audio (egemaps 88-d, vggish 128-d) carries arousal strongly and valence weakly, mostly while speaking;
  face (vggface 512-d, fau_intensity 17-d) carries valence strongly and arousal weakly, with an identity
  offset and runs of missing rows (no face found); bio (ECG, resp, BPM, 1-d each, named as the MuSe 2021
  download names them; or one 3-column ``biosignals`` folder as in MuSe 2022) carries arousal.
* files start at 0 or 500 ms, some end a few rows early or late; test labels are NaN in the corpus, and the
  true ones are written apart under ``<out>/test_labels/`` (outside the corpus tree).
"""

from __future__ import annotations

import dataclasses
import logging
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from musefusion import fsutil, rundir
from musefusion.config import ConfigBase, enum_field
from musefusion.data import formats, phases
from musefusion.errors import ConfigError
from musefusion.types import BIOSIGNALS, STEP_MS, Partition, Task, expand_features

logger = logging.getLogger(__name__)

#: Features written by default, with their dimension; bio folders named as the MuSe 2021 download names them.
SYNTH_FEATURES: dict[str, int] = {"egemaps": 88, "vggish": 128, "vggface": 512, "fau_intensity": 17,
                                  "ECG": 1, "resp": 1, "BPM": 1}
#: The bio signals, by lower-case name (a feature folder may spell them in any case: RESP, ecg, ...).
_BIO = ("ecg", "resp", "bpm")
#: Everything ``features`` may name (lower case): the defaults, a MuSe 2022 ``biosignals`` folder and MuSe 2023's
#: facial action units ``faus``.
_SYNTHESISABLE = {**{k.lower(): v for k, v in SYNTH_FEATURES.items()}, BIOSIGNALS: 3, "faus": 20}
_FACE = ("vggface", "fau_intensity", "faus")


class Variant(StrEnum):
    """Generators of clearly different corpora in the same layout (``synth --variant``), so that defaults can be
    judged on a family of corpora rather than the one they were developed on (:data:`VARIANTS` has the numbers)."""

    DEFAULT = "default"  # the corpus every README figure comes from
    BIO_LED = "bio-led"  # bio signals carry arousal strongly, the voice weakly; longer annotator lags (3-8 s)
    SPARSE_FACE = "sparse-face"  # the face is missing 30 % of the time and weak; the voice carries valence too
    IDIOSYNCRATIC = "idiosyncratic"  # strong per-subject feature gains and offsets, lags of 1-10 s
    # corpora on which the paper's claims can fail (every feature looks as usual but follows a latent state of its own)
    NULL = "null"  # no feature carries the labels: every CCC must come out near 0, its interval containing 0
    ONE_MODALITY = "one-modality"  # only the voice carries the labels; the face and bio signals are noise
    # a second family, written apart (musefusion.data.phases): regime-switching states, three annotators, windowed
    # descriptor features, burst-wise missing data
    PHASES = "phases"
    PHASES_LAGGED = "phases-lagged"  # annotator lags of 4-10 s that drift within a recording
    PHASES_GAPS = "phases-gaps"  # the face lost 35 % of the time in long bursts, bio drop-outs, more silence
    PHASES_EXPRESSIVE = "phases-expressive"  # subjects differ far more in expressiveness and identity offsets

    @property
    def family(self) -> str:
        """``synth`` (this module's generator) or ``phases`` (:mod:`musefusion.data.phases`)."""
        return "phases" if self.value.startswith("phases") else "synth"


@dataclasses.dataclass(frozen=True)
class _Generator:
    """What a variant changes (1.0 / the default range: as the default corpus)."""

    voice_arousal: float = 1.0  # weight of arousal in the audio drivers
    voice_valence: float = 1.0  # weight of valence in the audio drivers
    face_valence: float = 1.0  # weight of valence in the face drivers
    audio_noise: float = 1.0  # audio observation noise, times the default
    face_noise: float = 1.0  # face observation noise, times the default
    bio_gain: float = 1.0  # arousal's share in the bio signals
    bio_noise: float = 1.0  # bio signal noise, times the default
    lag: tuple[int, int] = (4, 11)  # annotator lag in steps, [low, high)
    subject_gain_sd: float = 0.0  # per-subject, per-column random gain of the audio/face signals
    offset: float = 1.0  # per-subject feature offsets (identity, voice, channel), times the default
    missing_face_rate: float | None = None  # overrides SynthConfig.missing_face_rate
    label_offset_sd: float = 0.0  # per-subject offset of the annotations, invisible in the features
    label_scale_sd: float = 0.0  # per-subject spread of how strongly the annotations follow the latent state
    #: the modalities (voice, face, bio) driven by the annotated latent state; the others follow an independent
    #: state drawn by the same process, so they look the same and carry nothing
    carriers: frozenset[str] = frozenset({"voice", "face", "bio"})
    #: arousal rises over the first part of every recording (the TSST's build-up); a corpus that must carry nothing
    #: but what its carriers carry has none, since the time since the start would then predict arousal by itself
    time_locked: bool = True


#: The variants' generators.
VARIANTS: dict[Variant, _Generator] = {
    Variant.DEFAULT: _Generator(),
    Variant.BIO_LED: _Generator(voice_arousal=0.55, audio_noise=1.3, bio_gain=2.2, bio_noise=0.6, lag=(6, 17)),
    Variant.SPARSE_FACE: _Generator(face_valence=0.6, face_noise=1.3, voice_valence=2.5, missing_face_rate=0.3),
    Variant.IDIOSYNCRATIC: _Generator(subject_gain_sd=0.6, offset=2.5, lag=(2, 21)),
    Variant.NULL: _Generator(carriers=frozenset(), time_locked=False),
    Variant.ONE_MODALITY: _Generator(carriers=frozenset({"voice"}), time_locked=False),
}

#: The personalisation corpus's generator: subjects differ more in how their state shows than in the 2021 corpus
#: (a per-column gain and sign of every audio/face feature, larger identity offsets) and in where their annotations
#: sit (a per-subject offset and scale the features do not reveal), so a model fine-tuned to a person can gain.
PERSONAL_GENERATOR = _Generator(subject_gain_sd=0.7, offset=2.0, label_offset_sd=0.35, label_scale_sd=0.3)

#: Features a personalisation corpus gets by default (MuSe 2023 folder names: eGeMAPS, facial action units,
#: the 3-column bio signals).
PERSONAL_FEATURES = ("egemaps", "faus", "biosignals")
#: A personalisation subject's recording after its ``_train`` chunk (the first :data:`TRAIN_SHARE` of it) is cut
#: into chunks of :data:`CHUNK_STEPS` (60 s), given in turn to test, devel, test, test, devel, test, ...
TRAIN_SHARE = 0.4
CHUNK_STEPS = 120
_CHUNK_CYCLE = (Partition.TEST, Partition.DEVEL, Partition.TEST)


@dataclasses.dataclass(frozen=True)
class SynthConfig(ConfigBase):
    """Size and seed of a synthetic corpus (defaults: Ulm-TSST's 69 subjects, 41/14/14, ~5 min each)."""

    task: Task = Task.STRESS  # which corpus folder and targets to write
    seed: int = 0  # everything is deterministic for a seed
    n_train: int = 41  # Ulm-TSST train subjects (paper Tab. 1); personalisation: the general model's subjects
    n_devel: int = 14  # Ulm-TSST devel subjects; personalisation: these and n_test are chunked, one model each
    n_test: int = 14  # Ulm-TSST test subjects
    minutes: float = 5.0  # mean recording length per subject (Ulm-TSST: ~5 min)
    features: tuple[str, ...] = ()  # feature folders to write (default: SYNTH_FEATURES; personalisation PERSONAL_FEATURES)
    missing_face_rate: float = 0.06  # fraction of steps with no vggface/fau row (a variant may override it)
    variant: Variant = Variant.DEFAULT  # which generator (see Variant)

    def __post_init__(self) -> None:
        object.__setattr__(self, "task", enum_field("SynthConfig", "task", self.task, Task))
        object.__setattr__(self, "variant", enum_field("SynthConfig", "variant", self.variant, Variant))
        if isinstance(self.features, str):
            raise ConfigError(f"SynthConfig.features: give a list of folder names, e.g. [\"{self.features}\"], "
                              "not one string.")
        if not self.features:
            default = PERSONAL_FEATURES if self.task == Task.PERSONALISATION else tuple(SYNTH_FEATURES)
            object.__setattr__(self, "features", default)
        if self.task == Task.PERSONALISATION and self.variant != Variant.DEFAULT:
            raise ConfigError(f"SynthConfig.variant: '{self.variant.value}' is a 2021-corpus variant; the "
                              "personalisation corpus has its own generator (drop --variant).")
        object.__setattr__(self, "features", expand_features(tuple(self.features)))
        for name in ("n_train", "n_devel", "n_test"):
            if getattr(self, name) < 1:
                raise ConfigError(f"SynthConfig.{name}: {getattr(self, name)} must be >= 1 (--split).")
        if not 0.2 <= self.minutes <= 120:
            raise ConfigError(f"SynthConfig.minutes: {self.minutes} must be between 0.2 and 120 (--minutes).")
        unknown = [f for f in self.features if f.lower() not in _SYNTHESISABLE]
        if unknown:
            raise ConfigError(f"SynthConfig.features: {unknown} cannot be synthesised; choose from "
                              f"{', '.join(SYNTH_FEATURES)}, bio or {BIOSIGNALS} (any case).")
        if not self.features:
            raise ConfigError("SynthConfig.features: give at least one feature folder (--features).")
        lower = [f.lower() for f in self.features]
        if len(set(lower)) != len(lower):
            raise ConfigError(f"SynthConfig.features: {list(self.features)} names a folder twice (case ignored).")
        if not 0.0 <= self.missing_face_rate < 0.9:
            raise ConfigError(f"SynthConfig.missing_face_rate: {self.missing_face_rate} must be in [0, 0.9).")
        if self.variant.family == "phases" and self.missing_face_rate != self.field_defaults()["missing_face_rate"]:
            raise ConfigError(f"SynthConfig.missing_face_rate: the '{self.variant.value}' variant loses the face in "
                              "bursts of its own (phases-gaps: more); drop the rate or use a synth variant.")

    def to_dict(self) -> dict[str, Any]:
        """As ConfigBase's, without ``variant`` when it is the default (so older corpora's stamps still match)."""
        d = super().to_dict()
        if d.get("variant") == Variant.DEFAULT.value:
            del d["variant"]
        return d

    @property
    def generator(self) -> _Generator:
        """The variant's generator settings (the personalisation corpus has its own; a ``phases`` variant has
        :data:`musefusion.data.phases.VARIANTS` instead, and this is the default's)."""
        return PERSONAL_GENERATOR if self.task == Task.PERSONALISATION else VARIANTS.get(self.variant, _Generator())

    @property
    def n_subjects(self) -> int:
        """All subjects."""
        return self.n_train + self.n_devel + self.n_test


def _smooth(x: np.ndarray, width: float) -> np.ndarray:
    """Causal exponential smoothing with time constant ``width`` steps (axis 0)."""
    if width <= 1:
        return x
    alpha = 1.0 / width
    out = np.empty_like(x)
    acc = x[0]
    for t in range(len(x)):
        acc = acc + alpha * (x[t] - acc)
        out[t] = acc
    return out


def _ou(rng: np.random.Generator, n: int, tau: float, sigma: float) -> np.ndarray:
    """Ornstein-Uhlenbeck process, stationary std ``sigma``, time constant ``tau`` steps."""
    a = np.exp(-1.0 / tau)
    noise = rng.normal(0, sigma * np.sqrt(1 - a * a), n)
    out = np.empty(n)
    out[0] = rng.normal(0, sigma)
    for t in range(1, n):
        out[t] = a * out[t - 1] + noise[t]
    return out


def _shift(x: np.ndarray, lag: int) -> np.ndarray:
    """``x`` delayed by ``lag`` steps (the first value repeated at the start)."""
    if lag <= 0:
        return x
    return np.concatenate([np.repeat(x[:1], lag, axis=0), x[:-lag]], axis=0)


def _events(rng: np.random.Generator, n: int, rate_per_min: float, rise: float, decay: float,
            amp: tuple[float, float]) -> np.ndarray:
    out = np.zeros(n)
    k = rng.poisson(rate_per_min * n / 120.0)
    t = np.arange(n)
    for onset in rng.integers(0, n, size=k):
        a = rng.uniform(*amp)
        dt = t - onset
        shape = np.where(dt < 0, 0.0, (1 - np.exp(-np.maximum(dt, 0) / rise)) * np.exp(-np.maximum(dt, 0) / decay))
        out += a * shape / max(shape.max(), 1e-9)
    return out


def _runs(rng: np.random.Generator, n: int, p_on: float, mean_on: float, mean_off: float) -> np.ndarray:
    """A boolean on/off process with geometric run lengths (speech, face visible)."""
    out = np.zeros(n, dtype=bool)
    t, on = 0, rng.random() < p_on
    while t < n:
        length = max(1, int(rng.exponential(mean_on if on else mean_off)))
        out[t:t + length] = on
        t += length
        on = not on
    return out


#: Per-feature observation noise (std, before the tanh gain); tuned so that unimodal devel CCCs land in the
#: paper's range (Tab. 2: roughly 0.2-0.6) rather than near 1.
_NOISE_SD = {"egemaps": 2.4, "vggish": 2.8, "vggface": 2.6, "fau_intensity": 1.4, "faus": 1.4}
#: Amplitude of the slow emotion-unrelated drifts mixed into every audio/face feature.
_NUISANCE = 1.5
#: Annotation noise (std of white noise before a 6-step smoothing).
_LABEL_NOISE = 0.8


class _Views:
    """Fixed (corpus-wide) random mixing matrices: the 'feature extractors' of the synthetic world."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.mix = {name: rng.normal(0, 1, (8, d)) / np.sqrt(8) for name, d in SYNTH_FEATURES.items()}
        self.delay_mask = {name: rng.random(d) < 0.3 for name, d in SYNTH_FEATURES.items()}
        self.nuisance = {name: rng.normal(0, 1, (4, d)) / 2.0 for name, d in SYNTH_FEATURES.items()}
        # drawn after the 2021 features' so that adding them left every earlier corpus unchanged
        d = _SYNTHESISABLE["faus"]
        self.mix["faus"], self.delay_mask["faus"] = rng.normal(0, 1, (8, d)) / np.sqrt(8), rng.random(d) < 0.3
        self.nuisance["faus"] = rng.normal(0, 1, (4, d)) / 2.0


def _drivers(name: str, a: np.ndarray, v: np.ndarray, speech: np.ndarray, gen: _Generator) -> np.ndarray:
    """The 8 nonlinear latent drivers a feature family sees (columns of the mixing matrix)."""
    s = speech.astype(float)
    if name in ("egemaps", "vggish"):  # voice: arousal strong, valence weak, mostly while speaking
        w = (1.0, 0.35) if name == "egemaps" else (0.8, 0.25)
        w = (w[0] * gen.voice_arousal, w[1] * gen.voice_valence)
        return np.stack([w[0] * np.tanh(1.5 * a) * s, w[0] * a * s, w[0] * (a ** 2) * s, w[1] * np.tanh(2 * v) * s,
                         w[1] * v * s, 0.8 * s, 0.3 * w[0] * a, 0.2 * np.tanh(a * v)], axis=1)
    if name in _FACE:  # face: valence strong, arousal weak
        k = gen.face_valence
        return np.stack([k * np.tanh(1.5 * v), k * v, k * np.maximum(v, 0) ** 2, 0.15 * np.tanh(a), 0.1 * a,
                         0.5 * np.tanh(k * v - 0.2 * a), 0.3 * s, 0.2 * k * v * s], axis=1)
    raise AssertionError(name)


def _latent(rng: np.random.Generator, n: int, ramp: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Latent arousal and valence of one subject: a slow ramp, stress events (arousal up, valence down), smiles
    (valence up) and Ornstein-Uhlenbeck drift. Without ``ramp`` arousal has no rise with time: every subject's ramp
    rises at the start of the recording, so two independent states with ramps would share it, and a sequence model
    learns the time since the start from its own state (measured: a 'null' corpus with ramps gave fused test CCC
    0.27 [0.10, 0.51] on arousal)."""
    t = np.arange(n)
    ramp_ = (rng.uniform(0.1, 0.5) * np.clip(t / (n * rng.uniform(0.2, 0.5)), 0, 1)) if ramp else 0.0
    stress = _events(rng, n, rate_per_min=1.0, rise=8, decay=50, amp=(0.4, 0.9))
    smiles = _events(rng, n, rate_per_min=0.8, rise=3, decay=15, amp=(0.3, 0.8))
    a = rng.normal(-0.1, 0.15) + ramp_ + 0.7 * stress + _ou(rng, n, tau=60, sigma=0.2)
    v = rng.normal(0.05, 0.15) + 0.8 * smiles - 0.35 * stress + _ou(rng, n, tau=80, sigma=0.2)
    return a, v


def _subject(rng: np.random.Generator, views: _Views, n: int, cfg: SynthConfig
             ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Latent state, labels and feature matrices of one subject (all on the n-step grid)."""
    t = np.arange(n)
    gen = cfg.generator
    a, v = _latent(rng, n, ramp=gen.time_locked)
    speech = _runs(rng, n, p_on=0.8, mean_on=18, mean_off=5)

    lag = int(rng.integers(*gen.lag))  # annotator lag (default 2-5 s)
    raw = {}
    for name, lat in (("arousal", a), ("valence", v)):
        raw[name] = _smooth(_shift(lat, lag), 3) + _smooth(rng.normal(0, _LABEL_NOISE, n), 6)
    if cfg.task in (Task.PHYSIO, Task.PERSONALISATION):
        eda = _smooth(_shift(a, int(rng.integers(4, 12))), 20) + _ou(rng, n, tau=120, sigma=0.15)
        eda = (eda - eda.mean()) / (eda.std() + 1e-6) * 0.35
        physio = 0.5 * raw["arousal"] + 0.5 * eda
        raw = ({"anno12_EDA": physio} if cfg.task == Task.PHYSIO else  # MuSe 2023's physio-arousal is the same mix
               {"physio-arousal": physio, "valence": raw["valence"]})
    if gen.label_offset_sd or gen.label_scale_sd:  # where this subject's annotations sit, unseen in the features
        raw = {name: rng.normal(1.0, gen.label_scale_sd) * lab + rng.normal(0, gen.label_offset_sd)
               for name, lab in raw.items()}
    # real gold standards lie in [-1, 1]: squash smoothly (nearly linear near 0) instead of clipping to plateaus
    labels = {name: np.tanh(lab) for name, lab in raw.items()}

    # what each modality sees: the annotated state, or (not a carrier) an independent one from the same process
    seen = {m: (a, v) for m in ("voice", "face", "bio")}
    if len(gen.carriers) < len(seen):  # drawn only here, so the other variants' corpora are unchanged
        other = _latent(rng, n, ramp=False)
        seen.update({m: other for m in seen if m not in gen.carriers})
    feats: dict[str, np.ndarray] = {}
    missing = cfg.missing_face_rate if gen.missing_face_rate is None else gen.missing_face_rate
    face_seen = ~_runs(rng, n, p_on=missing, mean_on=6, mean_off=6 / max(missing, 1e-3))
    for folder in cfg.features:
        name = folder.lower()
        if name in _BIO:
            feats[folder] = _bio_signal(rng, name, seen["bio"][0], t, gen)[:, None]
            continue
        if name == BIOSIGNALS:
            feats[folder] = np.stack([_bio_signal(rng, b, seen["bio"][0], t, gen) for b in _BIO], axis=1)
            continue
        d = _SYNTHESISABLE[name]
        drivers = _drivers(name, *seen["face" if name in _FACE else "voice"], speech, gen)
        delayed = _shift(drivers, int(rng.integers(1, 5)))
        sig = drivers @ views.mix[name]
        sig[:, views.delay_mask[name]] = (delayed @ views.mix[name])[:, views.delay_mask[name]]
        gain: float | np.ndarray = 2.0 if name in ("egemaps", "vggface") else 1.5
        offset = gen.offset * rng.normal(0, 0.8 if name == "vggface" else 0.5, d)  # identity / voice / channel
        noise_sd = _NOISE_SD[name] * (gen.face_noise if name in _FACE else gen.audio_noise)
        if gen.subject_gain_sd:  # this subject's own way of showing it: a gain (and sign) per column
            gain = gain * rng.normal(1.0, gen.subject_gain_sd, d)
        # slow nuisance (pose, lighting, room noise): unrelated to emotion, not averaged away by context
        nuisance = np.stack([_ou(rng, n, tau=40, sigma=1.0) for _ in range(4)], axis=1) @ views.nuisance[name]
        x = offset + gain * np.tanh(sig) + _NUISANCE * nuisance + rng.normal(0, noise_sd, (n, d))
        if name in ("fau_intensity", "faus"):
            x = np.log1p(np.exp(x))  # AU intensities are non-negative
        if name in _FACE:
            x[~face_seen] = np.nan
        feats[folder] = x
    return labels, feats


def _bio_signal(rng: np.random.Generator, name: str, a: np.ndarray, t: np.ndarray, gen: _Generator) -> np.ndarray:
    """One bio signal (``ecg``, ``resp`` or ``bpm``) at 2 Hz, driven by latent arousal."""
    n = len(a)
    g, k = gen.bio_gain, gen.bio_noise
    base = {"ecg": 0.0, "resp": 0.0, "bpm": rng.normal(75, 8)}[name]
    hr = _smooth(_shift(a, int(rng.integers(1, 4))), 4)
    if name == "bpm":
        return base + g * 9.0 * hr + k * rng.normal(0, 2.5, n)
    if name == "ecg":
        return rng.normal(0, 0.15) + g * 0.25 * hr + _ou(rng, n, tau=30, sigma=0.15) + k * rng.normal(0, 0.25, n)
    return (rng.normal(0, 0.3) + g * 0.3 * _smooth(a, 6) + 0.2 * np.sin(t * rng.uniform(0.5, 1.5))
            + k * rng.normal(0, 0.3, n))


def _chunks(sid: str, n: int) -> dict[str, tuple[Partition, np.ndarray]]:
    """A personalisation subject's chunks: ``<sid>_train`` (the first :data:`TRAIN_SHARE`), then 60 s chunks given
    in turn to test, devel, test (``<sid>_test``, ``<sid>_devel``, ``<sid>_test_2``, ...); a short tail joins the
    chunk before it."""
    cut = int(round(n * TRAIN_SHARE))
    out = {f"{sid}_train": (Partition.TRAIN, np.arange(cut))}
    size = min(CHUNK_STEPS, max(10, (n - cut) // 3))  # a short (test-sized) recording still gets all three
    bounds = list(range(cut, n, size))
    if len(bounds) > 1 and n - bounds[-1] < size // 2:
        bounds.pop()
    counts: dict[Partition, int] = {}
    for i, lo in enumerate(bounds):
        hi = bounds[i + 1] if i + 1 < len(bounds) else n
        part = _CHUNK_CYCLE[i % len(_CHUNK_CYCLE)] if len(bounds) > 1 else Partition.DEVEL
        counts[part] = counts.get(part, 0) + 1
        out[f"{sid}_{part.value}" + (f"_{counts[part]}" if counts[part] > 1 else "")] = (part, np.arange(lo, hi))
    return out


def synthesize(out: str | Path, cfg: SynthConfig, overwrite: bool = False) -> Path:
    """Write a synthetic corpus under ``out`` (``out/<corpus>/`` and ``out/test_labels/<corpus>/``).

    Args:
        out: destination root.
        cfg: size, task and seed.
        overwrite: replace a corpus folder that already exists. Without it, an existing synthetic corpus of the
            same config is rewritten (the same bytes) and any other corpus is refused, so a real download is never
            overwritten by accident.

    Returns:
        The corpus folder (e.g. ``out/c3_muse_stress``).

    Raises:
        ConfigError: ``out/<corpus>`` exists, was not written by ``synth`` with this config, and not ``overwrite``;
            ``out`` is not a data root (:func:`musefusion.rundir.check_data_root`).
    """
    out = Path(out)
    rundir.check_data_root(out, "OUT")
    existing = out / cfg.task.corpus_dirs[0]
    if existing.exists() and not overwrite:
        stamp = existing / "metadata" / "synth.toml"
        same = stamp.is_file() and fsutil.read_toml(stamp) == cfg.to_dict()
        if not same:
            what = "a synthetic corpus of another config" if stamp.is_file() else "a corpus not written by synth"
            raise ConfigError(f"'{existing}' already holds {what}; pass another OUT, or --overwrite to replace it.")
    rng = np.random.default_rng(cfg.seed)
    views = _Views(np.random.default_rng([cfg.seed, 7]))
    world = phases.World(np.random.default_rng([cfg.seed, 13])) if cfg.variant.family == "phases" else None
    ids = [str(i) for i in rng.permutation(np.arange(1, cfg.n_subjects + 1))]
    parts = ([Partition.TRAIN] * cfg.n_train + [Partition.DEVEL] * cfg.n_devel + [Partition.TEST] * cfg.n_test)
    subjects = dict(sorted(zip(ids, parts, strict=True), key=lambda kv: int(kv[0])))
    personal = cfg.task == Task.PERSONALISATION
    meta = "subject_id" if personal else "segment_id"
    name = cfg.task.corpus_dirs[0]
    corpus = out / name
    hidden = out / "test_labels" / name
    sub_seeds = np.random.SeedSequence([cfg.seed, 11]).spawn(cfg.n_subjects)
    with fsutil.atomic_dir(corpus) as tmp_corpus, fsutil.atomic_dir(hidden) as tmp_hidden:
        partition: dict[str, Partition] = {}
        for k, (sid, part) in enumerate(subjects.items()):
            srng = np.random.default_rng(sub_seeds[k])
            n = max(20, int(round(cfg.minutes * 120 * srng.uniform(0.85, 1.15))))
            if world is not None:
                labels, feats = phases.subject(srng, world, n, cfg.task, cfg.features,
                                               phases.VARIANTS[cfg.variant.value])
            else:
                labels, feats = _subject(srng, views, n, cfg)
            grid = np.arange(n, dtype=np.int64) * STEP_MS
            seg = int(sid) if personal else 1  # MuSe 2023 files name the subject in their second column
            chunks = (_chunks(sid, n) if personal and part != Partition.TRAIN
                      else {sid: (part, np.arange(n))})
            for cid, (cpart, steps) in chunks.items():
                partition[cid] = cpart
                for target, lab in labels.items():
                    dest = tmp_corpus / "label_segments" / target / f"{cid}.csv"
                    if cpart == Partition.TEST:
                        formats.write_sequence_csv(dest, grid[steps], np.full(len(steps), np.nan), float_decimals=4,
                                                   segment_id=seg, meta_column=meta)
                        formats.write_sequence_csv(tmp_hidden / "label_segments" / target / f"{cid}.csv",
                                                   grid[steps], lab[steps], float_decimals=4, segment_id=seg, meta_column=meta)
                    else:
                        formats.write_sequence_csv(dest, grid[steps], lab[steps], float_decimals=4,
                                                   segment_id=seg, meta_column=meta)
            for fname, x in feats.items():
                start = int(srng.random() < 0.3)  # some files start at 500 ms
                end = n + int(srng.choice([-3, -2, -1, 0, 0, 0, 0, 1, 2]))  # some end early or late
                idx = np.arange(start, end)
                vals = np.vstack([x, x[-1:].repeat(max(0, end - n), axis=0)])[idx]
                keep = ~np.isnan(vals).any(axis=1)  # no face: the row is absent
                if fname.lower() == BIOSIGNALS:  # MuSe 2022: one file, a column per signal
                    cols = list(SYNTH_FEATURES)[-3:]
                else:
                    cols = [f"{fname}_{j}" for j in range(vals.shape[1])] if vals.shape[1] > 1 else [fname]
                for i, (cid, (_, steps)) in enumerate(chunks.items()):  # a file's extra rows go to its end chunks
                    lo = steps[0] if i else idx[0]
                    hi = steps[-1] if i < len(chunks) - 1 else idx[-1]
                    rows = keep & (idx >= lo) & (idx <= hi)
                    formats.write_sequence_csv(tmp_corpus / "feature_segments" / fname / f"{cid}.csv",
                                               idx[rows] * STEP_MS, vals[rows], columns=cols, float_decimals=4,
                                               segment_id=seg, meta_column=meta)
        formats.write_partition(tmp_corpus / "metadata" / "partition.csv", partition)
        fsutil.write_toml(tmp_corpus / "metadata" / "synth.toml", cfg.to_dict())
    logger.info("wrote synthetic %s corpus with %d subjects to %s", cfg.task.value, cfg.n_subjects, corpus)
    return corpus
