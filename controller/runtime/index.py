"""The entry index: what the daemon last saw of Kaltura, so a cycle asks only for what changed.

An informer's cache, in one SQLite file under the state directory (``index.sqlite3``, stdlib
``sqlite3``: an embedded database, no server). It holds each entry of this shard as Kaltura
showed it — fields and flavors, never the archive's facts (the bucket is listed every cycle) nor
a decision (the rules are evaluated again every cycle, so ``unplayed_for`` and ``created_before``
move with the clock without a call to Kaltura).

    full walk      every ``schedule.resync_interval`` (default 24 h), and whenever the index is
                   missing, unreadable or was built for another target: the walk writes a new
                   file beside the old one and moves it into place only once the walk is
                   complete, so a half-built index is never read
    refresh        every other cycle, one transaction, Kaltura's clock as the mark:
                     updatedAtGreaterThanOrEqual  mark - SKEW: entries edited, added, re-tagged,
                                                  replaced (flavors fetched again for these)
                     lastPlayedAtGreaterThanOrEqual  mark - SKEW: plays, which do not bump
                                                  updatedAt (reference/kaltura-api.md §6); only
                                                  lastPlayedAt and plays change
                     idIn the stale ids           entries karchive was about to act on (marked
                                                  before it acted): deleted ones vanish here

A kill inside a refresh rolls the transaction back: the mark stays where it was and the next
refresh asks for the same changes again. What the index says is evidence, not proof: before the
daemon acts on a plan made from it, it observes the entries it is about to act on again, by id
(``runtime/daemon.py``), and acts on that fresh plan only.

What a refresh cannot see until the next full walk: an entry deleted by someone else (Kaltura
lists no deleted entries), a flavor changed without the entry being saved, and a play that
Kaltura's analytics sync writes late with a time before the mark (the restore watch looks a day
back for played placeholders, ``runtime/watch.py``; the plays listing here does not, so its
cost stays what changed since the last cycle). Each only makes the index propose an item that
the fresh observation then drops, or miss one until the next walk; never a wrong change.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from controller.adapters.kaltura.read import entries_by_id, flavors_for, iter_entries
from controller.adapters.storage.local import fsync_path
from controller.compose import Adapters
from controller.runtime.pipeline import Each, Pipeline, Planned
from controller.runtime.watch import kaltura_time
from policies.observed import FlavorFacts, ObservedEntry
from policies.plan import Plan, Target
from policies.totals import CycleLimits, admit

INDEX_FILE = "index.sqlite3"
FORMAT = 1  # of a row's body; an index of another format is rebuilt, never read
SKEW = 600  # seconds an updatedAt listing looks back before its mark (clocks, slow saves)
PAGE = 2000  # entries per page read back, as the walk's pages

_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE entry (id TEXT PRIMARY KEY, body BLOB NOT NULL) WITHOUT ROWID",
    "CREATE TABLE stale (id TEXT PRIMARY KEY) WITHOUT ROWID",
)


# -- one entry as a row ----------------------------------------------------------------------


def encode(entry: ObservedEntry) -> bytes:
    """The Kaltura side of ``entry`` (no archive, notices or owner) as plain values."""
    flavors = tuple((f.flavor_id, f.flavor_params_id, f.is_original, f.status, f.size_bytes,
                     f.file_ext, f.updated_at) for f in entry.flavors)
    return marshal.dumps((
        entry.entry_id, entry.name, entry.user_id, entry.creator_id, entry.status,
        entry.media_type, entry.created_at, entry.updated_at, entry.last_played_at,
        entry.plays, entry.duration, tuple(sorted(entry.tags)),
        tuple(sorted(entry.category_ids)), entry.categories, flavors,
        entry.replacement_status, entry.replacing_entry_id, entry.reference_id))


def decode(body: bytes) -> ObservedEntry:
    (entry_id, name, user_id, creator_id, status, media_type, created_at, updated_at,
     last_played_at, plays, duration, tags, category_ids, categories, flavors,
     replacement_status, replacing_entry_id, reference_id) = marshal.loads(body)
    return ObservedEntry(
        entry_id=entry_id, name=name, user_id=user_id, creator_id=creator_id, status=status,
        media_type=media_type, created_at=created_at, updated_at=updated_at,
        last_played_at=last_played_at, plays=plays, duration=duration,
        tags=frozenset(tags), category_ids=frozenset(category_ids),
        categories=tuple(categories), flavors=tuple(FlavorFacts(*f) for f in flavors),
        replacement_status=replacement_status, replacing_entry_id=replacing_entry_id,
        reference_id=reference_id)


# -- the file --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Marks:
    """Kaltura's clock at the last full walk's start (``synced_at``) and at the last
    refresh's (``changed_at``): the next refresh lists from the later. ``walked_at``: this
    machine's clock at the walk's start, which the resync interval is counted from."""

    synced_at: int
    changed_at: int
    walked_at: float


class EntryIndex:
    """The index file of one target (partner, archive, shard) in one state directory."""

    def __init__(self, directory: Path, target: str) -> None:
        self.path = Path(directory) / INDEX_FILE
        self.target = target
        self.problem: str | None = None  # why the file on disk cannot be used (logged)

    # -- reading -----------------------------------------------------------------------------

    def marks(self) -> Marks | None:
        """The marks of a complete, readable index of this target; None (and ``problem``
        said) when there is none to trust: the next cycle walks in full."""
        self.problem = None
        if not self.path.exists():
            self.problem = "no index yet"
            return None
        try:
            with contextlib.closing(self._connect()) as db:
                check = db.execute("PRAGMA quick_check").fetchone()
                if check is None or check[0] != "ok":
                    self.problem = "the index failed SQLite's quick_check"
                    return None
                meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as exc:
            self.problem = f"the index cannot be read ({exc})"
            return None
        if meta.get("format") != str(FORMAT) or meta.get("target") != self.target:
            self.problem = "the index was built for another target or format"
            return None
        try:
            return Marks(int(meta["synced_at"]), int(meta["changed_at"]),
                         float(meta["walked_at"]))
        except (KeyError, ValueError):
            self.problem = "the index has no marks"
            return None

    def pages(self, page: int = PAGE) -> Iterator[list[ObservedEntry]]:
        """Every entry, ``page`` at a time, in id order (a keyset walk: no cursor held open
        between pages)."""
        with contextlib.closing(self._connect()) as db:
            after = ""
            while True:
                rows = db.execute("SELECT id, body FROM entry WHERE id > ? ORDER BY id LIMIT ?",
                                  (after, page)).fetchall()
                if not rows:
                    return
                yield [decode(body) for _, body in rows]
                after = rows[-1][0]

    def get(self, ids: Iterable[str]) -> dict[str, ObservedEntry]:
        wanted = sorted(set(ids))
        found: dict[str, ObservedEntry] = {}
        with contextlib.closing(self._connect()) as db:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                marks = ",".join("?" * len(chunk))
                for _, body in db.execute(f"SELECT id, body FROM entry WHERE id IN ({marks})",
                                          chunk):
                    entry = decode(body)
                    found[entry.entry_id] = entry
        return found

    def stale(self) -> list[str]:
        with contextlib.closing(self._connect()) as db:
            return [row[0] for row in db.execute("SELECT id FROM stale ORDER BY id")]

    def count(self) -> int:
        with contextlib.closing(self._connect()) as db:
            return int(db.execute("SELECT count(*) FROM entry").fetchone()[0])

    # -- writing -----------------------------------------------------------------------------

    def rebuild(self) -> Rebuild:
        """A new index written beside this one, moved into place by :meth:`Rebuild.commit`."""
        return Rebuild(self)

    def update(self, entries: Iterable[ObservedEntry], *, gone: Iterable[str] = (),
               cleared: Iterable[str] = (), changed_at: int | None = None) -> None:
        """In one transaction: ``entries`` written over their rows, ``gone`` removed, the
        ``cleared`` stale marks dropped and (when given) the refresh mark moved."""
        with contextlib.closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT OR REPLACE INTO entry (id, body) VALUES (?, ?)",
                           ((e.entry_id, encode(e)) for e in entries))
            db.executemany("DELETE FROM entry WHERE id = ?", ((i,) for i in gone))
            db.executemany("DELETE FROM stale WHERE id = ?", ((i,) for i in cleared))
            if changed_at is not None:
                db.execute("UPDATE meta SET value = ? WHERE key = 'changed_at'",
                           (str(changed_at),))
            db.execute("COMMIT")

    def mark_stale(self, ids: Iterable[str]) -> None:
        """Before karchive acts on ``ids``: the next refresh reads them again by id."""
        with contextlib.closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT OR IGNORE INTO stale (id) VALUES (?)", ((i,) for i in ids))
            db.execute("COMMIT")

    def _connect(self, path: Path | None = None) -> sqlite3.Connection:
        db = sqlite3.connect(path or self.path, isolation_level=None, timeout=30)
        db.execute("PRAGMA synchronous = FULL")
        return db


class Rebuild:
    """A full walk's new index: rows added page by page, in place only once committed."""

    def __init__(self, index: EntryIndex) -> None:
        self.index = index
        self.path = index.path.with_name(index.path.name + ".new")
        self.started = time.time()
        index.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a walk killed before its commit left this: never read
        self._db: sqlite3.Connection | None = index._connect(self.path)
        self._db.execute("PRAGMA synchronous = OFF")  # fsync'd once, at the commit
        self._db.execute("PRAGMA journal_mode = OFF")  # a new file: nothing to roll back to
        for statement in _SCHEMA:
            self._db.execute(statement)
        self._db.execute("BEGIN")

    def add(self, entries: Sequence[ObservedEntry]) -> None:
        assert self._db is not None
        self._db.executemany("INSERT OR REPLACE INTO entry (id, body) VALUES (?, ?)",
                             ((e.entry_id, encode(e)) for e in entries))

    def commit(self, synced_at: int) -> None:
        """The walk is complete: the marks written, the file synced and moved into place."""
        db = self._db
        assert db is not None
        meta = {"format": str(FORMAT), "target": self.index.target,
                "synced_at": str(synced_at), "changed_at": str(synced_at),
                "walked_at": repr(self.started)}
        db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta.items())
        db.execute("COMMIT")
        db.close()
        self._db = None
        fsync_path(self.path)
        os.replace(self.path, self.index.path)
        fsync_path(self.path.parent)

    def abandon(self) -> None:
        """The walk failed: the new file is dropped, the old index (if any) stays."""
        if self._db is not None:
            self._db.close()
            self._db = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def target_of(adapters: Adapters) -> str:
    """What an index was built for: the service, the partner, the archive and the shard."""
    policy = adapters.policy
    return f"{policy.kaltura.service_url}|{Target.of(policy)}|shard {adapters.shard}"


# -- a refresh -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Refreshed:
    """What one refresh read: entries edited or read again by id (their flavors fetched
    again), entries only played, the stale ids asked about and those Kaltura no longer has."""

    since: int
    changed_at: int
    edited: int
    played: int
    stale: int
    gone: int


def refresh(index: EntryIndex, marks: Marks, adapters: Adapters) -> Refreshed:
    """Bring the index up to Kaltura's clock now: three listings and the edited entries'
    flavors (module docstring), written in one transaction with the new mark."""
    session, shard = adapters.kaltura, adapters.shard
    clock: list[int] = []
    since = marks.changed_at - SKEW
    edited = {e.entry_id: e for e in iter_entries(
        session, {"updatedAtGreaterThanOrEqual": since}, on_clock=clock.append)
        if shard.owns(e.entry_id)}
    stale = index.stale()
    edited.update((e.entry_id, e) for e in entries_by_id(session, stale))
    gone = [entry_id for entry_id in stale if entry_id not in edited]
    played_since = kaltura_time(marks.changed_at) - SKEW
    plays = {e.entry_id: e for e in iter_entries(
        session, {"lastPlayedAtGreaterThanOrEqual": played_since})
        if shard.owns(e.entry_id) and e.entry_id not in edited}
    # A play changes lastPlayedAt and plays only (no updatedAt, so no flavor can have moved):
    # the indexed entry takes the new figures; a played entry not indexed yet is read in full.
    known = index.get(plays)
    full = [*edited.values(), *(e for entry_id, e in plays.items() if entry_id not in known)]
    flavors = flavors_for(session, (e.entry_id for e in full))  # one batch for all of them
    written = [replace(e, flavors=tuple(flavors.get(e.entry_id, ()))) for e in full]
    written += [replace(known[entry_id], last_played_at=e.last_played_at, plays=e.plays)
                for entry_id, e in plays.items() if entry_id in known]
    changed_at = kaltura_time(clock[0])
    index.update(written, gone=gone, cleared=stale, changed_at=changed_at)
    return Refreshed(since, changed_at, len(edited), len(plays), len(stale), len(gone))


# -- the daemon's use of it ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Observed:
    """One cycle's observation: its plan, and how Kaltura's side was read."""

    planned: Planned
    source: str  # "walk" (a full walk, the index rebuilt) or "index" (refreshed, then read)
    refreshed: Refreshed | None
    why_walk: str | None  # why the index was not used (None: it was)


class Informer:
    """The daemon's index: a full walk when it must, a refresh and a read of it otherwise; and
    the fresh observation by id of what a plan made from it is about to act on."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def observe(self, adapters: Adapters, each: Each | None = None) -> Observed:
        index = EntryIndex(self.directory, target_of(adapters))
        marks = index.marks()
        resync = adapters.policy.schedule.resync_interval.seconds
        why = index.problem
        if marks is not None and not 0 <= time.time() - marks.walked_at < resync:
            marks, why = None, "resync_interval reached"
        if marks is None:
            return Observed(self._walk(index, adapters, each), "walk", None, why)
        counter = adapters.metrics
        before = getattr(counter, "kaltura_total", 0)
        refreshed = refresh(index, marks, adapters)
        spent = getattr(counter, "kaltura_total", 0) - before
        planned = Pipeline(adapters).run(each=each, source=index.pages())
        observation = replace(planned.observation,
                              kaltura_calls=planned.observation.kaltura_calls + spent)
        return Observed(replace(planned, observation=observation), "index", refreshed, None)

    def _walk(self, index: EntryIndex, adapters: Adapters, each: Each | None) -> Planned:
        build = index.rebuild()
        try:
            planned = Pipeline(adapters).run(each=each, record=build.add)
        except BaseException:
            build.abandon()
            raise
        clock = planned.observation.kaltura_clock
        if clock is None:
            build.abandon()
        else:
            build.commit(kaltura_time(clock))
        return planned

    def fresh(self, adapters: Adapters, plan: Plan) -> Plan:
        """``plan`` (made from the index) with its items replaced by those of a fresh
        observation, by id, of the entries this cycle's limits let it act on; its census, counts
        and notices stay the whole index's. The ids are marked stale first, so the next refresh
        reads them again whatever this cycle does to them."""
        limits = CycleLimits.of(adapters.policy.limits)
        ids = sorted({item.entry_id for item, why in admit(plan.changes, limits) if why is None})
        if not ids:
            return replace(plan, items=())  # nothing observed afresh: nothing to act on
        index = EntryIndex(self.directory, target_of(adapters))
        index.mark_stale(ids)
        seen: set[str] = set()

        def record(page: Sequence[ObservedEntry]) -> None:
            seen.update(e.entry_id for e in page)
            index.update(page)

        again = Pipeline(adapters).run(entry_ids=ids, record=record).plan
        index.update((), gone=[i for i in ids if i not in seen])
        return replace(plan, items=again.items)
