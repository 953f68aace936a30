"""``python -m controller.cli …``: the ``karchive`` command, for a tree that is not installed."""

import sys

from controller.cli import main

sys.exit(main())
