"""Running the real entry point from tests: exit codes and the one error line."""

from __future__ import annotations

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
