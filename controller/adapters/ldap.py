"""The LDAP adapter: owners' status, name and org unit from the directory, through ldap3.

An edge of the pipeline. The observation asks :meth:`Directory.lookup` once per page of entries
for their distinct owners (answers cached for ``cache_ttl``); the answers feed
``ObservedEntry.owner_status`` (the policy's owner selector), ``karchive list --with-owner`` and
``karchive owners``. Settings come from the policy (``policies.directory.DirectorySettings``).

Cost: distinct uids are looked up in batches — two searches per batch (see ``_resolve_batch``),
none for a uid answered within ``cache_ttl``. One connection is bound once and reused; a dropped
one is replaced on the next attempt. Every bind and search is counted
(``ldap_call("bind" | "search", outcome)``: ``karchive_ldap_calls_total``).

Retries, one level: this adapter's own loop (``_with_retries``: ``directory.retries`` times, with
backoff), because ldap3 itself never retries a dropped connection and a second attempt must
bind anew; nothing above it retries.

Failure never turns into a decision: if the directory cannot be reached or refuses us, every uid
asked is ``unknown`` (which no rule matches, so nothing is archived because LDAP is down), the
error is logged once per lookup, and ``last_error`` keeps it for health reporting. Errors from
ldap3 are translated here, by the one table ``ERRORS`` and the result codes, and only here,
into (each with ``source=ldap``)::

    DirectoryError (KarchiveError)
    ├── DirectoryTransientError (TransientError)   unreachable, timed out, dropped, busy: retried
    └── DirectoryPermanentError (PermanentError)   bad credentials, missing base, bad filter
        └── DirectoryConfigError (UsageError)      the settings cannot even be used (password_file)

so callers that handle the project-wide tree (``policies.errors``) handle these too.
"""

from __future__ import annotations

import contextlib
import logging
import math
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ldap3 import NO_ATTRIBUTES, NONE, SUBTREE, Connection, Server, Tls
from ldap3.core import exceptions as ldap_exc
from ldap3.utils.conv import escape_filter_chars

from controller.adapters import network
from controller.errors import (
    KarchiveError,
    PermanentError,
    Source,
    TransientError,
    UsageError,
    lookup,
    outcome,
)
from policies.directory import UID_PLACEHOLDER, DirectorySettings
from policies.observed import OwnerStatus

log = logging.getLogger("karchive.directory")

# LDAP result codes (RFC 4511 §4.1.9) that a later attempt may not meet again.
_TRANSIENT_CODES = {3: "timeLimitExceeded", 51: "busy", 52: "unavailable", 80: "other"}
_NO_SUCH_OBJECT = 32
_SIZE_LIMIT_EXCEEDED = 4
_BACKOFF_BASE = 0.5  # seconds before the first retry; doubled each time
_BACKOFF_CAP = 8.0


class DirectoryError(KarchiveError):
    """The directory could not answer. The message never contains the bind password."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message, source=Source.LDAP)


class DirectoryTransientError(DirectoryError, TransientError):
    """Worth retrying: the server was unreachable, slow, busy or dropped the connection."""


class DirectoryPermanentError(DirectoryError, PermanentError):
    """Retrying will not help: the settings (credentials, base, filter) need fixing."""


class DirectoryConfigError(DirectoryPermanentError, UsageError):
    """The settings cannot be used at all; raised when the adapter is built, not per lookup."""


# ldap3's exceptions → this adapter's classes, most specific first (lookup); the words are
# filled by Directory._translate ({what}: the call and its target). Network failures are named
# by adapters/network.py before this table is read.
_UNREACHABLE = "unreachable"
ERRORS: dict[type[BaseException], tuple[type[DirectoryError], str]] = {
    ldap_exc.LDAPInvalidFilterError: (DirectoryPermanentError,
                                      "invalid LDAP filter ({exc}): fix directory.active_filter"),
    ldap_exc.LDAPBindError: (DirectoryPermanentError,
                             "{what} refused: {kind}: {exc}: check directory.bind_dn and the "
                             "password"),
    ldap_exc.LDAPCommunicationError: (DirectoryTransientError, _UNREACHABLE),
    ldap_exc.LDAPResponseTimeoutError: (DirectoryTransientError, _UNREACHABLE),
    ldap_exc.LDAPException: (DirectoryPermanentError, "{what} failed: {kind}: {exc}"),
    OSError: (DirectoryTransientError, _UNREACHABLE),
}
LOW_LEVEL = (ldap_exc.LDAPException, OSError)


class LdapMetrics(Protocol):
    def ldap_call(self, operation: str, outcome: str) -> None: ...


class _NoMetrics:
    def ldap_call(self, operation: str, outcome: str) -> None:
        return None


@dataclass(frozen=True, slots=True)
class OwnerInfo:
    """What the directory says of one owner. ``name``/``org_unit`` are '' when not known."""

    status: OwnerStatus
    name: str = ""
    org_unit: str = ""


UNKNOWN = OwnerInfo(OwnerStatus.UNKNOWN)


@dataclass(frozen=True, slots=True)
class _Cached:
    info: OwnerInfo
    expires: float


class Directory:
    """Batched, cached owner lookups against one LDAP server. Thread-safe; reuse one per process.

    ``clock`` and ``sleep`` are injectable so tests can step the cache TTL and skip backoff waits.
    """

    def __init__(
        self,
        settings: DirectorySettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        metrics: LdapMetrics | None = None,
    ) -> None:
        self.settings = settings
        self._metrics: LdapMetrics = metrics if metrics is not None else _NoMetrics()
        self._password = _read_password(settings)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._cache: dict[str, _Cached] = {}
        self.searches = 0  # LDAP search operations sent, for tests and benchmarks
        self.binds = 0  # connections opened and bound
        self.last_error: DirectoryError | None = None

    # -- the one entry point -------------------------------------------------------------------

    def lookup(self, user_ids: Iterable[str]) -> dict[str, OwnerInfo]:
        """Status, name and org unit of each Kaltura userId (keys are the ids as given)."""
        uid_of = {user_id: self.settings.uid_for(user_id) for user_id in user_ids}
        with self._lock:
            by_key = self._resolve({_key(uid): uid for uid in uid_of.values() if uid})
        return {user_id: by_key.get(_key(uid), UNKNOWN) for user_id, uid in uid_of.items()}

    def close(self) -> None:
        with self._lock:
            self._drop_connection()

    def __enter__(self) -> Directory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- cache and batches ---------------------------------------------------------------------

    def _resolve(self, wanted: Mapping[str, str]) -> dict[str, OwnerInfo]:
        now = self._clock()
        answers: dict[str, OwnerInfo] = {}
        missing: list[str] = []
        for key, uid in wanted.items():
            hit = self._cache.get(key)
            if hit is not None and hit.expires > now:
                answers[key] = hit.info
            else:
                missing.append(uid)
        size = self.settings.batch_size
        for start in range(0, len(missing), size):
            batch = missing[start : start + size]
            try:
                found = self._with_retries(batch)
            except DirectoryError as exc:
                # Stop at the first failed batch: the rest would fail the same way, slowly.
                # Unknown answers are not cached, so the next lookup asks again.
                self.last_error = exc
                log.warning(
                    "directory lookup failed, owner status unknown for %d owner(s): %s",
                    len(missing) - start,
                    exc,
                )
                break
            self.last_error = None
            expires = self._clock() + self.settings.cache_ttl
            for key, info in found.items():
                self._cache[key] = _Cached(info, expires)
                answers[key] = info
        return answers

    def _with_retries(self, batch: Sequence[str]) -> dict[str, OwnerInfo]:
        attempt = 0
        while True:
            try:
                return self._resolve_batch(batch)
            except DirectoryTransientError:
                # A dropped or half-open connection is not reused: the next attempt binds anew.
                self._drop_connection()
                if attempt >= self.settings.retries:
                    raise
                self._sleep(min(_BACKOFF_BASE * 2**attempt, _BACKOFF_CAP))
                attempt += 1

    def _resolve_batch(self, batch: Sequence[str]) -> dict[str, OwnerInfo]:
        """Two searches per batch, and why two.

        The first, ``(|(uid=a)(uid=b)…)``, finds who exists and reads name and org unit. The
        second asks which of those are active with ``(|F(a)F(b)…)`` where F is the configured
        active filter with each escaped uid substituted. The alternative — one AND of the uid OR
        with "the active filter minus its uid part" — would require rewriting an arbitrary
        filter, which is exact only for filters shaped like Princeton's; an OR of substituted
        filters is exact for any filter the operator writes, costs one more search per batch and
        returns DNs only (attribute ``1.1``). Active is decided by DN so the uid attribute need
        not appear in the filter's result. Someone not found is inactive (gone from the
        directory); the second search is skipped when nobody was found.
        """
        settings = self.settings
        escaped = {uid: escape_filter_chars(uid) for uid in batch}
        wanted = {_key(uid) for uid in batch}
        attrs = [settings.uid_attribute, *settings.name_attributes, settings.org_unit_attribute]
        people = self._search(
            "(|" + "".join(f"({settings.uid_attribute}={e})" for e in escaped.values()) + ")",
            attrs,
        )
        person_of: dict[str, tuple[str, Mapping[str, Any]]] = {}
        for dn, attributes in people:
            for value in _values(attributes, settings.uid_attribute):
                key = _key(value)
                # uid matching is case-insensitive in LDAP (caseIgnoreMatch); the first entry
                # found for a uid wins if a directory holds duplicates.
                if key in wanted and key not in person_of:
                    person_of[key] = (dn.lower(), attributes)
        active_dns: set[str] = set()
        found = [uid for uid in batch if _key(uid) in person_of]
        if found:
            template = settings.active_filter
            ors = "".join(template.replace(UID_PLACEHOLDER, escaped[uid]) for uid in found)
            active_dns = {dn.lower() for dn, _ in self._search(f"(|{ors})", [NO_ATTRIBUTES])}
        answers: dict[str, OwnerInfo] = {}
        for uid in batch:
            key = _key(uid)
            if key not in person_of:
                answers[key] = OwnerInfo(OwnerStatus.INACTIVE)
                continue
            dn, attributes = person_of[key]
            name = next(
                (v for a in settings.name_attributes for v in _values(attributes, a)[:1]), ""
            )
            org_units = _values(attributes, settings.org_unit_attribute)
            status = OwnerStatus.ACTIVE if dn in active_dns else OwnerStatus.INACTIVE
            answers[key] = OwnerInfo(status, name, org_units[0] if org_units else "")
        return answers

    # -- the network seam: every ldap3 call and exception is here ------------------------------

    def _search(self, search_filter: str, attributes: list[str]) -> list[tuple[str, Any]]:
        conn = self._connection()
        self.searches += 1
        try:
            with network.watch.call(f"the directory {self.settings.url} (search)",
                                    self.settings.timeout):
                conn.search(
                    self.settings.base,
                    search_filter,
                    search_scope=SUBTREE,
                    attributes=attributes,
                    time_limit=int(self.settings.timeout) or 1,
                )
            self._check_result(conn.result)
        except LOW_LEVEL as exc:
            error = self._translate(exc, "search")
            self._metrics.ldap_call("search", outcome(error))
            raise error from exc
        except DirectoryError as error:
            self._metrics.ldap_call("search", outcome(error))
            raise
        self._metrics.ldap_call("search", "ok")
        return [
            (item["dn"], item.get("attributes") or {})
            for item in conn.response or []
            if item.get("type") == "searchResEntry"
        ]

    def _check_result(self, result: Mapping[str, Any]) -> None:
        code = int(result.get("result", 0))
        if code == 0:
            return
        where = f"directory {self.settings.url}"
        if code in _TRANSIENT_CODES:
            raise DirectoryTransientError(f"{where} answered {_TRANSIENT_CODES[code]}; will retry")
        if code == _NO_SUCH_OBJECT:
            raise DirectoryPermanentError(
                f"{where} has no entry {self.settings.base!r}: fix directory.base"
            )
        if code == _SIZE_LIMIT_EXCEEDED:
            raise DirectoryPermanentError(
                f"{where} cut a search short (sizeLimitExceeded): lower directory.batch_size"
            )
        desc = result.get("description", "error")
        raise DirectoryPermanentError(f"{where} refused a search ({desc}, code {code})")

    def _connection(self) -> Connection:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        settings = self.settings
        tls = None
        if settings.is_ldaps:
            # ldap3's default Tls does not validate certificates; a directory holding people's
            # standing must be the real one, so validation is always on (ldap3 core/tls.py).
            ca = str(settings.ca_file) if settings.ca_file else None
            tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=ca)
        try:
            # Connect timeout short (a healthy directory accepts in milliseconds), the receive
            # timeout the policy's: a bind or a search answer; searches also carry it as the
            # server-side time limit.
            server = Server(settings.url, get_info=NONE, tls=tls,
                            connect_timeout=min(settings.timeout, network.CONNECT_TIMEOUT))
            with network.watch.call(f"the directory {settings.url} (bind)", settings.timeout):
                self._conn = Connection(
                    server,
                    user=settings.bind_dn,
                    password=self._password,
                    auto_bind=True,
                    read_only=True,
                    # ldap3 packs this into SO_RCVTIMEO as a C long (strategy/base.py): an int.
                    receive_timeout=math.ceil(settings.timeout),
                )
        except LOW_LEVEL as exc:
            error = self._translate(exc, "bind")
            self._metrics.ldap_call("bind", outcome(error))
            raise error from exc
        self._metrics.ldap_call("bind", "ok")
        self.binds += 1
        return self._conn

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        # Already gone, most likely: that is why it is being dropped.
        with contextlib.suppress(ldap_exc.LDAPException, OSError):
            conn.unbind()

    def _translate(self, exc: BaseException, call: str) -> DirectoryError:
        """The one place an ldap3 failure becomes this adapter's error (the table above)."""
        error, words = lookup(ERRORS, exc) or (DirectoryPermanentError, "{what} failed: {exc}")
        what = f"directory {self.settings.url} {call}"
        if call == "bind" and isinstance(exc, ldap_exc.LDAPBindError):
            what = f"directory {self.settings.url} bind as {self.settings.bind_dn or 'anonymous'}"
        # ldap3 folds ssl errors into the text of LDAPSocketOpenError (strategy/base.py,
        # "socket ssl wrapping error: ..."), so the text is all there is to tell a certificate
        # the trust store rejects — which no retry fixes — from a closed port.
        if isinstance(exc, ldap_exc.LDAPSocketOpenError) and "certificate" in str(exc).lower():
            return DirectoryPermanentError(self._scrub(
                f"directory {self.settings.url} presented a certificate that is not trusted: "
                f"{type(exc).__name__}: "
                f"{exc}: set directory.ca_file to the CA that signed it"))
        if words == _UNREACHABLE:
            return error(self._unreachable(exc, call))
        return error(self._scrub(words.format(what=what, kind=type(exc).__name__, exc=exc)))

    def _unreachable(self, exc: BaseException, call: str) -> str:
        """The network's failure in one line (``adapters/network.py``), else ldap3's words."""
        failure = network.diagnose(exc)
        if failure is None and isinstance(exc, ldap_exc.LDAPResponseTimeoutError):
            failure = network.Failure.READ_TIMEOUT
        if failure is None:
            return self._scrub(f"directory {self.settings.url} unreachable: "
                               f"{type(exc).__name__}: {exc}")
        return network.describe("the directory", self.settings.url, call, failure,
                                setting="directory.url", read_timeout=self.settings.timeout)

    def _scrub(self, text: str) -> str:
        if self._password:
            text = text.replace(self._password, "***")  # never echo a secret, whatever ldap3 says
        return text


def _read_password(settings: DirectorySettings) -> str | None:
    if settings.password is not None:
        return settings.password.get_secret_value()
    if settings.password_file is None:
        return None
    try:
        return settings.password_file.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise DirectoryConfigError(
            f"cannot read directory.password_file {settings.password_file}: {exc.strerror}"
        ) from exc


def _key(uid: str) -> str:
    # uid compares with caseIgnoreMatch (RFC 4519 §2.39); casefold() is close enough for a key.
    return uid.casefold()


def _values(attributes: Mapping[str, Any], name: str) -> list[str]:
    """An attribute's non-empty values as strings; [] when absent (never a KeyError)."""
    value = attributes.get(name)
    if value is None:
        # ldap3 returns a CaseInsensitiveDict by default; match by hand in case it is a dict.
        value = next((v for k, v in attributes.items() if k.lower() == name.lower()), None)
    if value is None:
        return []
    items = value if isinstance(value, list | tuple) else [value]
    out = []
    for item in items:
        text = item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item)
        if text.strip():
            out.append(text)
    return out
