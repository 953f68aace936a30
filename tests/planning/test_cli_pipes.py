"""A report piped into a reader that stops early (`karchive list | head -1`) ends quietly."""

from __future__ import annotations

import os
import subprocess
import sys

from test_observe_support import write_policy


def test_a_closed_pipe_ends_the_report_without_a_traceback(sandbox, tmp_path) -> None:
    policy = write_policy(tmp_path, sandbox)
    env = {**os.environ, **sandbox.env()}
    child = subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "list", "-f", str(policy), "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    assert child.stdout is not None and child.stderr is not None
    header = child.stdout.readline()
    child.stdout.close()  # the reader goes away after one line
    err = child.stderr.read().decode()
    assert child.wait(timeout=120) == 141
    assert header.startswith(b"last_played_date\t")
    assert "Traceback" not in err and "BrokenPipeError" not in err
