"""Console output that survives any terminal: no hard wraps, plain text for data, plain progress off a TTY.

Every command prints through :data:`out` (results, stdout) and :data:`err` (log lines, progress, errors, stderr).
Both soft-wrap: a line is never broken by rich, so a printed path can always be copied whole, whatever
``COLUMNS`` says (unset in cron, Slurm or a plain ``sh``, or 40 on a phone). In a terminal, long work shows a
live rich progress display; redirected to a file or pipe, the same work writes one plain line per event.

Anything that comes from data or files is printed with :func:`plain` (a :class:`rich.text.Text`), never parsed
as markup, so ``[/oops]`` in a CSV cell or a path prints as itself.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from rich.console import Console
from rich.measure import Measurement
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

T = TypeVar("T")

#: Results (stdout) and everything else (stderr): log lines, progress, errors.
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)


#: The output mode of the running command (``--quiet``, ``--json``) and its result for ``--json``.
MODE: dict[str, Any] = {"quiet": False, "json": False, "result": None}


def set_quiet() -> None:
    """``--quiet``: warnings and errors only on stderr (no progress display, no INFO lines)."""
    MODE["quiet"] = True
    logging.getLogger().setLevel(logging.WARNING)


def set_json() -> None:
    """``--json``: nothing but one JSON object on stdout (:func:`result`), printed when the command ends."""
    MODE["json"] = True
    out.quiet = True


def result(payload: dict[str, Any]) -> None:
    """The command's result: what ``--json`` prints (the human output goes to :data:`out` as before)."""
    MODE["result"] = payload


class BestSoFar:
    """Each seed's best devel CCC so far and its epoch: the epoch a run keeps, as progress displays show it."""

    def __init__(self) -> None:
        self._best: dict[int, tuple[float, int]] = {}

    def update(self, seed: int, ccc: float, epoch: int) -> tuple[float, int] | None:
        """Take one epoch's devel CCC (NaN when not scored); the best (CCC, epoch) of the seed so far, or None."""
        if ccc == ccc and ccc > self._best.get(seed, (float("-inf"), 0))[0]:
            self._best[seed] = (ccc, epoch)
        return self._best.get(seed)


def plain(text: object, style: str = "") -> Text:
    """``text`` as a rich Text: printed as it is, never interpreted as markup."""
    return Text(str(text), style=style)


def print_table(table: Table, console: Console | None = None) -> None:
    """Print a table at its natural width (never squeezed into ``COLUMNS``, so no cell is wrapped)."""
    console = console or out
    if console.quiet:  # --json: nothing but the JSON object on stdout
        return
    natural = Measurement.get(console, console.options.update_width(100_000), table).maximum
    if natural <= console.width:
        console.print(table)
        return
    wide = Console(file=console.file, width=natural, color_system=console.color_system,  # type: ignore[arg-type]
                   force_terminal=console.is_terminal, highlight=False, soft_wrap=True)
    wide.print(table)


class ConsoleLogHandler(logging.Handler):
    """Log records as single soft-wrapped plain lines on :data:`err` (``warning: ...`` / ``error: ...``).

    Unlike rich's ``RichHandler`` it never lays a message out in columns, so nothing is wrapped mid-path, and a
    message is never read as markup.
    """

    _PREFIX = {logging.WARNING: ("warning: ", "yellow"), logging.ERROR: ("error: ", "red"),
               logging.CRITICAL: ("error: ", "red")}

    def __init__(self, console: Console | None = None, prefix: str = "") -> None:
        super().__init__()
        self.console = console or err
        self.prefix = prefix

    def emit(self, record: logging.LogRecord) -> None:
        """Print one record."""
        try:
            msg = self.format(record)
            label, style = self._PREFIX.get(record.levelno, ("", ""))
            line = Text(self.prefix)
            if label:
                line.append(label, style=style)
            line.append(msg)
            self.console.print(line, soft_wrap=True)
        except Exception:  # logging must never raise into the caller
            self.handleError(record)


@contextlib.contextmanager
def console_handler(handler: logging.Handler) -> Iterator[None]:
    """Use ``handler`` instead of the console handlers of the root logger while the block runs."""
    root = logging.getLogger()
    replaced = [h for h in root.handlers if isinstance(h, ConsoleLogHandler)]
    for h in replaced:
        root.removeHandler(h)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        for h in replaced:
            root.addHandler(h)


@contextlib.contextmanager
def api_progress(enabled: bool = True) -> Iterator[Callable[[str, int], Callable[[str], None]] | None]:
    """What a Python API call shows while it runs: musefusion's own log lines (epochs, finished jobs, its workers'
    too) on stderr, and a bar per stage (one plain line per finished job when stderr is not a terminal).

    Nothing is shown with ``enabled=False``; where the caller has configured logging (the root logger has
    handlers), the records go to those handlers as before and only the stage display is added.

    Yields:
        ``on_stage(name, n_jobs)`` returning the callback for each finished job's label (``reproduce``'s
        ``progress`` argument), or None when disabled.
    """
    if not enabled:
        yield None
        return
    root = logging.getLogger()
    handler = None
    if not root.handlers:
        handler = ConsoleLogHandler()
        handler.addFilter(lambda record: record.name.startswith("musefusion"))
        old_level = root.level
        root.addHandler(handler)
        root.setLevel(logging.INFO)
    progress = make_progress("{last}")

    def on_stage(name: str, n: int) -> Callable[[str], None]:
        tid = progress.add_task(name, total=max(n, 1), last="", completed=0 if n else 1)
        return lambda label: progress.update(tid, advance=1, last=label)

    try:
        with progress:
            yield on_stage
    finally:
        if handler is not None:
            root.removeHandler(handler)
            root.setLevel(old_level)


def configure_logging(level: int = logging.INFO, prefix: str = "") -> None:
    """Send log records to :class:`ConsoleLogHandler` (replacing earlier handlers)."""
    logging.basicConfig(level=level, format="%(message)s", handlers=[ConsoleLogHandler(prefix=prefix)], force=True)


class PlainProgress:
    """The subset of :class:`rich.progress.Progress` the commands use, written as one plain line per event.

    Used when stderr is not a terminal: a log file then gets ``seed 1: 3/8 devel CCC 0.4123 (12 s)`` lines
    instead of nothing (rich draws a live display only in a terminal).
    """

    def __init__(self, console: Console, template: str = "") -> None:
        self.console = console
        self.template = template
        self._tasks: dict[int, dict[str, Any]] = {}
        self._t0 = time.perf_counter()
        self.whole_eta: Callable[[], float | None] | None = None  # seconds left of the whole command, where known
        self.live = self  # ``progress.live.is_started`` as in rich
        self.is_started = False

    def add_task(self, description: str, total: float | None = 100, completed: float = 0, **fields: Any) -> int:
        """Register a task; nothing is printed until it advances."""
        tid = len(self._tasks)
        self._tasks[tid] = {"description": description, "total": total, "completed": completed, "fields": fields,
                            "t0": time.perf_counter()}
        return tid

    def remove_task(self, task_id: int) -> None:
        """Forget a task (as rich's: nothing printed)."""
        self._tasks.pop(task_id, None)

    def update(self, task_id: int, *, completed: float | None = None, advance: float | None = None,
               description: str | None = None, total: float | None = None, **fields: Any) -> None:
        """Update a task and print a line when it moved (or its description changed)."""
        t = self._tasks[task_id]
        before = (t["completed"], t["description"])
        if total is not None:
            t["total"] = total
        if completed is not None:
            t["completed"] = completed
        if advance:
            t["completed"] += advance
        if description is not None:
            t["description"] = description
        t["fields"].update(fields)
        if (t["completed"], t["description"]) != before:
            self._print(t)

    def advance(self, task_id: int, advance: float = 1) -> None:
        """Advance a task by ``advance`` steps."""
        self.update(task_id, advance=advance)

    def _print(self, t: dict[str, Any]) -> None:
        done = int(t["completed"])
        total = f"/{int(t['total'])}" if t["total"] else ""
        extra = self.template.format(**t["fields"]) if self.template else ""
        now = time.perf_counter()
        elapsed = now - self._t0
        eta = ""
        if t["total"] and 0 < done < t["total"]:  # from this task's own measured pace
            eta = f", stage ETA {duration((now - t['t0']) / done * (t['total'] - done))}"
        whole = self.whole_eta() if self.whole_eta is not None else None
        if whole is not None:
            eta += f", whole run ETA {duration(whole)}"
        self.console.print(Text(f"{t['description']}: {done}{total}{' ' + extra if extra else ''} "
                                f"({duration(elapsed)}{eta})"), soft_wrap=True)

    def start(self) -> None:
        """Mark the display started (nothing to draw)."""
        self.is_started = True

    def stop(self) -> None:
        """Mark the display stopped."""
        self.is_started = False

    def __enter__(self) -> PlainProgress:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def duration(seconds: float) -> str:
    """A duration for people: ``45 s``, ``4 min 10 s``, ``2 h 5 min``.

    Examples:
        >>> duration(44.6), duration(250), duration(7500)
        ('45 s', '4 min 10 s', '2 h 5 min')
    """
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def make_progress(template: str = "", description_width: int | None = None) -> Any:
    """A live rich progress display on a terminal, else :class:`PlainProgress` (one line per event).

    Args:
        template: the extra text after ``done/total``, formatted with the task's fields
            (e.g. ``"devel CCC {ccc}"``).
        description_width: pad descriptions to this width in the live display.

    Returns:
        A :class:`rich.progress.Progress` or a :class:`PlainProgress` (typed ``Any``: both take the task ids
        ``add_task`` returns, which rich types as ``TaskID`` and the plain one as ``int``).
    """
    if MODE["quiet"]:
        return PlainProgress(Console(quiet=True), template)
    if not err.is_terminal:
        return PlainProgress(err, template)
    desc = "{task.description}" if description_width is None else f"{{task.description:<{description_width}}}"
    columns: list[Any] = [TextColumn(desc), BarColumn(), MofNCompleteColumn()]
    if template:
        columns.append(TextColumn(template.replace("{", "{task.fields[").replace("}", "]}")))
    columns += [TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    return Progress(*columns, console=err, transient=False)


def track(items: Iterable[T], description: str) -> Iterator[T]:
    """Iterate with a progress display: live in a terminal, else a line at every tenth of the way."""
    items = list(items)
    progress = make_progress()
    every = 1 if isinstance(progress, Progress) else max(1, len(items) // 10)
    with progress:
        tid = progress.add_task(description, total=len(items))
        for k, item in enumerate(items, 1):
            yield item
            if k % every == 0 or k == len(items):
                progress.update(tid, completed=k)


class JobDisplay(logging.Handler):
    """Where ``reproduce``'s log records go while it runs (its own and its worker processes').

    A job's per-epoch record (one with a ``progress`` dict: job, seed, epoch, epochs, best) updates that job's row
    of the live display in a terminal (the row goes when the job ends: :meth:`done`), and prints as one plain line
    naming the run when stderr is redirected. Every other record prints as a :class:`ConsoleLogHandler` line, above
    the live display, never through it.
    """

    def __init__(self, progress: Any) -> None:
        super().__init__()
        self.progress = progress
        self.live = not isinstance(progress, PlainProgress)
        self.lines = ConsoleLogHandler()
        self.rows: dict[str, Any] = {}
        self.ended: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        """Route one record."""
        info = getattr(record, "progress", None)
        if info is None or not self.live:
            self.lines.emit(record)
            return
        try:
            job, best = str(info["job"]), info["best"]
            if job in self.ended:  # a late record of a finished job (the queue lags the result): no row
                return
            desc = f"  {job} seed {info['seed']}"
            if job not in self.rows:
                self.rows[job] = self.progress.add_task(desc, total=info["epochs"], last="")
            self.progress.update(self.rows[job], description=desc, completed=info["epoch"], total=info["epochs"],
                                 last=f"best devel CCC {best:.4f}" if best == best else "")
        except Exception:  # progress must never raise into the job
            self.handleError(record)

    def done(self, job: str) -> None:
        """The job ``job`` ended: drop its row."""
        self.ended.add(job)
        tid = self.rows.pop(job, None)
        if tid is not None:
            self.progress.remove_task(tid)
