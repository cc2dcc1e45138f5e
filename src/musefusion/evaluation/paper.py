"""The paper's reported numbers (Ma et al., MuSe 2021, Tables 2-6), for side-by-side reports."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from musefusion import families

#: Table 2 (MuSe-Stress devel CCC): (features, modality, model) -> {target: CCC}.
TABLE2 = {
    ("egemaps", "A", "selfattn"): {"arousal": 0.4158, "valence": 0.4123},
    ("egemaps", "A", "lstm"): {"arousal": 0.4304, "valence": 0.5845},
    ("egemaps", "A", "selfattn_lstm"): {"arousal": 0.5142, "valence": 0.5735},
    ("vggface", "V", "selfattn"): {"arousal": 0.1412, "valence": 0.4307},
    ("vggface", "V", "lstm"): {"arousal": 0.2004, "valence": 0.4653},
    ("vggface", "V", "selfattn_lstm"): {"arousal": 0.2303, "valence": 0.4543},
    ("bio", "B", "bio_lstm"): {"arousal": 0.3921, "valence": 0.2912},
}

#: Table 3 (MuSe-Physio devel CCC, anno12_EDA).
TABLE3 = {
    ("vggish", "A", "selfattn"): {"anno12_EDA": 0.2391},
    ("vggish", "A", "lstm"): {"anno12_EDA": 0.3180},
    ("vggish", "A", "selfattn_lstm"): {"anno12_EDA": 0.5050},
    ("vggish", "A", "gcnn"): {"anno12_EDA": 0.1486},
    ("vggish", "A", "gcnn_lstm"): {"anno12_EDA": 0.4400},
    ("vggface", "V", "selfattn"): {"anno12_EDA": 0.3232},
    ("vggface", "V", "lstm"): {"anno12_EDA": 0.3903},
    ("vggface", "V", "selfattn_lstm"): {"anno12_EDA": 0.3745},
    ("vggface", "V", "gcnn"): {"anno12_EDA": 0.1938},
    ("vggface", "V", "gcnn_lstm"): {"anno12_EDA": 0.4170},
    ("bio", "B", "bio_lstm"): {"anno12_EDA": 0.4639},
}

#: Table 4 (MuSe-Stress late fusion, devel): streams -> {target: CCC}. A = eGeMAPS Self-Attn+LSTM,
#: V = VGGface Self-Attn+LSTM, B = ECG+RESP+BPM LSTM.
TABLE4 = {
    ("A", "V"): {"arousal": 0.4922, "valence": 0.6756},
    ("A", "B"): {"arousal": 0.5378, "valence": 0.5863},
    ("V", "B"): {"arousal": -0.0024, "valence": 0.5649},
    ("A", "V", "B"): {"arousal": 0.5422, "valence": 0.6965},
}

#: Table 5 (MuSe-Physio late fusion, devel, anno12_EDA): streams -> CCC. A1/V1 = VGGish/VGGface
#: Self-Attn+LSTM, A2/V2 = VGGish/VGGface GCNN+LSTM, B = bio LSTM.
TABLE5 = {
    ("A1", "V1"): {"anno12_EDA": 0.5797},
    ("A2", "V2"): {"anno12_EDA": 0.5784},
    ("A1", "V1", "A2", "V2"): {"anno12_EDA": 0.6128},
    ("A1", "V1", "B"): {"anno12_EDA": 0.6153},
    ("A2", "V2", "B"): {"anno12_EDA": 0.5847},
    ("A1", "V1", "A2", "V2", "B"): {"anno12_EDA": 0.6257},
}

#: Table 6 (test CCC of the submissions): (model, task) -> {target: CCC}.
TABLE6 = {
    ("Baseline", "stress"): {"arousal": 0.4562, "valence": 0.5614, "combined": 0.5088},
    ("Proposed Model", "stress"): {"arousal": 0.4609, "valence": 0.6159, "combined": 0.5384},
    ("Baseline", "physio"): {"anno12_EDA": 0.4908},
    ("Proposed Model", "physio"): {"anno12_EDA": 0.5412},
}

#: Fusion streams: name -> (features, model) per task.
STREAMS = {
    "stress": {"A": ("egemaps", "selfattn_lstm"), "V": ("vggface", "selfattn_lstm"), "B": ("bio", "bio_lstm")},
    "physio": {"A1": ("vggish", "selfattn_lstm"), "V1": ("vggface", "selfattn_lstm"), "A2": ("vggish", "gcnn_lstm"),
               "V2": ("vggface", "gcnn_lstm"), "B": ("bio", "bio_lstm")},
}

class _ModelLabels(Mapping[str, str]):
    """Display names of the model families, as in the paper's tables (read from :mod:`musefusion.families`)."""

    def __getitem__(self, name: str) -> str:
        if name not in families.FAMILIES:
            raise KeyError(name)
        return families.FAMILIES[name].label

    def __iter__(self) -> Iterator[str]:
        return iter(families.FAMILIES)

    def __len__(self) -> int:
        return len(families.FAMILIES)


MODEL_LABELS: Mapping[str, str] = _ModelLabels()
FEATURE_LABELS = {"egemaps": "eGeMAPS", "vggface": "VGGface", "vggish": "VGGish", "bio": "ECG+RESP+BPM"}


def unimodal_table(task: str) -> dict[tuple[str, str, str], dict[str, float]]:
    """Table 2 (stress) or Table 3 (physio): (features, modality, model) -> {target: devel CCC}."""
    return TABLE2 if str(task) == "stress" else TABLE3


def fusion_table(task: str) -> dict[tuple[str, ...], dict[str, float]]:
    """Table 4 (stress) or Table 5 (physio): streams -> {target: devel CCC}."""
    return TABLE4 if str(task) == "stress" else TABLE5


def full_fusion_row(task: str) -> tuple[str, ...]:
    """The fusion row with every stream (A+V+B, A1+V1+A2+V2+B): the paper's submission."""
    return max(fusion_table(task), key=len)
