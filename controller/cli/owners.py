"""``karchive owners``: the old ``add_ldap_status.py`` as a filter over a list TSV.

    karchive list -f policy.yaml > list.tsv
    karchive owners -f policy.yaml < list.tsv > enriched.tsv

The directory settings come from the policy's ``directory:`` section; the work is done by
``runtime/owners.py`` (``enrich_tsv``) over the LDAP adapter ``controller/compose.py`` builds.
"""

from __future__ import annotations

import argparse
import sys

from controller.cli.policy import add_policy_option, load
from controller.compose import compose
from controller.errors import UsageError
from controller.runtime.owners import DEFAULT_OWNER_COLUMN, enrich_tsv


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "owners",
        help="append each owner's directory status, name and org unit to a list TSV (stdin)",
    )
    add_policy_option(parser)
    parser.add_argument(
        "--column", default=DEFAULT_OWNER_COLUMN,
        help=f"the column holding the Kaltura user id (default: {DEFAULT_OWNER_COLUMN})",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    policy = load(args.policy)
    if policy.directory is None:
        raise UsageError(
            f"{args.policy}: no 'directory:' section; add one (url, base, active_filter) "
            "to look owners up"
        )
    adapters = compose(policy, owners=True)
    assert adapters.directory is not None
    try:
        enrich_tsv(sys.stdin, sys.stdout, adapters.directory, column=args.column)
    finally:
        adapters.close()
    return 0
