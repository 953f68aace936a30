"""The step journal: intent before every side effect, the result after it (design.md inv. 4).

One JSON line per step — ``ts, entry_id, action, step, before, after, result, error`` — appended
to ``{state dir}/journal/YYYY-MM-DD.jsonl`` (or the path given) and fsync'd, so a line written
survives a kill -9 an instant later. The executor reads recent journal files back at start:
an entry whose last line is an ``intent`` was interrupted in that step, and its reconciler looks
at the world (a completed object? a replacement in flight?) before doing anything again. The
per-entry backoff is journalled too, so a daemon remembers failures across cycles and restarts.

At the end of a run the lines this process wrote are shipped to the bucket under
``{prefix}log/YYYY/MM/DD/{host}-{pid}-{ts}.jsonl``. Nothing secret is written: URL query
strings (a presigned signature, a KS) are cut, and keys that name secrets are dropped.

The state directory is the one local folder karchive writes, so every run finds the journal of
the last one wherever it is started from. First found wins: ``--state-dir DIR``;
``$KARCHIVE_STATE_DIR`` (the image sets ``/var/lib/karchive``, a volume in the deploy examples);
``$XDG_STATE_HOME/karchive``; ``~/.local/state/karchive``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from controller.errors import UsageError

STATE_DIR_ENV = "KARCHIVE_STATE_DIR"
JOURNAL_DIR = "journal"
INTENT = "intent"
_SECRET_KEYS = frozenset({"ks", "secret", "admin_secret", "password", "signature", "token"})
_LOOKBACK_DAYS = 7


def state_dir(given: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """The state directory by the rules of the module docstring (not created here)."""
    env = os.environ if environ is None else environ
    if given:
        return Path(given).expanduser()
    if env.get(STATE_DIR_ENV):
        return Path(env[STATE_DIR_ENV]).expanduser()
    if env.get("XDG_STATE_HOME"):
        return Path(env["XDG_STATE_HOME"]) / "karchive"
    return Path(env.get("HOME") or Path.home()) / ".local" / "state" / "karchive"


def add_state_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir", metavar="DIR",
        help=f"the folder for the journal (default: ${STATE_DIR_ENV}, else "
             "$XDG_STATE_HOME/karchive, else ~/.local/state/karchive)")


def journal_location(args: argparse.Namespace) -> Path:
    """``--journal`` when the command has it and it was given, else the state directory's."""
    explicit = getattr(args, "journal", None)
    if explicit:
        return Path(explicit)
    return state_dir(getattr(args, "state_dir", None)) / JOURNAL_DIR


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


@dataclass(frozen=True, slots=True)
class Backoff:
    """An entry's failure streak: retry it no earlier than ``until`` (unix seconds)."""

    failures: int
    until: float


class Journal:
    """Appends step lines durably and remembers, per entry, its last line and its backoff."""

    def __init__(self, path: Path | str | None = None, *, clock: Any = time.time) -> None:
        self._clock = clock
        given = Path(path) if path is not None else None
        # A directory (or nothing): one file per UTC day inside it. A file: exactly that file.
        self._dir = given if given is None or given.suffix != ".jsonl" else given.parent
        self._fixed = given if given is not None and given.suffix == ".jsonl" else None
        if self._dir is None:
            self._dir = state_dir() / JOURNAL_DIR
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create the journal folder {self._dir} ({exc.strerror}); "
                             f"give a writable --state-dir or set {STATE_DIR_ENV}") from None
        self._lock = threading.Lock()
        self._last: dict[str, dict[str, Any]] = {}
        self._backoff: dict[str, Backoff] = {}
        self._lines: list[str] = []
        self._started = datetime.now(UTC)
        self._load()

    # -- reading back --------------------------------------------------------------------------

    def _files(self) -> list[Path]:
        if self._fixed is not None:
            return [self._fixed] if self._fixed.exists() else []
        assert self._dir is not None
        today = datetime.now(UTC).date()
        days = [today - timedelta(days=n) for n in range(_LOOKBACK_DAYS, -1, -1)]
        return [p for p in (self._dir / f"{d.isoformat()}.jsonl" for d in days) if p.exists()]

    def _load(self) -> None:
        for path in self._files():
            with path.open(encoding="utf-8") as handle:
                for line in handle:
                    try:
                        record = json.loads(line)
                    except ValueError:
                        continue  # a line cut by a kill mid-write: the step before it stands
                    self._remember(record)

    def _remember(self, record: Mapping[str, Any]) -> None:
        entry_id = str(record.get("entry_id", ""))
        if not entry_id:
            return
        if record.get("step") == "backoff":
            after = record.get("after") or {}
            failures = int(after.get("failures", 0))
            if failures <= 0:
                self._backoff.pop(entry_id, None)
            else:
                self._backoff[entry_id] = Backoff(failures, float(after.get("until", 0)))
            return
        self._last[entry_id] = dict(record)

    def pending(self, entry_id: str) -> Mapping[str, Any] | None:
        """The entry's last step line if it is an intent with no result: an interrupted step."""
        with self._lock:
            record = self._last.get(entry_id)
        return record if record is not None and record.get("result") == INTENT else None

    def interrupted(self) -> dict[str, Mapping[str, Any]]:
        """Every entry whose last step was interrupted."""
        with self._lock:
            return {k: v for k, v in self._last.items() if v.get("result") == INTENT}

    def backoff(self, entry_id: str) -> Backoff | None:
        with self._lock:
            return self._backoff.get(entry_id)

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
            self._remember(record)

    def set_backoff(self, entry_id: str, failures: int, until: float, action: str = "") -> None:
        self.record(
            entry_id, action, "backoff", result="ok" if failures == 0 else "scheduled",
            after={"failures": failures, "until": until},
        )

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

    def ship_or_warn(self, archive: Any, prefix: str) -> None:
        """:meth:`ship` for the commands: a failed ship is a warning on stderr, not a failure
        (the local journal keeps every line)."""
        import sys

        from policies.errors import KarchiveError

        try:
            self.ship(archive, prefix)
        except KarchiveError as exc:
            print(f"karchive: warning: journal not shipped to the archive ({exc})",
                  file=sys.stderr)

    def ship(self, archive: Any, prefix: str) -> str | None:
        """Upload this run's lines to the bucket; the key, or None when there was nothing."""
        lines = self.lines()
        if not lines:
            return None
        key = self.ship_key(prefix)
        archive.put_bytes(key, "".join(lines).encode("utf-8"), content_type="application/x-ndjson")
        return key
