"""Personalisation, the MuSe 2023 protocol (``EIHW/MuSe-2023``, ``personalisation.py``) on a general run.

Step 1 is an ordinary ``musefusion train --task personalisation`` run: the general model, fitted on every train id
(the general subjects and each test subject's ``<s>_train`` chunk) and chosen on the devel chunks. Step 2, here, for
each test subject ``s`` (a subject with ``<s>_test*`` chunks; :func:`musefusion.data.formats.chunks_by_subject`):

1. read only ``s``'s chunks (``load_corpus(only=...)``), normalised with the general model's statistics;
2. for each seed: reload the general weights and fine-tune all of them on ``s_train`` (windows of ``win_len`` steps,
   hop ``hop_len``; Adam at ``lr``; at most ``epochs``; the plateau schedule, i.e. the baseline's
   ``ReduceLROnPlateau(patience=5)``; stop after ``early_stop`` epochs without a better CCC on ``s``'s devel chunks)
   and keep the epoch with the best devel CCC;
3. keep the seed whose devel CCC on ``s``'s devel chunks beats the general model's there; if none does, keep the
   general model (``keep_general``). The 2023 baseline's own code compares a subject's personalised devel score with
   its fallback *test* score at this point; the rule here is the one its paper states, devel against devel.

The scores are one CCC over all subjects' concatenated devel chunks (and test chunks, when the true test labels are
given), for the general and the personalised models, and each subject's own before/after. The devel scores are
optimistic for the personalised model (its epochs and seed were chosen on those chunks); test is the honest one.

Where the protocol is silent: the loss is the general run's CCC loss pooling, the label delay the general run's,
and the batch size is the 2023 baseline's default (256 windows; a train chunk rarely has that many).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import logging
import os
import shutil
import time
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from musefusion import fsutil, rundir
from musefusion.config import ConfigBase, RunConfig, Schedule, TrainConfig, resolve_data_root
from musefusion.data import formats
from musefusion.data.corpus import find_corpus_dir, label_path, load_corpus, partition_path
from musefusion.errors import ConfigError, MissingDataError
from musefusion.fusion.stack import stack_streams
from musefusion.pipelines.jobs import check_cluster_address, run_jobs
from musefusion.rundir import PersonalDir, RunDir
from musefusion.types import Partition, Task

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class PersonaliseConfig(ConfigBase):
    """Step 2 of the MuSe 2023 protocol (defaults: its ``personalisation.py`` and the issue's ranges)."""

    _section: typing.ClassVar[str] = "[personalise]"

    seeds: tuple[int, ...] = (101, 102, 103, 104, 105)  # one fine-tuning per seed (the baseline: --seed 101, 5 seeds)
    win_len: int = 20  # fine-tuning window in 2 Hz steps (10 s)
    hop_len: int = 10  # hop between windows (5 s)
    lr: float = 5e-4  # Adam learning rate (the baseline's default; its best runs used 1e-3 to 1e-2)
    epochs: int = 50  # most fine-tuning epochs (the best runs used 5-50)
    early_stop: int = 10  # stop after this many epochs without a better devel CCC on the subject's devel chunks
    batch_size: int = 256  # windows per batch (the baseline's default)
    keep_general: bool = True  # keep the general model for a subject where no fine-tuned seed beats it on devel

    def __post_init__(self) -> None:
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or any(s < 0 for s in self.seeds):
            raise ConfigError(f"PersonaliseConfig.seeds: {list(self.seeds)} must be distinct whole numbers >= 0, at "
                              "least one (--seeds 101 102).")
        if not 1 <= self.win_len <= 100_000:
            raise ConfigError(f"PersonaliseConfig.win_len: {self.win_len} must be between 1 and 100000 steps "
                              "(--win-len).")
        if not 1 <= self.hop_len <= self.win_len:
            raise ConfigError(f"PersonaliseConfig.hop_len: {self.hop_len} must be between 1 and win_len="
                              f"{self.win_len} (--hop-len).")
        if not (np.isfinite(self.lr) and 0 < self.lr <= 10):
            raise ConfigError(f"PersonaliseConfig.lr: {self.lr} must be a number in (0, 10] (--lr).")
        if not 1 <= self.epochs <= 100_000:
            raise ConfigError(f"PersonaliseConfig.epochs: {self.epochs} must be between 1 and 100000 (--epochs).")
        if self.early_stop < 0:
            raise ConfigError(f"PersonaliseConfig.early_stop: {self.early_stop} must be >= 0 (--early-stop; 0 "
                              "trains every epoch).")
        if not 1 <= self.batch_size <= 1_000_000:
            raise ConfigError(f"PersonaliseConfig.batch_size: {self.batch_size} must be between 1 and 1000000 "
                              "(--batch-size).")


@dataclasses.dataclass
class PersonaliseResult:
    """A finished personalisation: its folder and its metrics (``metrics.json``)."""

    out: Path
    metrics: dict[str, Any]

    def subjects(self) -> pd.DataFrame:
        """One row per subject: general and personalised devel (and test) CCC, the gain, what was kept."""
        return subject_table(self.metrics)


def subject_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """The per-subject rows of a personalisation's metrics as a DataFrame."""
    rows = [{"subject": s, **{k: v for k, v in r.items() if not isinstance(v, (dict, list))}}
            for s, r in metrics.get("subjects", {}).items()]
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------- the protocol


def test_subjects(partition: dict[str, Partition], where: Path) -> dict[str, dict[Partition, list[str]]]:
    """The subjects to personalise (those with test chunks) and their chunks.

    Raises:
        ConfigError: no subject has test chunks, or one has no train or devel chunk.
    """
    subjects, missing = formats.test_subjects(partition)
    if not subjects:
        raise ConfigError(f"'{where}' lists no test chunk ('<subject>_test'): there is no subject to personalise. "
                          "Is this a MuSe 2023 personalisation corpus (c3_muse_personalisation)?")
    if missing:
        s, part = missing[0]
        raise ConfigError(f"Test subject '{s}' has no {part.value} chunk in '{where}' (expected "
                          f"'{s}_{part.value}'); personalisation fine-tunes on {s}_train and chooses on "
                          f"{s}_devel. `musefusion data check --task personalisation` lists every subject.")
    return subjects


def general_config(run_dir: str | os.PathLike[str], data: str | os.PathLike[str] | None) -> tuple[RunConfig, Path]:
    """The general run's config (data root replaced by ``data`` when given) and its checkpoint.

    Raises:
        ConfigError: not a finished unimodal run of a personalisation corpus fitted on train only.
    """
    # torch: imported on first use, so the CLI starts without it
    from musefusion.training.run import load_run_config

    run_dir = Path(run_dir)
    run = RunDir(run_dir)
    if not run.config.is_file() or not run.finished:
        raise ConfigError(f"'{run_dir}' is not a finished run (no config.toml and metrics.json); train the general "
                          "model first: `musefusion train --task personalisation ... --out RUN_DIR`.")
    if run.kind is not rundir.Kind.RUN:
        raise ConfigError(f"'{run_dir}' is a fusion run; personalise a unimodal (general) run.")
    cfg = load_run_config(run_dir)
    if cfg.data.task != Task.PERSONALISATION:
        raise ConfigError(f"'{run_dir}' was trained on a {cfg.data.task.value} corpus; personalisation needs a run of "
                          "a MuSe 2023 personalisation corpus (`musefusion train --task personalisation`).")
    if "devel" in cfg.data.train_partitions:
        raise ConfigError(f"'{run_dir}' was fitted on devel too; the keep-the-general-model rule compares on the "
                          "devel chunks, so personalise a general model fitted on train only.")
    if data is not None:
        cfg = dataclasses.replace(cfg, data=cfg.data.replace(root=resolve_data_root(data)))
    return cfg, run.checkpoint


def personalise_subject(general_dir: str, out: str, subject: str, chunks: dict[str, list[str]],
                        cfg_dict: dict[str, Any], data: str | None = None, threads: int = 0) -> bool:
    """Fine-tune the general model to one subject and write ``<out>/subjects/<subject>/`` (a job: idempotent).

    Reads only the files of ``chunks`` (the subject's train, devel and test chunk ids); test chunks' labels are
    never read. ``threads``: torch threads for this job (0: leave torch's setting; a pool worker gets 1, since
    several workers each using every core made the small models about 10x slower here). Returns False without
    work when the subject is done.
    """
    # torch: imported on first use, so the CLI starts without it
    import torch

    # torch: these import it too
    from musefusion.evaluation.metrics import ccc_concatenated
    from musefusion.models import build_model
    from musefusion.training import checkpoint, loop
    from musefusion.training import run as trun
    from musefusion.training import seeds as seeding

    cfg = PersonaliseConfig.from_dict(cfg_dict)
    if threads:
        torch.set_num_threads(threads)
    pdir = PersonalDir(Path(out))
    sdir = pdir.subject(subject)
    if sdir.result.is_file():
        return False
    started = time.perf_counter()
    run_cfg, ckpt = general_config(Path(general_dir), data)
    general, payload = trun.load_model(ckpt)
    stats = (payload["norm_mean"].numpy().astype(np.float64), payload["norm_std"].numpy().astype(np.float64))
    ids = [c for p in (Partition.TRAIN, Partition.DEVEL, Partition.TEST) for c in chunks.get(p.value, [])]
    corpus = trun.model_inputs(load_corpus(run_cfg.data, norm_stats=stats, only=ids), run_cfg.model.name)
    delay = run_cfg.data.label_delay
    fit_data = trun.with_label_delay(corpus, delay)
    train_seqs = [s for s in fit_data.partition(Partition.TRAIN) if not np.isnan(s.y).all()]
    devel, devel_fit = corpus.partition(Partition.DEVEL), fit_data.partition(Partition.DEVEL)
    if not train_seqs or not devel:
        raise ConfigError(f"Subject '{subject}': its train chunk holds no label or it has no devel chunk.")
    device = loop.resolve_device(run_cfg.train.device)
    general.to(device)
    general_state = copy.deepcopy(general.state_dict())

    def devel_ccc(net: torch.nn.Module) -> float:
        return ccc_concatenated(trun.predict_delayed(net, [s.x for s in devel], device, delay), [s.y for s in devel])

    general_ccc = devel_ccc(general)
    windows = trun.make_train_windows(train_seqs, cfg.win_len, cfg.hop_len)
    tcfg = TrainConfig(epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size, schedule=Schedule.PLATEAU,
                       early_stop=cfg.early_stop, device=run_cfg.train.device, loss=run_cfg.train.loss,
                       precision=run_cfg.train.precision, seeds=(cfg.seeds[0],))
    if cfg.early_stop == 0:
        tcfg = tcfg.replace(early_stop=cfg.epochs)  # 0: every epoch (plateau's own default would stop after 15)
    per_seed: dict[int, dict[str, Any]] = {}
    states: dict[int, dict[str, Any]] = {}
    for seed in cfg.seeds:
        seeding.seed_everything(seed)
        net = build_model(run_cfg.model, corpus.d_in, tuple(corpus.feature_dims.values()))
        net.load_state_dict(general_state)  # every seed starts from the general weights
        res = loop.fit(net, windows, [s.x for s in devel_fit], [s.y for s in devel_fit], tcfg, seed)
        net.load_state_dict(res.state_dict)
        per_seed[seed] = {"devel_ccc": devel_ccc(net), "best_epoch": res.best_epoch, "epochs_run": len(res.history)}
        states[seed] = copy.deepcopy(res.state_dict)
        sdir.seed(seed).path.mkdir(parents=True, exist_ok=True)
        with fsutil.atomic_path(sdir.seed(seed).history) as tmp:
            pd.DataFrame(res.history).to_csv(tmp, index=False)
    best = seeding.pick_best_seed({s: r["devel_ccc"] for s, r in per_seed.items()})
    personalised = per_seed[best]["devel_ccc"] > general_ccc or not cfg.keep_general
    net = build_model(run_cfg.model, corpus.d_in, tuple(corpus.feature_dims.values())).to(device)
    net.load_state_dict(states[best] if personalised else general_state)
    for part in (Partition.DEVEL, Partition.TEST):
        seqs = corpus.partition(part)
        for folder, model in ((sdir.predictions(part.value), net), (pdir.subject_general(subject, part.value), general)):
            preds = trun.predict_delayed(model, [s.x for s in seqs], device, delay)
            formats.write_predictions(folder, {s.id: (s.timestamps, p) for s, p in zip(seqs, preds, strict=True)})
    if personalised:
        checkpoint.save_checkpoint(sdir.checkpoint, {
            "model": states[best], "config": run_cfg.to_dict(), "epoch": per_seed[best]["best_epoch"],
            "best_score": float(per_seed[best]["devel_ccc"]), "seed": best, "d_in": corpus.d_in,
            "feature_dims": dict(corpus.feature_dims), "norm_mean": torch.from_numpy(corpus.mean),
            "norm_std": torch.from_numpy(corpus.std), "versions": trun.versions(), "subject": subject})
    kept = per_seed[best]["devel_ccc"] if personalised else general_ccc
    fsutil.write_json(sdir.result, {
        "subject": subject, "chunks": chunks, "general_devel_ccc": general_ccc, "devel_ccc": kept,
        "devel_gain": kept - general_ccc, "kept": f"seed {best}" if personalised else "general",
        "personalised": bool(personalised), "best_seed": best, "seeds": {str(s): r for s, r in per_seed.items()},
        "n_train_windows": len(windows), "train_steps": int(sum(len(s) for s in train_seqs)),
        "seconds": round(time.perf_counter() - started, 2)})
    logger.info("subject %s: devel CCC %.4f -> %.4f (%s)", subject, general_ccc, kept,
                f"seed {best} kept" if personalised else "general model kept")
    return True


# ----------------------------------------------------------------------------------------------- scoring


def _score(folders: dict[str, Path], ids: list[str], run_cfg: RunConfig, part: Partition,
           test_labels: Path | None) -> dict[str, float] | None:
    """CCC (concatenated, and the mean of per-chunk CCCs) of each folder's predictions of ``ids`` (None: test
    without its labels)."""
    # torch: the metrics module imports it, so the CLI starts without it
    from musefusion.evaluation.scoring import score_predictions

    if part == Partition.TEST and test_labels is None:
        return None
    out: dict[str, float] = {}
    for name, folder in folders.items():
        scores = score_predictions(folder, run_cfg.data.root, run_cfg.data.task, run_cfg.data.target, part,
                                   test_labels, ids=ids)
        out[name], out[f"{name}_chunk_mean"] = scores["ccc"], scores["ccc_subject_mean"]
    return out


def _collect(pdir: PersonalDir, subjects: dict[str, dict[Partition, list[str]]]) -> None:
    """Copy every subject's kept and general predictions into ``predictions/`` and ``general/`` (atomically)."""
    for part in ("devel", "test"):
        kept: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        general: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for s in subjects:
            kept.update(formats.read_predictions(pdir.subject(s).predictions(part)))
            general.update(formats.read_predictions(pdir.subject_general(s, part)))
        formats.write_predictions(pdir.predictions(part), kept)
        formats.write_predictions(pdir.general(part), general)


def summarize(pdir: PersonalDir, subjects: dict[str, dict[Partition, list[str]]], run_cfg: RunConfig,
              general_dir: Path, test_labels: Path | None) -> dict[str, Any]:
    """The personalisation's metrics: per subject (devel, and test with labels) and over all subjects at once."""
    target = run_cfg.data.target
    rows: dict[str, dict[str, Any]] = {}
    for s, chunks in subjects.items():
        r = fsutil.read_json(pdir.subject(s).result)
        row = {k: r[k] for k in ("general_devel_ccc", "devel_ccc", "devel_gain", "kept", "personalised",
                                 "train_steps", "seconds")}
        test = _score({"general": pdir.subject_general(s, "test"),
                       "personalised": pdir.subject(s).predictions("test")}, chunks[Partition.TEST], run_cfg,
                      Partition.TEST, test_labels)
        if test is not None:
            row.update(general_test_ccc=test["general"], test_ccc=test["personalised"],
                       test_gain=test["personalised"] - test["general"])
        rows[s] = row
    folders = {"general": pdir.general("devel"), "personalised": pdir.predictions("devel")}
    all_devel = [c for ch in subjects.values() for c in ch[Partition.DEVEL]]
    all_test = [c for ch in subjects.values() for c in ch[Partition.TEST]]
    devel = _score(folders, all_devel, run_cfg, Partition.DEVEL, None)
    test = _score({"general": pdir.general("test"), "personalised": pdir.predictions("test")}, all_test, run_cfg,
                  Partition.TEST, test_labels)
    metrics: dict[str, Any] = {
        "kind": "personalise", "task": run_cfg.data.task.value, "target": target,
        "features": list(run_cfg.data.features), "model": run_cfg.model.name, "general_run": str(general_dir),
        "fit": "personalised", "parent": str(general_dir),  # how `musefusion runs` lists it
        "best": {"devel_ccc": (devel or {}).get("personalised", float("nan"))},
        "devel": devel, "test": test, "subjects": rows,
        "n_subjects": len(rows), "n_personalised": sum(r["personalised"] for r in rows.values()),
        "kept_general": [s for s, r in rows.items() if not r["personalised"]],
        "notes": "devel CCC is optimistic for the personalised models (epochs and seeds chosen on it); test is not"
                 + ("" if test is not None else "; no test scores: pass the true test labels (--test-labels)"),
    }
    if test is not None:
        metrics["hurt_on_test"] = {s: round(r["test_gain"], 4) for s, r in rows.items() if r["test_gain"] < 0}
    return metrics


# ----------------------------------------------------------------------------------------------- the 2023 format


def write_submission(pdir: PersonalDir, target: str, corpus: Path | None = None) -> Path:
    """``submission/predictions_<devel|test>.csv`` as the MuSe 2023 baseline's ``--predict`` writes them: columns
    ``meta_subject_id`` (the chunk id), ``meta_timestamp`` (ms), ``prediction`` and, for devel when ``corpus`` is
    given, ``label_gs``; ``target`` names the file's dimension in ``submission/target.txt``."""
    out = pdir.submission
    with fsutil.atomic_dir(out) as tmp:
        for part in (Partition.DEVEL, Partition.TEST):
            preds = formats.read_predictions(pdir.predictions(part.value))
            frames = []
            for sid in sorted(preds):
                ts, p = preds[sid]
                frame = pd.DataFrame({"meta_subject_id": sid, "meta_timestamp": ts, "prediction": p})
                if part == Partition.DEVEL and corpus is not None:
                    lts, lv = formats.read_label_csv(label_path(corpus, target, sid))
                    frame["label_gs"] = pd.Series(lv, index=lts).reindex(ts).to_numpy()
                frames.append(frame)
            pd.concat(frames, ignore_index=True).to_csv(tmp / pdir.submission_file(part.value).name, index=False)
        (tmp / pdir.submission_target.name).write_text(target + "\n")
    return out


# ----------------------------------------------------------------------------------------------- entry points


def _record(cfg: PersonaliseConfig, run_cfg: RunConfig, ckpt: Path) -> dict[str, Any]:
    # torch: imported on first use, so the CLI starts without it
    from musefusion.data.corpus import corpus_digest

    general = hashlib.blake2b(ckpt.read_bytes(), digest_size=16).hexdigest()  # the weights, wherever the run lies
    return {"personalise": cfg.to_dict(), rundir.INPUTS: {"corpus": corpus_digest(run_cfg.data), "general": general}}


def check_personal_out(run_dir: str | os.PathLike[str], out: str | os.PathLike[str] | None,
                       overwrite: bool = False) -> PersonalDir:
    """The output folder of :func:`personalise` (``out``, else ``<run_dir>/personalised``) after the one output
    guard: never inside the corpus, never the general run itself or a folder holding it (its ``config.toml`` and
    ``metrics.json`` would be replaced, ``overwrite`` or not), never a finished output of another kind or a folder
    of other files (unless ``overwrite``: then other files are kept). A folder inside the general run is fine: the
    default lies there.

    Raises:
        ConfigError: one line naming ``--out`` and what to pass instead.
    """
    run_dir = Path(run_dir)
    pdir = PersonalDir(Path(out) if out is not None else RunDir(run_dir).personalised.path)
    o, general = pdir.path.resolve(), run_dir.resolve()
    if o == general or o in general.parents:
        raise ConfigError(f"--out '{pdir.path}' is or holds the general run '{run_dir}', an input of this command; "
                          f"write to a new folder (default: '{RunDir(run_dir).personalised.path}').")
    rundir.check_out(pdir.path, "personalise", overwrite, option="--out", metrics_kinds=("personalise",))
    return pdir


def personalise(run_dir: str | os.PathLike[str], cfg: PersonaliseConfig | None = None, *,
                data: str | os.PathLike[str] | None = None, out: str | os.PathLike[str] | None = None,
                test_labels: str | os.PathLike[str] | None = None, subjects: list[str] | None = None,
                workers: int = 1, cluster: str | None = None, overwrite: bool = False,
                on_subject: Callable[[str], None] | None = None) -> PersonaliseResult:
    """Personalise a general run: one fine-tuned copy per test subject (see the module docstring).

    Args:
        run_dir: a finished ``musefusion train --task personalisation`` run (the general model).
        cfg: the protocol's options (default: :class:`PersonaliseConfig`'s).
        data: the data root, when it moved since the general run.
        out: the output folder (default ``<run_dir>/personalised``).
        test_labels: the true test labels (scores the test chunks too).
        subjects: only these test subjects (default: all).
        workers: subjects fine-tuned at once on this machine's cores.
        cluster: a Dask scheduler address: the subjects run there (``docs/cluster.md``).
        overwrite: replace a personalisation of other options in ``out``.
        on_subject: called with each subject's label when it is done (progress).

    Returns:
        The folder and its metrics. A killed call resumes at the next unfinished subject when run again.

    Raises:
        ConfigError: not a general run of a personalisation corpus, bad options, an unknown subject, ``out`` holds
            a personalisation of other options (and not ``overwrite``).
    """
    cfg = cfg or PersonaliseConfig()
    if workers < 1:
        raise ConfigError(f"--workers: {workers} must be >= 1.")
    if cluster is not None:
        check_cluster_address(cluster)
    run_dir = Path(run_dir)
    run_cfg, ckpt = general_config(run_dir, data)
    corpus = find_corpus_dir(run_cfg.data.root, run_cfg.data.task)
    chosen = test_subjects(formats.read_partition(partition_path(corpus)), partition_path(corpus))
    if subjects:
        unknown = [s for s in subjects if s not in chosen]
        if unknown:
            raise ConfigError(f"--subject {unknown[0]}: not a test subject of '{corpus}'; choose from "
                              f"{', '.join(chosen)}.")
        chosen = {s: chosen[s] for s in subjects}
    pdir = check_personal_out(run_dir, out, overwrite)
    record = _record(cfg, run_cfg, ckpt)
    rundir.status(pdir.path, record, what="personalisation", overwrite=overwrite,
                  defaults={"personalise": PersonaliseConfig.field_defaults()})
    if overwrite and (pdir.path / "subjects").is_dir():
        shutil.rmtree(pdir.path / "subjects")
    pdir.path.mkdir(parents=True, exist_ok=True)
    fsutil.write_toml(pdir.config, {**record, "locations": {"general_run": str(run_dir)}})
    root = str(Path(run_cfg.data.root).resolve())
    # absolute paths: a cluster worker's working folder is its own (the folders lie on a shared filesystem)
    jobs = [(personalise_subject, (str(run_dir.resolve()), str(pdir.path.resolve()), s,
                                   {p.value: ids for p, ids in ch.items()}, cfg.to_dict(), root,
                                   1 if workers > 1 or cluster else 0), f"subject {s}")
            for s, ch in chosen.items()]
    run_jobs(jobs, pdir.jobs_log, on_subject or (lambda _label: None), workers=workers, cluster=cluster)
    _collect(pdir, chosen)
    metrics = summarize(pdir, chosen, run_cfg, run_dir, Path(test_labels) if test_labels else None)
    try:
        # matplotlib: imported only when a plot is drawn
        from musefusion.evaluation.plots import plot_personal_gains

        plot_personal_gains(subject_table(metrics), pdir.plot("gains.png"),
                            f"{'+'.join(run_cfg.data.features)} {run_cfg.model.name}, {run_cfg.data.target}")
    except Exception as exc:  # plotting must never lose a finished personalisation
        logger.warning("could not draw the gains plot for %s: %s", pdir.path, exc)
    write_submission(pdir, run_cfg.data.target, corpus)
    fsutil.write_json(pdir.metrics, metrics)
    return PersonaliseResult(pdir.path, metrics)


def fuse_personalised(folders: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str],
                      weights: list[float] | None = None, test_labels: str | os.PathLike[str] | None = None,
                      data: str | os.PathLike[str] | None = None, stream: str = "personalised") -> PersonaliseResult:
    """The MuSe 2023 late fusion: a weighted average of personalised prediction streams (``predictions/``).

    Args:
        folders: personalisation folders (``<run>/personalised``) of one target and the same chunks.
        out: the fused folder (``predictions/``, ``metrics.json``, ``submission/``).
        weights: one per folder (normalised to sum 1); default: each stream's personalised devel CCC (clipped at 0;
            equal weights when every one is 0), the 2023 practice of weighting by devel performance.
        test_labels: the true test labels (scores test too).
        data: the data root, when it moved since the streams were made.
        stream: ``personalised`` (the kept models' predictions) or ``general`` (the general models' of the same
            chunks, for the general fusion to compare with).

    Raises:
        ConfigError: fewer than two folders, another target, or a weight count that differs.
        MissingDataError / DataFormatError: a folder lacks a chunk another has, or predicts it on other timestamps
            (:func:`musefusion.fusion.stack.stack_streams`).
    """
    if stream not in ("personalised", "general"):
        raise ConfigError(f"stream: '{stream}' must be personalised or general.")
    if len(folders) < 2:
        raise ConfigError("Fuse at least two personalisation folders (the 2023 late fusion averages 2 or more).")
    dirs = [PersonalDir(Path(f)) for f in folders]
    for d in dirs:
        if not d.finished:
            raise MissingDataError(f"'{d.path}' is not a finished personalisation (no metrics.json); run "
                                   "`musefusion personalise RUN_DIR` first.")
    metas = [fsutil.read_json(d.metrics) for d in dirs]
    targets = {m["target"] for m in metas}
    if len(targets) > 1:
        raise ConfigError(f"The folders predict different targets ({', '.join(sorted(targets))}); fuse one target.")
    if weights is not None and len(weights) != len(dirs):
        raise ConfigError(f"--weights: {len(weights)} given for {len(dirs)} folders; give one per folder.")
    if weights is not None and (any(not np.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0):
        raise ConfigError(f"--weights: {weights} must be >= 0 with a positive sum.")
    w = np.array(weights if weights is not None else
                 [max(float((m.get("devel") or {}).get(stream, 0.0)), 0.0) for m in metas], dtype=float)
    w = w / w.sum() if w.sum() > 0 else np.full(len(dirs), 1.0 / len(dirs))
    target = targets.pop()
    out_dir = PersonalDir(Path(out))
    rundir.check_out(out_dir.path, "personalise", option="--out", inputs=[d.path for d in dirs],
                     metrics_kinds=("personalise-fusion",), can_overwrite=False)
    fused_parts: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    names = [str(d.path) for d in dirs]
    for part in ("devel", "test"):
        streams = [formats.read_predictions(d.predictions(part) if stream == "personalised" else d.general(part))
                   for d in dirs]
        # joined by timestamp over every chunk any folder has: a folder without one of them is refused
        stacked = stack_streams(streams, names, sorted(set().union(*streams)))
        fused_parts[part] = {sid: (ts, vals.astype(np.float64) @ w) for sid, (ts, vals) in stacked.items()}
    for part, fused in fused_parts.items():
        formats.write_predictions(out_dir.predictions(part), fused)
    run_cfg = general_config(Path(metas[0]["general_run"]), data)[0]
    corpus = find_corpus_dir(run_cfg.data.root, run_cfg.data.task)
    devel = _score({"fused": out_dir.predictions("devel")}, sorted(fused_parts["devel"]), run_cfg, Partition.DEVEL,
                   None)
    test = _score({"fused": out_dir.predictions("test")}, sorted(fused_parts["test"]), run_cfg, Partition.TEST,
                  Path(test_labels) if test_labels else None)
    metrics = {"kind": "personalise-fusion", "target": target, "stream": stream, "streams": [str(d.path) for d in dirs],
               "weights": [round(float(x), 6) for x in w], "devel": devel, "test": test,
               "stream_devel": [(m.get("devel") or {}).get(stream) for m in metas],
               "stream_test": [(m.get("test") or {}).get(stream) for m in metas]}
    write_submission(out_dir, target, corpus)
    fsutil.write_json(out_dir.metrics, metrics)
    return PersonaliseResult(out_dir.path, metrics)
