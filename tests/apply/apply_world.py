"""Helpers for the apply tests: a small sandbox of its own, a policy file for it, the truth.

Every test here drives the real controller (``karchive apply`` in-process or as a subprocess)
against a real emulator and a real moto server over loopback HTTP; nothing is mocked. The
"truth" helpers read the emulator's records directly, independently of karchive's adapters.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.catalogue import PLACEHOLDER_CONTENT
from sandbox.kaltura.content import BytesContent
from sandbox.kaltura.records import AttachmentAsset, CaptionAsset
from sandbox.runner import Sandbox

TAG_ARCHIVED, TAG_REPLACED = "archived_to_s3", "flavors_deleted"
MiB = 1 << 20
PLACEHOLDER = hashlib.sha256(b"karchive placeholder").digest() * 2048  # 64 KiB, fixed bytes


@dataclass
class World:
    sandbox: Sandbox
    tmp: Path
    policy: Path
    journal: Path
    s3: Any

    @property
    def backend(self) -> Any:
        return self.sandbox.backend

    def admin(self, path: str, body: dict[str, Any] | None = None, method: str = "POST") -> Any:
        data = json.dumps(body or {}).encode() if method != "GET" else None
        request = urllib.request.Request(
            f"{self.sandbox.kaltura.url}{path}", data=data, method=method,
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            raw = answer.read()
        return json.loads(raw) if raw else None

    def write_policy(self, rules: str, *, storage_class: str = "GLACIER",
                     extra: str = "", concurrency: int = 4, share: float = 1.0,
                     directory: Path | None = None) -> Path:
        """The policy for this sandbox; ``directory``: archive to it (storage.url) not to S3."""
        env = self.sandbox.env()
        where = (f"url: file://{directory}" if directory is not None else
                 f"bucket: {env['KARCHIVE_BUCKET']}\n  endpoint_url: {env['AWS_ENDPOINT_URL']}")
        self.policy.write_text(f"""
version: 1
kaltura:
  service_url: {env["KALTURA_SERVICE_URL"]}
  partner_id: {env["KALTURA_PARTNER_ID"]}
  admin_secret: {env["KALTURA_ADMIN_SECRET"]}
  user_id: {env["KALTURA_USER_ID"]}
  timeout: 30
storage:
  {where}
  prefix: karchive/
  storage_class: {storage_class}
  restore: {{tier: Bulk, days: 1}}
placeholder: {self.tmp / "placeholder.mp4"}
legacy_placeholder_size: {PLACEHOLDER_CONTENT.size}
restore_on_play: true
limits:
  concurrency: {concurrency}
  max_replace_share: {share}
  part_size: 5MiB
rules:
{rules}
{extra}
""", encoding="utf-8")
        return self.policy

    def ids_rule(self, ids: list[str], state: str, name: str = "chosen") -> str:
        listed = ", ".join(ids)
        return f"  - name: {name}\n    match: {{entry_ids: [{listed}]}}\n    state: {state}\n"

    def apply(self, *extra: str) -> tuple[int, str]:
        import contextlib
        import io

        from controller.cli import main

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["apply", "-f", str(self.policy), "--auto-approve", "-q",
                         "--journal", str(self.journal), "--wait", "60", *extra])
        return code, out.getvalue() + err.getvalue()

    def converge(self, rounds: int = 6) -> list[str]:
        """apply until the plan says "No changes."; every run must succeed."""
        outputs = []
        for _ in range(rounds):
            code, out = self.apply()
            outputs.append(out)
            assert code == 0, out
            if "No changes." in out:
                return outputs
        raise AssertionError("apply never converged:\n" + "\n---\n".join(outputs))

    def plan(self, *extra: str) -> tuple[int, str]:
        import contextlib
        import io

        from controller.cli import main

        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = main(["plan", "-f", str(self.policy), "-q", *extra])
        return code, out.getvalue()

    # -- truth, read from the emulator's records --------------------------------------------

    def entry(self, entry_id: str) -> Any:
        return self.backend.get_entry(entry_id)

    def tags(self, entry_id: str) -> set[str]:
        return {t.strip() for t in self.entry(entry_id).tags.split(",") if t.strip()}

    def original(self, entry_id: str) -> Any:
        with self.backend.lock:
            for flavor in self.backend.flavors_by_entry.get(entry_id, []):
                if flavor.is_original and flavor.status != 3:
                    return flavor
        return None

    def original_sha(self, entry_id: str) -> str:
        flavor = self.original(entry_id)
        return sha_of(flavor.content, flavor.size_in_bytes)

    def default_thumb_sha(self, entry_id: str) -> str | None:
        with self.backend.lock:
            for thumb in self.backend.thumbs_by_entry.get(entry_id, []):
                if "default_thumb" in thumb.tags and thumb.status == 2:
                    return sha_of(thumb.content, thumb.size)
        return None

    def object_keys(self, prefix: str = "karchive/") -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.sandbox.bucket, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    def manifest(self, entry_id: str) -> dict[str, Any]:
        body = self.s3.get_object(Bucket=self.sandbox.bucket,
                                  Key=f"karchive/{entry_id}/manifest.json")["Body"].read()
        return json.loads(body)

    def has_copy_with(self, entry_id: str, sha: str) -> bool:
        """Whether the bucket holds a copy of ``entry_id`` whose bytes have SHA-256 ``sha``."""
        for key in self.object_keys(f"karchive/{entry_id}/original/"):
            body = self.s3.get_object(Bucket=self.sandbox.bucket, Key=key)["Body"].read()
            if hashlib.sha256(body).hexdigest() == sha:
                return True
        return False

    def never_neither(self, truth: dict[str, str]) -> list[str]:
        """Invariant 1's breaches: entries of ``truth`` (id → original SHA-256) that have
        neither their real content in Kaltura nor a matching copy in the bucket."""
        self.backend.tick()
        lost = []
        for entry_id, sha in truth.items():
            original = self.original(entry_id)
            in_kaltura = original is not None and original.status == 2 and \
                self.original_sha(entry_id) == sha
            if not in_kaltura and not self.has_copy_with(entry_id, sha):
                lost.append(entry_id)
        return lost

    def assert_swapped(self, truth: dict[str, str]) -> None:
        """The end state of a placeholder policy over ``truth``'s entries: one verified copy
        each, both tags, the placeholder in Kaltura, no multipart upload left behind."""
        assert self.never_neither(truth) == []
        for entry_id, sha in truth.items():
            keys = self.object_keys(f"karchive/{entry_id}/original/")
            assert len(keys) == 1, f"{entry_id} has {keys}"
            assert self.manifest(entry_id)["sha256"] == sha
            assert {TAG_ARCHIVED, TAG_REPLACED} <= self.tags(entry_id)
            assert self.original(entry_id).size_in_bytes == len(PLACEHOLDER)
        assert self.uploads() == []

    def uploads(self) -> list[Any]:
        return self.s3.list_multipart_uploads(Bucket=self.sandbox.bucket).get("Uploads", [])

    def purgeable(self, n: int) -> list[str]:
        """Never-played videos (what the old tool missed), each given a caption, an attachment and
        category names if the seeded catalogue gave it none."""
        found = [i for i in self.candidates(40) if self.entry(i).last_played_at is None][:n]
        assert len(found) == n, "the seeded catalogue has too few never-played entries"
        backend = self.backend
        with backend.lock:
            for entry_id in found:
                entry = self.entry(entry_id)
                pid = entry.partner_id
                if not backend.captions_by_entry.get(entry_id):
                    text = f"1\n00:00:01,000 --> 00:00:02,000\n{entry.name}\n".encode()
                    backend.add_asset(CaptionAsset(
                        id=backend.new_id(), entry_id=entry_id, partner_id=pid,
                        content=BytesContent(text), size=len(text), language="French",
                        language_code="fr", label="Français"))
                if not backend.attachments_by_entry.get(entry_id):
                    pdf = b"%PDF-1.4 slides of " + entry_id.encode()
                    backend.add_asset(AttachmentAsset(
                        id=backend.new_id(), entry_id=entry_id, partner_id=pid,
                        content=BytesContent(pdf), size=len(pdf), filename="slides.pdf",
                        title="Slides"))
                if not entry.categories:
                    entry.categories, entry.categories_ids = "Courses>PHY101,Archive", "11,12"
        return found

    def candidates(self, n: int, *, min_size: int = 0) -> list[str]:
        """READY videos karchive never touched, with a READY original of at least min_size."""
        found = []
        for entry in sorted(self.backend.all_entries(), key=lambda e: e.id):
            tags = {t.strip() for t in entry.tags.split(",")}
            original = self.original(entry.id)
            if (entry.status == 2 and entry.media_type == 1 and entry.replacement_status == 0
                    and not tags & {TAG_ARCHIVED, TAG_REPLACED, "archive_exempt"}
                    and original is not None and original.status == 2
                    and original.size_in_bytes >= min_size
                    and original.size_in_bytes != len(PLACEHOLDER)):
                found.append(entry.id)
            if len(found) == n:
                break
        assert len(found) == n, "the seeded catalogue has too few candidates"
        return found


def sha_of(content: Any, size: int) -> str:
    digest = hashlib.sha256()
    for offset in range(0, size, 4 * MiB):
        digest.update(content.read(offset, min(4 * MiB, size - offset)))
    return digest.hexdigest()


def wait_swapped(world: World, entry_id: str) -> None:
    deadline = time.monotonic() + 30
    while world.entry(entry_id).replacing_entry_id:
        world.backend.tick()  # the server ticks before each request; no request is made here
        assert time.monotonic() < deadline, "the emulator never swapped the content"
        time.sleep(0.1)


def upload_new_version(world: World, client: Any, entry_id: str, data: bytes) -> None:
    """The entry's owner replaces its video with ``data`` (media.updateContent, as the KMC)."""
    from KalturaClient.Plugins.Core import KalturaUploadedFileTokenResource, KalturaUploadToken

    token = KalturaUploadToken()
    token.fileName, token.fileSize = "edited.mp4", len(data)
    token_id = client.uploadToken.add(token).id
    chunk = io.BytesIO(data)
    chunk.name = "edited.mp4"
    client.uploadToken.upload(token_id, chunk)
    resource = KalturaUploadedFileTokenResource()
    resource.token = token_id
    client.media.updateContent(entry_id, resource)
    wait_swapped(world, entry_id)
