"""``karchive export ENTRY_ID… --to DIR [-f policy.yaml] [--wait]``: archived entries to a folder.

What the old tool's local backups were, from the archive instead of from Kaltura: for each entry,
``DIR/{entry_id}/`` receives the source video, captions, attachments and thumbnails under the
archive's own relative paths (``original/{flavor_id}.{ext}``, ``captions/…``) and, last,
``manifest.json``. Every file is streamed to a temporary name in its folder, fsync'd, checked
against the manifest (size, and sha256 where recorded — always for the video) and only then
renamed into place: a partial or wrong file is never left under a final name. A file already
exported with the right checksum is not fetched again, so a re-run finishes an interrupted one.

A copy in a frozen class is thawed first: the thaw is requested and reported, and the entry is
left for a later run — or, with ``--wait``, polled until readable. Exit 0 when every entry was
exported, 2 when some wait on a thaw, 1 on any error (the other entries are still exported).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.adapters.storage.local import atomic_write, sha256_file
from controller.cli.policy import add_policy_option, load
from controller.errors import IntegrityError, KarchiveError, NotFound, PermanentError

EXIT_THAWING = 2
_CHUNK = 8 << 20


@dataclass(frozen=True, slots=True)
class Wanted:
    """One file to export: where it is in the archive, where it goes, what it must be."""

    key: str
    relative: str
    size: int | None
    sha256: str | None


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("export", help="download archived entries to a folder, verified")
    parser.add_argument("entry_ids", nargs="+", metavar="ENTRY_ID")
    parser.add_argument("--to", required=True, metavar="DIR", help="the folder to write into")
    add_policy_option(parser)
    parser.add_argument("--wait", action="store_true",
                        help="wait for Glacier thaws instead of leaving those entries for later")
    parser.add_argument("--thaw-poll", type=float, default=60.0, metavar="SECONDS",
                        help="with --wait, how often to look at a thaw (default 60)")
    parser.add_argument("--timeout", type=float, default=48 * 3600.0, metavar="SECONDS",
                        help="with --wait, give up after this long (default 48 h)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from controller.adapters.storage import backend

    policy = load(args.policy)
    target = Path(args.to)
    try:
        target.mkdir(parents=True, exist_ok=True)
        archive = backend.archive(policy.storage, backend.connect(policy.storage))
    except OSError as exc:
        print(f"karchive: error: cannot create {target} ({exc.strerror})", file=sys.stderr)
        return 1
    except KarchiveError as exc:
        print(f"karchive: error: {exc}", file=sys.stderr)
        return 1
    restore = policy.storage.restore
    pending = list(dict.fromkeys(args.entry_ids))
    failed = 0
    deadline = time.monotonic() + args.timeout
    while pending:
        thawing: list[str] = []
        for entry_id in pending:
            try:
                if export_entry(archive, policy.storage.prefix, entry_id, target,
                                days=restore.days, tier=restore.tier.value):
                    print(f"{entry_id}: exported to {target / entry_id}", file=sys.stderr)
                else:
                    thawing.append(entry_id)
            except KarchiveError as exc:
                failed += 1
                print(f"karchive: error: {entry_id}: {exc}", file=sys.stderr)
        pending = thawing
        if not pending:
            break
        if not args.wait or time.monotonic() > deadline:
            print(f"{len(pending)} entr{'y' if len(pending) == 1 else 'ies'} wait on a thaw "
                  f"({', '.join(pending)}); run this again once readable, or add --wait",
                  file=sys.stderr)
            return 1 if failed else EXIT_THAWING
        time.sleep(args.thaw_poll)
    return 1 if failed else 0


def export_entry(archive: Any, prefix: str, entry_id: str, target: Path, *, days: int,
                 tier: str) -> bool:
    """Export one entry; False when its video is frozen or thawing (a thaw is requested)."""
    from reconcilers import manifest as manifests

    document = manifests.read(archive, prefix, entry_id)
    if document is None:
        raise NotFound(f"no archive manifest for {entry_id}; check the id and storage settings")
    wanted = files_of(document, prefix, entry_id)
    for item in wanted:
        info = archive.head(item.key)
        if info is None:
            raise NotFound(f"{item.key} is named by the manifest but not in the archive")
        if not info.readable:
            if info.restore.value == "frozen":
                answer = archive.request_restore(item.key, days=days, tier=tier)
                print(f"{entry_id}: thaw of {item.key} {answer} ({tier}, {days} days)",
                      file=sys.stderr)
            else:
                print(f"{entry_id}: {item.key} is still being thawed", file=sys.stderr)
            return False
        if item.size is not None and info.size_bytes != item.size:
            raise IntegrityError(f"{item.key} holds {info.size_bytes} bytes, the manifest says "
                                 f"{item.size}")
    folder = target / entry_id
    for item in wanted:
        fetch(archive, item, folder / item.relative)
    manifest_bytes = archive.get_bytes(manifests_key(prefix, entry_id))
    atomic_write(folder / "manifest.json", manifest_bytes)
    return True


def manifests_key(prefix: str, entry_id: str) -> str:
    from policies.layout import manifest_key

    return manifest_key(prefix, entry_id)


def files_of(document: dict[str, Any], prefix: str, entry_id: str) -> list[Wanted]:
    """The video and every side asset the manifest records, with their expected size/sha256."""
    folder = f"{prefix}{entry_id}/"
    original = document.get("original") or {}
    if not original.get("key") or not original.get("sha256"):
        raise PermanentError(f"{entry_id}'s manifest records no archived video with a checksum")
    wanted = [_wanted(str(original["key"]), folder, original.get("size_bytes"),
                      original.get("sha256"))]
    for kind in ("thumbnails", "captions", "attachments"):
        for asset in document.get(kind) or []:
            if asset.get("key"):
                # Sizes are checked where a sha256 was recorded with them (archive copied the
                # bytes itself); an older manifest's size is Kaltura's listed one, not exact.
                sha = asset.get("sha256")
                wanted.append(_wanted(str(asset["key"]), folder,
                                      asset.get("size_bytes") if sha else None, sha))
    return wanted


def _wanted(key: str, folder: str, size: Any, sha: Any) -> Wanted:
    relative = key[len(folder):] if key.startswith(folder) else f"original/{key.rsplit('/')[-1]}"
    return Wanted(key, relative, int(size) if size not in (None, "") else None,
                  str(sha) if sha else None)


def fetch(archive: Any, item: Wanted, path: Path) -> None:
    """Stream ``item`` to ``path`` through a temporary file; verify; rename into place."""
    if path.exists() and item.sha256 and sha256_file(path) == item.sha256:
        return  # exported by an earlier run, and still right
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part-{secrets.token_hex(4)}")
    digest, written = hashlib.sha256(), 0
    try:
        body = archive.open_read(item.key)
        try:
            with tmp.open("xb") as handle:
                while chunk := body.read(_CHUNK):
                    digest.update(chunk)
                    handle.write(chunk)
                    written += len(chunk)
                handle.flush()
                os.fsync(handle.fileno())
        finally:
            body.close()
        if item.size is not None and written != item.size:
            raise IntegrityError(f"{item.key}: read {written} bytes, the manifest says {item.size}")
        if item.sha256 and digest.hexdigest() != item.sha256:
            raise IntegrityError(f"{item.key}: sha256 {digest.hexdigest()} differs from the "
                                 f"manifest's {item.sha256}")
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
