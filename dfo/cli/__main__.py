"""``python -m dfo.cli``: the same as the ``dfo`` command."""

import sys

from dfo.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
