"""Every public function and method of the public API has a numpy-style docstring with the
sections the API reference renders: ``Parameters`` naming every parameter, ``Returns`` (or
``Yields``) when it returns something, and ``Raises`` naming every exception it raises itself.

The public API is what ``import tradepolicy as tp`` exports (``tp.__all__``, with the public
functions of ``tp.regions`` and ``tp.measures``), the ``ds.tp`` accessor, the pathway views and
the sweep functions: the objects the API reference (docs/api/) documents. ruff's pydocstyle
rules (pyproject.toml) check the form of these docstrings; this test checks their content
against the signatures, which pydocstyle's numpy convention does not.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import types
from collections.abc import Callable, Iterator
from typing import Any

import griffe
import pytest

import tradepolicy as tp
from tradepolicy import experiments, measures, regions
from tradepolicy.pathway import views
from tradepolicy.results.accessor import TradePolicyAccessor


def _public_functions(module: types.ModuleType) -> Iterator[tuple[str, Any]]:
    """The functions of ``module.__all__``, else the public functions it defines."""
    names = getattr(module, "__all__", None) or [
        n
        for n, obj in vars(module).items()
        if not n.startswith("_") and getattr(obj, "__module__", None) == module.__name__
    ]
    for name in names:
        obj = getattr(module, name)
        if inspect.isfunction(obj):
            yield f"{module.__name__}.{name}", obj


def _members(cls: type) -> Iterator[tuple[str, Any]]:
    """The public methods and properties a class defines itself (not inherited ones, not
    pydantic's)."""
    for name, raw in vars(cls).items():
        if name.startswith("_") and name != "__init__":
            continue
        if name == "__init__" and raw is object.__init__:
            continue
        if isinstance(raw, (staticmethod, classmethod)):
            raw = raw.__func__
        if isinstance(raw, property) or inspect.isfunction(raw):
            yield f"{cls.__module__}.{cls.__qualname__}.{name}", raw


def public_api() -> list[tuple[str, Any]]:
    """``(dotted name, object)`` for every public function, class, method and property."""
    out: list[tuple[str, Any]] = []
    for name in tp.__all__:
        obj = getattr(tp, name)
        if inspect.isfunction(obj):
            out.append((f"tradepolicy.{name}", obj))
        elif inspect.isclass(obj):
            out.append((f"tradepolicy.{name}", obj))
            out.extend(_members(obj))
    for module in (regions, measures, experiments, views):
        out.extend(_public_functions(module))
    out.append(("tradepolicy.results.accessor.TradePolicyAccessor", TradePolicyAccessor))
    out.extend(_members(TradePolicyAccessor))
    seen: set[int] = set()
    unique = []
    for name, obj in out:
        if id(obj) not in seen:
            seen.add(id(obj))
            unique.append((name, obj))
    return unique


def _sections(doc: str) -> dict[str, list[str]]:
    """``{section kind: names}`` of a numpy docstring, parsed by griffe (mkdocstrings' parser)."""
    parsed = griffe.Docstring(doc, parser="numpy").parse(warnings=False)
    out: dict[str, list[str]] = {}
    for section in parsed:
        kind = section.kind.value
        names = []
        if isinstance(section.value, list):
            for item in section.value:
                names.append(getattr(item, "name", "") or str(getattr(item, "annotation", "")))
        out.setdefault(kind, []).extend(names)
    return out


def _raised(func: Callable[..., Any]) -> set[str]:
    """The exception classes ``func`` raises in its own body (``raise Name(...)``)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError):
        return set()
    body = tree.body[0]
    names: set[str] = set()
    stack: list[ast.AST] = list(ast.iter_child_nodes(body))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue  # a nested function raises on its own account
        if isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(exc, ast.Name) and exc.id[:1].isupper():
                names.add(exc.id)
            elif isinstance(exc, ast.Attribute):
                names.add(exc.attr)
        stack.extend(ast.iter_child_nodes(node))
    return names


def problems(name: str, obj: Any) -> list[str]:
    """What the docstring of ``obj`` lacks (empty when it is complete)."""
    doc = inspect.getdoc(obj.fget if isinstance(obj, property) else obj)
    if not doc:
        return [f"{name}: no docstring"]
    if isinstance(obj, property) or inspect.isclass(obj):
        return []  # a property documents a value; a class's parameters are on its __init__
    out = []
    sections = _sections(doc)
    if name.endswith(".__init__"):  # rendered merged into the class (mkdocs.yml)
        owner = inspect.getdoc(obj.__globals__.get(obj.__qualname__.split(".")[0])) or ""
        for kind, names in _sections(owner).items():
            sections.setdefault(kind, []).extend(names)
    sig = inspect.signature(obj)
    params = [p for p in sig.parameters if p not in ("self", "cls") and not p.startswith("_")]
    documented = {
        n.lstrip("*")
        for kind in ("parameters", "other parameters", "attributes")
        for n in sections.get(kind, [])
    }
    missing = [p for p in params if p not in documented]
    if missing:
        out.append(f"{name}: parameters not in a Parameters section: {missing}")
    returns = sig.return_annotation
    if name.endswith(".__init__"):
        pass
    elif returns is inspect.Signature.empty:
        out.append(f"{name}: no return annotation")
    elif returns not in (None, "None") and not ({"returns", "yields"} & sections.keys()):
        out.append(f"{name}: returns {returns} but has no Returns section")
    undocumented = _raised(obj) - set(sections.get("raises", []))
    if undocumented:
        out.append(f"{name}: raises {sorted(undocumented)} not in a Raises section")
    return out


API = public_api()


def test_the_public_api_is_found() -> None:
    names = {n for n, _ in API}
    for expected in (
        "tradepolicy.solve",
        "tradepolicy.load_market",
        "tradepolicy.market.Market.at_horizon",
        "tradepolicy.chain.Chain",
        "tradepolicy.scenario.ScenarioSet",
        "tradepolicy.experiments.sweep.sweep",
        "tradepolicy.pathway.views.options_table",
        "tradepolicy.results.accessor.TradePolicyAccessor.summary",
        "tradepolicy.regions.bloc_members",
    ):
        assert any(n.endswith(expected.rsplit(".", 1)[-1]) for n in names), expected
    assert len(API) > 60


@pytest.mark.parametrize(("name", "obj"), API, ids=[n for n, _ in API])
def test_public_docstring_is_complete(name: str, obj: Any) -> None:
    assert problems(name, obj) == []


def test_the_checker_finds_gaps() -> None:
    """The checks can fail: a docstring without the sections its signature needs."""

    def f(a: int, *, b: str = "") -> int:
        """Do something.

        Parameters
        ----------
        a : int
            The a.
        """
        if a < 0:
            raise ValueError(a)
        return a

    found = problems("f", f)
    assert any("['b']" in p for p in found)
    assert any("no Returns section" in p for p in found)
    assert any("ValueError" in p for p in found)

    def g(a: int) -> int:
        """Do something.

        Parameters
        ----------
        a : int
            The a.

        Returns
        -------
        int
            The a.

        Raises
        ------
        ValueError
            If ``a`` is negative.
        """
        if a < 0:
            raise ValueError(a)
        return a

    assert problems("g", g) == []
