"""The command line as one click command: what ``mkdocs-click`` reads to write the CLI reference (docs/cli.md)."""

import typer

from musefusion.cli.app import app

#: every command and sub-command with its options and help, as ``musefusion --help`` shows them
command = typer.main.get_command(app)
