"""The pipelines read their configs typed: no parameter named ``cfg`` or ``config`` annotated ``Any`` (the
reproduction's config has its own module, :mod:`musefusion.pipelines.experiment`, below the pipeline and its
report), and profiles are read by attribute, never by string key."""

from __future__ import annotations

import ast

from tests.test_import_graph import SRC

PIPELINES = sorted((SRC / "pipelines").rglob("*.py"))


def _untyped_configs(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for a in [*node.args.args, *node.args.kwonlyargs]:
                if a.arg in ("cfg", "config") and (a.annotation is None and a.arg != "self"
                                                   or ast.unparse(a.annotation or ast.Constant(None)) == "Any"):
                    found.append(f"{node.name}({a.arg}: {ast.unparse(a.annotation) if a.annotation else '?'})")
    return found


def test_no_pipeline_takes_an_untyped_config():
    found = {p.name: _untyped_configs(ast.parse(p.read_text())) for p in PIPELINES}
    assert not {k: v for k, v in found.items() if v}


def test_the_check_sees_an_untyped_config():
    assert _untyped_configs(ast.parse("def f(cfg: Any, x: int) -> None: ...")) == ["f(cfg: Any)"]
    assert _untyped_configs(ast.parse("def f(cfg: ReproduceConfig) -> None: ...")) == []


def test_no_profile_is_read_by_string_key():
    """``settings["epochs"]`` or ``s.get("win_len", 300)``: a second copy of a profile's default, read past its
    type; ``ProfileSettings`` gives every number by attribute."""
    bad = []
    for p in PIPELINES:
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Subscript) and ast.unparse(node.value).endswith("settings"):
                bad.append(f"{p.name}: {ast.unparse(node)}")
    assert not bad


def _positional_keys(source: str) -> list[str]:
    """``k[3]``, ``k[:3]``, ``key[0]``: a result key read by position."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id in ("k", "key")
                and (isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, int)
                     or isinstance(node.slice, ast.Slice))):
            found.append(ast.unparse(node))
    return found


def test_no_result_key_is_read_by_position():
    """The summary's keys are ``RowKey``/``FusionKey`` (pipelines.results): read by name, never ``k[3]``."""
    found = {p.name: _positional_keys(p.read_text()) for p in [*PIPELINES, SRC / "api.py"]}
    assert not {k: v for k, v in found.items() if v}
    assert _positional_keys("x = [k for k in d if k[3] == t and k[:3] in table]") == ["k[3]", "k[:3]"]
