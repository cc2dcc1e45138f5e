"""``musefusion fuse``: late fusion of unimodal runs' prediction streams."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from musefusion import rundir
from musefusion.api import default_fusion_out
from musefusion.cli.options import JsonOpt, QuietOpt, TrackOpt, TrackUriOpt, check_track
from musefusion.cli.parsing import Command
from musefusion.cli.train import log_to_file
from musefusion.pipelines import tracking
from musefusion.progress import out as console
from musefusion.progress import result
from musefusion.rundir import RunDir
from musefusion.types import FusionTrain


def fuse(
    streams: Annotated[list[Path], typer.Option("--streams", help="Unimodal run directories (one stream each), "
                                                "e.g. --streams runs/A runs/V runs/B.", show_default=False)],
    out: Annotated[Path | None, typer.Option(help="Fusion run directory [default: runs/fusion-<names>-<hash of the "
                                             "config>].", show_default=False)] = None,
    train_on: Annotated[FusionTrain, typer.Option(help="What the fusion is fitted on: oof (out-of-fold train "
                                          "predictions), in-sample (the baseline's practice) or devel (k-fold CV "
                                          "on devel).", case_sensitive=False)] = FusionTrain.OOF,
    folds: Annotated[int, typer.Option(help="k for out-of-fold predictions / devel CV.")] = 5,
    epochs: Annotated[int, typer.Option(help="Fusion epochs (paper: at most 20).")] = 20,
    seeds: Annotated[list[int] | None, typer.Option(help="Seeds (default: 1).", show_default=False)] = None,
    names: Annotated[list[str] | None, typer.Option(help="A short name per stream.", show_default=False)] = None,
    reliability: Annotated[bool, typer.Option(
        "--reliability", help="Beyond the paper: the Bi-LSTM also reads each stream's observed share per step (0 "
        "where its features were missing and filled, e.g. no face found).")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Refit and replace the fusion run in --out (another "
                                            "config's or this one's).")] = False,
    track: TrackOpt = None,
    track_uri: TrackUriOpt = None,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Late fusion: a Bi-LSTM (32 cells) over the prediction streams of unimodal runs (paper Eq. 12-14).

    Example: `musefusion fuse --streams runs/a runs/v runs/b --names A V B --out fusion/avb`.
    """
    # torch: imported on first use, so the CLI starts without it
    from musefusion.fusion.late import FusionConfig

    # torch: imported on first use, so the CLI starts without it
    from musefusion.fusion.late import fuse as fuse_streams

    check_track(track, track_uri)
    cfg = FusionConfig(streams=tuple(str(s) for s in streams), names=tuple(names or ()),
                       train_on=train_on,
                       folds=folds, epochs=epochs, seeds=tuple(seeds or (1,)), reliability=reliability)
    out = out or default_fusion_out(cfg)
    rundir.check_out(out, "run", overwrite, inputs=[Path(s) for s in streams], metrics_kinds=("fusion",))
    with rundir.writing(out), log_to_file(RunDir(out).log):
        m = fuse_streams(cfg, out, resume=not overwrite, overwrite=overwrite)
    streams_txt = ", ".join(f"{n} {v:.4f}" for n, v in m["stream_devel_ccc"].items())
    console.print(f"fused devel CCC {m['best']['devel_ccc']:.4f} (streams: {streams_txt}); run dir:", markup=False)
    console.print(Text(str(out), style="bold"))
    result({"run_dir": str(out), "metrics": m})
    if track:
        console.print(Text(f"logged to MLflow as run {tracking.log_run(out, track_uri)}"))


def register(app: typer.Typer) -> None:
    """Add ``fuse`` to the app."""
    app.command("fuse", cls=Command)(fuse)
