"""The built documentation as a reader sees it: offline, in a real browser.

Needs the HTML build (``python -m sphinx -W -b html docs docs/_build/html``, or
the folder named by ``DFO_DOCS_HTML``) and Debian's ``chromium``. Outside CI a
missing build or browser skips these tests; under CI (``CI`` set) either one is
a failure, since ``.ci/run`` builds the docs and installs chromium first.

- no page loads a script, stylesheet, font, icon or image from another host;
- headless chromium, with every host name unresolvable, opens the why-backprop
  page: MathJax (served from the site) has typeset every formula, no raw TeX is
  left, and a screenshot of the page is saved into the build folder.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(os.environ.get("DFO_DOCS_HTML", ROOT / "docs" / "_build" / "html"))
PAGE = SITE / "why-backprop.html"
SCREENSHOT = SITE / "why-backprop-headless.png"
ON_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def _require(condition: bool, why: str) -> None:
    if condition:
        return
    if ON_CI:
        pytest.fail(f"{why} (CI is set: .ci/run must provide it)")
    pytest.skip(why)


def _site() -> Path:
    _require(PAGE.is_file(), f"the docs are not built ({PAGE} is missing)")
    return SITE


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    _require(found is not None, "chromium is not installed (apt-get install chromium)")
    assert found is not None
    return found


def _browse(page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        # no host name resolves: anything remote the page asked for would fail
        "--host-resolver-rules=MAP * ~NOTFOUND",
        # let the deferred scripts (MathJax) run to completion before dumping
        "--virtual-time-budget=20000",
        "--window-size=1200,2000",
        *args,
        page.as_uri(),
    ]
    proc = subprocess.run(
        command, capture_output=True, text=True, timeout=180, check=False, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _offline_assets():
    sys.path.insert(0, str(ROOT / "docs" / "_ext"))
    try:
        import offline_assets
    finally:
        sys.path.remove(str(ROOT / "docs" / "_ext"))
    return offline_assets


def test_no_page_loads_anything_from_another_host():
    site = _site()
    found = _offline_assets().remote_assets(site)
    assert found == [], "\n".join(found[:20])
    assert (site / "_static" / "mathjax" / "tex-svg.js").is_file()


def test_remote_asset_check_sees_scripts_links_images_and_css(tmp_path):
    # the check itself must be able to fail
    (tmp_path / "a.html").write_text(
        '<html><head><script src="https://cdn.example.org/x.js"></script>'
        '<link rel="stylesheet" href="//fonts.example.org/f.css">'
        '<link rel="canonical" href="https://example.org/a.html">'
        '<style>body { background: url("http://example.org/b.png") }</style></head>'
        '<body><img src="_images/local.png"><img src="https://example.org/c.png">'
        '<a href="https://example.org/">a link is not an asset</a></body></html>',
        encoding="utf-8",
    )
    (tmp_path / "s.css").write_text("@font-face { src: url(https://x.org/f.woff2) }")
    found = _offline_assets().remote_assets(tmp_path)
    assert found == [
        "a.html: https://cdn.example.org/x.js",
        "a.html: //fonts.example.org/f.css",
        "a.html: http://example.org/b.png",
        "a.html: https://example.org/c.png",
        "s.css: https://x.org/f.woff2",
    ]


def test_why_backprop_formulas_are_typeset_offline_in_chromium(tmp_path):
    site = _site()
    source = PAGE.read_text(encoding="utf-8")
    n_formulas = len(re.findall(r'class="math[ "]', source))
    assert n_formulas >= 5 and "\\frac" in source  # the page does hold TeX to typeset
    dom = _browse(PAGE, tmp_path, "--dump-dom").stdout
    typeset = dom.count("<mjx-container")
    assert typeset >= n_formulas, f"{typeset} of {n_formulas} formulas typeset"
    assert "<svg" in dom
    # no TeX left in the page's text (MathJax replaces each formula's source)
    text = re.sub(r"<(script|style)\b.*?</\1>", "", dom, flags=re.DOTALL)
    assert "\\frac" not in text and "\\partial" not in text

    _browse(PAGE, tmp_path, f"--screenshot={SCREENSHOT}")
    assert SCREENSHOT.is_file() and SCREENSHOT.parent == site
    import matplotlib.image

    pixels = matplotlib.image.imread(SCREENSHOT)
    assert pixels.shape[:2] == (2000, 1200)
    # a page, not a blank or an error screen: dark text on a light background
    gray = pixels[..., :3].mean(axis=2)
    assert 0.5 < float(np.mean(gray > 0.9)) < 0.995 and float(np.mean(gray < 0.3)) > 0.005
