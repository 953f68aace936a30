"""``karchive list | count | health | stats``: the reports of the Princeton tool.

Same filters as the old tool (``--tag`` with ``!`` to negate, ``--category``, ``--plays N``,
``--status``, ``--created-within`` / ``--created-before`` / ``--played-within`` /
``--unplayed-for DURATION``, ``--id``, ``--idfile``, ``--max-entries``), built into the policy's own
``Match`` through ``policies.selectors.Selection``, so a report shows exactly the entries a rule
with the same selectors would take. The command runs the pipeline (``runtime/pipeline.py``) over
the selected entries, builds the rows from each entry's assessment (``runtime/reports.py``) and
prints them (TSV, CSV or JSON); ``health`` exits 1 when any selected entry is unhealthy and
managed — what ``karchive_entries_unhealthy{scope="managed"}`` counts and the alert fires on.
Reads only, like ``plan``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TextIO

from controller.cli.plan import fail, progress
from controller.cli.policy import add_policy_option, load
from controller.compose import compose
from controller.errors import KarchiveError, UsageError
from controller.runtime.metrics import CallCounter
from controller.runtime.pipeline import Pipeline
from controller.runtime.reports import (
    HEALTH_COLUMNS,
    LIST_COLUMNS,
    OWNER_COLUMNS,
    OwnerColumns,
    Report,
    flatten,
    health_rows,
    list_rows,
    stats,
)
from policies.durations import format_size
from policies.plan import Assessment
from policies.schema import Policy
from policies.selectors import Selection, SelectionError

__all__ = ["LIST_COLUMNS", "register", "write_rows"]


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


def _selection(args: argparse.Namespace, now: int) -> Selection:
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


def _observe(args: argparse.Namespace) -> Report:
    """The pipeline over the entries the filters select; the report of their assessments."""
    policy = load(args.policy)
    selection = _selection(args, int(time.time()))
    overrides = None
    if args.id and len(args.id) <= 500 and not args.idfile:
        overrides = {"idIn": ",".join(args.id)}  # Kaltura narrows the walk itself
    limit = max(0, args.max_entries) if args.max_entries is not None else None
    selected: list[Assessment] = []
    adapters = compose(policy, metrics=CallCounter())
    try:
        planned = Pipeline(adapters, progress=progress(args.quiet)).run(
            filter_overrides=overrides, select=selection, limit=limit, each=selected.append)
    finally:
        adapters.close()
    observation = planned.observation
    return Report(policy, selected, planned.plan, observation.placeholder_size,
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

    def lookup(user_ids: Iterable[str]) -> Mapping[str, tuple[str, str, str]]:
        adapters = compose(policy, owners=True)
        assert adapters.directory is not None
        try:
            found = adapters.directory.lookup(user_ids)
        finally:
            adapters.close()
        return {uid: (info.status.value, info.name, info.org_unit) for uid, info in found.items()}

    return lookup


@_guarded
def _count(args: argparse.Namespace) -> int:
    print(len(_observe(args).entries))
    return 0


@_guarded
def _health(args: argparse.Namespace) -> int:
    report = _observe(args)
    rows = health_rows(report)
    write_rows(rows, HEALTH_COLUMNS, args.format, sys.stdout)
    return 1 if report.census.unhealthy_managed else 0


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
    for metric, key, value in flatten(figures):
        out.write(f"{metric}{sep}{key}{sep}{'' if value is None else value}\n")
    costs, archive = figures["costs"], figures["archive"]
    print(f"Kaltura holds {format_size(figures['kaltura_bytes'])}; the policy would free "
          f"{format_size(figures['bytes_policy_would_free'])}. The archive holds "
          f"{format_size(archive['bytes'])}: {costs['archive_per_month']:.2f} "
          f"{costs['currency']} a month, {costs['archive_per_month_after_plan']:.2f} once the "
          f"plan is applied (prices as of {costs['prices_as_of']}).", file=sys.stderr)
    return 0
