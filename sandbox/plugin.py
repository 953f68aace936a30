"""The sandbox as a plugin of the ``karchive`` command line: ``karchive sandbox …``.

``pyproject.toml`` declares this module under the ``karchive.plugins`` entry points; the command
line loads it by that name (``controller/cli/sandbox.py``) and never imports the sandbox itself.
Importing it needs what the ``karchive[sandbox]`` extra installs — moto and its server — so a
plain ``pip install karchive`` gets an ImportError here, which the command line turns into one
line saying how to install the sandbox.
"""

from __future__ import annotations

import moto.server  # noqa: F401 - the extra's dependency: fail here, not halfway through `up`

from sandbox.cli import main

__all__ = ["main"]
