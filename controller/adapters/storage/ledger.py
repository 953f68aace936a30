"""The inventory's ledger: what a listing showed, kept on disk, then settled entry by entry.

A library whose every entry is archived has a million copies (and their markers) in its
archive; held as Python objects that is most of a gigabyte. Both inventories (the bucket's,
``inventory.py``, and the folder's, ``local.py``) hand every object they list to a
:class:`Ledger` instead: one row each in a private temporary SQLite database (stdlib
``sqlite3.connect("")``: a file on disk, deleted when it is closed). :meth:`Ledger.settle` then
reads the rows back in entry order, one entry at a time, decides that entry's copy exactly as
the listing code always did (the store's own ``choose``: the newest entry-folder original,
else the bare-id object; markers applied by ``policies.layout.Marks``), and writes the result
beside them. The observer asks the settled :class:`Copies` about one page of entries at a time
(:meth:`Copies.lookup`), so memory holds one page's copies, never the archive's.
"""

from __future__ import annotations

import itertools
import marshal
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from policies.layout import LEGACY, KeyKind, Marks, ParsedKey
from policies.observed import ArchiveFacts, NoticeMark, RestoreStatus

# An entry-folder original as the listing showed it: when it was written (None: unknown) and
# its facts, in listing order; ``choose`` picks the entry's current copy among them.
Candidate = tuple[float | None, ArchiveFacts]
Choose = Callable[[str, Sequence[Candidate]], ArchiveFacts]

_ORIGINAL, _MARKER = 0, 1
_MARKERS = frozenset({KeyKind.VERIFIED, KeyKind.PLACEHOLDER, KeyKind.NOTICE})
_BATCH = 5000  # rows written per executemany
_LOOKUP = 500  # ids per SELECT ... IN (...)


def _pack(facts: ArchiveFacts) -> tuple[Any, ...]:
    return (facts.key, facts.size_bytes, facts.storage_class, facts.restore.value, facts.layout,
            facts.etag, facts.flavor_id, facts.sha256, facts.restore_expiry,
            tuple(sorted(facts.placeholder_flavor_ids)))


def _unpack(row: Sequence[Any]) -> ArchiveFacts:
    (key, size, storage_class, restore, layout, etag, flavor_id, sha256, expiry,
     placeholders) = row
    return ArchiveFacts(key=key, size_bytes=size, storage_class=storage_class,
                        restore=RestoreStatus(restore), layout=layout, etag=etag,
                        flavor_id=flavor_id, sha256=sha256, restore_expiry=expiry,
                        placeholder_flavor_ids=frozenset(placeholders))


class Ledger:
    """The rows of one listing, on disk until :meth:`settle`."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("", isolation_level=None)
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute("CREATE TABLE seen (entry_id TEXT NOT NULL, n INTEGER NOT NULL, "
                         "body BLOB NOT NULL)")
        self._rows: list[tuple[str, int, bytes]] = []
        self._n = 0

    def original(self, entry_id: str, facts: ArchiveFacts, modified: float | None = None
                 ) -> None:
        """A copy of an entry's original (either layout) and when it was written."""
        self._add(entry_id, (_ORIGINAL, modified, _pack(facts)))

    def marker(self, parsed: ParsedKey) -> bool:
        """Keep ``parsed`` if it is one of karchive's zero-byte markers; whether it was one."""
        if parsed.kind not in _MARKERS:
            return False
        self._add(parsed.entry_id, (_MARKER, parsed.kind.value, parsed.layout,
                                    parsed.asset_id, parsed.ext))
        return True

    def _add(self, entry_id: str, row: tuple[Any, ...]) -> None:
        self._rows.append((entry_id, self._n, marshal.dumps(row)))
        self._n += 1
        if len(self._rows) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        self._db.executemany("INSERT INTO seen (entry_id, n, body) VALUES (?, ?, ?)", self._rows)
        self._rows = []

    def settle(self, choose: Choose) -> Copies:
        """Each entry's current copy and its notices, decided one entry at a time."""
        self._flush()
        db = self._db
        db.execute("CREATE TABLE copy (entry_id TEXT PRIMARY KEY, body BLOB NOT NULL) "
                   "WITHOUT ROWID")
        db.execute("CREATE TABLE notice (entry_id TEXT PRIMARY KEY, body BLOB NOT NULL) "
                   "WITHOUT ROWID")
        rows = db.execute("SELECT entry_id, body FROM seen ORDER BY entry_id, n")
        copies: list[tuple[str, bytes]] = []
        notices: list[tuple[str, bytes]] = []
        settled = 0
        for entry_id, group in itertools.groupby(rows, key=lambda r: str(r[0])):
            facts, marks = _settled(entry_id, (marshal.loads(body) for _, body in group), choose)
            if facts is not None:
                copies.append((entry_id, marshal.dumps(_pack(facts))))
                settled += 1
            found = marks.notices.get(entry_id)
            if found:
                notices.append((entry_id, marshal.dumps(
                    tuple((m.sent_at, m.due_at, m.digest) for m in found))))
            if len(copies) >= _BATCH or len(notices) >= _BATCH:
                self._write(copies, notices)
        self._write(copies, notices)
        db.execute("DROP TABLE seen")
        return Copies(db, settled)

    def _write(self, copies: list[tuple[str, bytes]], notices: list[tuple[str, bytes]]) -> None:
        # A second cursor on the same connection, while the ordered read is still open: SQLite
        # reads the rows of ``seen`` and writes ``copy`` and ``notice``, other tables.
        self._db.executemany("INSERT INTO copy (entry_id, body) VALUES (?, ?)", copies)
        self._db.executemany("INSERT INTO notice (entry_id, body) VALUES (?, ?)", notices)
        copies.clear()
        notices.clear()

    def close(self) -> None:
        self._db.close()


def _settled(entry_id: str, rows: Iterable[tuple[Any, ...]], choose: Choose
             ) -> tuple[ArchiveFacts | None, Marks]:
    """One entry's copy (the newest entry-folder original, else its bare-id object) with what
    its markers prove, and its markers."""
    marks = Marks()
    legacy: ArchiveFacts | None = None
    folder: list[Candidate] = []
    for row in rows:
        if row[0] == _MARKER:
            _, kind, layout, asset_id, ext = row
            marks.add(ParsedKey(entry_id, KeyKind(kind), layout, asset_id, ext))
            continue
        _, modified, packed = row
        facts = _unpack(packed)
        if facts.layout == LEGACY:
            legacy = facts  # one bare-id object per entry: the key is the id
        else:
            folder.append((modified, facts))
    chosen = choose(entry_id, folder) if folder else legacy
    return (marks.applied(entry_id, chosen) if chosen is not None else None), marks


class Copies(Mapping[str, ArchiveFacts]):
    """The settled inventory: entry id → its copy, asked a page of entries at a time."""

    def __init__(self, db: sqlite3.Connection, count: int) -> None:
        self._db = db
        self._count = count

    def lookup(self, entry_ids: Sequence[str]
               ) -> tuple[dict[str, ArchiveFacts], dict[str, tuple[NoticeMark, ...]]]:
        """The copies and the owner-notice markers of ``entry_ids`` (those that have any)."""
        found: dict[str, ArchiveFacts] = {}
        notices: dict[str, tuple[NoticeMark, ...]] = {}
        ids = list(dict.fromkeys(entry_ids))
        for start in range(0, len(ids), _LOOKUP):
            chunk = ids[start:start + _LOOKUP]
            marks = ",".join("?" * len(chunk))
            for entry_id, body in self._db.execute(
                    f"SELECT entry_id, body FROM copy WHERE entry_id IN ({marks})", chunk):
                found[entry_id] = _unpack(marshal.loads(body))
            for entry_id, body in self._db.execute(
                    f"SELECT entry_id, body FROM notice WHERE entry_id IN ({marks})", chunk):
                notices[entry_id] = tuple(NoticeMark(entry_id, sent, due, digest)
                                          for sent, due, digest in marshal.loads(body))
        return found, notices

    def __getitem__(self, entry_id: str) -> ArchiveFacts:
        found, _ = self.lookup([entry_id])
        return found[entry_id]

    def __iter__(self) -> Iterator[str]:
        return (row[0] for row in self._db.execute("SELECT entry_id FROM copy ORDER BY entry_id"))

    def __len__(self) -> int:
        return self._count

    def close(self) -> None:
        self._db.close()
