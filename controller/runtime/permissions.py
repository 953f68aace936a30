"""What karchive needs of the outside world, from the declarations: the IAM policy, generated.

Each reconciler declares beside its behaviour the steps it journals, the Kaltura actions and the
S3 permissions it calls (``reconcilers.base.Needs``; ``reconcilers.registry.all_needs``), and so
do the parts of the runtime that call S3 on their own: the observation (``runtime/observe.py``),
the lease (``adapters/storage/lease.py``), the journal's shipping (``runtime/journal.py``) and
the owners' notices (``runtime/notices.py``). :func:`needs` is their union; :func:`iam_policy`
turns its S3 half into the policy ``karchive permissions`` prints and ``docs/deploy.md`` shows —
generated, never kept by hand (``tests/daemon/test_iam_policy.py`` checks the docs, the
declarations and the S3 seam's code agree).
"""

from __future__ import annotations

import json
from typing import Any

from controller.adapters.storage.lease import NEEDS as LEASE_NEEDS
from controller.runtime.journal import SHIP_NEEDS
from controller.runtime.notices import NEEDS as NOTICE_NEEDS
from controller.runtime.observe import NEEDS as OBSERVATION_NEEDS
from reconcilers.base import Needs
from reconcilers.registry import all_needs

# S3 actions that authorise a request on the bucket itself (the Service Authorization
# Reference's "bucket" resource type); every other one is on the objects ("object").
BUCKET_ACTIONS = ("s3:ListBucket", "s3:ListBucketMultipartUploads")
# The order the policy lists object actions in: reads, writes, then the rarer ones.
OBJECT_ORDER = ("s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload",
                "s3:GetObjectTagging", "s3:PutObjectTagging", "s3:RestoreObject",
                "s3:DeleteObject")


def needs() -> Needs:
    """Everything karchive may call: every transition, the observation, the lease, shipping,
    the owners' notices and their keep links."""
    return all_needs() | OBSERVATION_NEEDS | LEASE_NEEDS | SHIP_NEEDS | NOTICE_NEEDS


def _ordered(actions: frozenset[str], order: tuple[str, ...]) -> list[str]:
    known = [a for a in order if a in actions]
    return known + sorted(actions - set(order))


def iam_policy(bucket: str, declared: Needs | None = None) -> dict[str, Any]:
    """The IAM policy document granting exactly the S3 actions of ``declared`` (default: all
    of karchive's) on ``bucket``. Object actions are on the whole bucket: a bucket the Princeton
    tool filled keeps its copies at the root (bare entry ids)."""
    actions = (declared if declared is not None else needs()).s3
    on_bucket = frozenset(a for a in actions if a in BUCKET_ACTIONS)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ListTheArchive", "Effect": "Allow",
             "Action": _ordered(on_bucket, BUCKET_ACTIONS),
             "Resource": f"arn:aws:s3:::{bucket}"},
            {"Sid": "ReadAndWriteCopies", "Effect": "Allow",
             "Action": _ordered(actions - on_bucket, OBJECT_ORDER),
             "Resource": f"arn:aws:s3:::{bucket}/*"},
        ],
    }


def render(document: dict[str, Any]) -> str:
    """The policy as docs/deploy.md shows it: two-space JSON, a short list on one line."""
    text = json.dumps(document, indent=2)
    # The bucket statement's two actions read better on one line, as AWS's examples write them.
    for statement in document["Statement"]:
        actions = statement["Action"]
        if len(actions) <= 2:
            expanded = json.dumps(actions, indent=2).replace("\n", "\n      ")
            text = text.replace(expanded, json.dumps(actions), 1)
    return text
