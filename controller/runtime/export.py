"""Export: an archived entry's files, from the archive to a folder, each verified on the way.

What ``karchive export`` (``cli/export.py``) runs for each entry, over the archive port
``controller/compose.py`` builds (S3 or a folder). It reads the archive only — Kaltura is not
asked, so an export works for purged entries and with Kaltura down — and writes nothing but the
target folder and, for a frozen copy, a Glacier restore request. Every file is streamed to a
temporary name in its folder, fsync'd, checked against the manifest (size, and sha256 where
recorded — always for the video) and only then renamed into place: a partial or wrong file is
never left under a final name. A file already exported with the right checksum is not fetched
again, so a re-run finishes an interrupted one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.adapters.storage.local import atomic_write, sha256_file
from controller.errors import IntegrityError, NotFound, PermanentError
from policies.layout import manifest_key
from reconcilers import manifest
from reconcilers.ports import ArchivePort

_CHUNK = 8 << 20


@dataclass(frozen=True, slots=True)
class Wanted:
    """One file to export: where it is in the archive, where it goes, what it must be."""

    key: str
    relative: str
    size: int | None
    sha256: str | None


def export_entry(archive: ArchivePort, prefix: str, entry_id: str, target: Path, *, days: int,
                 tier: str) -> bool:
    """Export one entry; False when its video is frozen or thawing (a thaw is requested)."""
    document = manifest.read(archive, prefix, entry_id)
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
    manifest_bytes = archive.get_bytes(manifest_key(prefix, entry_id))
    atomic_write(folder / "manifest.json", manifest_bytes)
    return True


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


def fetch(archive: ArchivePort, item: Wanted, path: Path) -> None:
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
