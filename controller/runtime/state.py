"""The state directory, and the small SQLite store under it: what a run remembers for the next.

The recording end of the pipeline, beside the journal (the audit trail, ``journal.py``) and the
metrics. The state directory is the one local folder karchive writes, so every run finds what
the last one left wherever it is started from. First found wins: ``--state-dir DIR``;
``$KARCHIVE_STATE_DIR`` (the image sets ``/var/lib/karchive``, a volume in the deploy examples);
``$XDG_STATE_HOME/karchive``; ``~/.local/state/karchive``. It holds ``journal/``,
``state.sqlite3`` and, for an acting daemon, the entry index ``index.sqlite3`` (``index.py``:
a file of its own, so it can be rebuilt by replacing it whole).

The store (stdlib ``sqlite3``, WAL, one file) keeps what must survive a restart and must be
read cheaply at the start of every cycle — each entry's failure streak (:class:`Backoffs`,
which the executor consults before it runs an item), so a daemon remembers a failing entry
across cycles and restarts without re-reading days of journal; and the restore watch's mark
(:class:`WatchMark`), so a restart asks for the plays made while it was down. It is a cache of
decisions, never a record of the world: recovery after a crash comes from observing again
(reconcilers look at Kaltura and the archive before they act), so a lost or deleted store costs
at most a retry sooner than planned, or one full cycle to record a new mark.

Migrations: ``PRAGMA user_version`` holds how many of :data:`MIGRATIONS` ran; opening a store
runs the rest, in order, in one transaction each. A new table is one more entry at the end of
that list and one small typed class like :class:`Backoffs`; nothing else changes.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.errors import UsageError

STATE_DIR_ENV = "KARCHIVE_STATE_DIR"
JOURNAL_DIR = "journal"
STORE_FILE = "state.sqlite3"
OPEN_PATIENCE = 30.0  # seconds two daemons opening one new store may wait for each other

# Each a list of statements; their index + 1 is the user_version once they ran. Append only.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    ("CREATE TABLE backoff (entry_id TEXT PRIMARY KEY, failures INTEGER NOT NULL, "
     "until REAL NOT NULL, action TEXT NOT NULL)",),
    # The restore watch's high-water mark (runtime/watch.py): one row, Kaltura's clock.
    ("CREATE TABLE watch_mark (id INTEGER PRIMARY KEY CHECK (id = 1), "
     "kaltura_time INTEGER NOT NULL)",),
)


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
        help=f"the folder for the journal and the state store (default: ${STATE_DIR_ENV}, "
             "else $XDG_STATE_HOME/karchive, else ~/.local/state/karchive)")


def journal_location(args: argparse.Namespace) -> Path:
    """``--journal`` when the command has it and it was given, else the state directory's."""
    explicit = getattr(args, "journal", None)
    if explicit:
        return Path(explicit)
    return state_dir(getattr(args, "state_dir", None)) / JOURNAL_DIR


def ensure_dir(path: Path) -> Path:
    """``path``, created; an uncreatable folder is one line naming the fix."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the folder {path} ({exc.strerror}); give a writable "
                         f"--state-dir or set {STATE_DIR_ENV}") from None
    return path


@dataclass(frozen=True, slots=True)
class Backoff:
    """An entry's failure streak: retry it no earlier than ``until`` (unix seconds)."""

    failures: int
    until: float


class Backoffs:
    """Per-entry backoff, in the store's ``backoff`` table."""

    def __init__(self, store: StateStore) -> None:
        self._store = store

    def get(self, entry_id: str) -> Backoff | None:
        row = self._store.query_one(
            "SELECT failures, until FROM backoff WHERE entry_id = ?", (entry_id,))
        return None if row is None else Backoff(int(row[0]), float(row[1]))

    def set(self, entry_id: str, failures: int, until: float, action: str = "") -> None:
        """Record a streak of ``failures`` (0 clears the entry's backoff)."""
        if failures <= 0:
            self._store.execute("DELETE FROM backoff WHERE entry_id = ?", (entry_id,))
            return
        self._store.execute(
            "INSERT INTO backoff (entry_id, failures, until, action) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (entry_id) DO UPDATE SET failures = excluded.failures, "
            "until = excluded.until, action = excluded.action",
            (entry_id, failures, until, action))

    def count(self) -> int:
        row = self._store.query_one("SELECT count(*) FROM backoff", ())
        return int(row[0]) if row else 0


class WatchMark:
    """The restore watch's mark (``runtime/watch.py``): Kaltura's clock (unix seconds) at the
    start of the last check or cycle that acted, in the store's one-row ``watch_mark`` table."""

    def __init__(self, store: StateStore) -> None:
        self._store = store

    def get(self) -> int | None:
        row = self._store.query_one("SELECT kaltura_time FROM watch_mark WHERE id = 1", ())
        return None if row is None else int(row[0])

    def set(self, kaltura_time: int) -> None:
        self._store.execute(
            "INSERT INTO watch_mark (id, kaltura_time) VALUES (1, ?) "
            "ON CONFLICT (id) DO UPDATE SET kaltura_time = excluded.kaltura_time",
            (kaltura_time,))


def _opened(path: Path) -> sqlite3.Connection:
    """A connection in WAL mode with every migration run. Two daemons opening one new state
    directory at once (a standby beside the holder) meet SQLite's locks where its busy timeout
    does not wait (switching a new file to WAL takes an exclusive lock, and SQLite answers
    "database is locked" at once rather than risk a deadlock): the opening is started again
    after a short pause, for up to ``OPEN_PATIENCE`` seconds — it writes nothing but the
    migrations, each its own transaction, so starting again is safe."""
    deadline = time.monotonic() + OPEN_PATIENCE
    while True:
        # Each cycle's executor runs in a scheduler thread: one connection, guarded by the
        # store's lock.
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at each checkpoint
            _migrate(db)
            return db
        except sqlite3.OperationalError as exc:
            db.close()
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(random.uniform(0.05, 0.25))


def _migrate(db: sqlite3.Connection) -> None:
    """Run the migrations this file has not had, one transaction each. The version is read
    inside the write lock: two daemons opening one state directory at once would otherwise both
    see version 0 and the second would create the tables again."""
    while True:
        db.execute("BEGIN IMMEDIATE")
        try:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version >= len(MIGRATIONS):
                db.execute("COMMIT")
                return
            for statement in MIGRATIONS[version]:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {version + 1}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


class StateStore:
    """The SQLite file under the state directory; thread-safe (one connection, one lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        ensure_dir(path.parent)
        try:
            self._db = _opened(path)
        except sqlite3.Error as exc:
            raise UsageError(f"cannot open the state store {path} ({exc}); give a writable "
                             f"--state-dir or set {STATE_DIR_ENV}") from None
        self._lock = threading.Lock()
        self.backoffs = Backoffs(self)
        self.watch_mark = WatchMark(self)

    @classmethod
    def open(cls, directory: Path) -> StateStore:
        return cls(directory / STORE_FILE)


    def execute(self, sql: str, parameters: tuple[object, ...]) -> None:
        with self._lock:
            self._db.execute(sql, parameters)

    def query_one(self, sql: str, parameters: tuple[object, ...]) -> tuple[Any, ...] | None:
        with self._lock:
            row = self._db.execute(sql, parameters).fetchone()
        return None if row is None else tuple(row)

    @property
    def version(self) -> int:
        with self._lock:
            return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
