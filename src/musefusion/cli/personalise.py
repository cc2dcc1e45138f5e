"""``musefusion personalise`` (MuSe 2023 step 2: one fine-tuned copy of a general model per test subject) and
``musefusion personalise-fuse`` (the 2023 weighted-average late fusion of personalised streams)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from musefusion.cli.options import DataOpt, JsonOpt, QuietOpt
from musefusion.cli.parsing import Command
from musefusion.cli.train import log_to_file
from musefusion.progress import make_progress, print_table, result
from musefusion.progress import out as console

TestLabelsOpt = Annotated[Path | None, typer.Option(
    help="Folder with the true test labels (e.g. <synth out>/test_labels): scores the test chunks too.",
    metavar="PATH", show_default=False)]


def _fmt(v: Any) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


def personalise(
    run_dir: Annotated[Path, typer.Argument(help="A finished general run (`musefusion train --task personalisation`).",
                                            metavar="RUN_DIR")],
    data: DataOpt = None,
    out: Annotated[Path | None, typer.Option(help="Output folder [default: RUN_DIR/personalised].", metavar="PATH",
                                             show_default=False)] = None,
    seeds: Annotated[list[int] | None, typer.Option(
        help="Fine-tuning seeds, one model each; the best on the subject's devel chunks is the candidate (default: "
             "101 102 103 104 105, the 2023 baseline's).", metavar="N", show_default=False)] = None,
    win_len: Annotated[int, typer.Option(help="Fine-tuning window in 2 Hz steps (20 = 10 s).", metavar="N")] = 20,
    hop_len: Annotated[int, typer.Option(help="Hop between windows in steps (10 = 5 s).", metavar="N")] = 10,
    lr: Annotated[float, typer.Option(help="Adam learning rate (the 2023 best runs used 1e-3 to 1e-2).",
                                      metavar="LR")] = 5e-4,
    epochs: Annotated[int, typer.Option(help="Most fine-tuning epochs.", metavar="N")] = 50,
    early_stop: Annotated[int, typer.Option(help="Stop after this many epochs without a better devel CCC on the "
                                            "subject's devel chunks (0: every epoch).", metavar="N")] = 10,
    batch_size: Annotated[int, typer.Option(help="Windows per batch.", metavar="N")] = 256,
    keep_general: Annotated[bool, typer.Option(
        "--keep-general/--always-personalise", help="Keep the general model for a subject where no fine-tuned seed "
        "beats it on that subject's devel chunks (the 2023 rule), or always keep the best fine-tuned seed.")] = True,
    subject: Annotated[list[str] | None, typer.Option(help="Only these test subjects (repeat the option; default: "
                                                      "all).", metavar="ID", show_default=False)] = None,
    test_labels: TestLabelsOpt = None,
    workers: Annotated[int, typer.Option(help="Subjects fine-tuned at once on this machine.", metavar="N")] = 1,
    cluster: Annotated[str | None, typer.Option(help="Run the subjects on this Dask scheduler (docs/cluster.md).",
                                                metavar="ADDRESS", show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a personalisation of other options in the "
                                            "output folder.")] = False,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Fine-tune a general model to each test subject (MuSe 2023 personalisation) and score before and after.

    For each subject with test chunks: reload the general weights, fine-tune them once per seed on the subject's
    train chunk, keep the seed whose CCC on the subject's devel chunks beats the general model's, else the general
    model. Resumes at the next unfinished subject when run again.

    Example: `musefusion personalise runs/general --test-labels data/test_labels --workers 2`.
    """
    # torch: imported on first use, so the CLI starts without it
    from musefusion.pipelines.jobs import check_cluster_address
    from musefusion.pipelines.personalise import PersonaliseConfig, check_personal_out, general_config
    from musefusion.pipelines.personalise import personalise as run_personalise

    cfg = PersonaliseConfig(**({"seeds": tuple(seeds)} if seeds else {}), win_len=win_len, hop_len=hop_len, lr=lr,
                            epochs=epochs, early_stop=early_stop, batch_size=batch_size, keep_general=keep_general)
    progress = make_progress("{last}", description_width=22)
    task = progress.add_task("subjects", total=None, last="")

    def done(label: str) -> None:
        progress.update(task, advance=1, last=label)

    general_config(run_dir, data)  # refused before a log file is made inside a folder that is not a general run
    target = check_personal_out(run_dir, out, overwrite)  # ... or in a folder the output guard refuses
    if cluster is not None:
        check_cluster_address(cluster)
    with log_to_file(target.log), progress:
        res = run_personalise(run_dir, cfg, data=data, out=out, test_labels=test_labels, subjects=subject,
                              workers=workers, cluster=cluster, overwrite=overwrite, on_subject=done)
    m = res.metrics
    table = Table(title=Text(f"{m['target']}: {'+'.join(m['features'])} {m['model']}, personalised"),
                  title_justify="left")
    cols = ["subject", "devel general", "devel personalised", "kept"]
    has_test = m.get("test") is not None
    if has_test:
        cols[3:3] = ["test general", "test personalised"]
    for c in cols:
        table.add_column(c, justify="left" if c in ("subject", "kept") else "right")
    for s, r in m["subjects"].items():
        row = [s, _fmt(r["general_devel_ccc"]), _fmt(r["devel_ccc"])]
        if has_test:
            row += [_fmt(r.get("general_test_ccc")), _fmt(r.get("test_ccc"))]
        table.add_row(*row, r["kept"])
    row = ["all (concatenated)", _fmt(m["devel"]["general"]), _fmt(m["devel"]["personalised"])]
    if has_test:
        row += [_fmt(m["test"]["general"]), _fmt(m["test"]["personalised"])]
    table.add_row(*row, f"{m['n_personalised']}/{m['n_subjects']} personalised")
    print_table(table)
    if not has_test:
        console.print("no test scores: pass --test-labels PATH to score the test chunks", markup=False)
    console.print("personalisation folder:", markup=False)
    console.print(Text(str(res.out), style="bold"))
    result({"out": str(res.out), "metrics": m})


def personalise_fuse(
    folders: Annotated[list[Path], typer.Argument(help="Personalisation folders (RUN_DIR/personalised) of one target.",
                                                  metavar="FOLDER...")],
    out: Annotated[Path, typer.Option(help="The fused folder to write.", metavar="PATH")],
    weights: Annotated[list[float] | None, typer.Option(
        help="One weight per folder (normalised); default: each stream's personalised devel CCC (clipped at 0).",
        metavar="W", show_default=False)] = None,
    test_labels: TestLabelsOpt = None,
    data: DataOpt = None,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Average personalised prediction streams (the MuSe 2023 late fusion) and write its 2023-format files.

    Example: `musefusion personalise-fuse runs/a/personalised runs/b/personalised --out runs/fused`.
    """
    # torch: imported on first use, so the CLI starts without it
    from musefusion.pipelines.personalise import fuse_personalised

    res = fuse_personalised(list(folders), out, weights=weights, test_labels=test_labels, data=data)
    m = res.metrics
    test = f", test CCC {_fmt(m['test']['fused'])}" if m.get("test") else ""
    console.print(Text(f"weights {m['weights']}: devel CCC {_fmt(m['devel']['fused'])}{test} (streams' devel "
                       f"{[_fmt(v) for v in m['stream_devel']]}); folder:"))
    console.print(Text(str(out), style="bold"))
    result({"out": str(out), "metrics": m})


def register(app: typer.Typer) -> None:
    """Add ``personalise`` and ``personalise-fuse`` to the app."""
    app.command("personalise", cls=Command)(personalise)
    app.command("personalise-fuse", cls=Command)(personalise_fuse)
