"""The journal: the audit trail of every step karchive takes — the recording end of the pipeline.

One JSON line per step — ``ts, entry_id, action, step, before, after, result, error`` — appended
to ``{state dir}/journal/YYYY-MM-DD.jsonl`` (or the path given) and fsync'd, so a line written
survives a kill -9 an instant later: the intent before every side effect and the result after
it (``reconcilers.base.Context.step``; design.md invariant 4). The journal is written, shipped
and read by people and audits; karchive itself never reads it back to decide anything. What a
killed run left half done is found by observing again: each reconciler looks at the world (a
completed object? a replacement in flight?) before it acts. What a run must remember for the
next (an entry's backoff) lives in the state store (``runtime/state.py``).

At the end of a run the lines this process wrote are shipped to the archive under
``{prefix}log/YYYY/MM/DD/{host}-{pid}-{ts}.jsonl``. Nothing secret is written: URL query
strings (a presigned signature, a KS) are cut, and keys that name secrets are dropped.
:func:`read` and :func:`interrupted` read a journal folder back, for audits and tests.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from controller.runtime.state import JOURNAL_DIR, ensure_dir, state_dir
from reconcilers.base import Needs

INTENT = "intent"
_SECRET_KEYS = frozenset({"ks", "secret", "admin_secret", "password", "signature", "token"})
# The archive's S3 actions shipping needs (``reconcilers.base.Needs``; ``karchive permissions``).
SHIP_NEEDS = Needs(s3=frozenset({"s3:PutObject"}))


def scrub(value: Any) -> Any:
    """A JSON-able copy of ``value`` with no secrets: URL queries cut, secret keys dropped."""
    if isinstance(value, str):
        return value.split("?", 1)[0] if "://" in value else value
    if isinstance(value, Mapping):
        return {
            str(k): scrub(v) for k, v in value.items() if str(k).lower() not in _SECRET_KEYS
        }
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value) if isinstance(value, set | frozenset) else value
        return [scrub(v) for v in items]
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


class Journal:
    """Appends step lines durably, and ships this run's lines to the archive."""

    def __init__(self, path: Path | str | None = None, *, clock: Any = time.time) -> None:
        self._clock = clock
        given = Path(path) if path is not None else None
        # A directory (or nothing): one file per UTC day inside it. A file: exactly that file.
        self._dir = given if given is None or given.suffix != ".jsonl" else given.parent
        self._fixed = given if given is not None and given.suffix == ".jsonl" else None
        if self._dir is None:
            self._dir = state_dir() / JOURNAL_DIR
        ensure_dir(self._dir)
        self._lock = threading.Lock()
        self._lines: list[str] = []
        self._started = datetime.now(UTC)

    # -- writing -------------------------------------------------------------------------------

    def path_for(self, when: datetime) -> Path:
        if self._fixed is not None:
            return self._fixed
        assert self._dir is not None
        return self._dir / f"{when.date().isoformat()}.jsonl"

    def record(
        self,
        entry_id: str,
        action: str,
        step: str,
        *,
        result: str,
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        now = datetime.fromtimestamp(self._clock(), UTC)
        record = {
            "ts": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "entry_id": entry_id,
            "action": action,
            "step": step,
            "before": scrub(before) if before else None,
            "after": scrub(after) if after else None,
            "result": result,
            "error": scrub(error) if error else None,
        }
        line = json.dumps(record, sort_keys=False, separators=(",", ":")) + "\n"
        path = self.path_for(now)
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Opened per line on purpose: O_APPEND + fsync makes each line durable on its own,
            # and a day boundary simply lands in the next file.
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
            self._lines.append(line)

    def lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    # -- shipping ------------------------------------------------------------------------------

    def ship_key(self, prefix: str) -> str:
        started = self._started
        stamp = started.strftime("%Y%m%dT%H%M%SZ")
        return (
            f"{prefix}log/{started:%Y/%m/%d}/{socket.gethostname()}-{os.getpid()}-{stamp}.jsonl"
        )

    def ship(self, archive: Any, prefix: str) -> str | None:
        """Upload this run's lines to the bucket; the key, or None when there was nothing."""
        lines = self.lines()
        if not lines:
            return None
        key = self.ship_key(prefix)
        archive.put_bytes(key, "".join(lines).encode("utf-8"), content_type="application/x-ndjson")
        return key


def read(path: Path | str) -> Iterator[dict[str, Any]]:
    """Every step line of a journal folder (its days in order) or ``.jsonl`` file; a line cut
    by a kill mid-write is skipped (the step before it stands)."""
    where = Path(path)
    files = [where] if where.suffix == ".jsonl" else sorted(where.glob("*.jsonl"))
    for file in files:
        with file.open(encoding="utf-8") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and record.get("entry_id"):
                    yield record


def interrupted(path: Path | str) -> dict[str, dict[str, Any]]:
    """Entry id → its last step line, for every entry whose last line is an intent with no
    result: where a kill landed (an audit's question; karchive re-observes instead)."""
    last: dict[str, dict[str, Any]] = {}
    for record in read(path):
        last[str(record["entry_id"])] = record
    return {entry_id: r for entry_id, r in last.items() if r.get("result") == INTENT}
