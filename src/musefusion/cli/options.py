"""Options shared by several commands, defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from musefusion.types import Task

DataOpt = Annotated[Optional[Path], typer.Option(  # noqa: UP045 - typer needs Optional here
    "--data", help="Data root holding c3_muse_stress/ or c4_muse_physio/ (or a corpus folder). "
                   "Default: $MUSEFUSION_DATA.", show_default=False)]
TaskOpt = Annotated[Task, typer.Option("--task", help="MuSe sub-challenge.", case_sensitive=False)]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed.")]
