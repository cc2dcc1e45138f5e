"""What a reproduction found, typed, in one module that the pipeline writes and the report and the API read:
:class:`ReproduceSummary` (every row's scores) and :class:`BeyondRow` (one line of the ``--beyond`` table)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

NAN = math.nan


class RowKey(NamedTuple):
    """A unimodal row of Tables 2/3 (and the peers and all-models rows) for one target: ``ReproduceSummary.runs
    ["unimodal"]``'s key. Read by name (``k.target``, ``k.row``), never by position."""

    features: str
    modality: str
    model: str
    target: str

    @property
    def row(self) -> tuple[str, str, str]:
        """(features, modality, model): the row of the paper's tables, whatever the target."""
        return (self.features, self.modality, self.model)


class FusionKey(NamedTuple):
    """A fusion row of Tables 4/5 for one target and fit: ``ReproduceSummary.runs["fusion"]``'s key."""

    row: tuple[str, ...]  # stream names, e.g. ("A", "V", "B")
    target: str
    fit: str  # oof | in-sample | devel


@dataclasses.dataclass(frozen=True)
class ReproduceSummary:
    """Everything a reproduction's report shows, read from the run directories by ``reproduce.summarize``."""

    runs: dict[str, dict[Any, dict[str, Any]]]  # "unimodal": {RowKey: scores}, "fusion": {FusionKey: scores}
    test: dict[str, float] | None = None  # Table 6: test CCC per target (None when test labels are withheld)
    test_ci: dict[str, list[float]] | None = None  # the same keys: each test CCC's 95 % interval [low, high]
    tuning: dict[tuple[str, str, str], dict[str, Any]] | None = None  # --tune: (features, model, target) -> search
    selection: dict[str, dict[str, Any]] | None = None  # target -> the fusion selection's metrics
    beyond: dict[str, list[dict[str, Any]]] | None = None  # --beyond: target -> one row per method


@dataclasses.dataclass(frozen=True)
class BeyondRow:
    """One line of the ``--beyond`` table, as the report shows it and ``ReproduceResult.beyond()`` returns it: the
    paper's full fusion Bi-LSTM (``method == "paper"``), the reproduction's selected fuser (``"selected"``) or a
    later method (``pipelines.beyond.METHODS``). NaN: not measured (no test labels, one value, no estimate)."""

    target: str
    method: str
    label: str  # the report's method column
    what: str
    devel_mean: float  # mean over seeds (a derived row or a selection: its one value)
    devel_std: float = NAN  # std over seeds
    devel_cv: float = NAN  # a row chosen on devel: its subject-wise cross-validated estimate
    devel_kept: float = NAN  # the paper row: its kept (devel-best) seed's devel CCC, with its interval
    devel_kept_low: float = NAN
    devel_kept_high: float = NAN
    test: float = NAN  # test CCC with its 95 % subject-level interval
    test_low: float = NAN
    test_high: float = NAN
    minutes: float = NAN  # training or deriving time (the paper row: its streams, folds and fusion)
    chosen_on_devel: bool = False  # its devel CCC is optimistic
    above_paper: bool = False  # the verdict: above the paper's Bi-LSTM on devel and test

    def as_record(self) -> dict[str, Any]:
        """The row as a DataFrame record (without the report's label)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "label"}
