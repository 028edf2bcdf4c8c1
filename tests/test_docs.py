"""The documentation's executable parts: doctests and docstring coverage.

- every doctest in the ``dfo`` package (``>>>`` examples in docstrings) passes;
- every ``>>>`` example on the documentation pages (``docs/**/*.md``) passes;
- every public name (in a module's ``__all__``) has a docstring, and one with a
  ``Parameters`` section when it takes parameters;
- the pages refer only to gallery examples that exist, and the gallery's order
  lists every example.

The HTML build itself (``sphinx-build -W``) runs separately in CI.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import inspect
import pkgutil
import re
import sys
from pathlib import Path
from typing import Any

import pytest

import dfo

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

#: optional dependencies: a module that needs one is skipped when it is missing
OPTIONAL = {"dask", "distributed", "threadpoolctl"}

MODULES = sorted(["dfo", *(name for _, name, _ in pkgutil.walk_packages(dfo.__path__, "dfo."))])
PAGES = sorted(
    p for p in DOCS.rglob("*.md") if "_build" not in p.parts and "_generated" not in p.parts
)


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        if exc.name and exc.name.split(".")[0] in OPTIONAL:
            pytest.skip(f"{name} needs the optional {exc.name}")
        raise


def _run(tests: list[doctest.DocTest]) -> tuple[int, int, str]:
    out: list[str] = []
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in tests:
        runner.run(test, out=out.append)
    results = runner.summarize(verbose=False)
    return results.failed, results.attempted, "".join(out)


@pytest.mark.parametrize("name", MODULES)
def test_module_doctests(name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    module = _import(name)
    monkeypatch.chdir(tmp_path)  # an example that writes files writes them here
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = [t for t in finder.find(module, name) if t.examples]
    failed, _, report = _run(tests)
    assert failed == 0, report


PAGES_WITH_EXAMPLES = [p for p in PAGES if ">>> " in p.read_text(encoding="utf-8")]


@pytest.mark.parametrize(
    "page", PAGES_WITH_EXAMPLES, ids=[str(p.relative_to(DOCS)) for p in PAGES_WITH_EXAMPLES]
)
def test_page_doctests(page: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    text = page.read_text(encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    parser = doctest.DocTestParser()
    test = parser.get_doctest(text, {"__name__": "__main__"}, page.name, str(page), 0)
    failed, attempted, report = _run([test])
    assert attempted > 0
    assert failed == 0, report


# -- docstring coverage ------------------------------------------------------------


def _public_names() -> list[str]:
    names = []
    for module_name in MODULES:
        spec = importlib.util.find_spec(module_name)
        if spec is None:  # pragma: no cover
            continue
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # optional dependency missing: covered by the doctest skip
            continue
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)
            if inspect.ismodule(obj) or obj is None:
                continue
            if getattr(obj, "__module__", None) != module_name:
                continue  # documented where it is defined
            if inspect.isclass(obj) or inspect.isfunction(obj):
                names.append(f"{module_name}.{name}")
    return sorted(names)


def _takes_parameters(obj: Any) -> bool:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return False
    kinds = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return any(p.kind not in kinds for name, p in sig.parameters.items() if name != "self")


PUBLIC = _public_names()


def _docstring_problem(qualname: str) -> str:
    """What is missing from the docstring of ``qualname`` ("" if nothing)."""
    module_name, name = qualname.rsplit(".", 1)
    obj = getattr(sys.modules[module_name], name)
    doc = inspect.getdoc(obj) or ""
    if not doc.strip():
        return "no docstring"
    if inspect.isclass(obj) and issubclass(obj, BaseException | int):
        return ""  # exceptions and enums take their base class's arguments
    if _takes_parameters(obj):
        sections = ("Parameters", "Attributes") if inspect.isclass(obj) else ("Parameters",)
        if not any(f"{s}\n---" in doc for s in sections):
            return f"no {' or '.join(sections)} section"
    return ""


@pytest.mark.parametrize("qualname", PUBLIC)
def test_public_docstring(qualname: str) -> None:
    problem = _docstring_problem(qualname)
    assert not problem, f"{qualname}: {problem}"


# -- pages and gallery agree ---------------------------------------------------------


def test_pages_refer_to_existing_examples() -> None:
    examples = {p.stem for p in EXAMPLES.glob("plot_*.py")}
    referred = set()
    for page in PAGES:
        referred |= set(
            re.findall(
                r"auto_examples/(?:images/sphx_glr_)?(plot_[a-z_]+?)(?:_\d{3})?(?:\.png|>|`|\))",
                page.read_text(encoding="utf-8"),
            )
        )
    assert referred, "the pages should show the gallery's results"
    assert sorted(referred - examples) == []


def test_gallery_order_lists_every_example() -> None:
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        from dfo_docs import EXAMPLE_ORDER
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    assert sorted(EXAMPLE_ORDER) == sorted(p.name for p in EXAMPLES.glob("plot_*.py"))
