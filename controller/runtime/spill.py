"""Where a big plan's items wait: past a few thousand, on disk, in execution order.

The diff stage (``policies.plan.PlanBuilder``) hands every item it makes to an item store. The
pure default keeps them in a list; the pipeline (``runtime/pipeline.py``) gives it this one, so
the plan of a million-entry catalogue — most of whose entries may want an archive on the first
cycle — does not hold hundreds of thousands of items in Python objects. The first
``in_memory`` items stay in a list (a small plan costs nothing more); past that they go to a
private temporary SQLite database (``sqlite3.connect("")``: SQLite creates it on disk and
deletes it when the connection closes), appended as they come and sorted into the plan's order
(action rank, entry id) once, by SQLite, when the plan is sealed — no sort in memory. The sealed
plan reads them a batch at a time, as many times as it is walked (the table, the item lines,
the plan file, the executor); the counts per action are kept as the items come.

A row is an item's fields as plain values (``marshal``, which builds strings, numbers and
tuples and nothing else), made into a :class:`~policies.plan.PlanItem` again when read: three
times faster than unpickling the dataclass, and a file no other process can open holds no
object that could run code when loaded.
"""

from __future__ import annotations

import marshal
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import overload

from policies.plan import ACTION_ORDER, Action, PlanItem, plan_order
from policies.schema import DesiredState
from policies.state import ObservedState

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
        self._disk.seal()
        return SpilledItems(self._disk)


class _Table:
    """The temporary database: rows appended as they come, then one sorted copy to read."""

    def __init__(self) -> None:
        # "" = a private temporary database on disk, deleted when the connection closes. The
        # executor's threads may walk a plan too: one connection, behind a lock.
        self.db = sqlite3.connect("", check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=OFF")  # scratch data: nothing to recover
        self.db.execute("PRAGMA synchronous=OFF")
        # Appended in the walk's order: no index to keep up while the plan grows (a B-tree
        # keyed by the plan's order, filled in another order, rewrites its pages over and over).
        self.db.execute("CREATE TABLE added (rank INTEGER, entry_id TEXT, seq INTEGER, "
                        "body BLOB)")
        self.lock = threading.Lock()
        self.count = 0
        self.by_action: Counter[Action] = Counter()

    def write(self, items: list[PlanItem]) -> None:
        rows = [(_RANK[item.action], item.entry_id, self.count + n,
                 _encode(item))
                for n, item in enumerate(items)]
        with self.lock, self.db:
            self.db.executemany("INSERT INTO added VALUES (?, ?, ?, ?)", rows)
        self.count += len(rows)
        self.by_action.update(item.action for item in items)

    def seal(self) -> None:
        """One sort into the table that is read: its rowid is the item's place in the plan, so
        a walk is a sequential scan and an index a lookup."""
        with self.lock, self.db:
            self.db.execute("CREATE TABLE item (place INTEGER PRIMARY KEY, body BLOB)")
            self.db.execute("INSERT INTO item (body) SELECT body FROM added "
                            "ORDER BY rank, entry_id, seq")
            self.db.execute("DROP TABLE added")

    def rows(self, offset: int = 0, limit: int = -1) -> Iterator[PlanItem]:
        """The items in order from ``offset`` (at most ``limit``), read a batch at a time."""
        place, end = offset + 1, self.count + 1 if limit < 0 else offset + 1 + limit
        while place < end:
            upto = min(place + _BATCH, end)
            with self.lock:
                batch = self.db.execute("SELECT body FROM item WHERE place >= ? AND place < ? "
                                        "ORDER BY place", (place, upto)).fetchall()
            for (body,) in batch:
                yield _decode(body)
            place = upto


_ACTIONS = {action.value: action for action in Action}
_FROM = {state.value: state for state in ObservedState}
_TO = {state.value: state for state in DesiredState}


def _encode(item: PlanItem) -> bytes:
    return marshal.dumps((
        item.entry_id, item.action.value, item.from_state.value, item.to_state.value,
        item.reconcilers, item.rule, item.bytes, item.reason, item.fingerprint,
        item.add_tags, item.remove_tags, item.notice, item.due_at))


def _decode(body: bytes) -> PlanItem:
    (entry_id, action, from_state, to_state, reconcilers, rule, size, reason, fingerprint,
     add_tags, remove_tags, notice, due_at) = marshal.loads(body)
    return PlanItem(entry_id, _ACTIONS[action], _FROM[from_state], _TO[to_state], reconcilers,
                    rule, size, reason, fingerprint, add_tags, remove_tags, notice, due_at)


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
        return self._table.by_action[action]
