"""The IAM policy: the declarations, the S3 seam's code and docs/deploy.md agree.

Three independent sources must say the same thing. The declarations (each reconciler's
``needs``, the observation's, the lease's, the journal's) generate the policy ``karchive
permissions`` prints; docs/deploy.md must show exactly that output. And the operations the code
calls are found in the code, not in a list kept by hand: every attribute of an S3 client that
the S3 seam (``controller/adapters/storage/``, the lease included) reads is resolved against a
real boto3 client — its API operations (``put_object`` is PutObject), boto3's managed helpers
(``copy``), and the operation names handed to ``get_paginator`` and ``generate_presigned_url``.
Those map to IAM actions by AWS's table ("Actions defined by Amazon S3" in the Service
Authorization Reference), and must be exactly the declared ones. No other module may call an
S3 client, so the seam is the whole story.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import boto3

from controller.adapters.storage import s3
from controller.cli import main
from controller.runtime.permissions import iam_policy, needs, render

ROOT = Path(__file__).resolve().parents[2]
SEAM = sorted((ROOT / "controller" / "adapters" / "storage").glob("*.py"))
# The names the seam gives its boto3 clients: `self.client`, `self.data`, `client`, `self.s3`.
CLIENT_NAMES = ("client", "data", "s3")

# API operation -> the IAM action that authorises it: the S3 seam's own table.
IAM_ACTION = s3.IAM_ACTION
# boto3's managed transfers, in the operations they send: copy is HeadObject of the source, then
# CopyObject, or a multipart copy past its threshold (s3transfer/copies.py).
MANAGED = {
    "copy": ("HeadObject", "CopyObject", "CreateMultipartUpload", "UploadPartCopy",
             "CompleteMultipartUpload", "AbortMultipartUpload"),
}
BY_NAME = ("get_paginator", "generate_presigned_url")
# Attributes of a client that send no request: ``meta`` (its event hooks, e.g. the data
# client's Content-MD5 on a multipart completion).
NO_REQUEST = ("meta",)


def s3_client() -> object:
    return boto3.client("s3", region_name="us-east-1", aws_access_key_id="x",
                        aws_secret_access_key="y")


def client_attributes(path: Path) -> set[str]:
    """``x.attr`` read in ``path`` where ``x`` is one of the seam's client names."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Attribute):
            continue
        receiver = node.value
        name = receiver.attr if isinstance(receiver, ast.Attribute) else getattr(receiver, "id", "")
        if name in CLIENT_NAMES:
            found.add(node.attr)
    return found


def named_operations(path: Path) -> set[str]:
    """The operation names given as strings to get_paginator / generate_presigned_url."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in BY_NAME and node.args \
                and isinstance(node.args[0], ast.Constant):
            found.add(str(node.args[0].value))
    return found


def operations_in_code() -> set[str]:
    client = s3_client()
    api = client.meta.method_to_api_mapping  # type: ignore[attr-defined]
    operations: set[str] = set()
    for path in SEAM:
        for attribute in client_attributes(path) | named_operations(path):
            if attribute in api:
                operations.add(api[attribute])
            elif attribute in MANAGED:
                operations.update(MANAGED[attribute])
            else:
                assert attribute in BY_NAME + NO_REQUEST or not hasattr(client, attribute), (
                    f"{path.name} calls S3 client.{attribute}: add its operations to this test")
    return operations


def documented_policy() -> dict[str, object]:
    text = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    section = text.split("## IAM policy", 1)[1]
    block = re.search(r"```json\n(.*?)\n```", section, re.DOTALL)
    assert block, "docs/deploy.md: no ```json block under '## IAM policy'"
    return json.loads(block.group(1))


def test_the_seam_calls_operations_this_test_knows() -> None:
    operations = operations_in_code()
    assert {"ListObjectsV2", "PutObject", "RestoreObject"} <= operations  # it sees the code
    assert operations <= set(IAM_ACTION), sorted(operations - set(IAM_ACTION))


def test_the_declarations_name_exactly_what_the_seams_code_calls() -> None:
    called = {IAM_ACTION[op] for op in operations_in_code()}
    declared = set(needs().s3)
    assert declared == called, {"called, not declared": sorted(called - declared),
                                "declared, never called": sorted(declared - called)}


def test_the_documented_policy_is_what_karchive_permissions_prints(capsys) -> None:
    assert main(["permissions", "--bucket", "example-kaltura-archive"]) == 0
    printed = capsys.readouterr().out
    assert json.loads(printed) == documented_policy()
    assert printed.strip() == render(iam_policy("example-kaltura-archive"))
    assert f"```json\n{printed.strip()}\n```" in (ROOT / "docs" / "deploy.md").read_text()


def test_the_documented_policy_grants_exactly_what_the_code_calls() -> None:
    needed = {IAM_ACTION[op] for op in operations_in_code()}
    granted: set[str] = set()
    for statement in documented_policy()["Statement"]:  # type: ignore[attr-defined]
        actions = statement["Action"]
        granted.update(a for a in ([actions] if isinstance(actions, str) else actions)
                       if a.startswith("s3:"))
        assert statement["Effect"] == "Allow"
    assert granted == needed, {"missing": sorted(needed - granted),
                               "not needed": sorted(granted - needed)}


def test_no_module_outside_the_seam_calls_an_s3_client() -> None:
    client = s3_client()
    api = set(client.meta.method_to_api_mapping) | set(MANAGED)  # type: ignore[attr-defined]
    outside = [p for folder in ("controller", "reconcilers", "policies")
               for p in (ROOT / folder).rglob("*.py") if p not in SEAM]
    offenders = {p.name: sorted(client_attributes(p) & api) for p in outside}
    assert not {name: calls for name, calls in offenders.items() if calls}
