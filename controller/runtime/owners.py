"""``karchive owners``: enrich a list TSV with each owner's directory standing.

A report filter at the controller edge, the successor of Princeton's ``add_ldap_status.py``:
read the TSV of ``karchive list`` (or the old tool's ``list``) on stdin, look every distinct owner
up in the directory at once (batched and cached by ``controller.adapters.ldap``), and write the same
rows with three columns appended — ``status`` (active / inactive / unknown), ``name`` and
``org_unit``. Unlike the old script a missing attribute gives an empty cell, not a KeyError, and a
directory that cannot be reached gives ``unknown``, not a crash. The column names are the old
script's, so its downstream spreadsheets keep working (the list's own entry ``status`` column comes
earlier in the row).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TextIO

from controller.adapters.ldap import OwnerInfo
from controller.errors import UsageError

OWNER_COLUMNS = ("status", "name", "org_unit")
DEFAULT_OWNER_COLUMN = "creator_id"  # the Princeton list column the old script read


class OwnerLookup(Protocol):
    """What the filter needs of ``controller.adapters.ldap.Directory``."""

    def lookup(self, user_ids: Iterable[str]) -> dict[str, OwnerInfo]: ...


class OwnersInputError(UsageError):
    """The input is not a list TSV this filter can read; the message says how to fix it."""


def enrich_tsv(
    source: TextIO,
    sink: TextIO,
    directory: OwnerLookup,
    *,
    column: str = DEFAULT_OWNER_COLUMN,
) -> int:
    """Copy ``source`` to ``sink`` with owner columns appended; return the data rows written.

    The first line is the header and must name ``column``. All rows are read before the single
    lookup so the directory sees each distinct owner once, in full batches.
    """
    header_line = source.readline()
    if not header_line.strip():
        return 0  # empty input: nothing to enrich, and no header to complain about
    header = _split(header_line)
    if column not in header:
        raise OwnersInputError(
            f"the input has no {column!r} column (it has: {', '.join(header)}); "
            "pipe in the TSV of `karchive list` or name the owner column"
        )
    index = header.index(column)
    rows = [_split(line) for line in source if line.strip()]
    owners = directory.lookup({_cell(row, index) for row in rows})
    sink.write("\t".join([*header, *OWNER_COLUMNS]) + "\n")
    for row in rows:
        info = owners[_cell(row, index)]
        extra = [info.status.value, _clean(info.name), _clean(info.org_unit)]
        sink.write("\t".join([*row, *extra]) + "\n")
    return len(rows)


def _split(line: str) -> list[str]:
    return line.rstrip("\r\n").split("\t")


def _cell(row: list[str], index: int) -> str:
    return row[index].strip() if index < len(row) else ""


def _clean(value: str) -> str:
    # A directory value may hold a tab or newline; either would break the row apart.
    return " ".join(value.split())
