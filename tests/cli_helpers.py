"""Running the real entry point from tests: exit codes, the one error line, and what a command left on disk."""

from __future__ import annotations

import hashlib
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
