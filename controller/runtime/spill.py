"""Where a big plan's items wait: past a few thousand, on disk, in execution order.

The diff stage (``policies.plan.PlanBuilder``) hands every item it makes to an item store. The
pure default keeps them in a list; the pipeline (``runtime/pipeline.py``) gives it this one, so
the plan of a million-entry catalogue — most of whose entries may want an archive on the first
cycle — does not hold hundreds of thousands of items in Python objects. The first
``in_memory`` items stay in a list (a small plan costs nothing more); past that they go to a
private temporary SQLite database (``sqlite3.connect("")``: SQLite creates it on disk and
deletes it when the connection closes), keyed by the plan's order (action rank, entry id), so
reading them back in order needs no sort in memory. The sealed plan reads them a batch at a
time, as many times as it is walked (the table, the item lines, the plan file, the executor),
and counts items per action with one indexed query each.

The rows are pickles of :class:`~policies.plan.PlanItem`: written and read by this process
only, in a file no other process can open, so nothing untrusted is ever unpickled.
"""

from __future__ import annotations

import pickle
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from typing import overload

from policies.plan import ACTION_ORDER, Action, PlanItem, plan_order

IN_MEMORY = 5000  # items kept in a list before the store moves to disk
_BATCH = 2000  # rows written, and read back, at a time
_RANK = {action: rank for rank, action in enumerate(ACTION_ORDER)}


class SpillingItems:
    """An item store for :class:`~policies.plan.PlanBuilder` that moves to disk when big."""

    def __init__(self, in_memory: int | None = None) -> None:
        self._in_memory = IN_MEMORY if in_memory is None else in_memory
        self._items: list[PlanItem] = []
        self._disk: _Table | None = None

    def add(self, item: PlanItem) -> None:
        self._items.append(item)
        if self._disk is None and len(self._items) <= self._in_memory:
            return
        if self._disk is None:
            self._disk = _Table()
        if len(self._items) >= _BATCH:
            self._disk.write(self._items)
            self._items = []

    def sealed(self) -> Sequence[PlanItem]:
        """Every item added, in the plan's order."""
        if self._disk is None:
            return tuple(sorted(self._items, key=plan_order))
        self._disk.write(self._items)
        self._items = []
        return SpilledItems(self._disk)


class _Table:
    """The temporary database: one table whose primary key is the plan's order."""

    def __init__(self) -> None:
        # "" = a private temporary database on disk, deleted when the connection closes. The
        # executor's threads may walk a plan too: one connection, behind a lock.
        self.db = sqlite3.connect("", check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=OFF")  # scratch data: nothing to recover
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("CREATE TABLE item (rank INTEGER, entry_id TEXT, seq INTEGER, "
                        "body BLOB, PRIMARY KEY (rank, entry_id, seq)) WITHOUT ROWID")
        self.lock = threading.Lock()
        self.count = 0

    def write(self, items: list[PlanItem]) -> None:
        rows = [(_RANK[item.action], item.entry_id, self.count + n,
                 pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL))
                for n, item in enumerate(items)]
        with self.lock, self.db:
            self.db.executemany("INSERT INTO item VALUES (?, ?, ?, ?)", rows)
        self.count += len(rows)

    def rows(self, offset: int = 0, limit: int = -1) -> Iterator[PlanItem]:
        """The items in order from ``offset`` (at most ``limit``), read a batch at a time."""
        last: tuple[int, str, int] | None = None
        taken = 0
        while limit < 0 or taken < limit:
            want = _BATCH if limit < 0 else min(_BATCH, limit - taken)
            with self.lock:
                if last is None:
                    batch = self.db.execute(
                        "SELECT rank, entry_id, seq, body FROM item "
                        "ORDER BY rank, entry_id, seq LIMIT ? OFFSET ?", (want, offset)
                    ).fetchall()
                else:  # keyset paging: each batch starts after the last key read
                    batch = self.db.execute(
                        "SELECT rank, entry_id, seq, body FROM item "
                        "WHERE (rank, entry_id, seq) > (?, ?, ?) "
                        "ORDER BY rank, entry_id, seq LIMIT ?", (*last, want)).fetchall()
            if not batch:
                return
            for row in batch:
                yield pickle.loads(row[3])
            taken += len(batch)
            last = (batch[-1][0], batch[-1][1], batch[-1][2])

    def count_of(self, action: Action) -> int:
        with self.lock:
            (n,) = self.db.execute("SELECT COUNT(*) FROM item WHERE rank = ?",
                                   (_RANK[action],)).fetchone()
        return int(n)


class SpilledItems(Sequence[PlanItem]):
    """A sealed plan's items on disk: walked in order, counted per action without a walk."""

    def __init__(self, table: _Table) -> None:
        self._table = table

    def __len__(self) -> int:
        return self._table.count

    def __iter__(self) -> Iterator[PlanItem]:
        return self._table.rows()

    @overload
    def __getitem__(self, index: int) -> PlanItem: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[PlanItem]: ...

    def __getitem__(self, index: int | slice) -> PlanItem | Sequence[PlanItem]:
        if isinstance(index, slice):
            return tuple(self)[index]  # whole copies are for small uses (tests, a few items)
        position = index + len(self) if index < 0 else index
        if not 0 <= position < len(self):
            raise IndexError("plan item index out of range")
        return next(self._table.rows(position, 1))

    def count_of(self, action: Action) -> int:
        return self._table.count_of(action)
