"""Running the real entry point from tests: exit codes, the one error line, and what a command left on disk."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
from pathlib import Path

from musefusion.cli.app import main


def run_cli(argv: list) -> int:
    """``main(argv)``; the exit code (0 when it returns normally)."""
    try:
        main([str(a) for a in argv])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def the_error_line(err: str) -> str:
    """The single ``error:`` line of ``err`` (fails when there are none, several, or a traceback)."""
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> content hash of every regular file under ``root`` (symlinks are not followed)."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): hashlib.blake2b(p.read_bytes(), digest_size=8).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


def run_bounded(argv: list, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """``subprocess.run(argv, capture_output=True, text=True, timeout=timeout, ...)`` in a session of its own, killed
    with every child it started when the time is up. Plain ``subprocess.run`` kills only the direct child and then
    waits for its output pipes, which a grandchild (a browser's renderer, a pool's worker, a server) still holds:
    that wait never ends, and the whole suite hangs."""
    kwargs.setdefault("text", True)
    with subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          start_new_session=True, **kwargs) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            raise AssertionError(f"`{' '.join(map(str, argv))}` ran over {timeout} s; its output ends:\n"
                                 f"{(out or '')[-2000:]}\n{(err or '')[-2000:]}") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
