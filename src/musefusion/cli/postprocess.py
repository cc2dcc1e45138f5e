"""``musefusion postprocess``: delay, smoothing and bias/scale correction of a run's predictions, chosen on devel."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from musefusion.cli.options import DataOpt, JsonOpt, QuietOpt
from musefusion.cli.parsing import Command
from musefusion.progress import out as console
from musefusion.progress import result


def postprocess(
    run_dir: Annotated[Path, typer.Argument(help="A finished run (train, fuse, reproduce's runs or selection).")],
    out: Annotated[Path, typer.Option(help="The post-processed run folder to write.")],
    data: DataOpt = None,
    folds: Annotated[int, typer.Option(help="Folds of devel subjects for the cross-validated estimate.")] = 3,
    max_delay_s: Annotated[float, typer.Option(help="Longest prediction delay searched, in seconds (0: no delay "
                                               "step; AVEC 2018 searched 0-9.6 s).")] = 10.0,
    windows: Annotated[list[int] | None, typer.Option(
        help="Moving-average windows searched, in steps, odd (default: 1 3 5 9 15 21 31; 1 alone: no smoothing).",
        show_default=False)] = None,
    affine: Annotated[bool, typer.Option("--affine/--no-affine", help="Search the bias and scale correction.")]
    = True,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a post-processed run in --out.")] = False,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Delay, smooth and rescale a run's predictions, each step chosen on devel and kept only when it helps.

    The devel CCC after the chain is optimistic (the chain was chosen there); the cross-validated CCC (the chain
    chosen on the other folds of devel subjects) is the estimate to trust.

    Example: `musefusion postprocess runs/reproduce-stress-quick/fusion/arousal/selected --out runs/arousal-post`.
    """
    # torch: imported on first use, so the CLI starts without it
    from musefusion.fusion.postprocess import WINDOWS
    from musefusion.pipelines.postprocessing import postprocess_run

    m = postprocess_run(run_dir, out, root=data, folds=folds, max_delay_s=max_delay_s,
                        windows=tuple(windows) if windows else WINDOWS, affine=affine, overwrite=overwrite)
    c = m["chain"]
    console.print(Text(f"chosen: delay {c['delay_s']:.1f} s, window {c['window']} steps, "
                       f"bias/scale {'on' if c['affine'] else 'off'}; devel CCC {m['devel_ccc_before']:.4f} -> "
                       f"{m['best']['devel_ccc']:.4f} (chosen there), cross-validated {m['cv_devel_ccc_before']:.4f}"
                       f" -> {m['cv_devel_ccc']:.4f}; run dir:"))
    console.print(Text(str(out), style="bold"))
    result({"run_dir": str(out), "metrics": m})


def register(app: typer.Typer) -> None:
    """Add ``postprocess`` to the app."""
    app.command("postprocess", cls=Command)(postprocess)
