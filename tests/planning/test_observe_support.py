"""Helpers for the observation, plan and report tests (no tests here): a policy file for a
started sandbox, the sandbox's per-action call counters, the bucket's listing, and one pass of
the pipeline with every entry it assessed."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.compose import compose
from controller.runtime.metrics import CallCounter
from controller.runtime.pipeline import Pipeline
from policies.observed import ObservedEntry
from policies.plan import Plan
from policies.schema import Policy
from sandbox.catalogue import PLACEHOLDER_CONTENT
from sandbox.runner import Sandbox

WRITE_ACTIONS = ("update", "delete", "add", "updatecontent", "addcontent", "approvereplace",
                 "cancelreplace", "upload", "convert", "reconvert", "setasdefault", "generate",
                 "addfromurl", "setcontent", "updatethumbnail", "end")

RULES = """\
rules:
  - name: lectures
    match:
      tags: {any: [lecture]}
    state: archived
"""


def write_policy(tmp: Path, sb: Sandbox, *, rules: str = RULES, kaltura_extra: str = "",
                 bucket: str | None = None, endpoint: str | None = None,
                 name: str = "policy.yaml") -> Path:
    env = sb.env()
    text = f"""\
version: 1
kaltura:
  service_url: {env["KALTURA_SERVICE_URL"]}
  partner_id: {env["KALTURA_PARTNER_ID"]}
  admin_secret: {env["KALTURA_ADMIN_SECRET"]}
  user_id: {env["KALTURA_USER_ID"]}
{kaltura_extra}storage:
  bucket: {bucket or env["KARCHIVE_BUCKET"]}
  prefix: karchive/
  endpoint_url: {endpoint or env["AWS_ENDPOINT_URL"]}
  region: {env["AWS_DEFAULT_REGION"]}
legacy_placeholder_size: {PLACEHOLDER_CONTENT.size}
{rules}"""
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


def aws_env(monkeypatch: Any, sb: Sandbox) -> None:
    """The AWS credential chain the S3 client reads: the sandbox's (moto accepts any)."""
    env = sb.env()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.setenv(name, env[name])


def admin(sb: Sandbox, path: str, body: dict[str, Any] | None = None) -> Any:
    assert sb.kaltura is not None
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{sb.kaltura.url}/admin/{path}", data=data,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read() or b"null")


def calls(sb: Sandbox) -> dict[str, int]:
    return dict(admin(sb, "stats")["calls"])


def writes(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Calls of write actions made between two counter snapshots."""
    return {
        name: after[name] - before.get(name, 0)
        for name in after
        if name.split(".")[-1].lower() in WRITE_ACTIONS and after[name] != before.get(name, 0)
    }


def bucket_listing(s3: Any, bucket: str) -> list[tuple[str, str, int]]:
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [(o["Key"], o["ETag"], o["Size"]) for o in page.get("Contents", ())]
    return sorted(keys)


@dataclass
class Seen:
    """One pass of the pipeline, with what it observed (tests want the entries themselves)."""

    entries: list[ObservedEntry]
    plan: Plan
    heads: int
    placeholder_size: int | None
    observed_at: int


def observed(policy: Policy, counter: CallCounter | None = None, *, s3_client: Any = None,
             entry_ids: Sequence[str] | None = None) -> Seen:
    """The pipeline over the real adapters, every assessed entry kept."""
    adapters = compose(policy, metrics=counter if counter is not None else CallCounter(),
                       s3_client=s3_client)
    kept: list[ObservedEntry] = []
    planned = Pipeline(adapters).run(entry_ids=entry_ids,
                                     each=lambda assessment: kept.append(assessment.entry))
    stats = planned.observation
    return Seen(kept, planned.plan, stats.heads, stats.placeholder_size, stats.observed_at)
