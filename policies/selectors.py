"""Selectors: does one observed entry satisfy a rule's ``match`` (or a report's filters)?

Used by ``policies.desired`` (rules and exemptions) and by the reports (``karchive list``,
``count``, ``health``, ``stats``), which build the same :class:`~policies.schema.Match` from
command-line options through :class:`Selection`, so a report shows exactly the entries a rule
would take. Pure: the planning instant ``now`` is an argument, never read from a clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from policies.observed import TAG_REPLACED, ObservedEntry
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


def _content_size(entry: ObservedEntry) -> int | None:
    """The size of the entry's real video: the original flavor's, or, for a placeholder, the
    archived copy's. Sizing a placeholder by the placeholder video would make a ``min_size`` rule
    stop matching the moment it is applied, and the entry would be restored straight back."""
    # An entry emptied by the old tool (no original left) is sized by its copy too.
    if (TAG_REPLACED in entry.tags or entry.original is None) and entry.archive is not None:
        return entry.archive.size_bytes
    original = entry.original
    return original.size_bytes if original is not None else None


def never_played(entry: ObservedEntry) -> bool:
    """No play recorded at all. Kaltura leaves lastPlayedAt null for plays counted before it
    tracked the field, so an entry with plays but no lastPlayedAt has been played."""
    return entry.last_played_at is None and entry.plays == 0


Predicate = Callable[[ObservedEntry], bool]


def matches(match: Match, entry: ObservedEntry, now: int) -> bool:
    """Whether every selector given in ``match`` holds for ``entry`` at ``now``."""
    return compile_match(match, now)(entry)


def compile_match(match: Match, now: int) -> Predicate:
    """``match`` at ``now`` as one predicate: only the selectors given, cutoffs computed once,
    cheapest first. The planner runs it over every entry of a catalogue (200,000 and more)."""
    checks = [check for build in _BUILDERS if (check := build(match, now)) is not None]

    def every(entry: ObservedEntry) -> bool:
        return all(check(entry) for check in checks)

    return checks[0] if len(checks) == 1 else every


def _ids(m: Match, now: int) -> Predicate | None:
    listed = [ids for ids in (m.entry_ids, m.id_file) if ids is not None]
    return (lambda e: all(e.entry_id in ids for ids in listed)) if listed else None


def _statuses(m: Match, now: int) -> Predicate | None:
    wanted = m.statuses
    return None if wanted is None else lambda e: e.status in wanted


def _media_types(m: Match, now: int) -> Predicate | None:
    wanted = m.media_types
    return None if wanted is None else lambda e: e.media_type in wanted


def _plays_below(m: Match, now: int) -> Predicate | None:
    limit = m.plays_below
    return None if limit is None else lambda e: e.plays < limit


def _created_before(m: Match, now: int) -> Predicate | None:
    if m.created_before is None:
        return None
    cutoff = m.created_before.before(now)
    return lambda e: e.created_at <= cutoff


def _created_within(m: Match, now: int) -> Predicate | None:
    if m.created_within is None:
        return None
    cutoff = m.created_within.before(now)
    return lambda e: e.created_at > cutoff


def _unplayed_for(m: Match, now: int) -> Predicate | None:
    if m.unplayed_for is None:
        return None
    cutoff = m.unplayed_for.before(now)
    # Not played since the cutoff AND old enough: a never-played entry counts from createdAt
    # (the tool we replace filtered on lastPlayedAt alone and so never saw them).
    return lambda e: (e.last_played_at is None or e.last_played_at <= cutoff) and (
        e.created_at <= cutoff
    )


def _played_within(m: Match, now: int) -> Predicate | None:
    if m.played_within is None:
        return None
    cutoff = m.played_within.before(now)
    return lambda e: e.last_played_at is not None and e.last_played_at > cutoff


def _never_played(m: Match, now: int) -> Predicate | None:
    wanted = m.never_played
    return None if wanted is None else lambda e: never_played(e) == wanted


def _owners(m: Match, now: int) -> Predicate | None:
    if m.owners is None:
        return None
    owners = {owner.lower() for owner in m.owners}
    return lambda e: e.user_id.lower() in owners


def _owner_status(m: Match, now: int) -> Predicate | None:
    # An owner the directory could not answer for is "unknown", equal to neither value: nothing
    # is archived because the directory is down.
    wanted = m.owner_status
    return None if wanted is None else lambda e: e.owner_status.value == wanted


def _tags(m: Match, now: int) -> Predicate | None:
    selector = m.tags
    return None if selector is None else lambda e: _tags_hold(e, selector)


def _categories(m: Match, now: int) -> Predicate | None:
    wanted = m.categories
    return None if wanted is None else lambda e: in_categories(e, wanted)


def _sizes(m: Match, now: int) -> Predicate | None:
    low, high = m.min_size, m.max_size
    if low is None and high is None:
        return None

    def within(e: ObservedEntry) -> bool:
        size = _content_size(e)
        if size is None:
            return False  # no original flavor: its size is unknown, so a bound cannot hold
        return (low is None or size >= low) and (high is None or size <= high)

    return within


_BUILDERS: tuple[Callable[[Match, int], Predicate | None], ...] = (
    _ids, _statuses, _media_types, _plays_below, _created_before, _created_within,
    _unplayed_for, _played_within, _never_played, _owners, _owner_status, _tags, _categories,
    _sizes,
)  # fmt: skip


class SelectionError(ValueError):
    """A bad command-line filter; ``str()`` is one line naming the option and the fix."""


@dataclass(frozen=True, slots=True)
class Selection:
    """A ``Match`` fixed at one instant: the reports' filter, the same language as the rules."""

    match: Match
    now: int
    predicate: Predicate = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "predicate", compile_match(self.match, self.now))

    def __call__(self, entry: ObservedEntry) -> bool:
        return self.predicate(entry)

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
