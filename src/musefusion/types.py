"""Closed sets (str Enums) and shared type aliases."""

from __future__ import annotations

import os
from enum import StrEnum
from typing import Union

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.floating]
PathLike = Union[str, "os.PathLike[str]"]

#: The MuSe label grid: one step every 500 ms (2 Hz).
STEP_MS = 500


class Task(StrEnum):
    """A MuSe sub-challenge."""

    STRESS = "stress"
    PHYSIO = "physio"
    PERSONALISATION = "personalisation"  # MuSe 2023: a general model, then one fine-tuned copy per test subject

    @property
    def corpus_dirs(self) -> tuple[str, ...]:
        """Folder names under the data root that hold this task's corpus, newest layout last."""
        return {
            Task.STRESS: ("c3_muse_stress", "c3_muse_stress_2022"),
            Task.PHYSIO: ("c4_muse_physio",),
            Task.PERSONALISATION: ("c3_muse_personalisation",),
        }[self]

    @property
    def default_targets(self) -> tuple[str, ...]:
        """The targets the paper predicts for this task."""
        return {Task.STRESS: ("arousal", "valence"), Task.PHYSIO: ("anno12_EDA",),
                Task.PERSONALISATION: ("physio-arousal", "valence")}[self]


class SelectionRule(StrEnum):
    """How the fusion selection turns cross-validated scores into a choice (``musefusion.fusion.select``)."""

    INTERVAL = "interval"  # a candidate replaces the paper's Bi-LSTM only when its gain's interval lies above 0
    MAX = "max"  # the highest CV score wins (before 0.2), an ablation


class Partition(StrEnum):
    """A MuSe partition."""

    TRAIN = "train"
    DEVEL = "devel"
    TEST = "test"


class FusionTrain(StrEnum):
    """What a late-fusion model is fitted on (``musefusion.fusion.late`` explains each)."""

    OOF = "oof"  # out-of-fold train predictions of k models per stream (the default)
    IN_SAMPLE = "in-sample"  # the streams' own train predictions (the MuSe baseline's practice)
    DEVEL = "devel"  # k-fold cross-validation on devel


class Modality(StrEnum):
    """The modality a feature set belongs to (paper's 'M' column)."""

    AUDIO = "A"
    VIDEO = "V"
    BIO = "B"
    TEXT = "T"
    OTHER = "?"


class Normalise(StrEnum):
    """Whose statistics z-score the feature columns.

    ``train``: the train partition's mean and std (the MuSe 2021 baseline; one transform for every subject).
    ``subject``: each recording's own mean and std over its observed steps, for train, devel and test alike (no
    label is used: a test subject's unlabelled features are known at test time), which removes per-subject
    offsets and gains of the features; a short recording's statistics are shrunk toward the train statistics
    (``DataConfig.subject_prior``). ``none``: the raw values.
    """

    TRAIN = "train"
    SUBJECT = "subject"
    NONE = "none"

    @classmethod
    def _missing_(cls, value: object) -> Normalise | None:
        """Configs written before 0.4 say ``normalize = true`` or ``false`` (:data:`NORMALISE_BEFORE_0_4`)."""
        return NORMALISE_BEFORE_0_4.get(value) if isinstance(value, bool) else None


#: What ``normalize = true / false`` (a bool before 0.4) means now; configs, run records and cache keys read it here.
NORMALISE_BEFORE_0_4: dict[bool, Normalise] = {True: Normalise.TRAIN, False: Normalise.NONE}


class FillPolicy(StrEnum):
    """How steps without a feature row (e.g. no face found) are filled.

    ``zero``: the train mean (0 after normalisation). ``ffill``: the last observed row carried forward,
    leading gaps take the first observed row. Either way the step is marked unobserved in the mask.
    """

    ZERO = "zero"
    FFILL = "ffill"


#: Feature sets known from MuSe 2021-2023, with their dimension and modality (names as the downloads spell
#: them; looked up without regard to case by :func:`known_feature`).
KNOWN_FEATURES: dict[str, tuple[int | None, Modality]] = {
    "egemaps": (88, Modality.AUDIO),
    "vggish": (128, Modality.AUDIO),
    "deepspectrum": (None, Modality.AUDIO),
    "vggface": (512, Modality.VIDEO),
    "fau_intensity": (17, Modality.VIDEO),
    "bert": (None, Modality.TEXT),
    "bert-4": (None, Modality.TEXT),
    "ECG": (1, Modality.BIO),
    "resp": (1, Modality.BIO),
    "BPM": (1, Modality.BIO),
    "biosignals": (3, Modality.BIO),
    # MuSe 2023 (c3_muse_personalisation)
    "ds": (None, Modality.AUDIO),
    "w2v-msp": (1024, Modality.AUDIO),
    "faus": (None, Modality.VIDEO),
    "vit": (None, Modality.VIDEO),
    "facenet": (512, Modality.VIDEO),
}

#: The MuSe 2022 folder that holds ECG, respiration and BPM as three columns of one file.
BIOSIGNALS = "biosignals"

#: Shorthand feature groups: ``bio`` is ECG+resp+BPM concatenated (paper Eq. 9), named as the MuSe 2021 download
#: names its folders (respiration is lower-case ``resp`` there); a ``biosignals`` folder stands in for all three.
FEATURE_GROUPS: dict[str, tuple[str, ...]] = {"bio": ("ECG", "resp", "BPM")}


def known_feature(name: str) -> tuple[int | None, Modality]:
    """Dimension and modality of a known feature set, matched without regard to case (``(None, OTHER)`` else).

    Examples:
        >>> known_feature("RESP")
        (1, <Modality.BIO: 'B'>)
    """
    lower = {k.lower(): v for k, v in KNOWN_FEATURES.items()}
    return lower.get(str(name).lower(), (None, Modality.OTHER))


def expand_features(names: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Expand a feature spec ("egemaps", "bio", "ECG+resp+BPM", ["a", "b"]) into feature folder names.

    The names are matched to a corpus's folders later, without regard to case
    (:func:`musefusion.data.corpus.resolve_feature_names`).

    Examples:
        >>> expand_features("bio")
        ('ECG', 'resp', 'BPM')
        >>> expand_features(["egemaps", "BPM"])
        ('egemaps', 'BPM')
    """
    if isinstance(names, str):
        names = [names]
    out: list[str] = []
    for spec in names:
        for part in str(spec).split("+"):
            part = part.strip()
            if not part:
                continue
            out.extend(FEATURE_GROUPS.get(part.lower(), (part,)))
    return tuple(dict.fromkeys(out))


def modality_of(features: tuple[str, ...]) -> str:
    """The paper's modality letter(s) of a feature combination, e.g. ('ECG','resp','BPM') -> 'B'."""
    letters = []
    for f in features:
        m = known_feature(f)[1].value
        if m not in letters:
            letters.append(m)
    return "+".join(letters)
