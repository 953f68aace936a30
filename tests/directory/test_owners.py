"""``karchive owners``: a list TSV in, the same rows with status, name and org_unit out."""

from __future__ import annotations

import io
from collections.abc import Iterable

import pytest
from ldap_people import ODD_UID, settings_for
from slapd import Slapd

from controller.adapters.ldap import Directory, OwnerInfo
from controller.runtime.owners import OWNER_COLUMNS, OwnersInputError, enrich_tsv
from policies.observed import OwnerStatus

# The Princeton ``list`` columns (reference/prior-tools.md), which karchive list also writes.
HEADER = (
    "last_played_date\tplays\tentry_id\tstatus\tarchived_to_s3\tflavors_deleted\tcreated_date"
    "\tcreated\tcreator_id\tcategory_ids\tcategories"
)


def row(entry_id: str, creator: str) -> str:
    cells = ["2019-01-01", "3", entry_id, "READY", "False", "False", "2017-05-01", "1493596800"]
    return "\t".join([*cells, creator, "1", "A"])


def enrich(directory: Directory, text: str, **kwargs: str) -> list[list[str]]:
    out = io.StringIO()
    enrich_tsv(io.StringIO(text), out, directory, **kwargs)
    return [line.split("\t") for line in out.getvalue().splitlines()]


def test_a_list_tsv_gets_three_owner_columns_per_row(directory: Directory) -> None:
    creators = [
        "alice@example.edu", "gary@example.edu", "dora@example.edu", "zoe@example.edu",
        "carl@example.edu", "ghost@example.edu", ODD_UID, "alice@example.edu",
    ]
    text = "\n".join([HEADER, *(row(f"0_e{i}", c) for i, c in enumerate(creators))]) + "\n"
    lines = enrich(directory, text)
    assert lines[0] == HEADER.split("\t") + list(OWNER_COLUMNS)
    assert [line[-3:] for line in lines[1:]] == [
        ["active", "Alice Active", "Physics"],
        ["active", "Gary Going", "Chemistry"],
        ["inactive", "Dora Disabled", "History"],
        ["active", "Zoë Ångström", "Mathématiques"],  # non-ASCII survives the round trip
        ["active", "Carl Cnonly", ""],  # no displayName: cn; no ou: an empty cell
        ["inactive", "", ""],  # gone from the directory
        ["inactive", "Odd Uid", "Computing"],
        ["active", "Alice Active", "Physics"],
    ]
    assert [line[:-3] for line in lines[1:]] == [r.split("\t") for r in text.splitlines()[1:]]
    assert directory.searches == 2  # seven distinct owners: one batch


def test_rows_without_an_owner_and_crlf_input_are_handled(directory: Directory) -> None:
    text = f"{HEADER}\r\n{row('0_a', '')}\r\n\r\n2019-01-01\t3\t0_short\r\n"
    lines = enrich(directory, text)
    assert lines[1][-3:] == ["unknown", "", ""]
    assert lines[2] == ["2019-01-01", "3", "0_short", "unknown", "", ""]
    assert len(lines) == 3  # the blank line is dropped, nothing else


def test_another_owner_column_can_be_named(directory: Directory) -> None:
    lines = enrich(directory, "entry_id\tuser_id\n0_a\tzoe\n", column="user_id")
    assert lines == [
        ["entry_id", "user_id", *OWNER_COLUMNS],
        ["0_a", "zoe", "active", "Zoë Ångström", "Mathématiques"],
    ]


def test_input_without_the_owner_column_is_refused_with_the_fix(directory: Directory) -> None:
    with pytest.raises(OwnersInputError, match="no 'creator_id' column.*karchive list"):
        enrich(directory, "entry_id\tname\n0_a\tx\n")
    assert directory.searches == 0


def test_empty_input_writes_nothing(directory: Directory) -> None:
    assert enrich(directory, "") == []


def test_with_the_directory_down_every_owner_is_unknown_and_rows_still_flow(
    private_slapd: Slapd,
) -> None:
    settings = settings_for(private_slapd, retries=0)
    private_slapd.stop()
    text = "\n".join([HEADER, row("0_a", "alice"), row("0_b", "dora")])
    with Directory(settings) as d:
        lines = enrich(d, text)
    assert [line[-3:] for line in lines[1:]] == [["unknown", "", ""], ["unknown", "", ""]]


def test_a_name_with_a_tab_cannot_split_the_row() -> None:
    class Stub:  # the filter's own logic, without a server: a value with a tab and a newline
        def lookup(self, user_ids: Iterable[str]) -> dict[str, OwnerInfo]:
            return {"x": OwnerInfo(OwnerStatus.ACTIVE, "A\tB", "C\nD")}

    out = io.StringIO()
    enrich_tsv(io.StringIO("creator_id\nx\n"), out, Stub())
    assert out.getvalue().splitlines()[1].split("\t") == ["x", "active", "A B", "C D"]
