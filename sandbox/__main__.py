"""``python -m sandbox …``: the same commands as ``karchive sandbox …`` (see sandbox/cli.py)."""

import sys

from sandbox.cli import main

sys.exit(main())
