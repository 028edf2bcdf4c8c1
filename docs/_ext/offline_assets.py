"""Sphinx extension: the built site reads offline (math included) and loads nothing remote.

- MathJax 3 is served from the built site: its browser bundle comes from the
  ``django-static-mathjax`` distribution (MathJax's own release files, no other
  dependency; import name ``mathjax``), copied into ``_static/mathjax/``;
  ``conf.py`` sets ``mathjax_path`` to it. The SVG output is used: it needs no web fonts.
- ``build-finished``: every ``<script src>``, ``<link href>`` (stylesheets,
  icons, preloads), ``<img src>`` and CSS ``url(...)`` of every page must point
  inside the site; a remote one fails the build (:func:`remote_assets`).
"""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util import logging

logger = logging.getLogger(__name__)

#: the MathJax component the pages load (TeX input, SVG output: no font files)
MATHJAX_ENTRY = "tex-svg.js"
#: parts of MathJax's es5 folder that the entry loads on demand (extensions, menu, a11y)
MATHJAX_PARTS = ("input", "output", "ui", "a11y", "adaptors")

_REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)
_CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)")
#: (tag, attribute) pairs that make the browser fetch something
_FETCHING = {("script", "src"), ("img", "src"), ("link", "href"), ("source", "src")}
#: <link rel=...> values that are navigation, not a fetched asset
_LINK_NAVIGATION = {"canonical", "next", "prev", "search", "index", "author", "license"}


def mathjax_root() -> Path:
    """The folder of MathJax's browser bundle (``es5/``) in the installed package."""
    try:
        import mathjax  # the django-static-mathjax distribution
    except ImportError as exc:
        raise ExtensionError(
            "the docs serve MathJax from the built site: install the 'docs' extra "
            "(pip install -e '.[docs]'), which brings django-static-mathjax"
        ) from exc
    root = Path(mathjax.__file__).resolve().parent / "static" / "mathjax" / "es5"
    if not (root / MATHJAX_ENTRY).is_file():
        raise ExtensionError(f"MathJax's {MATHJAX_ENTRY} is missing from {root}")
    return root


def copy_mathjax(app: Sphinx, exception: BaseException | None) -> None:
    """Copy MathJax's bundle into the site's ``_static/mathjax/``."""
    if exception is not None or app.builder.format != "html":
        return
    root = mathjax_root()
    target = Path(app.outdir) / "_static" / "mathjax"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(root / MATHJAX_ENTRY, target / MATHJAX_ENTRY)
    for part in MATHJAX_PARTS:
        shutil.copytree(root / part, target / part, dirs_exist_ok=True)
    for name in ("LICENSE",):
        if (root.parent / name).is_file():
            shutil.copy2(root.parent / name, target / name)


class _AssetParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        rel = set(values.get("rel", "").lower().split())
        if tag == "link" and rel and rel <= _LINK_NAVIGATION:
            return
        for name, value in values.items():
            if (tag, name) in _FETCHING or name == "srcset":
                self.urls.extend(part.split()[0] for part in value.split(",") if part.strip())
            elif name == "style":
                self.urls.extend(_CSS_URL.findall(value))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.urls.extend(_CSS_URL.findall(data))


def remote_assets(site: Path) -> list[str]:
    """``"page: url"`` for every asset of the site that would be fetched from another host.

    Looks at the ``src``/``href``/``srcset`` of ``<script>``, ``<img>``, ``<link>``
    (except navigation links) and ``<source>``, inline styles and ``<style>``
    blocks of every HTML page, and the ``url(...)`` of every CSS file.

    Parameters
    ----------
    site : Path
        The built HTML folder.

    Returns
    -------
    list of str
        Empty when the site reads offline.
    """
    found = []
    for page in sorted(site.rglob("*.html")):
        parser = _AssetParser()
        parser.feed(page.read_text(encoding="utf-8"))
        found += [f"{page.relative_to(site)}: {url}" for url in parser.urls if _REMOTE.match(url)]
    for sheet in sorted(site.rglob("*.css")):
        text = sheet.read_text(encoding="utf-8", errors="replace")
        urls = _CSS_URL.findall(text) + re.findall(r"@import\s+['\"]([^'\"]+)", text)
        found += [f"{sheet.relative_to(site)}: {url}" for url in urls if _REMOTE.match(url)]
    return found


def check_offline(app: Sphinx, exception: BaseException | None) -> None:
    """Fail the build when a page loads an asset from another host."""
    if exception is not None or app.builder.format != "html":
        return
    remote = remote_assets(Path(app.outdir))
    if remote:
        raise ExtensionError(
            "pages that load assets from another host (the docs must read offline):\n  "
            + "\n  ".join(remote[:40])
        )
    logger.info("[offline_assets] no page loads anything from another host")


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("build-finished", copy_mathjax)
    app.connect("build-finished", check_offline)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
