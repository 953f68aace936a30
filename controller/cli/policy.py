"""``karchive policy validate FILE``, and the policy loading every command shares.

Loading is the first step of ``plan``, the reports, ``apply`` and ``run``: an invalid policy is
one line naming file, line, field, problem and fix (``policies.loader.PolicyError``), and the
command exits 1 — never a traceback.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

from controller.errors import UsageError
from policies.loader import PolicyError, check_policy, load_policy
from policies.schema import Policy
from policies.shards import Shard, shard_from

DEFAULT_POLICY = "policy.yaml"


def load(path: str | Path) -> Policy:
    """The validated policy at ``path``; any problem becomes a one-line UsageError."""
    try:
        return load_policy(path)
    except PolicyError as exc:
        raise UsageError(str(exc)) from None


def add_policy_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f", "--file", dest="policy", default=DEFAULT_POLICY, metavar="POLICY",
        help=f"the policy file (default: {DEFAULT_POLICY})",
    )


def add_shard_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--shard", metavar="I/N", default=None,
        help="act only on shard I of N (the entries whose stable hash of the id falls in it), "
             "on 1/N of the partner's budgets (default: $KARCHIVE_SHARD, else the pod "
             "ordinal of $KARCHIVE_SHARDS shards, else all entries)")


def shard_of(args: argparse.Namespace) -> Shard:
    """The command's shard (``policies/shards.py``: the flag, then the environment); a bad
    value is one line, exit 1."""
    try:
        return shard_from(getattr(args, "shard", None), os.environ, socket.gethostname())
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("policy", help="check a policy file")
    actions = parser.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    validate = actions.add_parser("validate", help="validate a policy file and say OK or why not")
    validate.add_argument("file", metavar="FILE")
    validate.add_argument("--env", action="store_true",
                          help="also require every ${VAR} the policy uses to be set")
    validate.set_defaults(func=_validate)


def _validate(args: argparse.Namespace) -> int:
    """Structure and values, without the environment (a CI lint needs no secret): unset
    variables are one note; with ``--env`` they are an error, all named in one line."""
    try:
        unset = check_policy(args.file)
    except PolicyError as exc:
        raise UsageError(str(exc)) from None
    name = Path(args.file).name
    if unset and args.env:
        raise UsageError(f"{args.file}: environment variable{'s' if len(unset) > 1 else ''} "
                         f"{', '.join(unset)} not set; export "
                         f"{'them' if len(unset) > 1 else 'it'} before running karchive")
    if unset:
        print(f"note: {name} uses {', '.join(unset)}, not set here; the fields they fill "
              "were not checked (use --env to require them)", file=sys.stderr)
        print(f"{name}: OK (structure and values; environment not checked)", file=sys.stdout)
        return 0
    policy = load(args.file)
    count = len(policy.rules)
    print(f"{name}: OK ({count} rule{'s' if count != 1 else ''})", file=sys.stdout)
    return 0
