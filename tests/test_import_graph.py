"""The package's modules import one another without cycles (imports inside functions included)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import musefusion

SRC = Path(musefusion.__file__).parent


def _module_name(path: Path) -> str:
    parts = ["musefusion", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the musefusion modules it imports (the top-level package, the public facade, is left out)."""
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for t in targets:
                while t and t not in modules:
                    t = t.rsplit(".", 1)[0] if "." in t else ""
                if t and t != "musefusion" and t != name:
                    graph[name].add(t)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (c := visit(m)):
                return c
        state[n] = 2
        stack.pop()
        return None

    for n in sorted(graph):
        if n not in state and (c := visit(n)):
            return c
    return None


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


#: The layers, top to bottom: a module may import its own layer's and lower layers' modules, never a higher one's.
#: The base (``types``, ``errors``, ``fsutil``, ``config``, ``rundir``, ...) is every top-level module.
LAYERS = (("cli", "api", "__main__"), ("pipelines",), ("sweep", "fusion", "training"),
          ("models", "data", "features", "evaluation"))


def layer(module: str) -> int:
    """0 for the top layer (the package's ``__init__`` too: it re-exports the API), ``len(LAYERS)`` for the base."""
    if "." not in module:
        return 0
    part = module.split(".")[1]
    return next((i for i, names in enumerate(LAYERS) if part in names), len(LAYERS))


def test_no_module_imports_a_higher_layer():
    """``cli -> pipelines -> sweep/fusion/training -> models/data/features/evaluation -> base``."""
    upward = sorted(f"{a} -> {b}" for a, targets in import_graph().items() for b in targets if layer(b) < layer(a))
    assert upward == []


def test_no_package_cycle():
    """Packages, not only modules, form no cycle (``data`` once imported the 2 Hz grid from ``features``, which
    imports ``data``)."""
    package = {m: ".".join(m.split(".")[:2]) for m in import_graph()}
    graph: dict[str, set[str]] = {}
    for a, targets in import_graph().items():
        graph.setdefault(package[a], set()).update(package[b] for b in targets if package[b] != package[a])
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_the_layer_test_sees_an_upward_import():
    """The check itself: ``data`` is below ``pipelines``, and the base below both."""
    assert layer("musefusion.pipelines.reproduce") < layer("musefusion.data.corpus") < layer("musefusion.rundir")
    assert layer("musefusion.cli.app") == 0


def test_the_graph_sees_function_level_imports():
    graph = import_graph()
    assert "musefusion.training.run" in graph["musefusion.pipelines.reproduce"]  # imported inside reproduce()
    assert "musefusion.cli" not in {m.rsplit(".", 1)[0] for m in graph["musefusion.pipelines.reproduce"]}


#: What a comment beside an import inside a function must name: why it cannot sit at the top.
_REASONS = ("torch", "matplotlib", "scipy", "optional", "__init__")


def function_level_imports() -> list[tuple[str, int, str]]:
    """``(file, line, statement)`` of every import inside a function whose comment (on its line or the one above)
    does not give one of the :data:`_REASONS`."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        lines = path.read_text().splitlines()
        tree = ast.parse("\n".join(lines))
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    k = node.lineno - 2  # a comment above a run of imports covers the run
                    while lines[k].strip().startswith(("from ", "import ")):
                        k -= 1
                    here, above = lines[node.lineno - 1], lines[k].strip()
                    said = here.split("#", 1)[1] if "#" in here else above[1:] if above.startswith("#") else ""
                    if not any(why in said for why in _REASONS):
                        found.append((str(path.relative_to(SRC)), node.lineno, here.strip()))
    return found


def test_an_import_inside_a_function_says_why():
    """Imports belong at the top; one inside a function (a heavy or optional dependency) carries its reason."""
    assert function_level_imports() == []


def test_the_command_line_starts_without_torch():
    """What the lazy imports buy: ``musefusion --help`` and ``data check`` never load torch or matplotlib."""
    code = "import sys, musefusion.cli.app; print(sorted({'torch', 'matplotlib', 'optuna'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
