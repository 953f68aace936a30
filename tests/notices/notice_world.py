"""Helpers for the notice integration tests: a small sandbox's entries as notice subjects, the
archive ports over its S3 (or a folder), and the notices: settings that point at its SMTP sink."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from controller.adapters.storage.local import FileArchive
from controller.adapters.storage.writer import S3Archive
from policies.loader import parse_policy
from policies.notice_settings import NoticesSettings
from policies.notices import Consequence, Subject
from policies.schema import Policy
from sandbox.runner import Sandbox

PREFIX = "karchive/"
SECRET = "0123456789abcdef0123456789abcdef-keep"


def policy_for(env: dict[str, str], tmp: Path, extra: str = "") -> Policy:
    """A policy for the sandbox whose variables are ``env``, with a notices: section that sends
    through its SMTP sink."""
    return parse_policy(policy_text(env, tmp, extra), "policy.yaml", base_dir=tmp, environ={})


def policy_text(env: dict[str, str], tmp: Path, extra: str = "") -> str:
    """The text of :func:`policy_for`'s policy (its keep secret written into ``tmp``)."""
    (tmp / "keep.secret").write_text(SECRET)
    return f"""\
version: 1
kaltura:
  service_url: {env["KALTURA_SERVICE_URL"]}
  partner_id: {env["KALTURA_PARTNER_ID"]}
  admin_secret: {env["KALTURA_ADMIN_SECRET"]}
  user_id: {env["KALTURA_USER_ID"]}
storage: {{bucket: {env["KARCHIVE_BUCKET"]}, endpoint_url: "{env["AWS_ENDPOINT_URL"]}"}}
restore_on_play: true
notices:
  before: 30d
  remind: [7d]
  sender: "Media Team <media@example.edu>"
  reply_to: help@example.edu
  copy_to: media-team@example.edu
  smtp: {{host: {env["KARCHIVE_SMTP_HOST"]}, port: {env["KARCHIVE_SMTP_PORT"]}, security: none,
          timeout: 10, retries: 0}}
  keep: {{base_url: "https://karchive.example.edu/keep", secret_file: keep.secret}}
{extra}"""


def notices_of(policy: Policy) -> NoticesSettings:
    assert policy.notices is not None
    return policy.notices


def s3_archive(sandbox: Sandbox) -> S3Archive:
    return S3Archive(sandbox.s3_client(), sandbox.bucket)


def subject_json(subject: Subject) -> dict[str, Any]:
    return {"entry_id": subject.entry_id, "owner": subject.owner, "rule": subject.rule,
            "consequence": subject.consequence.value, "name": subject.name,
            "size_bytes": subject.size_bytes, "last_played_at": subject.last_played_at}


def subject_from(raw: dict[str, Any]) -> Subject:
    return Subject(raw["entry_id"], raw["owner"], Consequence(raw["consequence"]), raw["rule"],
                   raw["name"], raw["size_bytes"], raw["last_played_at"])


def folder_archive(root: Path) -> FileArchive:
    root.mkdir(parents=True, exist_ok=True)
    return FileArchive(root)


def subjects(sandbox: Sandbox, count: int, consequence: Consequence = Consequence.SWAP
             ) -> list[Subject]:
    """The first ``count`` entries (by id) of owners that have an address, as subjects."""
    backend: Any = sandbox.backend
    with backend.lock:
        emails = {u.id: u.email for u in backend.users.values()}
        entries = sorted(backend.all_entries(), key=lambda e: e.id)
        chosen = [e for e in entries if emails.get(e.user_id)][:count]
        return [Subject(e.id, e.user_id, consequence, "old-lectures", e.name, 10 << 20,
                        e.last_played_at or None) for e in chosen]
