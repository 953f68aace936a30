"""Sessions of the emulator: KS v1/v2 signing and validation, session.start and session.end.

The server asks ``Sessions.authenticate`` for every call before it dispatches: a valid KS becomes
the ``CallContext`` handed to the action (user id, session type, privileges); anything else is
the exact error a real server gives (reference section 4; Kaltura server
``alpha/apps/kaltura/lib/kSessionBase.php`` and ``api_v3/lib/KalturaErrors.php``):

    garbage / bad signature / other partner -> INVALID_KS  Invalid KS "<ks>", Error "-1,INVALID_STR"
    validUntil <= now                       -> INVALID_KS  ... Error "-5,EXPIRED"
    ended by session.end                    -> INVALID_KS  ... Error "-6,LOGOUT"
    privilege actionslimit:N, call N+1      -> INVALID_KS  ... Error "-8,EXCEEDED_ACTIONS_LIMIT"
    no KS and no partnerId                  -> MISSING_KS  Missing KS, session not established
    no KS but a partnerId                   -> SERVICE_FORBIDDEN The access to service [s->a] ...

Time comes from the backend clock, so a test expires a KS by advancing the clock. A KS that is
sent is always checked, even to session.start (Kaltura validates the request's KS before it
dispatches any action): a client renewing its session must drop the stale KS first.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from Crypto.Cipher import AES

from sandbox.kaltura.exceptions import KalturaError
from sandbox.kaltura.records import CallContext, Partner

SESSION_USER = 0
SESSION_ADMIN = 2

# A KS with ``actionslimit:N`` serves N calls (kaltura/server kSessionUtils::isValid keeps the
# remaining count in the invalid-sessions table, decremented on each use; the call after the
# last answers EXCEEDED_ACTIONS_LIMIT). A value that is not a positive number is refused.
PRIVILEGE_ACTIONS_LIMIT = "actionslimit"

# Actions that answer without a KS (everything else needs one). kaltura/server
# api_v3/services/SystemService.php: partnerRequired() is false for ping and getTime.
PUBLIC_ACTIONS = frozenset({("session", "start"), ("system", "ping"), ("system", "gettime")})

_V2_FIELD_EXPIRY, _V2_FIELD_TYPE, _V2_FIELD_USER = "_e", "_t", "_u"
_V2_RESERVED = frozenset({_V2_FIELD_EXPIRY, _V2_FIELD_TYPE, _V2_FIELD_USER, "_m", "_d"})
_RANDOM_SIZE = 16
_SHA1_SIZE = 20


@dataclass(frozen=True, slots=True)
class Session:
    """What a KS says once its signature is checked."""

    partner_id: int
    valid_until: int
    type: int
    user_id: str
    privileges: str


# ------------------------------------------------------------------------------------ KS formats


def _sha1(data: bytes) -> bytes:
    return hashlib.sha1(data).digest()


def generate_ks_v1(
    secret: str, partner_id: int, user_id: str, type_: int, valid_until: int, privileges: str = ""
) -> str:
    """``base64(sha1hex(secret + info) | info)``, as KalturaClient.generateSession builds it."""
    rand = int.from_bytes(os.urandom(2), "big")
    info = f"{partner_id};{partner_id};{valid_until};{type_};{rand};{user_id};{privileges}"
    signature = hashlib.sha1((secret + info).encode()).hexdigest()
    return base64.b64encode(f"{signature}|{info}".encode()).decode()


def generate_ks_v2(
    secret: str, partner_id: int, user_id: str, type_: int, valid_until: int, privileges: str = ""
) -> str:
    """AES-128-CBC of ``sha1(rand+fields) + rand + fields``, as generateSessionV2 builds it."""
    fields: dict[str, str] = {}
    for privilege in (p.strip() for p in privileges.split(",")):
        if not privilege:
            continue
        name, _, value = ("all:*" if privilege == "*" else privilege).partition(":")
        fields[name] = value
    fields[_V2_FIELD_EXPIRY] = str(valid_until)
    fields[_V2_FIELD_TYPE] = str(type_)
    fields[_V2_FIELD_USER] = user_id
    plain = os.urandom(_RANDOM_SIZE) + urlencode(fields).encode()
    plain = _sha1(plain) + plain
    plain += b"\0" * (-len(plain) % AES.block_size)
    cipher = AES.new(_sha1(secret.encode())[:16], AES.MODE_CBC, b"\0" * 16)
    return base64.urlsafe_b64encode(f"v2|{partner_id}|".encode() + cipher.encrypt(plain)).decode()


def parse_ks(ks: str, admin_secret: str) -> Session | None:
    """Decode and verify a KS of either version; None when it is not one signed by this secret."""
    try:
        padded = ks.replace("-", "+").replace("_", "/")
        decoded = base64.b64decode(padded + "=" * (-len(padded) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        if decoded.startswith(b"v2|"):
            return _parse_v2(decoded, admin_secret)
        return _parse_v1(decoded, admin_secret)
    except (ValueError, UnicodeDecodeError):
        return None


def _parse_v1(decoded: bytes, admin_secret: str) -> Session | None:
    signature, sep, info = decoded.partition(b"|")
    if not sep:
        return None
    expected = hashlib.sha1(admin_secret.encode() + info).hexdigest().encode()
    if signature != expected:
        return None
    parts = info.decode().split(";")
    if len(parts) < 3:
        return None
    parts += [""] * (7 - len(parts))
    return Session(
        partner_id=int(parts[0]),
        valid_until=int(parts[2]),
        type=int(parts[3] or 0),
        user_id=parts[5],
        privileges=parts[6],
    )


def _parse_v2(decoded: bytes, admin_secret: str) -> Session | None:
    _, partner, encrypted = decoded.split(b"|", 2)
    if not encrypted or len(encrypted) % AES.block_size:
        return None
    cipher = AES.new(_sha1(admin_secret.encode())[:16], AES.MODE_CBC, b"\0" * 16)
    plain = cipher.decrypt(encrypted).rstrip(b"\0")
    digest, rest = plain[:_SHA1_SIZE], plain[_SHA1_SIZE:]
    if digest != _sha1(rest):
        return None
    fields = dict(parse_qsl(rest[_RANDOM_SIZE:].decode(), keep_blank_values=True))
    privileges = ",".join(
        f"{k}:{v}" if v else k for k, v in fields.items() if k not in _V2_RESERVED
    )
    return Session(
        partner_id=int(partner),
        valid_until=int(fields.get(_V2_FIELD_EXPIRY, "0")),
        type=int(fields.get(_V2_FIELD_TYPE, "0") or 0),
        user_id=fields.get(_V2_FIELD_USER, ""),
        privileges="*" if privileges == "all:*" else privileges,
    )


# -------------------------------------------------------------------------------------- service


def actions_limit(privileges: str) -> int | None:
    """N of an ``actionslimit:N`` privilege, None without one (kSessionUtils::isSetLimitAction)."""
    for privilege in privileges.split(","):
        name, _, value = privilege.strip().partition(":")
        if name == PRIVILEGE_ACTIONS_LIMIT:
            if not value.strip().isdigit() or int(value) <= 0:
                raise KalturaError("INVALID_ACTIONS_LIMIT", "Invalid actions limit")
            return int(value)
    return None


def invalid_ks(ks: str, code: int, description: str) -> KalturaError:
    return KalturaError(
        "INVALID_KS",
        f'Invalid KS "{ks}", Error "{code},{description}"',
        {"KSID": ks, "ERR_CODE": str(code), "ERR_DESC": description},
    )


class Sessions:
    """The partner's sessions: validates KS strings and serves session.start / session.end."""

    def __init__(self, partner: Partner, now: Callable[[], float], ks_version: int = 2) -> None:
        self._partner = partner
        self._now = now
        self.ks_version = ks_version
        self._ended: set[str] = set()
        self._actions_left: dict[str, int] = {}
        self._lock = threading.Lock()

    def authenticate(
        self, service: str, action: str, params: dict[str, Any], base_url: str
    ) -> CallContext:
        """The caller's context for one call, or the KalturaError a real server would answer."""
        ks = params.get("ks")
        ks = ks if isinstance(ks, str) else ""
        if not ks:
            if (service, action) in PUBLIC_ACTIONS:
                return CallContext(partner_id=self._partner.id, base_url=base_url, session_type=-1)
            if params.get("partnerId"):
                name = f"{service}->{action}"
                raise KalturaError(
                    "SERVICE_FORBIDDEN",
                    f"The access to service [{name}] is forbidden",
                    {"SERVICE": name},
                )
            raise KalturaError("MISSING_KS", "Missing KS, session not established")
        session = self.validate(ks)
        return CallContext(
            partner_id=session.partner_id,
            base_url=base_url,
            user_id=session.user_id,
            session_type=session.type,
            privileges=session.privileges,
            ks=ks,
        )

    def validate(self, ks: str) -> Session:
        session = parse_ks(ks, self._partner.admin_secret)
        if session is None or session.partner_id != self._partner.id:
            raise invalid_ks(ks, -1, "INVALID_STR")
        if session.valid_until <= self._now():
            raise invalid_ks(ks, -5, "EXPIRED")
        limit = actions_limit(session.privileges)
        with self._lock:
            if ks in self._ended:
                raise invalid_ks(ks, -6, "LOGOUT")
            if limit is not None:
                left = self._actions_left.get(ks, limit)
                if left <= 0:
                    raise invalid_ks(ks, -8, "EXCEEDED_ACTIONS_LIMIT")
                self._actions_left[ks] = left - 1
        return session

    def start(self, params: dict[str, Any]) -> str:
        """session.start(secret, userId, type, partnerId, expiry, privileges) -> the KS text."""
        partner = self._partner
        pid = str(params.get("partnerId", ""))
        secret = str(params.get("secret", ""))
        try:
            type_ = int(params.get("type") or SESSION_USER)
        except ValueError:
            type_ = -1
        allowed = {partner.admin_secret}
        if type_ == SESSION_USER:
            allowed.add(partner.user_secret)
        if pid != str(partner.id) or secret not in allowed or type_ not in (0, 2):
            raise KalturaError(
                "START_SESSION_ERROR",
                f"Error while starting session for partner [{pid}]",
                {"PID": pid},
            )
        try:
            expiry = int(params.get("expiry") or 0)
        except ValueError:
            expiry = 0
        if expiry <= 0:
            expiry = 86400
        expiry = min(expiry, partner.max_session_expiry)
        generate = generate_ks_v2 if self.ks_version == 2 else generate_ks_v1
        return generate(
            partner.admin_secret,
            partner.id,
            str(params.get("userId", "")),
            type_,
            int(self._now()) + expiry,
            str(params.get("privileges", "")),
        )

    def end(self, ctx: CallContext) -> None:
        """session.end: the caller's KS answers LOGOUT from now on."""
        with self._lock:
            self._ended.add(ctx.ks)

    def actions(self) -> dict[tuple[str, str], Callable[[Any, dict[str, Any], CallContext], Any]]:
        """The session actions in the shape of ``responses.ACTIONS``; the server merges them."""
        return {
            ("session", "start"): lambda _backend, params, _ctx: self.start(params),
            ("session", "end"): lambda _backend, _params, ctx: self.end(ctx),
            ("system", "ping"): lambda _backend, _params, _ctx: True,
            # SystemService::getTimeAction: the server's time(), here the backend clock's.
            ("system", "gettime"): lambda _backend, _params, _ctx: int(self._now()),
        }
