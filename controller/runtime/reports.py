"""The reports of the Princeton tool, built from what the pipeline assessed: list, health, stats.

``karchive list | count | health | stats`` (``cli/reports.py``) run the pipeline over the
entries their filters select and hand each assessment here; nothing is classified again. Each
row adds what karchive knows beyond the old tool: the observed state (``policies.state``) and
the policy's desired state. ``list`` keeps the old TSV columns first so existing spreadsheets
keep working. Every count and every ``state`` column is the one ``policies.counts`` defines
(the plan and ``/metrics`` show the same figures): ``health`` adds ``managed`` (an unhealthy
entry karchive manages or touched: ``yes``; one left with no content that the plan recovers
from its copy: ``recovering``; one it only reports: ``no``). ``stats`` adds the archive's size
by storage class and a monthly cost estimate (``policies.costs``, from the policy's ``costs:``
prices). With a ``notices:`` section, ``health`` says where each entry stands with its owner's
notice (``notice``: ``notice`` not told yet, ``remind``, ``grace``, ``due``, ``cancelled``; and
``notice_due``: the date its swap or purge becomes due), and ``stats`` counts the held entries
as the plan does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from policies.costs import Holding, estimate
from policies.counts import reported_state
from policies.desired import Decision
from policies.observed import TAG_ARCHIVED, TAG_REPLACED, ObservedEntry
from policies.plan import Action, Assessment, Plan
from policies.schema import ENTRY_STATUSES, Policy
from policies.state import Observation, ObservedState

LIST_COLUMNS = (
    "last_played_date", "plays", "entry_id", "status", "archived_to_s3", "flavors_deleted",
    "created_date", "created", "creator_id", "category_ids", "categories", "state", "desired",
)  # fmt: skip
HEALTH_COLUMNS = (
    "entry_id", "status-ok", "original", "orig_status", "archived_to_s3", "flavors_deleted",
    "created_date", "s3-size", "orig_KB", "size_match", "state", "message", "managed",
    "notice", "notice_due",
)  # fmt: skip
_STATUS_NAMES = {number: name.upper() for name, number in ENTRY_STATUSES.items()}

# The hook for ``list --with-owner``: user ids -> {user id: (status, name, org_unit)}.
OwnerColumns = Callable[[Iterable[str]], Mapping[str, tuple[str, str, str]]]
OWNER_COLUMNS = ("owner_status", "owner_name", "owner_org_unit")


class Report:
    """The entries a report selected, each as the pipeline assessed it (classified once), the
    plan of exactly these entries, and its census (``policies.counts``)."""

    def __init__(self, policy: Policy, assessments: Sequence[Assessment], plan: Plan,
                 placeholder_size: int | None,
                 holdings: Mapping[str, Holding] | None = None) -> None:
        self.policy = policy
        self.now = plan.planned_at
        self.placeholder_size = placeholder_size
        self.assessments = {a.entry.entry_id: a for a in assessments}
        self.entries = [a.entry for a in assessments]
        self.holdings = dict(holdings or {})
        self.plan = plan
        self.census = plan.census

    def observation(self, entry: ObservedEntry) -> Observation:
        return self.assessments[entry.entry_id].observation

    def decision(self, entry: ObservedEntry) -> Decision:
        return self.assessments[entry.entry_id].decision

    def state(self, entry: ObservedEntry) -> str:
        """The entry's state as every report counts it."""
        assessment = self.assessments[entry.entry_id]
        return reported_state(entry, assessment.observation, assessment.action).value

    def notice(self, entry: ObservedEntry) -> dict[str, str]:
        """The health columns of the entry's notice verdict (empty without one)."""
        verdict = self.assessments[entry.entry_id].notice
        if verdict is None:
            return {"notice": "", "notice_due": ""}
        return {"notice": verdict.status.value, "notice_due": _date(verdict.due_at)}

    def listed_unhealthy(self, entry: ObservedEntry) -> bool:
        """A ``!`` line of the plan: unhealthy, and managed or touched by karchive."""
        return self.assessments[entry.entry_id].action == Action.UNHEALTHY.value


def _date(stamp: int | None) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d") if stamp else ""


def list_rows(report: Report, owners: OwnerColumns | None = None) -> list[dict[str, Any]]:
    """The ``list`` rows; ``owners`` (the ``--with-owner`` hook) appends OWNER_COLUMNS."""
    found = owners([e.user_id or e.creator_id for e in report.entries]) if owners else {}
    rows = []
    for e in report.entries:
        row: dict[str, Any] = {
            "last_played_date": _date(e.last_played_at), "plays": e.plays,
            "entry_id": e.entry_id, "status": _STATUS_NAMES.get(e.status, str(e.status)),
            "archived_to_s3": TAG_ARCHIVED in e.tags, "flavors_deleted": TAG_REPLACED in e.tags,
            "created_date": _date(e.created_at), "created": e.created_at,
            "creator_id": e.creator_id,
            "category_ids": ",".join(str(c) for c in sorted(e.category_ids)),
            "categories": ",".join(e.categories),
            "state": report.state(e),
            "desired": report.decision(e).state.value,
        }  # fmt: skip
        if owners is not None:
            info = found.get(e.user_id or e.creator_id, ("unknown", "", ""))
            row.update(zip(OWNER_COLUMNS, info, strict=True))
        rows.append(row)
    return rows


def health_rows(report: Report) -> list[dict[str, Any]]:
    rows = []
    for e in report.entries:
        observation = report.observation(e)
        original, copy = e.original, e.archive
        size_match: Any = ""
        if original is not None and copy is not None:
            size_match = original.size_bytes == copy.size_bytes
        message = "; ".join((observation.reason, *observation.notes))
        unhealthy = observation.state is ObservedState.UNHEALTHY
        managed = ""
        if unhealthy:
            # "recovering": emptied, and the plan brings it back from its copy (counted as
            # restoring, policies.counts); "yes": a ! line of the plan; "no": reported only.
            managed = ("yes" if report.listed_unhealthy(e)
                       else "recovering" if report.state(e) == ObservedState.RESTORING.value
                       else "no")
        rows.append({
            "entry_id": e.entry_id,
            "status-ok": observation.state is not ObservedState.UNHEALTHY,
            "original": original.flavor_id if original else "",
            "orig_status": original.status if original else "",
            "archived_to_s3": TAG_ARCHIVED in e.tags, "flavors_deleted": TAG_REPLACED in e.tags,
            "created_date": _date(e.created_at),
            "s3-size": copy.size_bytes if copy else "",
            "orig_KB": original.size_bytes // 1024 if original else "",
            "size_match": size_match, "state": report.state(e), "message": message,
            "managed": managed, **report.notice(e),
        })  # fmt: skip
    return rows


def stats(report: Report) -> dict[str, Any]:
    """Counts by created year and last-played year, entries by state (``policies.counts``),
    storage in Kaltura and in the archive, what the policy would free, and the cost estimate."""
    by_created = Counter(_date(e.created_at)[:4] for e in report.entries)
    by_played = Counter(_date(e.last_played_at)[:4] or "never" for e in report.entries)
    census, plan = report.census, report.plan
    freeing = {i.entry_id for i in plan.changes if i.action in (Action.REPLACE, Action.DELETE)}
    placeholder = report.placeholder_size or 0
    freed = sum(max(0, e.stored_bytes - placeholder) for e in report.entries
                if e.entry_id in freeing)
    totals = plan.totals()
    storage = report.policy.storage
    copies = [i.bytes for i in plan.changes
              if i.action in (Action.ARCHIVE, Action.REPLACE, Action.DELETE) and i.bytes]
    thaws = [i.bytes for i in plan.changes if i.action is Action.THAW]
    holdings = report.holdings
    return {
        "entries": census.entries,
        "by_created_year": dict(sorted(by_created.items())),
        "by_last_played_year": dict(sorted(by_played.items())),
        "by_state": dict(census.by_state),
        "unhealthy": {"managed": census.unhealthy_managed,
                      "unmanaged": census.unhealthy_unmanaged},
        "thaws_in_progress": census.thaws_in_progress,
        "held_for_notices": {"in_grace": census.in_grace,
                             "awaiting_notice": census.awaiting_notice},
        "placeholders": census.by_state[ObservedState.PLACEHOLDER.value],
        "pending_changes": {name: amount.count for name, amount in totals.actions.items()},
        "kaltura_bytes": sum(e.stored_bytes for e in report.entries),
        "bytes_policy_would_free": freed,
        "entries_policy_would_replace": len(freeing),
        "archive": {
            "objects": sum(h.objects for h in holdings.values()),
            "bytes": sum(h.bytes for h in holdings.values()),
            "by_storage_class": {name: {"objects": h.objects, "bytes": h.bytes}
                                 for name, h in sorted(holdings.items())},
        },
        "costs": estimate(holdings, report.policy.costs, storage_class=storage.storage_class,
                          tier=storage.restore.tier, copy_sizes=copies, thaw_bytes=sum(thaws),
                          thaws=len(thaws), kaltura_bytes_freed=freed),
    }


def flatten(figures: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str, Any]]:
    """(metric, key, value) rows: a mapping of plain values is one metric with a row per key;
    deeper mappings name their metric with dots (``archive.by_storage_class.GLACIER``)."""
    rows: list[tuple[str, str, Any]] = []
    for name, value in figures.items():
        metric = f"{prefix}{name}"
        if not isinstance(value, Mapping):
            rows.append((metric, "", value))
        elif all(not isinstance(v, Mapping) for v in value.values()):
            rows += [(metric, str(key), v) for key, v in value.items()]
        else:
            rows += flatten(value, f"{metric}.")
    return rows
