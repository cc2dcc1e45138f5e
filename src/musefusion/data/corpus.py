"""Read a MuSe 2021-layout corpus into aligned, normalised per-subject arrays.

Layout (``<corpus>`` is ``<root>/c3_muse_stress``, ``<root>/c4_muse_physio`` or a corpus folder given directly)::

    <corpus>/feature_segments/<feature>/<id>.csv   timestamp (ms), segment_id, feature columns
    <corpus>/label_segments/<target>/<id>.csv      timestamp (ms), value, segment_id (test: empty values)
    <corpus>/metadata/partition.csv                Id,Proposal (train/devel/test)

The label timestamps define each subject's 2 Hz grid. Features are aligned to that grid by timestamp
(:func:`musefusion.data.grid.align_to_grid`); steps without a feature row are filled by
``DataConfig.fill`` and flagged in ``Sequence.observed``. Test labels are never read: for a test subject only the
timestamp column of its label file is used (or, if that file cannot be read, the features' own grid).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Collection
from pathlib import Path

import numpy as np
import pandas as pd

from musefusion import fsutil
from musefusion.config import DataConfig, resolve_cache_dir
from musefusion.data import cache, formats
from musefusion.data.grid import align_to_grid, fill_missing
from musefusion.errors import ConfigError, DataFormatError, MissingDataError
from musefusion.types import (
    BIOSIGNALS,
    FEATURE_GROUPS,
    NORMALISE_BEFORE_0_4,
    STEP_MS,
    FillPolicy,
    Normalise,
    Partition,
    Task,
    known_feature,
)

logger = logging.getLogger(__name__)

_CACHE_VERSION = "5"
#: The DataConfig fields the cache key hashes whatever their value (those it had when this rule came in). A field
#: added later enters the key only where it differs from its default (``ConfigBase.field_defaults``; a field with a
#: ``default_factory`` has none there, so it always enters), so adding one does not turn every earlier run into
#: "another configuration" (a run records this key as its corpus digest); changing a default needs a new
#: _CACHE_VERSION.
_KEYED_FIELDS = frozenset({"task", "target", "features", "fill", "normalize", "train_partitions", "label_delay"})
#: Options applied after loading, hashed at one fixed value (windows: training; label_delay: ``train_run`` moves the
#: labels of the loaded corpus), so runs that differ only there share a cache entry; their configs still differ.
_AFTER_LOADING = {"label_delay": 0}
#: Values hashed as the field's earlier type wrote them, so the keys (and the digests finished runs recorded) stay
#: what they were: ``normalize`` was a bool before 0.4.
_KEY_AS_BEFORE: dict[str, dict[str, object]] = {"normalize": {new.value: old for old, new in NORMALISE_BEFORE_0_4.items()}}


@dataclasses.dataclass
class Sequence:
    """One subject's aligned inputs and labels on the 2 Hz grid."""

    id: str  # subject id as in partition.csv
    partition: Partition
    timestamps: np.ndarray  # (T,) int64 ms
    x: np.ndarray  # (T, d_in) float32, normalised and filled
    y: np.ndarray  # (T,) float32; NaN where unlabelled and everywhere in test
    observed: np.ndarray  # (T, n_feature_sets) bool: did the step have a real row of that feature set?

    def __len__(self) -> int:
        return len(self.timestamps)


@dataclasses.dataclass
class CorpusData:
    """Everything a model needs from a corpus for one :class:`DataConfig`."""

    config: DataConfig
    corpus_dir: Path
    sequences: dict[Partition, list[Sequence]]
    feature_dims: dict[str, int]  # feature set -> columns, in input order
    mean: np.ndarray  # (d_in,) train-partition mean used for normalisation
    std: np.ndarray  # (d_in,) train-partition std (1 where a column is constant)
    fill_report: pd.DataFrame  # id, partition, feature, n_steps, n_filled
    digest: str = ""  # hash of the options and every input file's bytes (see corpus_digest)

    @property
    def d_in(self) -> int:
        """Input dimension (all feature sets concatenated)."""
        return int(sum(self.feature_dims.values()))

    def partition(self, part: Partition | str) -> list[Sequence]:
        """The sequences of one partition (empty list if it has none)."""
        return self.sequences.get(Partition(part), [])

    def fit_sequences(self) -> list[Sequence]:
        """The sequences of ``config.train_partitions`` (what a model is fitted on)."""
        return [s for p in self.config.train_partitions for s in self.partition(p)]


# ----------------------------------------------------------------------------------------------- layout


def find_corpus_dir(root: Path, task: Task) -> Path:
    """The corpus folder of ``task`` under ``root`` (or ``root`` itself when it is a corpus folder).

    Raises:
        MissingDataError: ``root`` does not exist or holds no corpus for the task.
    """
    root = Path(root)
    if not root.is_dir():
        raise MissingDataError(f"Data root '{root}' not found. Pass --data ROOT (the folder holding "
                               f"{'/ or '.join(task.corpus_dirs)}/) or set $MUSEFUSION_DATA.")
    if (root / "feature_segments").is_dir():
        return root
    for name in task.corpus_dirs:
        if (root / name / "feature_segments").is_dir():
            return root / name
    raise MissingDataError(f"No MuSe corpus for task '{task.value}' under '{root}': expected "
                           f"'{root / task.corpus_dirs[0]}/' with feature_segments/, label_segments/ and "
                           "metadata/partition.csv. Check --data and --task, or run `musefusion synth`.")


def list_features(corpus_dir: Path) -> list[str]:
    """Feature folders present under ``feature_segments/``."""
    d = corpus_dir / "feature_segments"
    return sorted(p.name for p in d.iterdir() if p.is_dir()) if d.is_dir() else []


def list_targets(corpus_dir: Path) -> list[str]:
    """Target folders present under ``label_segments/``."""
    d = corpus_dir / "label_segments"
    return sorted(p.name for p in d.iterdir() if p.is_dir()) if d.is_dir() else []


def case_clashes(corpus_dir: Path, groups: list[list[str]] | None = None) -> list[str]:
    """One message per set of feature folders that differ only by case (all of them, or those in ``groups``)."""
    if groups is None:
        by_lower: dict[str, list[str]] = {}
        for name in list_features(corpus_dir):
            by_lower.setdefault(name.lower(), []).append(name)
        groups = list(by_lower.values())
    return [f"Feature folders {' and '.join(repr(n) for n in names)} under '{corpus_dir / 'feature_segments'}' "
            "differ only by case; keep one of them." for names in groups if len(names) > 1]


def resolve_feature_names(corpus_dir: Path, features: tuple[str, ...], task: Task | None = None) -> tuple[str, ...]:
    """The corpus's own folder names for ``features`` (matched without regard to case).

    The real MuSe 2021 download names its respiration folder ``resp`` beside ``BPM`` and ``ECG``; other packages
    write ``RESP`` or ``ecg``. A requested name resolves to the one folder that equals it ignoring case. The bio
    signals (``ECG``, ``resp``, ``BPM``, i.e. ``bio``) resolve to a single 3-column ``biosignals`` folder (MuSe
    2022) when the corpus has that instead of separate folders.

    Raises:
        ConfigError: no folder matches, two folders differ only by case, or only some bio signals are requested
            from a ``biosignals`` corpus.

    Examples:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> for name in ("ECG", "resp", "BPM", "egemaps"):
        ...     (root / "feature_segments" / name).mkdir(parents=True)
        >>> resolve_feature_names(root, ("egemaps", "ECG", "RESP", "BPM"))
        ('egemaps', 'ECG', 'resp', 'BPM')
    """
    available = list_features(corpus_dir)
    by_lower: dict[str, list[str]] = {}
    for name in available:
        by_lower.setdefault(name.lower(), []).append(name)
    wanted = {f.lower() for f in features}
    for problem in case_clashes(corpus_dir, [names for key, names in by_lower.items() if key in wanted]):
        raise ConfigError(problem)
    bio = {b.lower() for b in FEATURE_GROUPS["bio"]}
    wanted_bio = [f for f in features if f.lower() in bio and f.lower() not in by_lower]
    out: list[str] = []
    for f in features:
        if f in wanted_bio and BIOSIGNALS in by_lower:
            if len(wanted_bio) != len(bio):
                raise ConfigError(f"'{corpus_dir / 'feature_segments'}' has one '{BIOSIGNALS}' folder instead of "
                                  f"{', '.join(FEATURE_GROUPS['bio'])}; use --features bio (or biosignals) for all "
                                  "three signals together.")
            if by_lower[BIOSIGNALS][0] not in out:
                out.append(by_lower[BIOSIGNALS][0])
            continue
        match = by_lower.get(f.lower())
        if not match:
            raise ConfigError(f"Unknown feature '{f}'{f' for task {task.value!r}' if task else ''}: no folder "
                              f"'{corpus_dir / 'feature_segments' / f}' (case ignored). Available: "
                              f"{', '.join(available) or 'none'}.")
        if match[0] not in out:
            out.append(match[0])
    return tuple(out)


def resolve_data_config(cfg: DataConfig) -> DataConfig:
    """``cfg`` with its features named as the corpus names them (see :func:`resolve_feature_names`).

    Raises:
        MissingDataError: no corpus under ``cfg.root``.
        ConfigError: a feature or the target has no folder.
    """
    corpus_dir = find_corpus_dir(cfg.root, cfg.task)
    resolved = resolve_feature_names(corpus_dir, cfg.features, cfg.task)
    targets = list_targets(corpus_dir)
    if cfg.target not in targets:
        raise ConfigError(f"Unknown target '{cfg.target}' for task '{cfg.task.value}': no folder "
                          f"'{corpus_dir / 'label_segments' / cfg.target}'. Available: {', '.join(targets) or 'none'}.")
    return cfg if resolved == cfg.features else cfg.replace(features=resolved)


def contained(path: Path, tree: Path, what: str = "corpus") -> Path:
    """``path`` if it (after following symlinks) lies inside ``tree``; a symlink out of the tree is refused.

    A corpus or submission file that links to ``/etc/passwd`` would otherwise be read, and a line of it printed in
    an error message.

    Raises:
        DataFormatError: ``path`` resolves outside ``tree``.
    """
    if path.is_symlink() or any(p.is_symlink() for p in path.parents if tree in p.parents):
        real, root = path.resolve(), tree.resolve()
        if real != root and root not in real.parents:
            raise DataFormatError(f"'{path}' is a symbolic link out of the {what} tree (to '{real}'); copy the file "
                                  f"into '{tree}' instead of linking it.")
    return path


def feature_path(corpus_dir: Path, feature: str, sid: str) -> Path:
    """``<corpus>/feature_segments/<feature>/<id>.csv`` (refused when it links out of the corpus)."""
    return contained(corpus_dir / "feature_segments" / feature / f"{sid}.csv", corpus_dir)


def label_path(corpus_dir: Path, target: str, sid: str) -> Path:
    """``<corpus>/label_segments/<target>/<id>.csv`` (refused when it links out of the corpus)."""
    return contained(corpus_dir / "label_segments" / target / f"{sid}.csv", corpus_dir)


def partition_path(corpus_dir: Path) -> Path:
    """``<corpus>/metadata/partition.csv`` (refused when it links out of the corpus)."""
    return contained(corpus_dir / "metadata" / "partition.csv", corpus_dir)


def _readable(path: Path) -> bool:
    try:
        with path.open("rb"):
            return True
    except OSError:
        return False


def subject_grid(corpus_dir: Path, target: str, sid: str, part: Partition,
                 feature_ts: list[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A subject's 2 Hz grid and labels.

    Train/devel: the label file's timestamps and values. Test: the label file's timestamps only (values NaN);
    if the file is absent or unreadable, the grid spanned by the features' own timestamps.

    Raises:
        MissingDataError: a train/devel label file is missing, or a test subject has neither labels nor features.
    """
    lp = label_path(corpus_dir, target, sid)
    if part != Partition.TEST:
        if not lp.is_file():
            raise MissingDataError(f"Subject '{sid}' is listed in partition.csv ({part.value}) but its label file "
                                   f"'{lp}' is missing; restore it or remove the subject from partition.csv.")
        return formats.read_label_csv(lp)
    if lp.is_file() and _readable(lp):
        return formats.read_label_csv(lp, values=False)
    if not feature_ts:
        raise MissingDataError(f"Test subject '{sid}' has no label timestamps ('{lp}') and no features.")
    start = min(int(t[0]) for t in feature_ts)
    end = max(int(t[-1]) for t in feature_ts)
    start = max(0, int(np.ceil(start / STEP_MS)) * STEP_MS)
    grid = np.arange(start, end + 1, STEP_MS, dtype=np.int64)
    return grid, np.full(len(grid), np.nan, dtype=np.float32)


# ----------------------------------------------------------------------------------------------- cache


def _cache_key(corpus_dir: Path, cfg: DataConfig, partition: dict[str, Partition]) -> str:
    h = hashlib.blake2b(digest_size=16)
    # windowing happens after loading, so win_len/hop_len do not change what is cached
    defaults = type(cfg).field_defaults()
    opts = {k: _AFTER_LOADING.get(k, _KEY_AS_BEFORE[k].get(v, v) if k in _KEY_AS_BEFORE else v)
            for k, v in cfg.to_dict().items()
            if k not in ("root", "cache", "cache_dir", "win_len", "hop_len") and (k in _KEYED_FIELDS or v != defaults.get(k))}
    h.update(repr(sorted(opts.items())).encode())
    h.update(_CACHE_VERSION.encode())
    fsutil.file_digest(partition_path(corpus_dir), h)
    for sid, part in partition.items():
        for f in cfg.features:
            p = feature_path(corpus_dir, f, sid)
            if p.is_file():
                fsutil.file_digest(p, h)
            else:
                h.update(b"missing:" + str(p).encode())
        lp = label_path(corpus_dir, cfg.target, sid)
        if part != Partition.TEST and lp.is_file():
            fsutil.file_digest(lp, h)
        elif part == Partition.TEST and lp.is_file() and _readable(lp):
            ts, _ = formats.read_label_csv(lp, values=False)  # timestamps only: test values never enter the key
            h.update(ts.tobytes())
    return h.hexdigest()


def _save_cache(path: Path, data: CorpusData) -> None:
    seqs = [s for part in Partition for s in data.partition(part)]
    rep = data.fill_report
    cache.save_npz(
        path,
        ids=np.array([s.id for s in seqs]), parts=np.array([s.partition.value for s in seqs]),
        lengths=np.array([len(s) for s in seqs], dtype=np.int64),
        timestamps=np.concatenate([s.timestamps for s in seqs]), x=np.concatenate([s.x for s in seqs]),
        y=np.concatenate([s.y for s in seqs]), observed=np.concatenate([s.observed for s in seqs]),
        mean=data.mean, std=data.std, feat_names=np.array(list(data.feature_dims)),
        feat_dims=np.array(list(data.feature_dims.values()), dtype=np.int64),
        rep_id=rep["id"].to_numpy(str), rep_part=rep["partition"].to_numpy(str),
        rep_feature=rep["feature"].to_numpy(str), rep_steps=rep["n_steps"].to_numpy(np.int64),
        rep_filled=rep["n_filled"].to_numpy(np.int64),
    )


def _load_cache(path: Path, cfg: DataConfig, corpus_dir: Path) -> CorpusData:
    a = cache.load_npz(path)
    bounds = np.concatenate([[0], np.cumsum(a["lengths"])])
    seqs: dict[Partition, list[Sequence]] = {}
    for i, (sid, part) in enumerate(zip(a["ids"], a["parts"], strict=True)):
        sl = slice(bounds[i], bounds[i + 1])
        p = Partition(str(part))
        seqs.setdefault(p, []).append(Sequence(str(sid), p, a["timestamps"][sl], a["x"][sl], a["y"][sl],
                                               a["observed"][sl]))
    rep = pd.DataFrame({"id": a["rep_id"], "partition": a["rep_part"], "feature": a["rep_feature"],
                        "n_steps": a["rep_steps"], "n_filled": a["rep_filled"]})
    dims = {str(n): int(d) for n, d in zip(a["feat_names"], a["feat_dims"], strict=True)}
    return CorpusData(cfg, corpus_dir, seqs, dims, a["mean"], a["std"], rep)


def corpus_digest(cfg: DataConfig) -> str:
    """A hash of what ``load_corpus(cfg)`` reads: its options and the bytes of every file it uses.

    Equal digests mean equal model inputs and labels (test label values are never hashed). A finished run records
    it, so a rerun on changed files is not mistaken for the same run.
    """
    cfg = resolve_data_config(cfg)
    corpus_dir = find_corpus_dir(cfg.root, cfg.task)
    return _cache_key(corpus_dir, cfg, formats.read_partition(partition_path(corpus_dir)))


# ----------------------------------------------------------------------------------------------- loading


def normalize_and_fill(x: np.ndarray, observed: list[np.ndarray], offsets: np.ndarray, mean: np.ndarray,
                       std: np.ndarray, fill: FillPolicy) -> np.ndarray:
    """z-normalise aligned features, then fill each feature set's unobserved steps.

    Args:
        x: ``(T, d_in)`` aligned features (NaN rows where unobserved).
        observed: per feature set, bool ``(T,)``.
        offsets: column offsets of the feature sets in ``x`` (``len(observed) + 1`` entries).
        mean: ``(d_in,)`` normalisation mean; std: ``(d_in,)`` standard deviation.
        fill: policy for unobserved steps.

    Returns:
        float32 ``(T, d_in)`` without NaN.
    """
    x = ((x - mean) / std).astype(np.float32)
    for k, obs in enumerate(observed):
        x[:, offsets[k]:offsets[k + 1]] = fill_missing(x[:, offsets[k]:offsets[k + 1]], obs, fill)
    return np.nan_to_num(x, nan=0.0)


def subject_stats(x: np.ndarray, mean: np.ndarray, std: np.ndarray, prior: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One recording's own column statistics over its observed steps (``normalize = subject``).

    Args:
        x: ``(T, d_in)`` aligned features, NaN where a feature set has no row (those steps are not counted).
        mean, std: the train statistics: what a column with no observed step (or a constant one) keeps, and
            what the subject's statistics are shrunk toward.
        prior: pseudo-steps of the train statistics pooled with the subject's ``n`` observed steps (the pooled
            first and second moments), so a short recording moves toward the train transform; 0 uses the
            subject's own statistics alone.

    Returns:
        ``(mean, std)`` of shape ``(d_in,)``.

    Examples:
        >>> x = np.array([[1.0], [3.0], [np.nan]])
        >>> subject_stats(x, np.zeros(1), np.ones(1))
        (array([2.]), array([1.]))
        >>> subject_stats(x, np.zeros(1), np.ones(1), prior=2)[0]
        array([1.])
    """
    x = np.asarray(x, dtype=np.float64)
    n = np.sum(~np.isnan(x), axis=0).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.where(n > 0, np.nansum(x, axis=0) / np.maximum(n, 1), mean)
        sq = np.where(n > 0, np.nansum(x * x, axis=0) / np.maximum(n, 1), std ** 2 + mean ** 2)
    w = n / (n + prior) if prior else (n > 0).astype(np.float64)
    m_out = w * m + (1 - w) * mean
    var = w * sq + (1 - w) * (std ** 2 + mean ** 2) - m_out ** 2
    sd = np.sqrt(np.maximum(var, 0.0))
    flat = sd < 1e-8  # constant (or unobserved) in this recording: keep the train scale
    return m_out, np.where(flat, std, sd)


def normalise_recording(x: np.ndarray, observed: list[np.ndarray], offsets: np.ndarray, mean: np.ndarray,
                        std: np.ndarray, cfg: DataConfig) -> np.ndarray:
    """One recording's model input as ``cfg`` says: z-scored with the train statistics ``(mean, std)``, or with its
    own (:func:`subject_stats`, ``normalize = subject``), then filled (:func:`normalize_and_fill`)."""
    if cfg.normalize == Normalise.SUBJECT:
        mean, std = subject_stats(x, mean, std, cfg.subject_prior)
    return normalize_and_fill(x, observed, offsets, mean, std, cfg.fill)


def load_corpus(cfg: DataConfig, norm_stats: tuple[np.ndarray, np.ndarray] | None = None,
                only: Collection[str] | None = None) -> CorpusData:
    """Read, align, normalise and fill the features and labels that ``cfg`` names.

    Args:
        cfg: what to read (root, task, target, features, fill policy, normalisation, cache).
        norm_stats: ``(mean, std)`` to normalise with instead of this corpus's train statistics (a saved
            model applied to new data); the cache is not used then.
        only: read just these ids of the partition file (one subject's chunks, when a general model is fine-tuned
            to a person); every other id's files are never opened. Needs ``norm_stats``.

    Returns:
        The per-partition sequences, normalisation statistics and a fill report.

    Raises:
        MissingDataError: root, corpus, partition file, or a listed subject's feature/label file is missing.
        ConfigError: an unknown feature or target.
        DataFormatError: a malformed file, or a feature's dimension differs between subjects.
    """
    cfg = resolve_data_config(cfg)
    corpus_dir = find_corpus_dir(cfg.root, cfg.task)
    partition = formats.read_partition(partition_path(corpus_dir))
    if not partition:
        raise DataFormatError(f"Partition file '{corpus_dir / 'metadata' / 'partition.csv'}' lists no subject.")
    if only is not None:
        if norm_stats is None:
            raise ConfigError("load_corpus(only=...) reads a subset of the subjects: pass the normalisation "
                              "statistics of the model it is for (norm_stats).")
        wanted = set(only)
        unknown = sorted(wanted - set(partition))
        if unknown:
            raise ConfigError(f"Id '{unknown[0]}' is not listed in '{partition_path(corpus_dir)}'.")
        partition = {sid: part for sid, part in partition.items() if sid in wanted}
    cache_path = None
    key = _cache_key(corpus_dir, cfg, partition)
    if cfg.cache and norm_stats is None:
        cache_path = resolve_cache_dir(cfg.cache_dir) / f"corpus-{key}.npz"
        if cache_path.is_file():
            logger.debug("corpus cache hit %s", cache_path)
            try:
                return dataclasses.replace(_load_cache(cache_path, cfg, corpus_dir), digest=key)
            except Exception as exc:  # a truncated, empty or foreign file: the cache is optional, rebuild it
                logger.warning("corpus cache entry '%s' is unreadable (%s); deleting it and reading the corpus",
                               cache_path, type(exc).__name__)
                cache_path.unlink(missing_ok=True)

    raw: list[tuple[str, Partition, np.ndarray, np.ndarray, list[np.ndarray], list[np.ndarray]]] = []
    dims: dict[str, int] = {}
    dim_source: dict[str, Path] = {}
    for sid, part in partition.items():
        feats = []
        for f in cfg.features:
            p = feature_path(corpus_dir, f, sid)
            if not p.is_file():
                raise MissingDataError(f"Subject '{sid}' is listed in partition.csv ({part.value}) but its feature "
                                       f"file '{p}' is missing; restore it or remove the subject from partition.csv.")
            feats.append(formats.read_feature_csv(p))
        for f, (_, vals, _) in zip(cfg.features, feats, strict=True):
            d = vals.shape[1]
            if f not in dims:
                dims[f], dim_source[f] = d, feature_path(corpus_dir, f, sid)
                known = known_feature(f)[0]
                if known is not None and known != d:
                    logger.warning("feature %s has %d columns (MuSe 2021: %d) in %s", f, d, known, dim_source[f])
            elif dims[f] != d:
                raise DataFormatError(f"Feature '{f}' has {d} columns in '{feature_path(corpus_dir, f, sid)}' but "
                                      f"{dims[f]} in '{dim_source[f]}'; every subject needs the same columns.")
        grid, y = subject_grid(corpus_dir, cfg.target, sid, part, [t for t, _, _ in feats])
        aligned, observed = [], []
        for ts, vals, _ in feats:
            a, m = align_to_grid(grid, ts, vals)
            aligned.append(a)
            observed.append(m)
        raw.append((sid, part, grid, y, aligned, observed))

    x_all = [np.concatenate(al, axis=1) for *_, al, _ in raw]
    fit_rows = [x for (_, part, *_), x in zip(raw, x_all, strict=True) if part.value in cfg.train_partitions]
    d_in = sum(dims.values())
    if norm_stats is not None:
        mean, std = (np.asarray(a, dtype=np.float64) for a in norm_stats)
        if mean.shape != (d_in,):
            raise DataFormatError(f"The model was trained on {mean.shape[0]} input columns but features "
                                  f"{'+'.join(cfg.features)} give {d_in} in '{corpus_dir}'.")
    elif cfg.normalize != Normalise.NONE and fit_rows:
        stack = np.concatenate(fit_rows).astype(np.float64)
        mean = np.nan_to_num(np.nanmean(stack, axis=0)) if len(stack) else np.zeros(d_in)
        std = np.nan_to_num(np.nanstd(stack, axis=0))
        std[std < 1e-8] = 1.0
    else:
        mean, std = np.zeros(d_in), np.ones(d_in)

    seqs: dict[Partition, list[Sequence]] = {}
    report_rows = []
    offsets = np.cumsum([0, *dims.values()])
    for (sid, part, grid, y, _, observed), x in zip(raw, x_all, strict=True):
        x = normalise_recording(x, observed, offsets, mean, std, cfg)
        for k, f in enumerate(cfg.features):
            report_rows.append((sid, part.value, f, len(grid), int((~observed[k]).sum())))
        if part == Partition.TEST:
            y = np.full(len(grid), np.nan, dtype=np.float32)
        seqs.setdefault(part, []).append(Sequence(sid, part, grid, x, y.astype(np.float32),
                                                  np.stack(observed, axis=1)))
    report = pd.DataFrame(report_rows, columns=["id", "partition", "feature", "n_steps", "n_filled"])
    data = CorpusData(cfg, corpus_dir, seqs, dims, mean.astype(np.float64), std.astype(np.float64), report, key)
    n_filled = int(report["n_filled"].sum())
    if n_filled:
        worst = report.sort_values("n_filled", ascending=False).iloc[0]
        logger.info("filled %d of %d feature steps (%s policy); most in %s/%s.csv (%d)", n_filled,
                    int(report["n_steps"].sum()), cfg.fill.value, worst["feature"], worst["id"], worst["n_filled"])
    if cache_path is not None:
        try:
            _save_cache(cache_path, data)
        except OSError as exc:  # a full disk or a read-only cache folder must not stop the run
            logger.warning("could not write the corpus cache '%s' (%s); going on without it", cache_path,
                           exc.strerror or type(exc).__name__)
    return data


def load_labels(root: Path, task: Task, target: str, partitions: tuple[Partition, ...] = (Partition.TRAIN,
                Partition.DEVEL)) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, Partition]]:
    """Labels of the given partitions (never test) and the full partition map.

    Raises:
        ConfigError: ``test`` is asked for (test labels are withheld).
        MissingDataError: a label file is missing.
    """
    if Partition.TEST in partitions:
        raise ConfigError("Test labels are withheld and never loaded; score test predictions with --test-labels.")
    corpus_dir = find_corpus_dir(root, task)
    partition = formats.read_partition(partition_path(corpus_dir))
    labels = {}
    for sid, part in partition.items():
        if part in partitions:
            labels[sid] = subject_grid(corpus_dir, target, sid, part)
    return labels, partition


def join_by_timestamp(pred: tuple[np.ndarray, np.ndarray], label: tuple[np.ndarray, np.ndarray], what: str
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Pair predictions with labels at equal timestamps.

    Raises:
        DataFormatError: some labelled timestamps have no prediction.
    """
    pts, pv = pred
    lts, lv = label
    idx = np.searchsorted(pts, lts)
    idx_c = np.clip(idx, 0, max(len(pts) - 1, 0))
    found = (idx < len(pts)) & (pts[idx_c] == lts) if len(pts) else np.zeros(len(lts), bool)
    labelled = ~np.isnan(lv)
    missing = labelled & ~found
    if missing.any():
        raise DataFormatError(f"{what}: no prediction for {int(missing.sum())} labelled timestamps (first "
                              f"{int(lts[missing][0])} ms); predictions must cover every label step.")
    keep = labelled & found
    return pv[idx_c[keep]], lv[keep]


def hidden_label_path(test_labels: Path, corpus_name: str, target: str, sid: str) -> Path:
    """Locate a test label file in a folder given by the user (several layouts accepted)."""
    for cand in (test_labels / corpus_name / "label_segments" / target / f"{sid}.csv",
                 test_labels / "label_segments" / target / f"{sid}.csv",
                 test_labels / target / f"{sid}.csv", test_labels / f"{sid}.csv"):
        if cand.is_file():
            return cand
    raise MissingDataError(f"No test label for subject '{sid}' under '{test_labels}' (looked for "
                           f"{target}/{sid}.csv and label_segments/{target}/{sid}.csv).")
