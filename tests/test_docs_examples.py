"""Every ```bash and ```python block of the README and the documentation runs, as shown, on a tiny corpus.

The pages run in one folder, in order (the README first, then the guides by name), as a reader working through them
would: ``demo/data`` holds a small synthetic MuSe-Stress corpus (the README's quick start makes the same one) and
``demo/physio`` a MuSe-Physio one; the blocks of a page run in order, so a block may use what an earlier one made.
Pages that show the same reproduction name the same folder, so it is trained once and reused by the others (as
``reproduce`` reuses finished runs), which keeps this test to a few minutes. The pages' tests share one xdist
worker (``make test`` runs ``--dist loadfile``: a module's tests, and its module fixtures, stay on one worker; pytest
9 ignores ``xdist_group`` marks). What is changed, only so that the suite stays fast, is listed in :data:`FAST`
(the budget, never the data or the command); a command whose exit code is not 0, a Python block that raises,
or a line that is neither a ``musefusion`` command nor one of the few handled below fails the test.

``make`` lines are dry-run (``make -n``: the target exists and its recipe expands); ``pip install`` lines must
name extras that ``pyproject.toml`` declares (the wheel test installs the package for real); ``mlflow ui``, a
server that runs until stopped, gets its options checked and its server modules imported. Commands that need
servers, downloads or real recordings are not in such blocks: the pages show them as ``text``.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.cli_helpers import run_bounded, run_cli

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").rglob("*.md") if "results" not in p.parts)]
BLOCK = re.compile(r"^```(bash|python)\n(.*?)^```", re.MULTILINE | re.DOTALL)

#: option -> value used here: the budget only (epochs, trials, profile), so each command runs in seconds
FAST = {"--epochs": "1", "--trials": "2", "--tune-trials": "2", "--profile": "smoke"}
PY_FAST = [(re.compile(r"\bepochs=\d+"), "epochs=1"), (re.compile(r"profile=\"(quick|paper)\""), 'profile="smoke"')]


def blocks(page: Path) -> list[tuple[str, str]]:
    """(language, code) of every bash/python block of ``page``, in order."""
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(page.read_text())]


def shell_commands(code: str) -> list[list[str]]:
    """The commands of a bash block: continuation lines joined, comments dropped."""
    return [shlex.split(line, comments=True) for line in code.replace("\\\n", " ").splitlines()
            if shlex.split(line, comments=True)]


def fast(argv: list[str]) -> list[str]:
    """``argv`` with the budget options of :data:`FAST` (and a profile given as ``--profile=X``) made small."""
    out, i = [], 0
    while i < len(argv):
        a = argv[i]
        if a in FAST and i + 1 < len(argv):
            out += [a, FAST[a]]
            i += 2
            continue
        out.append(a)
        i += 1
    return out


def run_shell(argv: list[str], cwd: Path) -> None:
    name = argv[0]
    if name == "musefusion":
        code = run_cli(fast(argv[1:]))
        assert code == 0, f"`{shlex.join(argv)}` exited {code}"
    elif name == "make":
        subprocess.run(["make", "-n", *argv[1:]], cwd=ROOT, check=True, capture_output=True)
    elif name == "pip" and argv[1:2] == ["install"]:
        declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
        for spec in argv[2:]:
            extras = re.search(r"\[([^\]]*)\]", spec)
            if extras:
                assert set(extras.group(1).split(",")) <= declared, spec
    elif name == "mlflow" and argv[1:2] == ["ui"]:  # a server that runs until stopped: its options are checked
        done = run_bounded([Path(sys.executable).with_name("mlflow"), *argv[1:], "--help"], 120)
        assert done.returncode == 0 and "--backend-store-uri" in done.stdout, done.stderr[-2000:]
        subprocess.run([sys.executable, "-c", "import flask, mlflow.server"], check=True, timeout=120)
    else:
        pytest.fail(f"`{shlex.join(argv)}`: not a command this test can run; show it as a ```text block")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reader's folder, shared by every page: the corpora the pages name."""
    base = tmp_path_factory.mktemp("docs-reader")
    # the README's quick start synthesises this very corpus (same settings: it is reused, not rewritten)
    assert run_cli(["synth", base / "demo" / "data", "--split", "6/3/3", "--minutes", "1"]) == 0
    assert run_cli(["synth", base / "demo" / "physio", "--task", "physio", "--split", "6/3/3", "--minutes", "1"]) == 0
    return base


def test_every_page_has_its_blocks_found() -> None:
    """The collector sees the README's quick start (a change of fence style would silently skip every block)."""
    langs = [lang for lang, _ in blocks(ROOT / "README.md")]
    assert "python" in langs and langs.count("bash") >= 2


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p)], ids=lambda p: str(p.relative_to(ROOT)))
def test_page_examples_run(page: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSEFUSION_CACHE", str(workdir / "cache"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{workdir / 'mlruns.db'}")
    monkeypatch.delenv("MUSEFUSION_DATA", raising=False)
    monkeypatch.chdir(workdir)
    for lang, code in blocks(page):
        if lang == "bash":
            for argv in shell_commands(code):
                run_shell(argv, workdir)
        else:
            for pattern, repl in PY_FAST:
                code = pattern.sub(repl, code)
            exec(compile(code, f"{page.name}:python", "exec"), {"__name__": "__docs__"})
