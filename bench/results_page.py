"""The results page every bench writes: its table under ``docs/results/<name>.md`` with the command that made it,
the commit, the date, the machine (cores, CPU model, torch version) and the wall time, so that no measured figure
is typed into prose by hand."""

from __future__ import annotations

import contextlib
import datetime
import io
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results"


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
                             cwd=RESULTS.parent.parent)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=RESULTS.parent.parent).stdout.strip()
        return out.stdout.strip() + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    """Cores, CPU model, Python and torch versions."""
    try:
        import torch  # torch: only to name its version

        tv = torch.__version__
    except ImportError:
        tv = "not installed"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cores} cores, {_cpu()}, Python {platform.python_version()}, torch {tv}"


def write_page(name: str, title: str, body: str, wall_s: float, notes: str = "") -> Path:
    """Write ``docs/results/<name>.md`` and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    command = " ".join(shlex.quote(a) for a in ["python", *sys.argv])
    head = [f"# {title}", "",
            "Written by the bench itself; do not edit by hand.", "",
            f"- command: `{command}`",
            f"- commit: {_commit()}",
            f"- date: {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
            f"- machine: {machine()}",
            f"- wall time: {wall_s / 60:.1f} min", ""]
    path = RESULTS / f"{name}.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(head) + ("\n" + notes.strip() + "\n\n" if notes else "\n") + body.strip() + "\n")
    tmp.replace(path)
    write_index()
    return path


class _Tee(io.TextIOBase):
    """Writes to the terminal and keeps a copy."""

    def __init__(self, stream: io.TextIOBase) -> None:
        self.stream, self.copy = stream, io.StringIO()

    def write(self, text: str) -> int:
        self.stream.write(text)
        self.copy.write(text)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def run_with_page(name: str, title: str, main: Callable[[], object], notes: str = "") -> None:
    """Run a bench's ``main()`` as before (its output on the terminal) and write what it printed, timed, as the
    results page ``docs/results/<name>.md``: Markdown tables as they are, anything else in a text block."""
    tee = _Tee(sys.stdout)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(tee):
        main()
    wall = time.perf_counter() - t0
    printed = tee.copy.getvalue().strip()
    markdown = any(line.startswith("|") for line in printed.splitlines())
    body = printed if markdown else f"```text\n{printed}\n```"
    print(f"results page: {write_page(name, title, body, wall, notes)}")


def _field(text: str, name: str) -> str:
    for line in text.splitlines():
        if line.startswith(f"- {name}: "):
            return line.split(": ", 1)[1]
    return ""


def write_index() -> Path:
    """``docs/results/index.md``: every results page with its title, date, machine and wall time (the site's
    navigation reaches the pages through it)."""
    rows = []
    for page in sorted(RESULTS.glob("*.md")):
        if page.name == "index.md":
            continue
        text = page.read_text()
        title = text.splitlines()[0].lstrip("# ").strip() if text else page.stem
        rows.append(f"| [{title}]({page.name}) | {_field(text, 'date')} | {_field(text, 'wall time')} | "
                    f"{_field(text, 'machine')} |")
    body = ["# Results", "",
            "Every page here is written by a script in `bench/` (it says which, with the command, the commit, the "
            "date, the machine and the wall time); none is edited by hand. A bench rewrites its page when it is run "
            "again, and this index with it.", "",
            "| page | date | wall time | machine |", "|---|---|---|---|", *rows, ""]
    path = RESULTS / "index.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(body))
    tmp.replace(path)
    return path


if __name__ == "__main__":
    print(write_index())
