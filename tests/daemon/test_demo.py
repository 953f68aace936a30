"""`make demo`: the daemon on policy.yaml archives and replaces entries, then converges; with
owner notices, the replaces wait until the demo moves the sandbox's clock past their grace
period."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_archives_and_replaces_entries_then_converges(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sandbox.demo", "--entries", "60", "--max-mib", "12",
         "--interval", "3", "--until-converged", "--duration", "240",
         "--policy", str(ROOT / "policy.yaml")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "KALTURA_SERVICE_URL=" in result.stdout
    assert (tmp_path / ".karchive" / "demo.env").read_text().startswith("export ")
    last = [line for line in result.stdout.splitlines() if "| pending:" in line][-1]
    assert "pending: none" in last
    done = dict((name, int(n)) for n, name in re.findall(r"(\d+) (\w+)", last.split("done:")[1]))
    assert done.get("archive", 0) > 0 and done.get("replace", 0) > 0, last
    assert "daemon exited with 0" in result.stdout
    # Owners are told first (each message printed with its .eml file); the swaps wait out the
    # grace period until the demo moves the sandbox's clock past it.
    sent = [line for line in result.stdout.splitlines() if "✉ .karchive/mail/" in line]
    assert sent and all(line.split(": to ")[1].count("@") == 1 for line in sent)
    moved = result.stdout.index("moving the sandbox's clock on")
    assert result.stdout.index("✉ .karchive/mail/") < moved
    assert not any("replace" in part for part in re.findall(r"done: ([^|]*)",
                                                            result.stdout[:moved]))
