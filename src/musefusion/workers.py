"""Worker processes that never outlive the command that started them."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal


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
