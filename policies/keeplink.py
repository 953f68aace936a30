"""The keep link and the exemption it adds: signed grants, and dated keep tags.

Pure, beside the notice core. Each message carries one link per owner; the runtime stores a
:class:`Grant` (who, which entries, until when the link works) in the archive before the message
goes out, and the link's token is the grant's nonce, its expiry and an HMAC-SHA256 over every
field of the grant, keyed with the policy's secret (``notices.keep.secret_file``). The keep
listener (``controller/runtime/keep.py``) reads the grant the nonce names and accepts the token
only when the HMAC over that grant matches — so a forged token, an altered expiry, another
nonce, or a grant edited in the bucket (another owner, one more entry) is refused alike; expiry
and replay are checked after the signature, and every refusal looks the same.

Token: ``{nonce}.{expires}.{mac}`` — nonce 16 random bytes and mac 32 bytes, both base64url
without padding; expires in unix seconds. The page's POST must also carry :func:`form_token`, an
HMAC of the token under a separate label, so a POST is accepted only from a page that was served
for that link (a mail scanner's GET can never act).

What a keep does: it adds the tag ``karchive_keep_until_YYYYMMDD`` to each entry in Kaltura.
:func:`kept` reads it in the desired-state decision (``policies.desired``): an entry carrying a
keep tag whose date (UTC, inclusive) has not passed is exempt, exactly like ``archive_exempt``,
and then the tag lapses by itself. A tag is what the observation already reads (no extra call),
what an operator sees and can edit or remove in the KMC, and it travels with the entry, not with
karchive's machine or bucket.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

KEEP_TAG_PREFIX = "karchive_keep_until_"
_KEEP_TAG_RE = re.compile(rf"^{KEEP_TAG_PREFIX}(\d{{8}})$")
_TOKEN_RE = re.compile(r"^([A-Za-z0-9_-]{22})\.(\d{1,12})\.([A-Za-z0-9_-]{43})$")
NONCE_BYTES = 16
GRANT_VERSION = 1


def keep_tag(until: int) -> str:
    """The tag that exempts an entry through the UTC day of ``until`` (unix seconds)."""
    return KEEP_TAG_PREFIX + datetime.fromtimestamp(until, UTC).strftime("%Y%m%d")


def kept_until(tags: Iterable[str]) -> int | None:
    """The last instant (unix seconds) the entry's keep tags exempt it; None without one."""
    latest: int | None = None
    for tag in tags:
        found = _KEEP_TAG_RE.match(tag.strip().lower())
        if found is None:
            continue
        try:
            day = datetime.strptime(found[1], "%Y%m%d").replace(tzinfo=UTC)
        except ValueError:
            continue  # "karchive_keep_until_20281399" is nobody's date: not a keep
        end = int((day + timedelta(days=1)).timestamp()) - 1
        latest = end if latest is None else max(latest, end)
    return latest


def kept(tags: Iterable[str], now: int) -> bool:
    """Whether a keep tag still exempts the entry at ``now``."""
    until = kept_until(tags)
    return until is not None and now <= until


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class Grant:
    """What one keep link may do: keep ``entry_ids`` of ``owner``, until ``expires``.
    ``names``: the entries' names when the message was sent, shown on the page (no Kaltura call
    is made for a GET)."""

    nonce: str
    owner: str
    entry_ids: tuple[str, ...]
    expires: int
    issued_at: int
    names: tuple[tuple[str, str], ...] = ()

    @classmethod
    def issue(cls, random16: bytes, owner: str, names: dict[str, str], issued_at: int,
              expires: int) -> Grant:
        """A new grant for the entries ``names`` lists (id -> name); ``random16``: 16 bytes
        from the runtime's random source."""
        if len(random16) != NONCE_BYTES:
            raise ValueError(f"a nonce needs {NONCE_BYTES} random bytes")
        ids = tuple(sorted(names))
        return cls(_b64(random16), owner, ids, expires, issued_at,
                   tuple((entry_id, names[entry_id]) for entry_id in ids))

    def to_json(self) -> bytes:
        return json.dumps({"version": GRANT_VERSION, "nonce": self.nonce, "owner": self.owner,
                           "entries": list(self.entry_ids), "expires": self.expires,
                           "issued_at": self.issued_at, "names": dict(self.names)},
                          ensure_ascii=False, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Grant | None:
        """The grant a stored record holds, or None for anything else (never an exception)."""
        try:
            raw = json.loads(data)
            if raw.get("version") != GRANT_VERSION:
                return None
            names = raw.get("names") or {}
            entries = tuple(str(e) for e in raw["entries"])
            return cls(str(raw["nonce"]), str(raw["owner"]), entries, int(raw["expires"]),
                       int(raw["issued_at"]),
                       tuple((e, str(names.get(e, ""))) for e in entries))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def _message(self) -> bytes:
        # Length-prefixed fields: no choice of owner or entry ids can make two grants collide.
        fields = [f"v{GRANT_VERSION}", self.nonce, str(self.expires), str(self.issued_at),
                  self.owner, *self.entry_ids]
        return b"".join(len(f.encode()).to_bytes(4, "big") + f.encode() for f in fields)


def token(grant: Grant, secret: str) -> str:
    """The link's token for ``grant``."""
    mac = hmac.new(secret.encode(), b"grant\0" + grant._message(), hashlib.sha256).digest()
    return f"{grant.nonce}.{grant.expires}.{_b64(mac)}"


def nonce_of(text: str) -> str | None:
    """The nonce a token names (to find its grant), or None for text that is no token."""
    found = _TOKEN_RE.match(text)
    return found[1] if found else None


def valid(text: str, grant: Grant | None, secret: str, now: int) -> bool:
    """Whether ``text`` is the token of ``grant`` and the link has not expired. Replay is the
    caller's check (a used nonce is recorded durably in the archive)."""
    if grant is None or nonce_of(text) != grant.nonce:
        return False
    if not hmac.compare_digest(text.encode(), token(grant, secret).encode()):
        return False
    return now <= grant.expires


def form_token(link_token: str, secret: str) -> str:
    """The hidden field the keep page's form carries: derived from the link, never in it."""
    mac = hmac.new(secret.encode(), b"form\0" + link_token.encode(), hashlib.sha256).digest()
    return _b64(mac)


def form_valid(link_token: str, form: str, secret: str) -> bool:
    try:
        expected = form_token(link_token, secret)
        return hmac.compare_digest(form.encode("ascii"), expected.encode())
    except (UnicodeEncodeError, binascii.Error):
        return False
