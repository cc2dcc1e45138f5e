"""The run directory: its layout (one home for every file name), its kind, and when it may be reused.

Layout of a unimodal run (``musefusion train``; also a fold, a final model and a sweep trial)::

    <run>/config.toml                 the record: config sections, [inputs] digests, [versions]
    <run>/metrics.json                scores (written last: its presence means 'finished')
    <run>/checkpoint.pt               the best seed's weights (+ config, normalisation statistics)
    <run>/predictions/<partition>/<id>.csv
    <run>/plots/<name>.png            learning curves, devel predictions against labels
    <run>/log.txt                     the CLI's log;  <run>/evaluation.json  `musefusion evaluate`'s scores
    <run>/seed_<s>/                   one seed: history.csv, checkpoint.pt, predictions/, result.json, last.pt
    <run>/oof_k<K>/fold_<i>/          a fold run (out-of-fold predictions); <run>/oof_k<K>/predictions/train/
    <run>/final/                      the final train+devel model (a run of its own)
    <run>/personalised/               `musefusion personalise`: one fine-tuned copy per test subject (PersonalDir)

A fusion run has the same files; its ``config.toml`` holds a ``[fusion]`` section. A sweep trial adds
``trial.json``.

Reuse rules: a run directory is reused only for the configuration and inputs it records.

Every run directory (unimodal run, fold, final model, fusion run, sweep trial) records in ``config.toml`` the
configuration that made it and a digest of its inputs (``[inputs]``: the corpus files, or the fused streams'
metrics). A later request for the same directory is compared with that record:

* nothing there yet: start;
* the same configuration and inputs: reuse the finished run, or resume the unfinished one;
* anything else: refuse with one line naming the differing fields, unless ``overwrite`` replaces it.

Fields that cannot change a result (where the data root lies, the cache folder, torch threads, the device) are
left out of the comparison, so moving a corpus or rerunning on another machine reuses what is there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from musefusion import fsutil
from musefusion.errors import ConfigError
from musefusion.types import NORMALISE_BEFORE_0_4

#: The record of a run directory (its config, versions and input digests) and its 'finished' marker.
CONFIG_FILE = "config.toml"
METRICS_FILE = "metrics.json"
#: Files the CLI writes into a run directory before the run starts (kept by ``overwrite``).
LOG_FILE = "log.txt"
CHECKPOINT_FILE = "checkpoint.pt"
PREDICTIONS_DIR = "predictions"
PLOTS_DIR = "plots"
EVALUATION_FILE = "evaluation.json"
TRACKED_FILE = "tracked.json"  # where the run was logged to (``--track mlflow``): its tracking URI and run id
TRIAL_FILE = "trial.json"
FINAL_DIR = "final"
PREDICT_DIR = "predict"  # `musefusion predict`'s default output folder inside a run
PERSONAL_DIR = "personalised"  # `musefusion personalise`'s default output folder inside a general run
#: Per-seed files.
HISTORY_FILE = "history.csv"
RESULT_FILE = "result.json"
LAST_STATE_FILE = "last.pt"


class Kind(enum.Enum):
    """What a run directory holds."""

    RUN = "run"  # a unimodal run (also a fold, a final model, a sweep trial)
    FUSION = "fusion"  # a late-fusion run


@dataclasses.dataclass(frozen=True)
class RunDir:
    """One run directory: every path inside it, and its record. Every module asks it instead of joining names.

    Examples:
        >>> r = RunDir(Path("runs/a"))
        >>> str(r.predictions("devel")), str(r.seed(2).checkpoint), str(r.fold(5, 0).metrics)
        ('runs/a/predictions/devel', 'runs/a/seed_2/checkpoint.pt', 'runs/a/oof_k5/fold_0/metrics.json')
    """

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    # files
    @property
    def config(self) -> Path:
        """``config.toml``: the record."""
        return self.path / CONFIG_FILE

    @property
    def metrics(self) -> Path:
        """``metrics.json``: the scores; its presence means finished."""
        return self.path / METRICS_FILE

    @property
    def checkpoint(self) -> Path:
        """``checkpoint.pt``."""
        return self.path / CHECKPOINT_FILE

    @property
    def log(self) -> Path:
        """``log.txt``."""
        return self.path / LOG_FILE

    @property
    def evaluation(self) -> Path:
        """``evaluation.json`` (``musefusion evaluate``)."""
        return self.path / EVALUATION_FILE

    @property
    def tracked(self) -> Path:
        """``tracked.json``: the MLflow run this run was logged as (``--track mlflow``)."""
        return self.path / TRACKED_FILE

    @property
    def predict(self) -> Path:
        """``predict/``: where ``musefusion predict`` writes by default."""
        return self.path / PREDICT_DIR

    @property
    def trial(self) -> Path:
        """``trial.json`` of a sweep trial."""
        return self.path / TRIAL_FILE

    @property
    def history(self) -> Path:
        """``history.csv`` of a seed folder."""
        return self.path / HISTORY_FILE

    @property
    def result(self) -> Path:
        """``result.json`` of a seed folder."""
        return self.path / RESULT_FILE

    @property
    def last_state(self) -> Path:
        """``last.pt``: a seed's per-epoch state while it trains."""
        return self.path / LAST_STATE_FILE

    @property
    def predictions_root(self) -> Path:
        """``predictions/``."""
        return self.path / PREDICTIONS_DIR

    def predictions(self, partition: str) -> Path:
        """``predictions/<partition>/``."""
        return self.path / PREDICTIONS_DIR / str(partition)

    def plot(self, name: str) -> Path:
        """``plots/<name>``."""
        return self.path / PLOTS_DIR / name

    # nested runs
    def seed(self, seed: int) -> RunDir:
        """``seed_<s>/``."""
        return RunDir(self.path / f"seed_{seed}")

    @property
    def final(self) -> RunDir:
        """``final/``: the final train+devel model."""
        return RunDir(self.path / FINAL_DIR)

    def oof(self, k: int) -> Path:
        """``oof_k<K>/``: the out-of-fold refits."""
        return self.path / f"oof_k{k}"

    def fold(self, k: int, fold: int) -> RunDir:
        """``oof_k<K>/fold_<i>/``."""
        return RunDir(self.oof(k) / f"fold_{fold}")

    def oof_predictions(self, k: int) -> Path:
        """``oof_k<K>/predictions/train/``: the collected out-of-fold train predictions."""
        return self.oof(k) / PREDICTIONS_DIR / "train"

    def oof_digest(self, k: int) -> Path:
        """``oof_k<K>/collected.digest``: a digest of the fold predictions the collected ones were copied from."""
        return self.oof(k) / "collected.digest"

    def place(self) -> tuple[str, Path | None]:
        """What the folder's place in a run tree says it is: ``("fold 1/5", parent)`` for ``<parent>/oof_k5/fold_0``,
        ``("train+devel", parent)`` for ``<parent>/final``, else ``("", None)``.

        Examples:
            >>> RunDir(Path("runs/a/oof_k5/fold_0")).place(), RunDir(Path("runs/a/final")).place()
            (('fold 1/5', PosixPath('runs/a')), ('train+devel', PosixPath('runs/a')))
        """
        oof, fold = self.path.parent.name, self.path.name
        k, i = oof.removeprefix("oof_k"), fold.removeprefix("fold_")
        if oof.startswith("oof_k") and fold.startswith("fold_") and k.isdigit() and i.isdigit():
            return f"fold {int(i) + 1}/{k}", self.path.parent.parent
        if RunDir(self.path.parent).final.path == self.path:
            return "train+devel", self.path.parent
        return "", None

    def test_predictions(self) -> Path:
        """The predictions a submission uses: the final model's test predictions when it exists, else the run's."""
        final = self.final.predictions("test")
        return final if final.is_dir() else self.predictions("test")

    def seed_dirs(self) -> list[RunDir]:
        """The ``seed_<s>/`` folders present, in seed order."""
        found = [p for p in self.path.glob("seed_*") if p.is_dir() and p.name[5:].isdigit()]
        return [RunDir(p) for p in sorted(found, key=lambda p: int(p.name[5:]))]

    # state
    @property
    def personalised(self) -> PersonalDir:
        """``personalised/``: the per-subject fine-tuned copies of this (general) model."""
        return PersonalDir(self.path / PERSONAL_DIR)

    @property
    def finished(self) -> bool:
        """True when ``metrics.json`` exists."""
        return self.metrics.is_file()

    def read_record(self) -> dict[str, Any]:
        """``config.toml`` as a dict (MissingDataError when the folder is not a run)."""
        return fsutil.read_toml(self.config)

    def read_metrics(self) -> dict[str, Any]:
        """``metrics.json`` as a dict."""
        return fsutil.read_json(self.metrics)

    @property
    def kind(self) -> Kind:
        """A fusion run (its record has a ``[fusion]`` section) or a unimodal run."""
        return Kind.FUSION if "fusion" in self.read_record() else Kind.RUN

#: Record entries never compared: (section, key); the ``versions`` and ``locations`` sections are compared by nobody.
IGNORED_FIELDS: frozenset[tuple[str, str]] = frozenset({
    ("data", "root"), ("data", "cache"), ("data", "cache_dir"), ("train", "num_threads"), ("train", "device"),
    ("fusion", "streams"),  # where the streams lie (any spelling, after a move): they are compared by digest (inputs)
})
#: Values written by earlier versions and what they mean now: ``data.normalize`` was a bool before 0.4.
LEGACY_VALUES: dict[tuple[str, str], dict[Any, Any]] = {
    ("data", "normalize"): {old: new.value for old, new in NORMALISE_BEFORE_0_4.items()}}
IGNORED_SECTIONS = frozenset({"versions", "locations"})  # locations: where inputs lay (a move changes no result)
#: The record's section of input digests (corpus files, fused streams).
INPUTS = "inputs"


class Status(enum.Enum):
    """What a run directory holds relative to a request."""

    NEW = "new"  # nothing there (or replaced by overwrite): start
    RESUME = "resume"  # an unfinished run of the same config: continue it
    FINISHED = "finished"  # a finished run of the same config and inputs: reuse it


@dataclasses.dataclass(frozen=True)
class PersonalDir(RunDir):
    """The output folder of ``musefusion personalise`` (by default ``<general run>/personalised/``); a run-like
    folder (``config``, ``metrics``, ``predictions(p)``, ``plot(name)``, ``log``, ``finished`` as a run's)::

        <out>/config.toml                      the personalise options, the general run and its corpus digest
        <out>/metrics.json                     per-subject before/after and the concatenated scores (written last)
        <out>/subjects/<subject>/              one subject: result.json (written last: the subject is done),
                                               checkpoint.pt (when a fine-tuned copy is kept), seed_<s>/history.csv,
                                               predictions/<devel|test>/<chunk>.csv (the kept model's)
        <out>/predictions/<devel|test>/        every subject's kept predictions, together (scored as one)
        <out>/general/<devel|test>/            the general model's predictions of the same chunks
        <out>/plots/gains.png, <out>/submission/   per-subject gains; the 2023-format files
    """

    def subject(self, subject: str) -> RunDir:
        """``subjects/<subject>/`` (its ``result.json`` marks it done)."""
        return RunDir(self.path / "subjects" / subject)

    def subject_general(self, subject: str, partition: str) -> Path:
        """``subjects/<subject>/general/<partition>/``: the general model's predictions of the subject's chunks."""
        return self.subject(subject).path / "general" / partition

    @property
    def jobs_log(self) -> Path:
        """``jobs.log``: one line per finished subject job (``musefusion.pipelines.jobs``)."""
        return self.path / "jobs.log"

    def submission_file(self, partition: str) -> Path:
        """``submission/predictions_<partition>.csv`` (the MuSe 2023 baseline's file name)."""
        return self.submission / f"predictions_{partition}.csv"

    @property
    def submission_target(self) -> Path:
        """``submission/target.txt``: the dimension the files predict."""
        return self.submission / "target.txt"

    def general(self, partition: str) -> Path:
        """``general/<partition>/``: the general model's predictions of the same chunks."""
        return self.path / "general" / partition

    @property
    def submission(self) -> Path:
        """``submission/``: ``predictions_<partition>.csv`` in the MuSe 2023 baseline's format."""
        return self.path / "submission"


@dataclasses.dataclass(frozen=True)
class ReproduceDir:
    """The output folder of ``musefusion reproduce``::

        <out>/runs/<target>/<features>-<model>/     a unimodal run per table row
        <out>/fusion/<target>/<A+V+B>-<fit>/        a fusion run per fusion row and fit
        <out>/fusion/<target>/selected/             the fuser chosen on devel (the submission's source)
        <out>/submission/<target>/<id>.csv          the validated test submission
        <out>/tune/study.db, tune/<target>/<features>-<model>/trials/   --tune: a study per row (SQLite default)
        <out>/beyond/<target>/<method>/              --beyond: a row of the later practice (pipelines/beyond.py)
        <out>/report.md, report.html, plots/, log.txt
    """

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def run(self, target: str, features: str, model: str) -> RunDir:
        """``runs/<target>/<features>-<model>``."""
        return RunDir(self.path / "runs" / target / f"{features}-{model}")

    def fusion(self, target: str, row: tuple[str, ...], fit: str) -> RunDir:
        """``fusion/<target>/<A+V+B>-<fit>``."""
        return RunDir(self.path / "fusion" / target / f"{'+'.join(row)}-{fit}")

    def beyond(self, target: str, method: str) -> Path:
        """``beyond/<target>/<method>/``: a ``--beyond`` row's run folder."""
        return self.path / "beyond" / target / method

    def beyond_time(self, target: str, method: str) -> Path:
        """``beyond/<target>/<method>.time.json``: how long deriving a ``--beyond`` row took."""
        return self.path / "beyond" / target / f"{method}.time.json"

    def beyond_search(self, target: str) -> Path:
        """``beyond/<target>/label-delay-search.json``: every searched label delay's devel CCC and the one kept."""
        return self.path / "beyond" / target / "label-delay-search.json"

    def general(self, target: str, features: str, model: str, seed: int) -> Path:
        """``runs/<target>/<features>-<model>-seed<s>/``: a personalisation row's general run of one seed."""
        return self.path / "runs" / target / f"{features}-{model}-seed{seed}"

    def personal_fusion(self, target: str, stream: str, seed: int) -> Path:
        """``fusion/<target>/<general|personalised>-seed<s>/``: the 2023 weighted-average fusion of one seed."""
        return self.path / "fusion" / target / f"{stream}-seed{seed}"

    @property
    def personal_summary(self) -> Path:
        """``personalisation.json``: the personalisation tables' numbers."""
        return self.path / "personalisation.json"

    def selected(self, target: str) -> RunDir:
        """``fusion/<target>/selected``: the fuser chosen on devel (``musefusion.pipelines.selection``)."""
        return RunDir(self.path / "fusion" / target / "selected")

    def tune(self, target: str, features: str, model: str) -> Path:
        """``tune/<target>/<features>-<model>``: the sweep folder of a row's study (its trials' run dirs)."""
        return self.path / "tune" / target / f"{features}-{model}"

    @property
    def tune_db(self) -> Path:
        """``tune/study.db``: the studies' SQLite file when no ``--storage`` is given."""
        return self.path / "tune" / "study.db"

    @property
    def submission(self) -> Path:
        """``submission/``."""
        return self.path / "submission"

    @property
    def report_md(self) -> Path:
        """``report.md``."""
        return self.path / "report.md"

    @property
    def report_html(self) -> Path:
        """``report.html``."""
        return self.path / "report.html"

    @property
    def tracked(self) -> Path:
        """``tracked.json``: the MLflow parent run the reproduction was logged as (``--track mlflow``)."""
        return self.path / TRACKED_FILE

    @property
    def log(self) -> Path:
        """``log.txt``."""
        return self.path / LOG_FILE

    @property
    def jobs_log(self) -> Path:
        """``jobs.log``: one line per job that ended (``musefusion.pipelines.jobs``)."""
        return self.path / "jobs.log"

    def plot(self, name: str) -> Path:
        """``plots/<name>``."""
        return self.path / PLOTS_DIR / name


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` without the fields that cannot change a result (and as TOML would store it).

    Examples:
        >>> comparable({"data": {"root": "/a", "target": "arousal"}, "versions": {"torch": "2"}})
        {'data': {'target': 'arousal'}}
    """
    out: dict[str, Any] = {}
    for section, values in record.items():
        if section in IGNORED_SECTIONS:
            continue
        if isinstance(values, dict):
            out[section] = {k: _plain(LEGACY_VALUES[section, k].get(v, v) if (section, k) in LEGACY_VALUES else v)
                            for k, v in values.items() if (section, k) not in IGNORED_FIELDS and v is not None}
        else:
            out[section] = _plain(values)
    return out


def _plain(v: Any) -> Any:
    if isinstance(v, tuple | list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items() if x is not None}
    if isinstance(v, Path):
        return str(v)
    return v


def differences(stored: dict[str, Any], wanted: dict[str, Any],
                defaults: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """``section.key stored -> wanted`` for every field that differs between two records.

    ``defaults`` (section -> field -> default) fills the fields a stored section lacks: a record written before a
    field existed reads as that field's default.

    Examples:
        >>> differences({"data": {"target": "arousal"}}, {"data": {"target": "valence"}})
        ["data.target 'arousal' -> 'valence'"]
        >>> differences({"data": {}}, {"data": {"label_delay": 0}}, {"data": {"label_delay": 0}})
        []
    """
    stored = {sec: ({**defaults[sec], **vals} if defaults and sec in defaults and isinstance(vals, dict) else vals)
              for sec, vals in stored.items()}
    a, b = comparable(stored), comparable(wanted)
    out: list[str] = []
    # the config sections first; the input digests only when the config agrees (they follow from it otherwise)
    sections = sorted(set(a) | set(b), key=lambda sec: (sec == INPUTS, sec))
    for section in sections:
        if section == INPUTS and out:
            break
        sa, sb = a.get(section), b.get(section)
        if isinstance(sa, dict) and isinstance(sb, dict):
            for k in sorted(set(sa) | set(sb)):
                if sa.get(k) != sb.get(k):
                    out.append(f"{section}.{k} {sa.get(k, '(unset)')!r} -> {sb.get(k, '(unset)')!r}")
        elif sa != sb:
            out.append(f"{section} {'(unset)' if sa is None else 'differs'} -> "
                       f"{'(unset)' if sb is None else 'requested'}")
    return out


def status(out: Path, record: dict[str, Any], *, what: str = "run", overwrite: bool = False,
           defaults: dict[str, dict[str, Any]] | None = None) -> Status:
    """Compare the run directory ``out`` with the record a request would write there.

    Args:
        out: the run directory.
        record: the request's record (config sections plus ``inputs``; ``versions`` is ignored).
        what: how messages name the run ("run", "fold run", "fusion run", ...).
        overwrite: replace a run of another config (its files are removed; ``log.txt`` is kept).
        defaults: the record sections' field defaults (see :func:`differences`).

    Returns:
        ``NEW`` (start; the folder may not exist), ``RESUME`` or ``FINISHED``.

    Raises:
        ConfigError: ``out`` holds a run of another configuration or other inputs and ``overwrite`` is False.
    """
    out = Path(out)
    cfg_path = out / CONFIG_FILE
    if not cfg_path.is_file():
        return Status.NEW
    stored = fsutil.read_toml(cfg_path)
    diffs = differences(stored, record, defaults)
    finished = (out / METRICS_FILE).is_file()
    if not diffs:
        return Status.FINISHED if finished else Status.RESUME
    if overwrite:
        clear(out)
        return Status.NEW
    state = "a finished" if finished else "an unfinished"
    shown = "; ".join(diffs[:6]) + (f"; and {len(diffs) - 6} more" if len(diffs) > 6 else "")
    raise ConfigError(f"'{out}' holds {state} {what} of another configuration ({shown}); pass another --out, "
                      "or --overwrite to replace it.")


#: What a run directory (unimodal, fold, final, fusion, sweep trial) may hold; :func:`clear` removes only these.
RUN_ENTRIES = frozenset({CONFIG_FILE, METRICS_FILE, CHECKPOINT_FILE, PREDICTIONS_DIR, PLOTS_DIR, EVALUATION_FILE,
                         PREDICT_DIR, FINAL_DIR, TRIAL_FILE, HISTORY_FILE, TRACKED_FILE, PERSONAL_DIR,
                         f"{CHECKPOINT_FILE}.tmp"})  # the last: what a crash of an earlier version could leave
RUN_PREFIXES = ("seed_", "oof_k")
#: What the other output folders may hold (besides ``log.txt`` and leftover ``.<name>.tmp`` files).
OUTPUT_ENTRIES: dict[str, frozenset[str]] = {
    "run": RUN_ENTRIES,
    "reproduce": frozenset({"runs", "fusion", "submission", "plots", "report.md", "report.html", "jobs.log", "tune",
                            "personalisation.json", "beyond", TRACKED_FILE}),
    "sweep": frozenset({"study.db", "study.db-journal", "trials", "report", TRACKED_FILE}),
    "curves": frozenset({"curves.csv", "curves.png"}),
    "sweep report": frozenset({"trials.csv", "best_trials.csv", "importances.json", "optimization_history.png",
                               "param_importances.png", "best_config.toml"}),
    "personalise": frozenset({CONFIG_FILE, METRICS_FILE, PREDICTIONS_DIR, PLOTS_DIR, "subjects", "general", "jobs.log",
                              "submission", TRACKED_FILE}),
    "demo": frozenset({"data", "reproduce-stress", "reproduce-physio"}),
}


def _ours(name: str, kind: str) -> bool:
    if name == LOG_FILE or (name.startswith(".") and name.endswith(".tmp")):
        return True
    if kind == "run" and name.startswith(RUN_PREFIXES):
        return True
    return name in OUTPUT_ENTRIES[kind]


#: folders only a corpus has: an output never lies in one (a corpus's label folders are never a submission)
CORPUS_FOLDERS = ("label_segments", "feature_segments")


def corpus_of(path: Path, holds: bool = True) -> Path | None:
    """The corpus tree ``path`` lies in or holds, else None: a folder with ``metadata/partition.csv`` at or above
    ``path`` (or below it, up to a data root's depth), or a ``label_segments``/``feature_segments`` folder (a
    corpus's, or the hidden test labels' that ``synth`` writes beside it). ``holds=False``: only a corpus at or
    above ``path``.

    Examples:
        >>> corpus_of(Path("/nonexistent/runs/a")) is None
        True
    """
    p = Path(path).resolve()
    for q in (p, *p.parents):
        if q.name in CORPUS_FOLDERS or (q / "metadata" / "partition.csv").is_file():
            return q
    if holds and p.is_dir():
        for pattern in ("*/metadata/partition.csv", "*/*/metadata/partition.csv", "*/label_segments",
                        "*/*/label_segments", "*/feature_segments", "*/*/feature_segments"):
            found = next(iter(p.glob(pattern)), None)
            if found is not None:
                return found
    return None


#: files only a musefusion output holds at its top (a run, a sweep, a reproduction, curves): a data root never does
OUTPUT_MARKS = frozenset({METRICS_FILE, CONFIG_FILE, "study.db", "report.md", "curves.csv"})


def check_data_root(out: Path, option: str = "--out") -> None:
    """The guard of a command whose output is a data root (``synth``, ``extract``: they write
    ``OUT/<corpus>/...``). A data root that already holds corpora is fine (their files are kept, or skipped when
    done); refused are a file, a folder inside a corpus tree (:func:`corpus_of`), the hidden test labels' tree
    (a folder holding ``<corpus>/label_segments`` without ``<corpus>/metadata/partition.csv``), and a folder
    holding a musefusion output (:data:`OUTPUT_MARKS`): a corpus written there would mix with the labels or the run.

    Raises:
        ConfigError: one line naming the option, the folder and what to pass instead.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{option} '{out}' is a file, not a folder; pass the data root to write the corpus under.")
    inside = corpus_of(out, holds=False)
    if inside is None and out.is_dir():
        inside = next((d for d in out.glob("*/label_segments")
                       if not (d.parent / "metadata" / "partition.csv").is_file()), None)
    if inside is not None:
        raise ConfigError(f"{option} '{out}' lies inside a corpus or its hidden test labels ('{inside}'); pass the "
                          "data root instead: the folder that holds (or will hold) the corpus folder, e.g. data/.")
    marks = sorted(c.name for c in out.iterdir() if c.name in OUTPUT_MARKS) if out.is_dir() else []
    if marks:
        raise ConfigError(f"{option} '{out}' holds a musefusion output (its '{marks[0]}'), not corpora; pass a data "
                          "root: a new folder, or one that holds only corpora.")


def check_out(out: Path, kind: str = "run", overwrite: bool = False, option: str = "--out", *,
              inputs: tuple[Path, ...] | list[Path] = (), metrics_kinds: tuple[str, ...] | None = None,
              holds_own_corpus: bool = False, can_overwrite: bool = True) -> None:
    """The one output guard: refuse an output folder that would lose or corrupt data.

    Refused always (``--overwrite`` included): a file; a folder inside a corpus tree or the hidden test labels, or
    one that holds a corpus (:func:`corpus_of`); a folder equal to one of the command's ``inputs``, inside one, or
    holding one. Refused without ``overwrite``: a folder with files a musefusion output of ``kind`` does not have,
    and (with ``metrics_kinds``) one holding a finished output of another kind (its ``metrics.json`` says which).
    With ``overwrite`` a folder is written into: musefusion's own entries are replaced, every other file is kept.
    Nothing unrelated is ever deleted. ``holds_own_corpus``: the output writes a synthetic corpus of its own inside
    it (``demo``), which is not a corpus it must stay out of. ``can_overwrite``: the command has an ``--overwrite``
    option (a refusal advises it only then).

    Raises:
        ConfigError: one line naming the option, the folder and what to do.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{option} '{out}' is a file, not a folder; pass a new or empty folder.")
    refuse_corpus(out, option, holds=not holds_own_corpus)
    o = out.resolve()
    for given in inputs:
        i = Path(given).resolve()
        if o == i or i in o.parents or o in i.parents:
            raise ConfigError(f"{option} '{out}' is, lies inside or holds '{given}', an input of this command; "
                              "write to a new folder.")
    if not out.is_dir() or overwrite:
        return
    foreign = sorted(c.name for c in out.iterdir() if not _ours(c.name, kind))
    if foreign:
        raise ConfigError(f"{option} '{out}' already holds files that are not a musefusion {kind} output (e.g. "
                          f"'{foreign[0]}'); pass a new or empty folder"
                          + (", or --overwrite to write into it (other files are kept)." if can_overwrite else "."))
    metrics = out / METRICS_FILE
    if metrics_kinds is not None and metrics.is_file():
        try:
            found = str(fsutil.read_json(metrics).get("kind", "run"))
        except (OSError, ValueError, AttributeError):
            found = "unreadable"
        if found not in metrics_kinds:
            raise ConfigError(f"{option} '{out}' holds a finished musefusion {found} (its {METRICS_FILE}), not a "
                              f"{' or '.join(metrics_kinds)}; pass a new folder"
                              + (", or --overwrite to replace it." if can_overwrite else "."))


_HELD: dict[Path, int] = {}  # the output folders this process holds: resolved path -> its locked directory fd


@contextlib.contextmanager
def writing(out: Path, option: str = "--out") -> Iterator[Path]:
    """Hold ``out`` for this process while the block writes it: a second musefusion process that asks for the same
    folder (under any spelling) is refused at once in one line, so two writers never mix two configurations in one
    folder. The lock is the kernel's (``flock`` on the folder itself): it leaves no file behind and ends with the
    process, even one killed with ``kill -9``. Re-entrant within a process; a folder the block creates and leaves
    empty is removed again.

    Raises:
        ConfigError: another process holds ``out``.
    """
    out = Path(out)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    key = out.resolve()
    if key in _HELD:
        yield out
        return
    fd = os.open(key, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ConfigError(f"{option} '{out}' is being written by another musefusion process right now; wait for it "
                          "to finish (then run the same command to reuse or resume its work), or write to another "
                          "folder.") from None
    _HELD[key] = fd
    try:
        yield out
    finally:
        del _HELD[key]
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()


@contextlib.contextmanager
def guarded(out: Path, kind: str, overwrite: bool, **checks: Any) -> Iterator[Path]:
    """:func:`check_out` (``kind``, ``overwrite``, ``checks``), then :func:`writing`, and the check again while the
    folder is held: refused before the lock would create a folder where none may be, and sure of what it checked."""
    check_out(Path(out), kind, overwrite, **checks)
    with writing(Path(out)):
        check_out(Path(out), kind, overwrite, **checks)
        yield Path(out)


def clear(out: Path) -> None:
    """Remove a run directory's own entries (config, metrics, checkpoints, predictions, seed folders, ...).

    ``log.txt`` (the CLI may be writing it) and any file a run does not write are kept.
    """
    out = Path(out)
    if not out.is_dir():
        return
    for child in out.iterdir():
        if child.name == LOG_FILE or not _ours(child.name, "run"):
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def default_run_dir(parent: Path, parts: list[str], record: dict[str, Any]) -> Path:
    """``parent/<parts joined by '-'>-<8 hex digits of the record>``: different configs never share a folder.

    Examples:
        >>> default_run_dir(Path("runs"), ["stress", "arousal"], {"data": {"target": "arousal"}}).name[:15]
        'stress-arousal-'
    """
    digest = hashlib.blake2b(json.dumps(comparable(record), sort_keys=True, default=str).encode(),
                             digest_size=4).hexdigest()
    safe = ["".join(c if c.isalnum() or c in "._+" else "_" for c in p) for p in parts]
    return Path(parent) / "-".join([*safe, digest])


def refuse_corpus(out: Path, option: str = "--out", holds: bool = True) -> None:
    """Refuse an output folder inside a corpus tree or the hidden test labels, or (``holds``) one that holds a
    corpus (:func:`corpus_of`): its files would become part of the corpus, or replace it. Part of
    :func:`check_out`; called alone where an output's other checks come later (``reproduce``'s preflight).

    Raises:
        ConfigError: one line naming the option, the folder and the corpus.
    """
    corpus = corpus_of(Path(out), holds=holds)
    if corpus is not None:
        raise ConfigError(f"{option} '{out}' lies inside or holds a corpus or its labels ('{corpus}'); write outputs "
                          "outside the corpus tree (e.g. runs/).")
