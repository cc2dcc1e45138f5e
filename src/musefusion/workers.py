"""Worker processes that never outlive the command that started them."""

from __future__ import annotations

import contextlib
import signal


def die_with_parent() -> None:
    """Linux: get SIGKILL when the parent dies, so killing a command (even with -9) leaves no orphan worker.

    Used as the initializer of every worker process pool (``reproduce`` jobs, sweep workers).
    """
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
