"""``karchive permissions [--bucket NAME | -f policy.yaml] [--kaltura]``: what karchive may call.

Prints the IAM policy (JSON) granting exactly the S3 actions karchive's declarations name — every
reconciler's, the observation's, the lease's and the journal shipping's
(``runtime/permissions.py``) — for the bucket given, or the policy's ``storage.bucket``. This is
the block ``docs/deploy.md`` shows. ``--kaltura`` prints the Kaltura API actions instead, one
``service.action`` a line (what a restricted admin role needs). Reads no system at all.
"""

from __future__ import annotations

import argparse
import sys

from controller.cli.policy import DEFAULT_POLICY, load
from controller.errors import UsageError
from controller.runtime.permissions import iam_policy, needs, render


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("permissions",
                            help="print the IAM policy karchive needs (from its declarations)")
    parser.add_argument("--bucket", metavar="NAME",
                        help="the bucket (default: storage.bucket of the policy file)")
    parser.add_argument("-f", "--file", dest="policy", metavar="POLICY",
                        help=f"the policy file to read the bucket from (default: "
                             f"{DEFAULT_POLICY}, when --bucket is not given)")
    parser.add_argument("--kaltura", action="store_true",
                        help="print the Kaltura API actions karchive calls instead")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    declared = needs()
    if args.kaltura:
        sys.stdout.write("".join(f"{action}\n" for action in sorted(declared.kaltura)))
        return 0
    bucket = args.bucket or _bucket_of(args.policy or DEFAULT_POLICY)
    sys.stdout.write(render(iam_policy(bucket, declared)) + "\n")
    return 0


def _bucket_of(path: str) -> str:
    bucket = load(path).storage.bucket
    if bucket is None:
        raise UsageError(f"{path} archives to a folder (storage.url), which needs no IAM "
                         "policy; give --bucket NAME for a bucket's")
    return bucket
