"""The ``dfo`` command line: ``dfo compare`` and ``dfo scaling``.

``dfo`` without a subcommand prints the help and exits with status 0.

Exit status: 0 on success, 2 for bad options (a one-line message, no
traceback), 130 when interrupted with Ctrl-C (finished runs are kept; ``dfo
compare --resume`` continues).
"""

from __future__ import annotations

from dfo.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
