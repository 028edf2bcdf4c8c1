"""Sphinx configuration of the dfo documentation.

Build with ``python -m sphinx -W -b html docs docs/_build/html``. Every example in
``examples/`` runs during the build (sphinx-gallery) and the measured numbers
and figures of the conceptual pages are produced by running dfo's own command
line at build time (see ``_ext/dfo_docs.py``), never typed by hand.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import dfo

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
os.environ.setdefault("MPLBACKEND", "Agg")
# One BLAS thread per process: on a small shared machine a multi-threaded BLAS can
# spend most of its time waiting for a core (CMA-ES's small eigendecompositions
# slowed down many times over), and the examples' Dask workers are processes anyway.
# Set before anything imports numpy; an explicit setting in the environment wins.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

project = "dfo"
author = "the dfo developers"
copyright = "the dfo developers"
version = release = dfo.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "dfo_docs",
    "offline_assets",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = [
    "_build",
    "_generated/**/*.md",
    "**/README.md",
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
    "auto_examples/*.md5",
    "auto_examples/*.json",
    "**sg_execution_times.rst",  # left by builds that wrote computation times
]
templates_path: list[str] = []

# -- math: MathJax 3 from the built site, so the pages read offline (_ext/offline_assets.py)
mathjax_path = "mathjax/tex-svg.js"

# -- MyST -------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# -- autodoc / numpydoc -----------------------------------------------------------
autodoc_typehints = "none"  # numpydoc's Parameters sections already give the types
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# -- sphinx-gallery ---------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"plot_",
    "within_subsection_order": "dfo_docs.example_order",
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "remove_config_comments": True,
    "download_all_examples": False,
    "backreferences_dir": None,
    "min_reported_time": 1,
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "show_memory": False,
    "reset_modules": ("matplotlib",),
    "image_srcset": [],
    # its execution-time pages load jQuery and DataTables from CDNs; the docs read offline
    "write_computation_times": False,
}

# -- measured numbers and figures (dfo's own command line, run at build time) ------
# Each entry runs once per build (cached while dfo's sources and the command are
# unchanged); its stdout, the command line and the files it writes land in
# docs/_generated/<name>/ for the pages to include.
# `dfo scaling` on a sweep up to 20,000 parameters (the default goes to 100,000 and
# takes a few minutes); `dfo compare` with one seed instead of three.
dfo_docs_runs = {
    "scaling": ["dfo", "scaling", "--max-params", "20000", "--sizes", "8"],
    "compare": ["dfo", "compare", "--seeds", "1"],
    "help-compare": ["dfo", "compare", "--help"],
    "help-scaling": ["dfo", "scaling", "--help"],
    "crossover": [
        "dfo",
        "crossover",
        "--widths",
        "4",
        "16",
        "64",
        "--seeds",
        "1",
        "--budget",
        "8000",
        "--methods",
        "backprop-sgd",
        "forward-gradient",
        "spsa",
        "cma-es",
        "--quiet",
    ],
}
# pages that must show these figures (checked after the build)
dfo_docs_required_images = {
    "why-backprop": [
        "gradient_costs.png",
        "fd_step_error.png",
        "estimate_cosine.png",
        "estimate_cosine_vs_n.png",
        "runtime_distribution.png",
        "crossover.png",
    ],
    "getting-started": ["loss_vs_cost.png", "loss_vs_time.png", "final_metric.png"],
    "when-to-use-dfo": [
        "sphx_glr_plot_nondifferentiable_001.png",
        "sphx_glr_plot_noisy_spsa_001.png",
        "sphx_glr_plot_limits_001.png",
        "sphx_glr_plot_limits_002.png",
    ],
}

# -- HTML -------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"dfo {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    "navigation_with_keys": False,
}
html_sidebars = {"index": [], "getting-started": [], "why-backprop": [], "when-to-use-dfo": []}
html_show_sourcelink = False
