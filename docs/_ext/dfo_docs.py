"""Sphinx extension of the dfo docs: measured numbers, option tables, checks.

- ``dfo_docs_runs`` (conf value): ``{name: argv}``. At ``builder-inited`` each
  command runs once (in ``docs/_generated/<name>/``, the working directory) and
  its command line, stdout and output files are kept there for the pages to
  include, so every number and figure they show is what the tool printed on the
  machine that built the docs. A run is reused while the command and dfo's
  sources are unchanged.
- ``dfo-options`` directive: a table of a method's options with the defaults and
  the valid values read from its declaration (:func:`dfo.optimizers.method_options`,
  :func:`dfo.optimizers.option_kinds`) and the meanings from its docstring.
- ``dfo-decision-guide`` directive: the decision table of ``method="auto"``
  (:data:`dfo.optimizers.auto.RULES`), rendered as the guide's table.
- ``dfo-stopping-table`` directive: ``target=`` and ``tol=`` for every method
  (:func:`dfo.optimizers.stopping_table`).
- ``build-finished``: check that every gallery page and every page listed in
  ``dfo_docs_required_images`` shows its figures; a missing one fails the build.
- :func:`example_order`: the order of the gallery.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

#: gallery order (file names in examples/); unlisted examples come last, by name
EXAMPLE_ORDER = [
    "plot_quickstart.py",
    "plot_method_paths.py",
    "plot_why_backprop.py",
    "plot_nondifferentiable.py",
    "plot_zero_one_loss.py",
    "plot_black_box.py",
    "plot_noisy_spsa.py",
    "plot_limits.py",
    "plot_hyperparameters.py",
    "plot_dask.py",
]


def example_order(filename: str) -> tuple[int, str]:
    """Sort key of the gallery (``within_subsection_order``)."""
    name = os.path.basename(str(filename))
    rank = EXAMPLE_ORDER.index(name) if name in EXAMPLE_ORDER else len(EXAMPLE_ORDER)
    return rank, name


# -- running the tool at build time ----------------------------------------------------


def _sources_digest() -> str:
    import dfo

    root = Path(dfo.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _executable(argv: list[str]) -> list[str]:
    """Run ``dfo ...`` with this interpreter, so no PATH lookup can pick another dfo."""
    if argv and argv[0] == "dfo":
        code = "import sys; from dfo.cli import main; sys.exit(main())"
        return [sys.executable, "-c", code, *argv[1:]]
    return list(argv)


def run_tools(app: Sphinx) -> None:
    runs: dict[str, list[str]] = app.config.dfo_docs_runs
    if not runs:
        return
    base = Path(app.srcdir) / "_generated"
    digest = _sources_digest()
    for name, argv in runs.items():
        workdir = base / name
        key = hashlib.sha256((digest + "\0" + "\0".join(argv)).encode()).hexdigest()
        stamp = workdir / ".stamp"
        if stamp.exists() and stamp.read_text() == key and (workdir / "stdout.txt").exists():
            logger.info(f"[dfo_docs] {name}: reusing the run in {workdir}")
            continue
        if workdir.exists():
            for path in sorted(workdir.rglob("*"), reverse=True):
                path.unlink() if path.is_file() else path.rmdir()
        workdir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0"}
        logger.info(f"[dfo_docs] {name}: running {shlex.join(argv)}")
        start = time.perf_counter()
        proc = subprocess.run(
            _executable(argv),
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=app.config.dfo_docs_timeout,
            check=False,
        )
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise ExtensionError(
                f"`{shlex.join(argv)}` failed with exit code {proc.returncode}:\n"
                f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
            )
        (workdir / "command.txt").write_text(f"$ {shlex.join(argv)}\n")
        (workdir / "stdout.txt").write_text(proc.stdout)
        (workdir / "elapsed.txt").write_text(f"{elapsed:.0f}\n")
        stamp.write_text(key)
        logger.info(f"[dfo_docs] {name}: done in {elapsed:.1f} s")


# -- option tables -------------------------------------------------------------------

_ROLE = re.compile(r":[a-z:]+:`~?([^`]+)`")
_LITERAL = re.compile(r"``(.+?)``")


def _inline(text: str) -> list[nodes.Node]:
    """Docstring text as inline nodes: ``literal`` and :role:`target` become code."""
    text = _ROLE.sub(lambda m: "``" + m.group(1).split(".")[-1] + "``", text)
    out: list[nodes.Node] = []
    pos = 0
    for match in _LITERAL.finditer(text):
        if match.start() > pos:
            out.append(nodes.Text(text[pos : match.start()]))
        out.append(nodes.literal(match.group(1), match.group(1)))
        pos = match.end()
    if pos < len(text):
        out.append(nodes.Text(text[pos:]))
    return out


def option_docs(method: str) -> dict[str, tuple[str, str]]:
    """``{option: (type, description)}`` from the docstrings of ``method``'s class.

    Descriptions that say "As for X" are looked up in the other registered
    classes' docstrings.
    """
    from numpydoc.docscrape import NumpyDocString

    from dfo.optimizers import get_method, methods

    def parse(cls: type) -> dict[str, tuple[str, str]]:
        found: dict[str, tuple[str, str]] = {}
        doc = NumpyDocString(cls.__doc__ or "")
        for param in doc["Parameters"]:
            desc = " ".join(line.strip() for line in param.desc).strip()
            for name in (n.strip() for n in param.name.split(",")):
                if name:
                    found[name] = (param.type, desc)
        return found

    own = parse(get_method(method))
    others: dict[str, tuple[str, str]] = {}
    for other in methods():
        for name, value in parse(get_method(other)).items():
            if value[1] and not value[1].lower().startswith("as for"):
                others.setdefault(name, value)
    merged = {}
    for name, (typ, desc) in own.items():
        if not desc or desc.lower().startswith("as for"):
            typ2, desc2 = others.get(name, (typ, desc))
            merged[name] = (typ or typ2, desc2)
        else:
            merged[name] = (typ, desc)
    return merged


class OptionsDirective(SphinxDirective):
    """``.. dfo-options:: METHOD``: the method's options, defaults and meanings."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        from dfo.optimizers import method_options, option_kinds

        method = self.arguments[0]
        defaults = method_options(method)
        kinds = option_kinds(method)  # the declared values, not the docstring's words
        docs = option_docs(method)
        table = nodes.table(classes=["dfo-options"])
        group = nodes.tgroup(cols=3)
        table += group
        for width in (20, 20, 60):
            group += nodes.colspec(colwidth=width)
        head = nodes.thead()
        group += head
        head += self._row([[nodes.Text(title)] for title in ("option", "default", "meaning")])
        body = nodes.tbody()
        group += body
        for name, default in defaults.items():
            typ, desc = docs.get(name, ("", ""))
            typ = kinds[name].expected if name in kinds else typ
            typ = re.sub(r",?\s*(default\b.*|optional)$", "", typ).strip()
            desc = desc.replace(" (see above)", "")
            meaning: list[nodes.Node] = []
            if typ:
                meaning.append(nodes.emphasis(typ, typ))
                if desc:
                    meaning.append(nodes.Text(". "))
            meaning.extend(_inline(desc))
            default_text = f"{default:g}" if isinstance(default, float) else repr(default)
            body += self._row(
                [
                    [nodes.literal(name, name)],
                    [nodes.literal(default_text, default_text)],
                    meaning,
                ]
            )
        return [table]

    @staticmethod
    def _row(cells: list[list[nodes.Node]]) -> nodes.row:
        row = nodes.row()
        for content in cells:
            entry = nodes.entry()
            para = nodes.paragraph()
            para.extend(content)
            entry += para
            row += entry
        return row


# -- the decision guide ----------------------------------------------------------------


class DecisionGuideDirective(SphinxDirective):
    """``.. dfo-decision-guide::``: the table ``method="auto"`` runs, as the guide shows it.

    Rendered from :data:`dfo.optimizers.auto.RULES` (:func:`decision_table`), so the
    page and ``auto`` cannot disagree.
    """

    has_content = False

    def run(self) -> list[nodes.Node]:
        from dfo.optimizers.auto import decision_table

        return self.parse_text_to_nodes(decision_table())


class StoppingTableDirective(SphinxDirective):
    """``.. dfo-stopping-table::``: what ``target=`` and ``tol=`` do, for every method.

    Rendered from :func:`dfo.optimizers.stopping_table` (each method's ``TOL``,
    ``TOL_FIXED`` and ``TOL_MEANING``), so the page lists every registered method.
    """

    has_content = False

    def run(self) -> list[nodes.Node]:
        from dfo.optimizers import stopping_table

        return self.parse_text_to_nodes(stopping_table())


# -- checks after the build ----------------------------------------------------------


def check_figures(app: Sphinx, exception: BaseException | None) -> None:
    """Fail the build when a page lacks the figures it must show."""
    if exception is not None or app.builder.format != "html":
        return
    gallery = app.config.sphinx_gallery_conf
    if not gallery.get("plot_gallery", True) or str(gallery.get("plot_gallery")) == "False":
        return
    out = Path(app.outdir)
    missing: list[str] = []
    examples = sorted((Path(app.srcdir) / gallery["examples_dirs"]).glob("plot_*.py"))
    for example in examples:
        page = out / gallery["gallery_dirs"] / f"{example.stem}.html"
        if not page.exists():
            missing.append(f"{page.relative_to(out)} was not written")
            continue
        html = page.read_text(encoding="utf-8")
        if f"sphx_glr_{example.stem}_" not in html:
            missing.append(f"{page.relative_to(out)} shows no figure of its example")
    for page_name, images in app.config.dfo_docs_required_images.items():
        page = out / f"{page_name}.html"
        html = page.read_text(encoding="utf-8") if page.exists() else ""
        for image in images:
            stem = Path(image).stem
            if stem not in html or not list((out / "_images").glob(f"{stem}*")):
                missing.append(f"{page_name}.html does not show {image}")
    if missing:
        raise ExtensionError("pages without their figures:\n  " + "\n  ".join(missing))
    logger.info(f"[dfo_docs] figures checked on {len(examples)} gallery pages")


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("dfo_docs_runs", {}, "env", types=[dict])
    app.add_config_value("dfo_docs_timeout", 600, "env", types=[int])
    app.add_config_value("dfo_docs_required_images", {}, "env", types=[dict])
    app.add_directive("dfo-options", OptionsDirective)
    app.add_directive("dfo-decision-guide", DecisionGuideDirective)
    app.add_directive("dfo-stopping-table", StoppingTableDirective)
    app.connect("builder-inited", run_tools)
    app.connect("build-finished", check_figures)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
