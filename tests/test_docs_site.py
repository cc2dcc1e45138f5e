"""The documentation site builds in strict mode, its references list every command and the API's entry points,
and every results page says how it was made."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results"
API = ("train", "fuse", "reproduce", "evaluate", "load_corpus", "extract", "ccc")


def command_names(cmd, prefix: str = "") -> list[str]:  # noqa: ANN001 - typer's vendored click command
    names = []
    for name, sub in getattr(cmd, "commands", {}).items():
        names.append(name)
        names += command_names(sub, f"{prefix}{name} ")
    return names


@pytest.mark.slow
def test_site_builds_strict_with_every_command_and_api_entry(tmp_path: Path) -> None:
    from musefusion.cli.reference import command

    site = tmp_path / "site"
    mkdocs = Path(sys.executable).with_name("mkdocs")
    done = subprocess.run([str(mkdocs), "build", "--strict", "--site-dir", str(site)], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    cli = (site / "cli" / "index.html").read_text()
    anchors = set(re.findall(r'<h\d id="([^"]+)"', cli))
    names = command_names(command)
    assert len(names) >= 20
    assert set(names) <= anchors, sorted(set(names) - anchors)
    reference = (site / "reference" / "index.html").read_text()
    for name in API:
        assert f'id="musefusion.{name}"' in reference, name
    assert "Args" in reference or "Parameters" in reference


def test_every_results_page_says_how_it_was_made() -> None:
    pages = [p for p in RESULTS.glob("*.md") if p.name != "index.md"]
    assert pages
    index = (RESULTS / "index.md").read_text()
    for page in pages:
        text = page.read_text()
        for field in ("command", "commit", "date", "machine", "wall time"):
            assert re.search(rf"^- {field}: \S", text, re.MULTILINE), f"{page.name}: no {field}"
        assert f"]({page.name})" in index, f"{page.name} is not in docs/results/index.md"


def test_readme_headline_is_the_results_page_table() -> None:
    """The README's only measured figures are the headline table, copied from the demo's results page."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- headline: written by bench/demo.py from docs/results/demo.md -->")[1]
    block = block.split("<!-- /headline -->")[0]
    table = [line for line in block.splitlines() if line.startswith("|")]
    assert len(table) >= 4
    page = (RESULTS / "demo.md").read_text()
    assert "\n".join(table) in page
    outside = readme.replace(block, "")
    assert not re.search(r"\b0\.\d{3,}\b", outside), "a measured figure outside the headline table"
    assert len(readme.splitlines()) <= 220
