"""``python -m ballast.cli``: the ``ballast`` command."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
