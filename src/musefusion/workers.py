"""Worker processes that never outlive the command that started them."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import logging.handlers
import multiprocessing
import os
import signal
import sys
from collections.abc import Iterator
from typing import Any


def die_with_parent(parent_pid: int | None = None) -> None:
    """Linux: get SIGKILL when the parent dies, so killing a command (even with -9) leaves no orphan worker.

    Used as the initializer of every worker process pool (``reproduce`` jobs, sweep workers). When the parent died
    while this worker was still starting (before the request could be made), the worker exits at once.

    Args:
        parent_pid: the pid of the process that started the pool (``os.getpid()`` there).
    """
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)  # orphaned before PR_SET_PDEATHSIG took effect


@contextlib.contextmanager
def main_not_rerun() -> Iterator[None]:
    """While worker processes start: spawn them without running the caller's script again.

    Python's ``spawn`` start method imports the ``__main__`` module in every child, so a plain script that calls
    ``mf.reproduce(...)`` at its top level would call it again in each worker (which dies, and the pool with it)
    unless the call sits under ``if __name__ == "__main__":``. The workers run only musefusion's own functions,
    never one defined in ``__main__``, so while the block runs the script's path and module spec are hidden from the
    children's preparation data (``multiprocessing.spawn.get_preparation_data`` reads those two attributes) and no
    guard is needed. Start every worker process inside this block.
    """
    main = sys.modules.get("__main__")
    saved: dict[str, Any] = ({k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
                             if main else {})
    if main is not None:
        main.__dict__.pop("__file__", None)
        main.__dict__["__spec__"] = None
    try:
        yield
    finally:
        if main is not None:
            main.__dict__.pop("__spec__", None)
            main.__dict__.update(saved)


class _Prefixed(logging.Filter):
    """Prefix a worker's records (formatted in the worker: the parent prints them as they are)."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self.prefix + record.getMessage(), None
        return True


@contextlib.contextmanager
def worker_logs() -> Iterator[Any]:
    """A queue for spawned workers' log records, handled here by this process's handlers while the block runs.

    The parent's handlers (a live progress display, the log file) print and keep every worker's records, so no
    worker writes to the terminal itself and breaks a progress bar. Without a handler configured (a notebook),
    Python's last-resort handler shows warnings as before. Workers send to the queue with :func:`log_to_parent`.
    """
    queue = multiprocessing.get_context("spawn").Queue()
    root = logging.getLogger()
    handlers = list(root.handlers) or [h for h in (logging.lastResort,) if h is not None]
    listener = logging.handlers.QueueListener(queue, *handlers, respect_handler_level=True)
    listener.start()
    try:
        yield queue
    finally:
        listener.stop()


def log_to_parent(queue: Any, level: int, prefix: str = "") -> None:
    """In a spawned worker: send every log record (``prefix`` before its message) to the parent's
    :func:`worker_logs` queue instead of writing it anywhere."""
    handler = logging.handlers.QueueHandler(queue)
    if prefix:
        handler.addFilter(_Prefixed(prefix))
    logging.basicConfig(level=level, format="%(message)s", handlers=[handler], force=True)
