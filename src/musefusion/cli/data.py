"""``musefusion synth`` and ``musefusion data check``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from musefusion import fsutil, rundir
from musefusion.cli.options import DataOpt, JsonOpt, QuietOpt, SeedOpt, TaskOpt
from musefusion.cli.parsing import Command, Group
from musefusion.cli.reproduce import projection, reproduce_shown
from musefusion.config import resolve_data_root
from musefusion.data.check import check_corpus
from musefusion.data.synth import PERSONAL_FEATURES, SYNTH_FEATURES, SynthConfig, Variant, synthesize
from musefusion.errors import ConfigError
from musefusion.pipelines.reproduce import Profile, ReproduceConfig
from musefusion.progress import out as console
from musefusion.progress import print_table, result
from musefusion.rundir import ReproduceDir
from musefusion.types import Task

data_app = typer.Typer(rich_markup_mode=None, cls=Group, help="Inspect and validate corpora.", no_args_is_help=True)


def _parse_split(split: str) -> tuple[int, int, int]:
    try:
        n_train, n_devel, n_test = (int(p) for p in split.split("/"))
    except ValueError:
        raise ConfigError(f"--split '{split}' must look like 41/14/14 (train/devel/test subject counts).") from None
    return n_train, n_devel, n_test


VariantOpt = Annotated[Variant, typer.Option(
    help="Synthetic generator: default, bio-led (bio carries arousal, long lags), sparse-face (30 % of faces "
         "missing, the voice carries valence), idiosyncratic (strong per-subject gains and offsets), null (nothing "
         "carries the labels), one-modality (only the voice does); or the second family, written apart: phases, "
         "phases-lagged, phases-gaps, phases-expressive (docs/data.md).",
    case_sensitive=False)]


def synth(
    out: Annotated[Path, typer.Argument(help="Destination root; writes OUT/<corpus>/ and OUT/test_labels/<corpus>/.")],
    task: TaskOpt = Task.STRESS,
    seed: SeedOpt = 0,
    split: Annotated[str, typer.Option(help="Subjects per partition as TRAIN/DEVEL/TEST (Ulm-TSST: 41/14/14; "
                                       "personalisation chunks the devel and test subjects).")]
    = "41/14/14",
    minutes: Annotated[float, typer.Option(help="Mean recording length per subject in minutes.")] = 5.0,
    features: Annotated[list[str] | None, typer.Option(
        help=f"Feature folders to write, space- or comma-separated (default: {' '.join(SYNTH_FEATURES)}; "
             "biosignals writes one 3-column folder as MuSe 2022 does; --task personalisation: "
             f"{' '.join(PERSONAL_FEATURES)}).", show_default=False)] = None,
    variant: VariantOpt = Variant.DEFAULT,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a corpus folder already in OUT (without "
                                            "it, only a synthetic corpus of the same settings is rewritten).")]
    = False,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Write a synthetic Ulm-TSST-like corpus in the MuSe 2021 layout, or 2023's (deterministic for a seed).

    Example: `musefusion synth data --task physio --variant bio-led --seed 3`.
    """
    if out.exists() and not out.is_dir():
        raise ConfigError(f"OUT '{out}' is a file, not a folder; pass the data root to write the corpus under.")
    n_train, n_devel, n_test = _parse_split(split)
    cfg = SynthConfig(task=task, seed=seed, n_train=n_train, n_devel=n_devel, n_test=n_test, minutes=minutes,
                      features=tuple(features) if features else SynthConfig.features, variant=variant)
    _synthesize_shown(out, cfg, overwrite)


def _synthesize_shown(out: Path, cfg: SynthConfig, overwrite: bool) -> None:
    """Write the synthetic corpus and say what was written where."""
    t0 = time.perf_counter()
    corpus = synthesize(out, cfg, overwrite=overwrite)
    console.print(f"wrote {cfg.n_subjects} subjects ({cfg.n_train}/{cfg.n_devel}/{cfg.n_test}), features "
                  f"{' '.join(cfg.features)}, in {time.perf_counter() - t0:.1f} s to", markup=False)
    console.print(Text(str(corpus), style="bold"))
    console.print("hidden test labels in", markup=False)
    console.print(Text(str(Path(out) / "test_labels")))
    result({"corpus": str(corpus), "test_labels": str(Path(out) / "test_labels"), "subjects": cfg.n_subjects,
            "features": list(cfg.features)})


@data_app.command("check", cls=Command)
def check(
    data: DataOpt = None,
    task: TaskOpt = Task.STRESS,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Validate a corpus and print a summary; exit 1 with the list of problems when it is broken.

    Example: `musefusion data check --data ~/muse --task physio`.
    """
    if not _check_shown(resolve_data_root(data), task):
        raise typer.Exit(1)


def _check_shown(root: Path, task: Task) -> bool:
    """Check the corpus under ``root`` and print the summary and its problems; True when it has none."""
    report = check_corpus(root, task, progress=True)
    result({"corpus_dir": str(report.corpus_dir), "problems": list(report.problems), "warnings": list(report.warnings),
            "partitions": report.partitions.to_dict(orient="records"),
            "features": report.features.to_dict(orient="records"),
            "subjects": report.subjects.to_dict(orient="records")})
    console.print(Text(str(report.corpus_dir), style="bold"))
    tables = [("partitions", report.partitions), ("features", report.features), ("targets", report.targets)]
    if len(report.subjects):
        tables.append(("personalisation subjects", report.subjects))
    for title, df in tables:
        table = Table(title=title, title_justify="left")
        for col in df.columns:
            table.add_column(str(col), justify="right" if df[col].dtype.kind in "if" else "left")
        for _, row in df.iterrows():
            table.add_row(*[Text(f"{v:.1%}" if isinstance(v, float) and col.endswith("rate") else str(v))
                            for col, v in row.items()])
        print_table(table)
    for group, folders in report.resolved.items():
        console.print(Text(f"--features {group} reads: {' + '.join(folders)}"))
    for w in report.warnings:
        console.print(Text("warning: ", style="yellow") + Text(w))
    if report.problems:
        for p in report.problems:
            console.print(Text("problem: ", style="red") + Text(p))
        console.print(f"[red]{len(report.problems)} problem(s) found.[/red]")
        return False
    console.print("[green]corpus OK[/green]")
    return True


def demo(
    out: Annotated[Path, typer.Option(help="Folder for the synthetic corpus and the results.")] = Path("demo"),
    task: TaskOpt = Task.STRESS,
    seed: SeedOpt = 0,
    profile: Annotated[Profile, typer.Option(help="reproduce profile: demo (every stage once, about ten minutes), "
                                             "quick, paper or smoke (see reproduce --help).",
                                             case_sensitive=False)] = Profile.DEMO,
    workers: Annotated[int, typer.Option(help="Parallel training processes.")] = 2,
    split: Annotated[str, typer.Option(help="Synthetic subjects per partition, TRAIN/DEVEL/TEST (Ulm-TSST: "
                                       "41/14/14).")] = "24/8/8",
    minutes: Annotated[float, typer.Option(help="Synthetic recording length per subject in minutes (Ulm-TSST: "
                                           "about 5).")] = 3.0,
    variant: VariantOpt = Variant.DEFAULT,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """The main job on the embedded default: synthesise the default corpus, check it, reproduce the paper.

    Example: `musefusion demo --out demo (what `make demo` runs)`.
    """
    rundir.check_out(out, "demo", holds_own_corpus=True, can_overwrite=False)
    corpus_root = out / "data"
    stamp = corpus_root / task.corpus_dirs[0] / "metadata" / "synth.toml"
    n_train, n_devel, n_test = _parse_split(split)
    wanted = SynthConfig(task=task, seed=seed, n_train=n_train, n_devel=n_devel, n_test=n_test, minutes=minutes,
                         variant=variant)
    if stamp.is_file() and fsutil.read_toml(stamp) == wanted.to_dict():
        console.print(Text(f"using the synthetic corpus already in {corpus_root}"))
    else:
        # demo's own folder: a synthetic corpus of other settings there is demo's too and may be replaced
        _synthesize_shown(corpus_root, wanted, overwrite=stamp.is_file())
    if not _check_shown(corpus_root, task):
        raise typer.Exit(1)
    cfg = ReproduceConfig(root=corpus_root, task=task, profile=profile, workers=workers)
    rep_dir = out / f"reproduce-{task.value}"
    # the whole run's cost first (one measured epoch per row), so its ETA is known from the start
    report = reproduce_shown(cfg, rep_dir, projection(cfg, rep_dir, smoke_too=True))
    result({"corpus": str(corpus_root), "report": str(report), "report_html": str(ReproduceDir(rep_dir).report_html)})
