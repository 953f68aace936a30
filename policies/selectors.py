"""Selectors: does one observed entry satisfy a rule's ``match`` (or a report's filters)?

Used by ``policies.desired`` (rules and exemptions) and by the reports (``karchive list``,
``count``, ``health``, ``stats``), which build the same :class:`~policies.schema.Match` from
command-line options through :class:`Selection`, so a report shows exactly the entries a rule
would take. Pure: the planning instant ``now`` is an argument, never read from a clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from policies.observed import ObservedEntry
from policies.schema import Match, TagSelector


def in_categories(entry: ObservedEntry, wanted: Iterable[int | str]) -> bool:
    """An id matches that category; a full name matches it and every category below it
    (``Courses`` covers ``Courses>PHY101``), as a person browsing the tree expects."""
    names = [name.lower() for name in entry.categories]
    for category in wanted:
        if isinstance(category, int) or (isinstance(category, str) and category.isdigit()):
            if int(category) in entry.category_ids:
                return True
            continue
        target = category.strip().lower()
        if any(name == target or name.startswith(target + ">") for name in names):
            return True
    return False


def _tags_hold(entry: ObservedEntry, selector: TagSelector) -> bool:
    tags = {tag.lower() for tag in entry.tags}
    if selector.any and tags.isdisjoint(selector.any):
        return False
    if selector.all and not tags.issuperset(selector.all):
        return False
    return tags.isdisjoint(selector.none)


def _original_size(entry: ObservedEntry) -> int | None:
    original = entry.original
    return original.size_bytes if original is not None else None


def never_played(entry: ObservedEntry) -> bool:
    """No play recorded at all. Kaltura leaves lastPlayedAt null for plays counted before it
    tracked the field, so an entry with plays but no lastPlayedAt has been played."""
    return entry.last_played_at is None and entry.plays == 0


def matches(match: Match, entry: ObservedEntry, now: int) -> bool:
    """Whether every selector given in ``match`` holds for ``entry`` at ``now``."""
    return all(check(match, entry, now) for check in _CHECKS)


def _created_before(m: Match, e: ObservedEntry, now: int) -> bool:
    return m.created_before is None or e.created_at <= m.created_before.before(now)


def _created_within(m: Match, e: ObservedEntry, now: int) -> bool:
    return m.created_within is None or e.created_at > m.created_within.before(now)


def _unplayed_for(m: Match, e: ObservedEntry, now: int) -> bool:
    if m.unplayed_for is None:
        return True
    cutoff = m.unplayed_for.before(now)
    # Not played since the cutoff AND old enough: a never-played entry counts from createdAt
    # (the tool we replace filtered on lastPlayedAt alone and so never saw them).
    not_played = e.last_played_at is None or e.last_played_at <= cutoff
    return not_played and e.created_at <= cutoff


def _played_within(m: Match, e: ObservedEntry, now: int) -> bool:
    if m.played_within is None:
        return True
    return e.last_played_at is not None and e.last_played_at > m.played_within.before(now)


def _never_played(m: Match, e: ObservedEntry, now: int) -> bool:
    return m.never_played is None or never_played(e) == m.never_played


def _plays_below(m: Match, e: ObservedEntry, now: int) -> bool:
    return m.plays_below is None or e.plays < m.plays_below


def _categories(m: Match, e: ObservedEntry, now: int) -> bool:
    return m.categories is None or in_categories(e, m.categories)


def _tags(m: Match, e: ObservedEntry, now: int) -> bool:
    return m.tags is None or _tags_hold(e, m.tags)


def _owners(m: Match, e: ObservedEntry, now: int) -> bool:
    return m.owners is None or e.user_id.lower() in {o.lower() for o in m.owners}


def _owner_status(m: Match, e: ObservedEntry, now: int) -> bool:
    # An owner the directory could not answer for is "unknown", equal to neither value: nothing
    # is archived because the directory is down.
    return m.owner_status is None or e.owner_status.value == m.owner_status


def _statuses(m: Match, e: ObservedEntry, now: int) -> bool:
    return m.statuses is None or e.status in m.statuses


def _media_types(m: Match, e: ObservedEntry, now: int) -> bool:
    return m.media_types is None or e.media_type in m.media_types


def _sizes(m: Match, e: ObservedEntry, now: int) -> bool:
    if m.min_size is None and m.max_size is None:
        return True
    size = _original_size(e)
    if size is None:
        return False  # no original flavor: its size is unknown, so a size bound cannot hold
    return (m.min_size is None or size >= m.min_size) and (m.max_size is None or size <= m.max_size)


def _entry_ids(m: Match, e: ObservedEntry, now: int) -> bool:
    return m.entry_ids is None or e.entry_id in m.entry_ids


def _id_file(m: Match, e: ObservedEntry, now: int) -> bool:
    return m.id_file is None or e.entry_id in m.id_file


_CHECKS: tuple[Callable[[Match, ObservedEntry, int], bool], ...] = (
    _entry_ids, _id_file, _statuses, _media_types, _created_before, _created_within,
    _unplayed_for, _played_within, _never_played, _plays_below, _categories, _tags, _owners,
    _owner_status, _sizes,
)  # fmt: skip


class SelectionError(ValueError):
    """A bad command-line filter; ``str()`` is one line naming the option and the fix."""


@dataclass(frozen=True, slots=True)
class Selection:
    """A ``Match`` fixed at one instant: the reports' filter, the same language as the rules."""

    match: Match
    now: int

    def __call__(self, entry: ObservedEntry) -> bool:
        return matches(self.match, entry, self.now)

    def filter(self, entries: Iterable[ObservedEntry]) -> Iterator[ObservedEntry]:
        return (entry for entry in entries if self(entry))

    @classmethod
    def from_options(cls, options: Mapping[str, Any], now: int) -> Selection:
        """Build from command-line values keyed by Match field name; ``None`` means not given.

        ``tags`` may be a list of words in the Princeton tool's form: ``"lecture"`` must be
        present, ``"!exempt"`` must be absent. Errors name the option as typed (``--unplayed-for``).
        """
        given = {key: value for key, value in options.items() if value is not None}
        tags = given.get("tags")
        if isinstance(tags, list | tuple):
            given["tags"] = {
                "all": [t for t in tags if not t.startswith("!")],
                "none": [t[1:] for t in tags if t.startswith("!")],
            }
        try:
            return cls(Match.model_validate(given), now)
        except ValidationError as exc:
            error = exc.errors()[0]
            option = "--" + str(error["loc"][0]).replace("_", "-") if error["loc"] else "filter"
            cause = (error.get("ctx") or {}).get("error")
            problem = str(cause) if cause is not None else str(error["msg"])
            if error["type"] == "extra_forbidden":
                problem = "is not a filter"
            raise SelectionError(f"{option}: {problem}") from None
