"""``karchive list | count | health | stats``: the reports of the Princeton tool.

Same filters as the old tool (``--tag`` with ``!`` to negate, ``--category``, ``--plays N``,
``--status``, ``--created-within`` / ``--created-before`` / ``--played-within`` /
``--unplayed-for DURATION``, ``--id``, ``--idfile``, ``--max-entries``), built into the policy's own
``Match`` through ``policies.selectors.Selection``, so a report shows exactly the entries a rule
with the same selectors would take. Each row adds what karchive knows beyond the old tool: the
observed state (``policies.state.classify``) and the policy's desired state. ``list`` keeps the old
TSV columns first so existing spreadsheets keep working. Every count and every ``state`` column
is the one ``policies.counts`` defines (the plan and ``/metrics`` show the same figures):
``health`` adds ``managed`` (an unhealthy entry karchive manages or touched: ``yes``; one left
with no content that the plan recovers from its copy: ``recovering``; one it only reports:
``no``) and exits 1 when any selected entry is unhealthy and managed — what
``karchive_entries_unhealthy{scope="managed"}`` counts and the alert fires on. ``stats`` adds
the archive's size by storage class and a monthly cost estimate (``policies.costs``, from the
policy's ``costs:`` prices). Reads only, like ``plan``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from controller.cli.plan import fail
from controller.cli.policy import add_policy_option, load
from controller.errors import KarchiveError, UsageError
from controller.runtime.progress import NoProgress, Progress
from policies.costs import Holding
from policies.counts import reported_state
from policies.durations import format_size
from policies.observed import TAG_ARCHIVED, TAG_REPLACED, ObservedEntry
from policies.schema import ENTRY_STATUSES, Policy
from policies.state import ObservedState, classify

LIST_COLUMNS = (
    "last_played_date", "plays", "entry_id", "status", "archived_to_s3", "flavors_deleted",
    "created_date", "created", "creator_id", "category_ids", "categories", "state", "desired",
)  # fmt: skip
HEALTH_COLUMNS = (
    "entry_id", "status-ok", "original", "orig_status", "archived_to_s3", "flavors_deleted",
    "created_date", "s3-size", "orig_KB", "size_match", "state", "message", "managed",
)  # fmt: skip
_STATUS_NAMES = {number: name.upper() for name, number in ENTRY_STATUSES.items()}

# The hook for ``list --with-owner``: user ids -> {user id: (status, name, org_unit)}.
OwnerColumns = Callable[[Iterable[str]], Mapping[str, tuple[str, str, str]]]
OWNER_COLUMNS = ("owner_status", "owner_name", "owner_org_unit")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for name, help_text, func in (
        ("list", "list entries with their archive state (TSV, CSV or JSON)", _list),
        ("count", "count the entries the filters select", _count),
        ("health", "check every selected entry's invariants; exit 1 if any is unhealthy",
         _health),
        ("stats", "counts by year, placeholders, storage held and what the policy frees",
         _stats),
    ):
        parser = sub.add_parser(name, help=help_text)
        add_policy_option(parser)
        add_selector_options(parser)
        if name != "count":
            parser.add_argument("--format", choices=("tsv", "csv", "json"), default="tsv")
        if name == "list":
            parser.add_argument(
                "--with-owner", action="store_true",
                help="add each owner's directory status, name and org unit (the policy's "
                     "directory: section)")
        parser.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
        parser.set_defaults(func=func)


def add_selector_options(parser: argparse.ArgumentParser) -> None:
    """The Princeton filters, named as the policy's selectors are."""
    add = parser.add_argument
    add("--tag", action="append", metavar="TAG", help="has TAG; !TAG: has not (repeatable)")
    add("--category", action="append", metavar="CATEGORY", help="category id or full name")
    add("--plays", type=int, metavar="N", help="played fewer than N times")
    add("--status", action="append", metavar="STATUS", help="entry status (ready, no_content...)")
    add("--created-within", metavar="DURATION", help="created within, e.g. 1y, 6mo")
    add("--created-before", metavar="DURATION", help="created more than DURATION ago")
    add("--played-within", metavar="DURATION", help="last played within DURATION")
    add("--unplayed-for", metavar="DURATION", help="not played for DURATION (or ever)")
    add("--id", action="append", metavar="ENTRY_ID", help="this entry (repeatable)")
    add("--idfile", metavar="FILE", help="entries listed in FILE, one id a line")
    add("--max-entries", type=int, metavar="N", help="report at most N entries")


def _selection(args: argparse.Namespace, now: int) -> Any:
    from policies.selectors import Selection, SelectionError

    options = {
        "tags": args.tag, "categories": args.category, "plays_below": args.plays,
        "statuses": args.status, "created_within": args.created_within,
        "created_before": args.created_before, "played_within": args.played_within,
        "unplayed_for": args.unplayed_for, "entry_ids": args.id, "id_file": args.idfile,
    }  # fmt: skip
    try:
        return Selection.from_options(options, now)
    except SelectionError as exc:
        raise UsageError(str(exc)) from None


class Report:
    """One observation, filtered by the selectors: each entry's states, the plan of exactly
    these entries, and its census (``policies.counts``)."""

    def __init__(self, policy: Policy, entries: Sequence[ObservedEntry], now: int,
                 placeholder_size: int | None,
                 holdings: Mapping[str, Holding] | None = None) -> None:
        from policies.desired import desired_state
        from policies.plan import Action, diff

        self.policy = policy
        self.now = now
        self.placeholder_size = placeholder_size
        self.entries = entries
        self.holdings = dict(holdings or {})
        self.observed = {e.entry_id: classify(e, placeholder_size) for e in entries}
        self.desired = {e.entry_id: desired_state(e, policy, now) for e in entries}
        self.plan = diff(entries, policy, now, placeholder_size)
        self.census = self.plan.census
        self.actions = {i.entry_id: i.action.value for i in self.plan.items}
        self.listed_unhealthy = {i.entry_id for i in self.plan.items
                                 if i.action is Action.UNHEALTHY}

    def state(self, entry: ObservedEntry) -> str:
        """The entry's state as every report counts it."""
        return reported_state(entry, self.observed[entry.entry_id],
                              self.actions.get(entry.entry_id)).value


def _observe(args: argparse.Namespace) -> Report:
    from controller.runtime.observe import observe_policy

    policy = load(args.policy)
    import time

    selection = _selection(args, int(time.time()))
    overrides = None
    if args.id and len(args.id) <= 500 and not args.idfile:
        overrides = {"idIn": ",".join(args.id)}  # Kaltura narrows the walk itself
    progress = NoProgress() if args.quiet else Progress("observed")
    observation = observe_policy(policy, progress=progress, filter_overrides=overrides)
    entries = [e for e in observation.entries if selection(e)]
    if args.max_entries is not None:
        entries = entries[: max(0, args.max_entries)]
    return Report(policy, entries, observation.observed_at, observation.placeholder_size,
                  observation.holdings)


def _guarded(body: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return body(args)
        except UsageError:
            raise
        except KarchiveError as exc:
            return fail(exc)

    return run


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
            "desired": report.desired[e.entry_id].state.value,
        }  # fmt: skip
        if owners is not None:
            info = found.get(e.user_id or e.creator_id, ("unknown", "", ""))
            row.update(zip(OWNER_COLUMNS, info, strict=True))
        rows.append(row)
    return rows


def write_rows(rows: list[dict[str, Any]], columns: Sequence[str], fmt: str, out: TextIO) -> None:
    if fmt == "json":
        json.dump(rows, out, indent=1, default=str)
        out.write("\n")
        return
    writer = csv.DictWriter(out, fieldnames=list(columns), delimiter="\t" if fmt == "tsv" else ",",
                            lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)


@_guarded
def _list(args: argparse.Namespace) -> int:
    owners = _owner_lookup(load(args.policy)) if args.with_owner else None
    report = _observe(args)
    columns = (*LIST_COLUMNS, *OWNER_COLUMNS) if owners else LIST_COLUMNS
    write_rows(list_rows(report, owners), columns, args.format, sys.stdout)
    return 0


def _owner_lookup(policy: Policy) -> OwnerColumns:
    """``--with-owner``: one batched, cached directory lookup of every distinct owner listed."""
    if policy.directory is None:
        raise UsageError("--with-owner needs a 'directory:' section in the policy (url, base, "
                         "active_filter); see policy.yaml")
    from controller.adapters.ldap import Directory

    settings = policy.directory

    def lookup(user_ids: Iterable[str]) -> Mapping[str, tuple[str, str, str]]:
        with Directory(settings) as directory:
            found = directory.lookup(user_ids)
        return {uid: (info.status.value, info.name, info.org_unit) for uid, info in found.items()}

    return lookup


@_guarded
def _count(args: argparse.Namespace) -> int:
    print(len(_observe(args).entries))
    return 0


def health_rows(report: Report) -> list[dict[str, Any]]:
    rows = []
    for e in report.entries:
        observation = report.observed[e.entry_id]
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
            managed = ("yes" if e.entry_id in report.listed_unhealthy
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
            "managed": managed,
        })  # fmt: skip
    return rows


@_guarded
def _health(args: argparse.Namespace) -> int:
    report = _observe(args)
    rows = health_rows(report)
    write_rows(rows, HEALTH_COLUMNS, args.format, sys.stdout)
    return 1 if report.census.unhealthy_managed else 0


def stats(report: Report) -> dict[str, Any]:
    """Counts by created year and last-played year, entries by state (``policies.counts``),
    storage in Kaltura and in the archive, what the policy would free, and the cost estimate."""
    from policies.costs import estimate
    from policies.plan import Action

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


def _flatten(figures: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str, Any]]:
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
            rows += _flatten(value, f"{metric}.")
    return rows


@_guarded
def _stats(args: argparse.Namespace) -> int:
    figures = stats(_observe(args))
    if args.format == "json":
        json.dump(figures, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    sep = "\t" if args.format == "tsv" else ","
    out = sys.stdout
    out.write(f"metric{sep}key{sep}value\n")
    for metric, key, value in _flatten(figures):
        out.write(f"{metric}{sep}{key}{sep}{'' if value is None else value}\n")
    costs, archive = figures["costs"], figures["archive"]
    print(f"Kaltura holds {format_size(figures['kaltura_bytes'])}; the policy would free "
          f"{format_size(figures['bytes_policy_would_free'])}. The archive holds "
          f"{format_size(archive['bytes'])}: {costs['archive_per_month']:.2f} "
          f"{costs['currency']} a month, {costs['archive_per_month_after_plan']:.2f} once the "
          f"plan is applied (prices as of {costs['prices_as_of']}).", file=sys.stderr)
    return 0
