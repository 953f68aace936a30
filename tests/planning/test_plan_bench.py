"""The observation benchmark still runs: every row, the naive baseline included, on a small
catalogue (the figures themselves are the README's, measured by hand; nothing here times)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "plan_bench.py"


def test_plan_bench_runs_every_row_on_a_small_catalogue() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--sizes", "300"], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    table = re.compile(r"^(karchive|walk\+index|refresh|naive)\s+[\d,]+\s")
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()
            if table.match(line)}
    assert set(rows) == {"karchive", "walk+index", "refresh", "naive"}
    entries = {int(row[1].replace(",", "")) for row in rows.values()}
    assert len(entries) == 1 and entries.pop() > 250  # every observer saw the same catalogue
    calls = {kind: int(row[2].replace(",", "")) for kind, row in rows.items()}
    assert calls["naive"] > 50 * calls["karchive"]  # one flavorAsset.list per entry
