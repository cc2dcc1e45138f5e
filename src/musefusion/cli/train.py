"""``musefusion train``, ``evaluate`` and ``predict``."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import tomli_w
import typer
from rich.table import Table
from rich.text import Text

from musefusion import fsutil, rundir
from musefusion.api import build_run_config, prepare_train, train_config
from musefusion.api import evaluate as api_evaluate
from musefusion.cli.options import (
    ConfigOpt,
    DataOpt,
    EpochsOpt,
    FeaturesOpt,
    HopLenOpt,
    JsonOpt,
    ModelOpt,
    NormaliseOpt,
    QuietOpt,
    SubjectPriorOpt,
    TargetOpt,
    TaskOverrideOpt,
    TrackOpt,
    TrackUriOpt,
    WinLenOpt,
    check_track,
    field_option,
)
from musefusion.cli.parsing import Command
from musefusion.config import (
    Attention,
    DataConfig,
    LossMode,
    ModelConfig,
    Monitor,
    Precision,
    Schedule,
    TrainConfig,
    resolve_data_root,
)
from musefusion.data import formats
from musefusion.data.corpus import load_corpus
from musefusion.evaluation.uncertainty import Interval
from musefusion.pipelines import tracking
from musefusion.progress import BestSoFar, make_progress, print_table, result
from musefusion.progress import out as console
from musefusion.rundir import RunDir
from musefusion.types import FillPolicy, Partition

logger = logging.getLogger(__name__)

@contextmanager
def log_to_file(path: Path):
    """Copy the log into ``path`` (the run dir's log.txt) while the block runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


def epoch_progress(total_epochs: int, seeds: tuple[int, ...], label: str = "") -> tuple[Any, Any]:
    """A progress display over epochs (one row per seed) and the ``on_epoch(seed, row)`` callback feeding it.

    Live in a terminal; one line per epoch when stderr is redirected.
    """
    progress = make_progress("devel CCC {ccc}, best {best}")
    tasks = {s: progress.add_task(f"{label}seed {s}", total=total_epochs, ccc="-", best="-") for s in seeds}
    best = BestSoFar()

    def on_epoch(seed: int, row: dict[str, float]) -> None:
        ccc, epoch = row.get("devel_ccc", float("nan")), int(row["epoch"])
        top = best.update(seed, ccc, epoch)
        kept = f"{top[0]:.4f} (epoch {top[1]})" if top else "-"
        progress.update(tasks[seed], completed=epoch, ccc=f"{ccc:.4f}" if ccc == ccc else "-", best=kept)

    return progress, on_epoch


def train(
    data: DataOpt = None,
    task: TaskOverrideOpt = None,
    target: TargetOpt = None,
    features: FeaturesOpt = None,
    model: ModelOpt = None,
    seeds: Annotated[list[int] | None, field_option(TrainConfig, "seeds", "Seeds, e.g. --seeds 1 2 3: one model "
                                                    "each, the best on devel kept.")] = None,
    epochs: EpochsOpt = None,
    lr: Annotated[float | None, field_option(TrainConfig, "lr", "Adam learning rate (paper grid: 2e-4, 1e-3, 2e-3, "
                                             "5e-3).")] = None,
    batch_size: Annotated[int | None, field_option(TrainConfig, "batch_size", "Windows per batch (paper grid: 64, "
                                                   "128, 256).")] = None,
    schedule: Annotated[Schedule | None, field_option(
        TrainConfig, "schedule", "LR schedule: paper (halve after --lr-patience epochs without a decrease of the "
        "--lr-monitor loss) or plateau (baseline: patience 5, early stop 15).", case_sensitive=False)] = None,
    lr_patience: Annotated[int | None, field_option(
        TrainConfig, "lr_patience", "Paper schedule: halve the learning rate once the monitored loss has not "
        "decreased for this many epochs (Sec. 5.2: 15).")] = None,
    lr_monitor: Annotated[Monitor | None, field_option(
        TrainConfig, "lr_monitor", "Paper schedule: the loss that must decrease: train (as Sec. 5.2 reads) or devel "
        "(1 - devel CCC).", case_sensitive=False)] = None,
    stop_halvings: Annotated[int | None, field_option(
        TrainConfig, "stop_halvings", "Paper schedule: stop once the learning rate was halved this many times since "
        "the best devel CCC (0: never; the paper trains all its epochs).")] = None,
    early_stop: Annotated[int | None, field_option(
        TrainConfig, "early_stop", "Stop after this many epochs without a better devel CCC (0: the schedule's own: "
        "plateau 15, paper never).")] = None,
    weight_decay: Annotated[float | None, field_option(TrainConfig, "weight_decay", "Adam weight decay (paper "
                                                       "silent).")] = None,
    loss: Annotated[LossMode | None, field_option(
        TrainConfig, "loss", "CCC loss pooling: batch (one CCC over the labelled steps of a batch) or sequence (the "
        "mean of per-window CCCs, as the MuSe 2021 baseline).", case_sensitive=False)] = None,
    eval_every: Annotated[int | None, field_option(TrainConfig, "eval_every", "Score devel every N epochs.",
                                                   metavar="N")] = None,
    threads: Annotated[int | None, field_option(TrainConfig, "num_threads", "torch intra-op threads (0: torch's "
                                                "default).", "--threads")] = None,
    win_len: WinLenOpt = None,
    hop_len: HopLenOpt = None,
    label_delay: Annotated[int | None, field_option(
        DataConfig, "label_delay", "Steps (500 ms) the labels lag the signal: fit the label d steps ahead, write "
        "predictions d steps later (search it with a sweep space label_delay = [0, 4, 8]).", metavar="N")] = None,
    fill: Annotated[FillPolicy | None, field_option(DataConfig, "fill", "Fill policy for steps without a feature "
                                                    "row (the mask marks them).")] = None,
    normalise: NormaliseOpt = None,
    subject_prior: SubjectPriorOpt = None,
    train_partitions: Annotated[list[str] | None, field_option(
        DataConfig, "train_partitions", "Partitions the model is fitted on (train devel: a final model, scored on "
        "devel only as a check).")] = None,
    cache: Annotated[bool | None, field_option(
        DataConfig, "cache", "Cache the aligned arrays, keyed by the options and the files' contents.",
        "--cache/--no-cache")] = None,
    cache_dir: Annotated[Path | None, field_option(
        DataConfig, "cache_dir", "Cache folder (none: $MUSEFUSION_CACHE, else ~/.cache/musefusion).")] = None,
    hidden: Annotated[int | None, field_option(ModelConfig, "hidden", "LSTM hidden size (paper grid: 64, 128, 256; "
                                               "GCNN+LSTM 128, 256, 1024).")] = None,
    attention: Annotated[Attention | None, field_option(
        ModelConfig, "attention", "Self-attention: encoder (stock Transformer encoder layers on the raw features), "
        "literal (bare Eq. 1-3, an ablation) or transformer (projection to d_model, positions, pre-norm encoder "
        "layers).", case_sensitive=False)] = None,
    ff_dim: Annotated[int | None, field_option(ModelConfig, "ff_dim", "Encoder attention: feed-forward width "
                                               "(PyTorch's dim_feedforward).")] = None,
    positions: Annotated[bool | None, field_option(
        ModelConfig, "positions", "Encoder or literal attention: add sinusoidal positions (the paper has none).",
        "--positions/--no-positions")] = None,
    project_input: Annotated[bool | None, field_option(
        ModelConfig, "project_input", "Project the features linearly to d_model before the lstm family's LSTM or "
        "the encoder/literal attention.", "--project-input/--no-project-input")] = None,
    d_model: Annotated[int | None, field_option(ModelConfig, "d_model", "Width of the input projection "
                                                "(transformer attention, --project-input).")] = None,
    heads: Annotated[int | None, field_option(ModelConfig, "heads", "Attention heads (paper grid: 4, 8).")] = None,
    attn_layers: Annotated[int | None, field_option(ModelConfig, "attn_layers", "Self-attention layers (paper "
                                                    "grid: 1, 2, 4).")] = None,
    lstm_layers: Annotated[int | None, field_option(ModelConfig, "lstm_layers", "LSTM layers (paper grid: 2, "
                                                    "4).")] = None,
    channels: Annotated[int | None, field_option(ModelConfig, "channels", "Gated-conv channels (paper grid: 64, "
                                                 "128).")] = None,
    gcnn_blocks: Annotated[int | None, field_option(ModelConfig, "gcnn_blocks", "Stacked gated-conv blocks.")] = None,
    kernel: Annotated[int | None, field_option(ModelConfig, "kernel", "Gated-conv kernel size in steps.")] = None,
    fc_hidden: Annotated[int | None, field_option(ModelConfig, "fc_hidden", "baseline and gru: width of the "
                                                  "two-layer output head.")] = None,
    bidirectional: Annotated[bool | None, field_option(
        ModelConfig, "bidirectional", "gru: a bidirectional GRU (its preset: yes, as the MuSe 2023 baseline's "
        "best calls).", "--bidirectional/--no-bidirectional")] = None,
    tanh_output: Annotated[bool | None, field_option(
        ModelConfig, "tanh_output", "gru: a Tanh on the output (its preset: yes, as the MuSe 2023 baseline).",
        "--tanh-output/--no-tanh-output")] = None,
    dropout: Annotated[float | None, field_option(ModelConfig, "dropout", "Dropout between layers.")] = None,
    device: Annotated[str | None, field_option(TrainConfig, "device", "auto (cuda when available), cpu or "
                                               "cuda[:N].")] = None,
    precision: Annotated[Precision | None, field_option(
        TrainConfig, "precision", "fp32, or bf16: the training forward pass under bfloat16 autocast (fast on CPUs "
        "with AVX-512 BF16/AMX and on CUDA; the loss and every score stay float32).", case_sensitive=False)] = None,
    config: ConfigOpt = None,
    out: Annotated[Path | None, typer.Option(help="Run directory [default: runs/<task>-<target>-<features>-<model>-"
                                             "<hash of the config>], so different configs never share one.",
                                             show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", "--fresh", help="Start over: replace the run in --out "
                                            "(another config's, a finished or an unfinished one) instead of "
                                            "reusing or resuming it.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Print the resolved config and exit.")] = False,
    track: TrackOpt = None,
    track_uri: TrackUriOpt = None,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Train a unimodal model (one per seed), keep the best epoch and seed on devel, write a run directory.

    Every option is a config field ([data], [model], [train] of --config); one left out keeps the config file's
    value, else the model family's preset (`musefusion reference`), else the default shown.

    Example: `musefusion train --data data --features egemaps --model lstm --seeds 1 2 3 --out runs/egemaps-lstm`.
    """
    overrides: dict[str, dict[str, Any]] = {
        "data": {"root": str(data) if data else None, "task": task.value if task else None, "target": target,
                 "features": list(features) if features else None, "win_len": win_len, "hop_len": hop_len,
                 "fill": fill.value if fill else None, "label_delay": label_delay,
                 "normalize": normalise.value if normalise else None, "subject_prior": subject_prior,
                 "train_partitions": list(train_partitions) if train_partitions else None, "cache": cache,
                 "cache_dir": str(cache_dir) if cache_dir else None},
        "model": {"name": model, "hidden": hidden, "heads": heads, "attn_layers": attn_layers, "ff_dim": ff_dim,
                  "positions": positions,
                  "attention": attention.value if attention else None, "project_input": project_input,
                  "lstm_layers": lstm_layers, "channels": channels, "dropout": dropout, "fc_hidden": fc_hidden,
                  "bidirectional": bidirectional, "tanh_output": tanh_output, "d_model": d_model,
                  "gcnn_blocks": gcnn_blocks, "kernel": kernel},
        "train": {"seeds": list(seeds) if seeds else None, "epochs": epochs, "lr": lr, "batch_size": batch_size,
                  "schedule": schedule, "device": device, "loss": loss.value if loss else None,
                  "stop_halvings": stop_halvings, "early_stop": early_stop,
                  "precision": precision.value if precision else None, "lr_patience": lr_patience,
                  "lr_monitor": lr_monitor.value if lr_monitor else None, "weight_decay": weight_decay,
                  "num_threads": threads, "eval_every": eval_every},
    }
    check_track(track, track_uri)
    cfg = build_run_config(config, overrides)
    if dry_run:
        console.print(tomli_w.dumps(cfg.to_dict()), highlight=False, markup=False)
        return
    cfg, out = prepare_train(cfg, out, overwrite=overwrite)  # refused before log.txt is created in --out
    progress, on_epoch = epoch_progress(cfg.train.epochs, cfg.train.seeds)
    with rundir.writing(out), log_to_file(RunDir(out).log), progress:
        run_result = train_config(cfg, out, overwrite=overwrite, on_epoch=on_epoch)
    m = run_result.metrics
    console.print(f"devel CCC {m['devel_ccc_mean']:.4f} ± {m['devel_ccc_std']:.4f} over seeds "
                  f"{list(cfg.train.seeds)}; best seed {m['best']['seed']} ({m['best'].get('devel_ccc', float('nan')):.4f}, "
                  f"epoch {m['best']['best_epoch']}); run dir:", markup=False)
    console.print(Text(str(out), style="bold"))
    result({"run_dir": str(out), "metrics": m})
    if track:
        console.print(Text(f"logged to MLflow as run {tracking.log_run(out, track_uri)}"))


def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by train or fuse.")],
    test_labels: Annotated[Path | None, typer.Option(help="Folder with the true test labels (e.g. "
                                                     "<synth out>/test_labels).", show_default=False)] = None,
    data: DataOpt = None,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Rescore a run's saved predictions against the labels (and the test labels when given).

    Example: `musefusion evaluate runs/egemaps-lstm --test-labels data/test_labels`.
    """
    scores = api_evaluate(run_dir, data=data, test_labels=test_labels)
    target = RunDir(run_dir).read_record()["data"].get("target", "")
    table = Table(title=Text(f"{run_dir}: {target}"))
    for col in ("partition", "CCC", "95 % CI (subjects)", "CCC subject mean", "PCC", "RMSE", "subjects"):
        table.add_column(col, justify="right")
    results = {}
    for part, r in scores.iterrows():
        results[str(part)] = {k: (int(v) if k == "subjects" else float(v)) for k, v in r.items()}
        table.add_row(str(part), f"{r['ccc']:.4f}", str(Interval(r["ccc_low"], r["ccc_high"])),
                      f"{r['ccc_subject_mean']:.4f}", f"{r['pcc']:.4f}", f"{r['rmse']:.4f}", str(int(r["subjects"])))
    fsutil.write_json(RunDir(run_dir).evaluation, results)
    result({"run_dir": str(run_dir), "scores": results})
    print_table(table)


def predict(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by train.")],
    data: DataOpt = None,
    out: Annotated[Path | None, typer.Option(help="Where to write predictions/<partition>/<id>.csv "
                                             "[default: RUN_DIR/predict].", show_default=False)] = None,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Run a saved model on a corpus's features (normalised with the statistics it was trained with).

    Example: `musefusion predict runs/egemaps-lstm --data other_corpus --out predictions`.
    """
    # torch: imported on first use, so the CLI starts without it
    from musefusion.training.loop import resolve_device

    # torch: imported on first use, so the CLI starts without it
    from musefusion.training.run import load_model, load_run_config, model_inputs, predict_delayed

    cfg = load_run_config(run_dir)
    net, payload = load_model(RunDir(run_dir).checkpoint)
    data_cfg = cfg.data.replace(root=resolve_data_root(data) if data else cfg.data.root)
    stats = (payload["norm_mean"].numpy().astype(np.float64), payload["norm_std"].numpy().astype(np.float64))
    corpus = model_inputs(load_corpus(data_cfg, norm_stats=stats), cfg.model.name)
    out = out or RunDir(run_dir).predict
    rundir.check_out(out, "run", metrics_kinds=(), can_overwrite=False)  # never into a finished run: it would report these scores
    device = resolve_device("auto")
    net.to(device)
    n = 0
    for part in Partition:
        seqs = corpus.partition(part)
        if seqs:
            preds = predict_delayed(net, [s.x for s in seqs], device, cfg.data.label_delay)
            formats.write_predictions(RunDir(out).predictions(part.value),
                                      {s.id: (s.timestamps, p) for s, p in zip(seqs, preds, strict=True)})
            n += len(seqs)
    console.print(f"wrote predictions for {n} subjects to", markup=False)
    console.print(Text(str(RunDir(out).predictions_root), style="bold"))
    result({"out": str(RunDir(out).predictions_root), "subjects": n})


def register(app: typer.Typer) -> None:
    """Add train, evaluate and predict to the app."""
    app.command("train", cls=Command)(train)
    app.command("evaluate", cls=Command)(evaluate)
    app.command("predict", cls=Command)(predict)
