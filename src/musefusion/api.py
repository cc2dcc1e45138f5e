"""The Python API: what the commands do, callable from a notebook or a script.

Each function takes the same settings as its command, by name, and returns a result object (scores, and the
predictions and learning curves as DataFrames); a run directory is written where you ask for one (``out=``),
else into a temporary folder that lives as long as the result. The commands in ``musefusion.cli`` are thin shells
over the same code (progress display and messages only). ``docs/api.md`` walks through a session;
``tests/test_api.py`` runs one on a small corpus::

    import musefusion as mf
    a = mf.train("demo/data", target="valence", features=["vggface"], model="lstm", epochs=8)
    v = mf.train("demo/data", target="valence", features=["egemaps"], model="lstm", epochs=8)
    a.devel_ccc, a.predictions("devel").head(), a.history()
    fused = mf.fuse([a, v], names=["V", "A"], out="runs/fused-va")   # written: asked for with out=
    mf.evaluate(fused)                                                # scores per partition, a DataFrame
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from musefusion import fsutil, rundir
from musefusion.config import (
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    model_preset,
    resolve_data_root,
    unknown_key_error,
)
from musefusion.data import corpus as _corpus
from musefusion.data.corpus import CorpusData, find_corpus_dir
from musefusion.errors import ConfigError
from musefusion.pipelines.personalise import PersonaliseConfig, PersonaliseResult
from musefusion.pipelines.personalise import personalise as run_personalise
from musefusion.pipelines.reproduce import ReproduceConfig, Stage, summarize
from musefusion.pipelines.reproduce import reproduce as run_reproduce
from musefusion.pipelines.results import ReproduceSummary
from musefusion.progress import api_progress
from musefusion.rundir import ReproduceDir, RunDir
from musefusion.types import Partition, Task

logger = logging.getLogger(__name__)

#: Which config section each run field belongs to (``model`` names the family: [model] name).
_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def build_run_config(config: Path | None, overrides: dict[str, dict[str, Any]]) -> RunConfig:
    """Defaults < ``config`` file < ``overrides`` (by section; a None value means 'not given').

    Raises:
        ConfigError: an unknown section or key (naming the nearest valid one), a bad value.
    """
    base: dict[str, dict[str, Any]] = {"data": {}, "model": {}, "train": {}}
    if config is not None:
        file_cfg = fsutil.read_toml(config)
        file_cfg.pop("versions", None)
        file_cfg.pop("inputs", None)  # a run's config.toml may be given as --config
        unknown = sorted(set(file_cfg) - set(base))
        if unknown:
            raise unknown_key_error(f"the sections of '{config}'", unknown[0], list(base))
        for k, cls in (("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig)):
            section = file_cfg.get(k, {})
            if not isinstance(section, dict):
                raise ConfigError(f"'{config}': [{k}] must be a table of keys, not {section!r}.")
            fields = {f.name for f in dataclasses.fields(cls)}
            bad = sorted(set(section) - fields)
            if bad:
                raise unknown_key_error(f"[{k}] of '{config}'", bad[0], fields)
            base[k].update(section)
    for section, values in overrides.items():
        base[section].update({k: v for k, v in values.items() if v is not None})
    if "root" not in base["data"]:
        base["data"]["root"] = str(resolve_data_root(None))
    if "target" not in base["data"] and "task" in base["data"]:  # the task's first target (physio: anno12_EDA)
        try:
            base["data"]["target"] = Task(base["data"]["task"]).default_targets[0]
        except ValueError:
            pass  # DataConfig names the bad task
    name = base["model"].get("name", "selfattn_lstm")
    model_fields = {k: v for k, v in base["model"].items() if k != "name"}
    model = model_preset(name, **model_fields)
    return RunConfig(DataConfig.from_dict(base["data"]), model, TrainConfig.from_dict(base["train"]))


def run_config(data: str | Path | None = None, *, config_file: str | Path | None = None, **fields: Any) -> RunConfig:
    """A :class:`RunConfig` from keyword fields of any section: defaults < ``config_file`` < ``fields``.

    Args:
        data: the data root (default ``$MUSEFUSION_DATA``).
        config_file: a TOML file with ``[data]``, ``[model]``, ``[train]`` sections (a run's config.toml works).
        **fields: any field of DataConfig, ModelConfig or TrainConfig by name; ``model`` is the family's name.

    Raises:
        ConfigError: an unknown field (naming the nearest valid one) or a bad value.

    Examples:
        >>> cfg = run_config("/data", target="valence", features=["vggface"], model="lstm", epochs=8, hidden=128)
        >>> (cfg.data.target, cfg.model.name, cfg.model.hidden, cfg.train.epochs)
        ('valence', 'lstm', 128, 8)
    """
    overrides: dict[str, dict[str, Any]] = {"data": {}, "model": {}, "train": {}}
    if data is not None:
        overrides["data"]["root"] = str(data)
    for key, value in fields.items():
        if key == "model":
            overrides["model"]["name"] = value
            continue
        section = next((sec for sec, cls in _SECTIONS.items()
                        if key in {f.name for f in dataclasses.fields(cls)}), None)
        if section is None:
            every = {f.name for cls in _SECTIONS.values() for f in dataclasses.fields(cls)} | {"model"}
            raise unknown_key_error("the run settings", key, every)
        if isinstance(value, tuple):
            value = list(value)
        overrides[section][key] = value
    return build_run_config(Path(config_file) if config_file is not None else None, overrides)


def prepare_train(cfg: RunConfig, out: str | Path | None = None, *, overwrite: bool = False
                  ) -> tuple[RunConfig, Path]:
    """Check a training request before anything is written: the device, the feature names, the output folder.

    Returns:
        ``cfg`` with the corpus's feature names, and the run directory (default
        ``runs/<task>-<target>-<features>-<model>-<config hash>``).

    Raises:
        ConfigError: a device this machine lacks; ``out`` holds another config's run, lies inside the corpus or
            holds foreign files.
    """
    # torch: imported on first use, so the CLI starts without it
    from musefusion.training.loop import resolve_device

    # torch: imported on first use, so the CLI starts without it
    from musefusion.training.run import resolve_run_config, run_status

    resolve_device(cfg.train.device)  # a device this machine lacks is refused before any work
    cfg = resolve_run_config(cfg)
    if out is None:
        out = rundir.default_run_dir(Path("runs"), [cfg.data.task.value, cfg.data.target, "+".join(cfg.data.features),
                                                    cfg.model.name], cfg.to_dict())
    out = Path(out)
    find_corpus_dir(cfg.data.root, cfg.data.task)  # a wrong root fails first
    rundir.check_out(out, "run", overwrite)
    if run_status(cfg, out, overwrite=overwrite) is rundir.Status.FINISHED and not overwrite:
        logger.info("%s: finished with the same config and corpus files; reusing it (overwrite to retrain)", out)
    return cfg, out


def train_config(cfg: RunConfig, out: str | Path | None = None, *, overwrite: bool = False,
                 on_epoch: Callable[[int, dict[str, float]], None] | None = None) -> Any:
    """Train ``cfg`` into a run directory (``musefusion train``); returns the :class:`RunResult`.

    Args:
        cfg: what to train.
        out: the run directory (default ``runs/<task>-<target>-<features>-<model>-<config hash>``).
        overwrite: replace a run of another config (or retrain this one) instead of refusing / reusing it.
        on_epoch: called as ``on_epoch(seed, row)`` after each epoch.

    Raises:
        ConfigError: as :func:`prepare_train`.
    """
    # torch: imported on first use, so the CLI starts without it
    from musefusion.training.run import train_run

    cfg, out = prepare_train(cfg, out, overwrite=overwrite)
    with rundir.writing(out):
        cfg, out = prepare_train(cfg, out, overwrite=overwrite)  # again, now that no other process writes it
        corpus = _corpus.load_corpus(cfg.data)
        return train_run(cfg, out, data=corpus, on_epoch=on_epoch, resume=not overwrite)


def _refuse_unknown(fields: Iterable[str], cls: Any, what: str, skip: frozenset[str] = frozenset()) -> None:
    """Refuse a keyword that is not a field of the dataclass ``cls``, naming the nearest (``what`` names the set)."""
    known = {f.name for f in dataclasses.fields(cls)} - skip
    for key in fields:
        if key not in known:
            raise unknown_key_error(what, key, known)


def _scratch(out: str | Path | None, what: str) -> tuple[Path, Any]:
    """``out``, or a run folder inside a new temporary directory (returned too: it lives as long as it is held)."""
    if out is not None:
        return Path(out), None
    holder = tempfile.TemporaryDirectory(prefix=f"musefusion-{what}-")
    return Path(holder.name) / Path(holder.name).name, holder  # a unique run name (fusion stream names come from it)


def train(data: str | Path | None = None, *, out: str | Path | None = None, overwrite: bool = False,
          config_file: str | Path | None = None, on_epoch: Callable[[int, dict[str, float]], None] | None = None,
          progress: bool = True, **fields: Any) -> Any:
    """Train a unimodal model, one per seed, keep the best epoch and seed on devel (``musefusion train``).

    Args:
        data: the data root.
        out: the run directory to write; None (default): a temporary one, removed with the result.
        overwrite: replace what ``out`` holds.
        config_file: a TOML file the fields override.
        on_epoch: progress callback ``on_epoch(seed, row)``.
        progress: show the epochs on stderr while it trains (``False``: silent).
        **fields: run settings by name (``target``, ``features``, ``model``, ``epochs``, ``seeds``, ``hidden``, ...).

    Returns:
        A :class:`musefusion.training.run.RunResult`: ``.devel_ccc``, ``.metrics``, ``.predictions(partition)``
        and ``.history()`` (DataFrames), ``.run_dir``.

    Examples:
        >>> import musefusion as mf  # doctest: +SKIP
        >>> run = mf.train("demo/data", features="egemaps", model="lstm", epochs=4)  # doctest: +SKIP
        >>> run.predictions("devel").columns.tolist()  # doctest: +SKIP
        ['id', 'timestamp', 'prediction']
    """
    out, holder = _scratch(out, "run")
    with api_progress(progress):
        result = train_config(run_config(data, config_file=config_file, **fields), out, overwrite=overwrite,
                              on_epoch=on_epoch)
    result.holder = holder
    return result


def default_fusion_out(cfg: Any) -> Path:
    """``runs/fusion-<names>-<8 hex of the FusionConfig>``: the default folder of a fusion run."""
    return rundir.default_run_dir(Path("runs"), ["fusion", "+".join(cfg.names)], {"fusion": cfg.to_dict()})


def default_reproduce_out(cfg: Any) -> Path:
    """``runs/reproduce-<task>-<profile>`` (``-tuned`` with ``--tune``): the default folder of a reproduction."""
    return Path("runs") / f"reproduce-{cfg.task.value}-{cfg.profile}{'-tuned' if cfg.tune else ''}"


def fuse(streams: Iterable[Any], *, out: str | Path | None = None, overwrite: bool = False, progress: bool = True,
         **fields: Any) -> Any:
    """Late fusion of unimodal runs' prediction streams (``musefusion fuse``).

    Args:
        streams: unimodal runs: run directories or the results :func:`train` returned.
        out: the fusion run directory to write; None (default): a temporary one, removed with the result.
        overwrite: refit and replace what ``out`` holds.
        progress: show the folds and fusion models on stderr while it runs (``False``: silent).
        **fields: FusionConfig fields by name (``names``, ``train_on``, ``folds``, ``epochs``, ``seeds``, ...).

    Returns:
        A :class:`musefusion.training.run.RunResult` of the fusion run (``.metrics["stream_devel_ccc"]`` holds
        each stream's devel CCC).
    """
    # torch: imported on first use, so the CLI starts without it
    from musefusion.fusion.late import FusionConfig

    # torch: imported on first use, so the CLI starts without it
    from musefusion.fusion.late import fuse as fuse_streams

    # torch: imported on first use, so the CLI starts without it
    from musefusion.training.run import RunResult

    _refuse_unknown(fields, FusionConfig, "the fusion settings", frozenset({"streams"}))
    streams = list(streams)
    cfg = FusionConfig.from_dict({"streams": [str(getattr(s, "run_dir", s)) for s in streams],
                                  **{k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}})
    target, holder = (Path(out), None) if out is not None else _scratch(None, "fusion")
    rundir.check_out(target, "run", overwrite, inputs=[Path(s) for s in cfg.streams], metrics_kinds=("fusion",))
    with rundir.writing(target), api_progress(progress):
        metrics = fuse_streams(cfg, target, resume=not overwrite, overwrite=overwrite)
    # a temporary fusion keeps its temporary streams alive too (their folders are named in its config)
    return RunResult(target, metrics, holder=(holder, [getattr(s, "holder", None) for s in streams]))


def evaluate(run: Any, data: str | Path | None = None, test_labels: str | Path | None = None) -> pd.DataFrame:
    """Score a run's saved predictions against the labels (``musefusion evaluate``, nothing written).

    Args:
        run: a run directory (unimodal or fusion) or a result of :func:`train` / :func:`fuse`.
        data: the data root (default: the one the run was trained on).
        test_labels: a folder of true test labels; test is scored only with it.

    Returns:
        One row per scored partition (index ``partition``): ``ccc``, ``ccc_low`` and ``ccc_high`` (its 95 %
        subject-level bootstrap interval), ``ccc_subject_mean``, ``pcc``, ``rmse``, ``subjects``.
    """
    # torch: imported on first use, so the CLI starts without it
    from musefusion.evaluation.scoring import score_predictions

    run_dir = Path(getattr(run, "run_dir", run))
    record = RunDir(run_dir).read_record()  # a unimodal or a fusion run: both record their [data] section
    if not isinstance(record.get("data"), dict):
        raise ConfigError(f"'{RunDir(run_dir).config}' has no [data] section; give a run directory written by "
                          "train or fuse.")
    data_cfg = DataConfig.from_dict(record["data"])
    rows = {}
    for part in Partition:
        pred_dir = RunDir(run_dir).predictions(part.value)
        if not pred_dir.is_dir() or (part == Partition.TEST and test_labels is None):
            continue
        rows[part.value] = score_predictions(pred_dir, Path(data) if data else data_cfg.root, data_cfg.task,
                                             data_cfg.target, part, Path(test_labels) if test_labels else None)
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "partition"
    return frame


def load_corpus(data: str | Path | DataConfig | None = None, **fields: Any) -> CorpusData:
    """A corpus as aligned arrays on the 2 Hz label grid, one :class:`Sequence` per subject and partition.

    Args:
        data: the data root, or a ready :class:`DataConfig`.
        **fields: DataConfig fields by name (``task``, ``target``, ``features``, ``fill``, ...).

    Examples:
        >>> corpus = load_corpus("demo/data", features=["egemaps", "vggface"], target="valence")  # doctest: +SKIP
        >>> [len(s) for s in corpus.partition("devel")][:3]  # doctest: +SKIP
        [600, 612, 588]
    """
    if isinstance(data, DataConfig):
        if fields:
            raise ConfigError("load_corpus: give either a DataConfig or fields, not both.")
        return _corpus.load_corpus(data)
    _refuse_unknown(fields, DataConfig, "the data settings", frozenset({"root"}))
    return _corpus.load_corpus(run_config(data, **fields).data)


def extract(audio: str | Path | None = None, video: str | Path | None = None, bio: str | Path | None = None,
            features: Iterable[str] | None = None, **settings: Any) -> dict[str, pd.DataFrame]:
    """Features of one recording on the 500 ms grid, in memory (``musefusion extract`` without writing).

    Args:
        audio: the recording's audio file (or a video with sound), if any.
        video: its video file, if any.
        bio: its physiological signals (CSV, WFDB or EDF), if any.
        features: which to extract (default: every one its files allow: egemaps, vggish, vggface, ECG, resp, BPM).
        **settings: ExtractConfig fields (``vggish_weights``, ``vggface_weights``, ``mtcnn_weights``, ...).

    Returns:
        Feature -> DataFrame with a ``timestamp`` column (ms) and the feature's named columns.
    """
    # torch (and opensmile, optional): imported on first use
    from musefusion.features.extract import ExtractConfig, extract_file

    _refuse_unknown(settings, ExtractConfig, "the extract settings")
    got = extract_file(audio, video, bio, list(features) if features is not None else None,
                       ExtractConfig(**settings) if settings else None)
    return {name: pd.DataFrame(values, columns=got.columns[name]).assign(timestamp=ts)[["timestamp",
                                                                                       *got.columns[name]]]
            for name, (ts, values) in got.items()}


def ccc(prediction: np.ndarray | Iterable[float], label: np.ndarray | Iterable[float]) -> float:
    """Concordance correlation coefficient (paper Eq. 20) of two equally long sequences; NaN labels are skipped.

    Examples:
        >>> round(ccc([0.1, 0.4, 0.35, 0.8], [0.0, 0.5, 0.3, 0.9]), 4)
        0.9522
    """
    # torch: imported on first use, so the CLI starts without it
    from musefusion.evaluation.metrics import ccc as _ccc

    return _ccc(np.asarray(prediction, dtype=float), np.asarray(label, dtype=float))


@dataclasses.dataclass
class ReproduceResult:
    """A reproduction: its folder, its report and every number the report shows."""

    out: Path
    report: Path  # report.md (report.html beside it)
    config: ReproduceConfig

    @functools.cached_property
    def summary(self) -> ReproduceSummary:
        """Every number of the report, read from the run folders (on first use only; the 2021 tasks)."""
        if self.config.task == Task.PERSONALISATION:
            raise ConfigError("A personalisation reproduction has no paper tables; use .personalisation().")
        return summarize(self.out, self.config, with_test=self.config.stage == Stage.ALL)

    def personalisation(self) -> pd.DataFrame:
        """``reproduce --task personalisation``: one row per (target, row), general and personalised devel/test CCC
        (mean and std over the seeds)."""
        if self.config.task != Task.PERSONALISATION:
            raise ConfigError(f"A {self.config.task.value} reproduction has no personalisation table.")
        data = fsutil.read_json(ReproduceDir(self.out).personal_summary)
        rows = []
        for target, table in data["targets"].items():
            for name, r in table.items():
                rows.append({"target": target, "row": name,
                             **{f"{k}_{stat}": v[i] for k, v in r.items() if isinstance(v, list) and len(v) == 2
                                and k.startswith(("devel", "test")) for i, stat in enumerate(("mean", "std"))}})
        return pd.DataFrame(rows)

    def beyond(self) -> pd.DataFrame:
        """``beyond=True``: one row per (target, method): the paper's full fusion Bi-LSTM (method ``paper``,
        out-of-fold; minutes: its streams, folds and fusion; ``devel_kept``: its kept seed's devel CCC), the
        reproduction's selected fuser (``selected``; ``devel_cv``: nested cross-validation), then every later method
        with its devel CCC mean and std over seeds (one value for derived rows), ``devel_cv`` (a row chosen on devel:
        its subject-wise cross-validated estimate, where it has one), test CCC (NaN where test labels are withheld),
        minutes, ``chosen_on_devel`` (its devel CCC is optimistic) and ``above_paper`` (the report's verdict:
        :func:`musefusion.pipelines.beyond.above_paper`; False for the two reference rows)."""
        # torch: beyond's ensembles and post-processing import the metrics
        from musefusion.pipelines import beyond

        if not self.config.beyond:
            raise ConfigError("This reproduction ran without beyond=True: run mf.reproduce(..., beyond=True) "
                              "(or `reproduce --beyond`) on the same folder; the paper's runs are reused.")
        rows = beyond.table(self.out, self.config.task, self.config.settings.folds, self.summary)
        return pd.DataFrame([r.as_record() for r in rows])

    def unimodal(self) -> pd.DataFrame:
        """Tables 2/3: one row per (features, model, target) with the devel CCC mean, std and best seed's
        (``best``, with its 95 % subject-level bootstrap interval ``best_low``-``best_high``)."""
        rows = [{"features": f, "modality": m, "model": model, "target": t,
                 **{k: v for k, v in r.items() if not isinstance(v, dict | list)}}
                for (f, m, model, t), r in self.summary.runs["unimodal"].items()]
        return pd.DataFrame(rows)


def reproduce(data: str | Path | None = None, *, out: str | Path | None = None, progress: bool = True,
              **fields: Any) -> ReproduceResult:
    """Every table of the paper on one corpus (``musefusion reproduce``).

    Args:
        data: the data root.
        out: the output folder (default ``runs/reproduce-<task>-<profile>``: a reproduction is always written,
            it is resumable).
        progress: show each stage and finished job on stderr while it runs (``False``: silent).
        **fields: ReproduceConfig fields by name (``task``, ``profile``, ``workers``, ``seeds``, ``stage``, ...).

    Returns:
        A :class:`ReproduceResult`: ``.report``, ``.unimodal()`` (a DataFrame), ``.summary`` (every number, read
        when first asked for).
    """
    _refuse_unknown(fields, ReproduceConfig, "the reproduce settings", frozenset({"root"}))
    cfg = ReproduceConfig(root=resolve_data_root(data), **fields)
    target = Path(out) if out is not None else default_reproduce_out(cfg)
    rundir.check_out(target, "reproduce", cfg.overwrite)
    with rundir.writing(target), api_progress(progress) as on_stage:
        return ReproduceResult(target, run_reproduce(cfg, target, progress=on_stage), cfg)


__all__ = ["ReproduceResult", "build_run_config", "ccc", "default_fusion_out", "default_reproduce_out", "evaluate",
           "extract", "fuse", "load_corpus", "prepare_train", "reproduce", "run_config", "train", "train_config"]


def personalise(run: Any, *, data: str | Path | None = None, out: str | Path | None = None,
                test_labels: str | Path | None = None, subjects: list[str] | None = None, workers: int = 1,
                cluster: str | None = None, overwrite: bool = False, **options: Any) -> PersonaliseResult:
    """Fine-tune a general run to each test subject (the MuSe 2023 protocol; ``musefusion personalise``).

    Args:
        run: a finished ``train(..., task="personalisation")`` run (its directory or its result).
        data: the data root, when it moved since the general run.
        out: the output folder (default ``<run>/personalised``).
        test_labels: the true test labels (scores the test chunks too).
        subjects: only these test subjects.
        workers: subjects fine-tuned at once; cluster: a Dask scheduler address.
        overwrite: replace a personalisation of other options in ``out``.
        **options: :class:`musefusion.pipelines.personalise.PersonaliseConfig` fields: ``seeds``, ``win_len``,
            ``hop_len``, ``lr``, ``epochs``, ``early_stop``, ``batch_size``, ``keep_general``.

    Returns:
        The folder and its metrics; ``.subjects()`` is the per-subject table.

    Raises:
        ConfigError: an unknown option (naming the nearest), or see
            :func:`musefusion.pipelines.personalise.personalise`.

    Example (docs/personalisation.md; ``tests/pipelines/test_personalise.py`` runs it)::

        general = mf.train("data", task="personalisation", target="valence", model="gru", out="runs/general")
        mf.personalise(general, lr=1e-3).subjects()
    """
    cfg = PersonaliseConfig.from_dict(options)
    return run_personalise(Path(getattr(run, "run_dir", run)), cfg, data=data, out=out, test_labels=test_labels,
                           subjects=subjects, workers=workers, cluster=cluster, overwrite=overwrite)
