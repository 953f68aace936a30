"""The one seam to Kaltura: a client per process, its admin session, pacing, retries and errors.

Every Kaltura call karchive makes (observation in ``read.py``, the reconcilers' writes) goes
through :meth:`KalturaSession.call` or :meth:`KalturaSession.multirequest`, which:

- hold one ``KalturaClient`` per thread (the first loads every plugin, ~0.4 s:
  reference/kaltura-api.md §1; each one after it ~20 ms and ~80 KB), so the observation's walk
  and its flavor requests, or the executor's workers, are in flight together; a client holds
  one request's queue and configuration, so it is never shared between threads;
- start one admin KS for all of them with ``session.start`` (so a wrong secret fails at once
  with a clear error) and renew it at 80 % of its life, or at once when the server says
  ``INVALID_KS`` (its clock may run ahead of ours);
- pace each action class with a token bucket (limits from the policy's ``rate_limits``), halving
  the class's rate for a while after ``ACTION_BLOCKED`` — pacing, never a tight retry loop —
  and retrying a refused call one throttle window later, when Kaltura's fixed window is over;
- translate every failure (``KalturaException``, ``KalturaClientException``, what requests
  lets through) into karchive's error tree in one place — the tables ``CODES`` and
  ``CLIENT_CODES`` read by :func:`translate` —, each with ``source=kaltura``, and retry the
  transient ones with capped exponential backoff and full jitter. This loop is the one retry
  level for Kaltura's API: KalturaClient's own retry decorator never sees these failures (it
  wraps them first), and nothing above the session retries what it raised;
- give every call a short connect timeout and a read timeout by kind (``read_timeout``): a
  session start answers in a second, a page of 500 entries may take the policy's
  ``kaltura.timeout``; a network failure (``adapters/network.py``) is retried at most
  ``NETWORK_ATTEMPTS`` times here and nowhere else, then raised as one line naming the URL and
  what to check — a silent server fails a plan in about half a minute, not five;
- count calls by operation and outcome through an injected metrics object;
- scrub the KS and the admin secret from every message they raise.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

import requests.exceptions
import urllib3.exceptions
from KalturaClient import KalturaClient, KalturaConfiguration
from KalturaClient.exceptions import KalturaClientException, KalturaException
from KalturaClient.Plugins.Core import KalturaDetachedResponseProfile, KalturaResponseProfileType

from controller.adapters import network as netfail
from controller.errors import (
    Conflict,
    KarchiveError,
    NetworkError,
    NotFound,
    PermanentError,
    RateLimited,
    Source,
    TransientError,
    outcome,
)
from policies.durations import Rate
from policies.schema import KalturaSettings

T = TypeVar("T")

_SESSION_ADMIN = 2  # KalturaSessionType.ADMIN
# Outcome prefix of a failed sub-call of a multirequest (not an HTTP request of its own).
SUB_CALL_PREFIX = "multirequest_"

# Read timeouts by call kind, capped by the policy's kaltura.timeout: a session start is tiny;
# lists (500 entries, or a multirequest of flavor lists) get the whole timeout; any other
# call (a get, a tag write, a content swap request) answers in well under 30 s.
SESSION_READ_TIMEOUT = 15.0
OTHER_READ_TIMEOUT = 30.0
# Attempts of a call the network failed: a timeout twice (a hung server costs 2 × its read
# timeout), a refusal or an unreachable host three times (a restart, a flapping route).
TIMEOUT_ATTEMPTS = 2
NETWORK_ATTEMPTS = 3
# Kaltura's throttle window when a rule gives none (``_expiry ?? 10``, reference §11.7).
KALTURA_WINDOW = 10.0
# What a class the policy gives no budget is paced at once Kaltura refused it: operators report
# about 35 calls per 10 s (reference §10).
KALTURA_PACE = Rate(35, KALTURA_WINDOW)
_TIMEOUTS = (netfail.Failure.READ_TIMEOUT, netfail.Failure.CONNECT_TIMEOUT)


def read_timeout(label: str, configured: float) -> float:
    """Seconds to wait for the answer to the call ``label`` ("media.list", "session.start")."""
    if label == "session.start":
        return min(configured, SESSION_READ_TIMEOUT)
    if label.lower().endswith(".list"):
        return configured
    return min(configured, OTHER_READ_TIMEOUT)


class _InvalidKs(PermanentError):
    """The server refused the KS: renewed once by the session, permanent if it happens again."""


class _Unanswered(TransientError):
    """The network failed a call (``failure``); retried by :meth:`KalturaSession._run` and then
    raised as the one-line :class:`NetworkError`."""

    def __init__(self, failure: netfail.Failure, call: str) -> None:
        super().__init__(f"Kaltura {failure.value} ({call})", source=Source.KALTURA)
        self.failure = failure
        self.call = call


# Kaltura's error codes (KalturaException.code; reference/kaltura-api.md §3) → the tree; any
# code ending in _NOT_FOUND is NotFound; every other code is permanent.
CODES: dict[str, type[KarchiveError]] = {
    "ACTION_BLOCKED": RateLimited,  # paced, then retried
    "INVALID_KS": _InvalidKs,  # renewed once, then retried
    "ENTRY_REPLACEMENT_ALREADY_EXISTS": Conflict,
}
NOT_FOUND_SUFFIX = "_NOT_FOUND"
# KalturaClientException codes (KalturaClient/exceptions.py) worth retrying: connection failed,
# a non-XML body (an HTML gateway page), read failures and timeouts, an XML body without
# <result> (an empty body). Every other client code is permanent.
CLIENT_CODES: dict[int, type[KarchiveError]] = {
    code: TransientError for code in (-2, -4, -5, -8, -9, -10)}
# What a call can raise under the session: the client's two exceptions, and what requests and
# urllib3 let through unwrapped (a body cut mid-read).
LOW_LEVEL = (KalturaException, KalturaClientException, requests.exceptions.RequestException,
             urllib3.exceptions.HTTPError, urllib3.exceptions.ProxySchemeUnsupported, OSError)


class Metrics(Protocol):
    def kaltura_call(self, operation: str, outcome: str) -> None: ...


class NoMetrics:
    """The default metrics sink: counts nothing."""

    def kaltura_call(self, operation: str, outcome: str) -> None:
        return None


class _Bucket:
    """A token bucket: ``rate`` tokens a second, bursts up to ``capacity``."""

    __slots__ = ("base_rate", "capacity", "rate", "tokens", "stamp", "slowed_until")

    def __init__(self, rate: Rate, now: float) -> None:
        self.base_rate = self.rate = rate.calls / rate.per_seconds
        # A burst of the whole window is what Kaltura allows (its counter spans the window).
        self.capacity = max(1.0, rate.calls)
        self.tokens = self.capacity
        self.stamp = now
        self.slowed_until = 0.0


class Pacer:
    """Per action-class pacing: callers wait for a token instead of being refused.

    ``rate_for(service, action)`` gives the class's budget (None: not paced). After
    ``ACTION_BLOCKED`` the class runs at half its rate (compounding, never below an eighth of
    its budget) for ``slow_for`` seconds, and its bucket is emptied so the next call waits. A
    class with no budget learns ``learned`` on its first refusal (Kaltura's ~35 per 10 s; a
    shard's share of it when the daemons run as shards).
    """

    def __init__(
        self,
        rate_for: Callable[[str, str], Rate | None],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        slow_for: float = 60.0,
        learned: Rate = KALTURA_PACE,
    ) -> None:
        self._rate_for = rate_for
        self._learned = learned
        self._clock = clock
        self._sleep = sleep
        self._slow_for = slow_for
        self._buckets: dict[str, _Bucket | None] = {}
        self._lock = threading.Lock()
        self.waited = 0.0  # seconds spent waiting, for reports and tests

    def _bucket(self, service: str, action: str) -> _Bucket | None:
        key = f"{service}.{action}".lower()
        if key not in self._buckets:
            rate = self._rate_for(service, action)
            self._buckets[key] = _Bucket(rate, self._clock()) if rate else None
        return self._buckets[key]

    def acquire(self, service: str, action: str, weight: int = 1) -> None:
        """Block until ``weight`` calls of this class may go."""
        while True:
            with self._lock:
                bucket = self._bucket(service, action)
                if bucket is None:
                    return
                now = self._clock()
                if bucket.slowed_until and now >= bucket.slowed_until:
                    bucket.rate = bucket.base_rate
                    bucket.slowed_until = 0.0
                refill = (now - bucket.stamp) * bucket.rate
                bucket.tokens = min(bucket.capacity, bucket.tokens + refill)
                bucket.stamp = now
                need = min(float(weight), bucket.capacity)
                # The tolerance absorbs float rounding (a wait of 1e-16 s would spin forever).
                if bucket.tokens >= need - 1e-9:
                    bucket.tokens = max(0.0, bucket.tokens - need)
                    return
                wait = (need - bucket.tokens) / bucket.rate
            self.waited += wait
            self._sleep(wait)

    def penalise(self, service: str, action: str) -> None:
        """Kaltura said ACTION_BLOCKED: slow this class down for a while."""
        with self._lock:
            key = f"{service}.{action}".lower()
            bucket = self._bucket(service, action)
            if bucket is None:
                # Not paced until now: learn a conservative budget.
                bucket = _Bucket(self._learned, self._clock())
                self._buckets[key] = bucket
            # Halve, compounding on repeated refusals, but never below an eighth of the budget.
            bucket.rate = max(bucket.rate / 2, bucket.base_rate / 8)
            bucket.tokens = 0.0
            bucket.stamp = self._clock()
            bucket.slowed_until = bucket.stamp + self._slow_for


class KalturaSession:
    """A paced, self-renewing admin session over one ``KalturaClient``."""

    def __init__(  # noqa: PLR0913 — keyword-only retry knobs and clocks, injected by tests
        self,
        settings: KalturaSettings,
        *,
        metrics: Metrics | None = None,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        renew_at: float = 0.8,
        share: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.metrics: Metrics = metrics or NoMetrics()
        # ``share``: how many processes (shards) spend the partner's budgets together; the
        # policy's own budgets come already divided (policies/shards.py), the learned one here.
        learned = Rate(KALTURA_PACE.calls / max(1, share), KALTURA_PACE.per_seconds)
        self.pacer = Pacer(settings.rate_for, clock=clock, sleep=sleep, learned=learned)
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._renew_at = renew_at
        self._clock = clock
        self._sleep = sleep
        # KalturaClient keeps the call queue, the request's configuration and the KS on the
        # instance: each thread has its own (``_local.client``, with the KS it was last given in
        # ``_local.ks``); the KS is the session's, started and renewed under ``_ks_lock``.
        self._local = threading.local()
        self._ks_lock = threading.RLock()
        self._ks: str | None = None
        self._ks_renew_after = 0.0
        self.renewals = 0  # how many times a KS was started (first start included)

    # -- the client and its KS ------------------------------------------------------------

    @property
    def client(self) -> Any:
        """This thread's KalturaClient with a fresh KS set (started or renewed as needed)."""
        local = self._local
        if getattr(local, "client", None) is None:
            config = KalturaConfiguration(self.settings.service_url)
            config.requestTimeout = (netfail.CONNECT_TIMEOUT, self.settings.timeout)
            local.client, local.ks = KalturaClient(config), None
        with self._ks_lock:
            if self._ks is None or self._clock() >= self._ks_renew_after:
                self._start_ks(local.client)
            ks = self._ks
        if local.ks != ks:
            local.client.setKs(ks)
            local.ks = ks
        return local.client

    def _secret(self) -> str:
        secret = self.settings.admin_secret
        return secret.get_secret_value() if secret is not None else ""

    def _start_ks(self, client: Any) -> None:
        # An expired KS sent along with session.start could be refused: start without one.
        client.requestConfiguration.pop("ks", None)
        expiry = self.settings.session_expiry
        started = self._clock()
        try:
            with self._timed(client, "session.start"):
                ks = client.session.start(
                    self._secret(), self.settings.user_id, _SESSION_ADMIN,
                    self.settings.partner_id, expiry, self.settings.privileges,
                )
        except KalturaException as exc:
            self.metrics.kaltura_call("session.start", "error")
            if exc.code == "START_SESSION_ERROR":
                raise PermanentError(
                    f"Kaltura refused the admin secret for partner {self.settings.partner_id}; "
                    "check kaltura.admin_secret and kaltura.partner_id in the policy",
                    source=Source.KALTURA) from None
            raise self._translate(exc, "session.start") from None
        except LOW_LEVEL as exc:
            error = self._translate(exc, "session.start")
            self.metrics.kaltura_call("session.start", outcome(error))
            raise error from None
        self.metrics.kaltura_call("session.start", "ok")
        self._ks = ks.decode() if isinstance(ks, bytes) else str(ks)
        client.setKs(self._ks)
        self._ks_renew_after = started + expiry * self._renew_at
        self.renewals += 1

    def renew(self) -> None:
        """Start a new KS now (after INVALID_KS, or before a long pause)."""
        with self._ks_lock:
            self._ks = None
        _ = self.client

    @contextlib.contextmanager
    def _timed(self, client: Any, label: str) -> Iterator[None]:
        """The call's timeouts set on the client (this thread's own), and a word on the log
        while it keeps us waiting."""
        wait = read_timeout(label, self.settings.timeout)
        client.config.requestTimeout = (netfail.CONNECT_TIMEOUT, wait)
        with netfail.watch.call(f"Kaltura at {self.settings.service_url} ({label})", wait):
            yield

    # -- calls ----------------------------------------------------------------------------

    def call(self, label: str, fn: Callable[[Any], T], *, fields: str | None = None) -> T:
        """Run ``fn(client)`` — one API call named ``label`` ("media.list") — paced and retried.
        ``fields``: only these fields of the objects it answers (:meth:`_shaped`).

        Raises the translated error once retries are exhausted (transient) or at once (permanent).
        """
        return self._run(label, 1, lambda client: fn(client), fields=fields)

    def call_xml(self, label: str, fn: Callable[[Any], object], *,
                 fields: str | None = None) -> Any:
        """:meth:`call`, answered with the result's XML element instead of client objects
        (:func:`_send_xml`): for the observation's listings, read field by field."""
        return self._run(label, 1, lambda client: _send_xml(client, [fn], multi=False)[0],
                         fields=fields)

    def multirequest(  # noqa: C901 — one pass over the answers: transport, envelope and per-call failures, counted where found
        self, label: str, fns: Sequence[Callable[[Any], object]], *, fields: str | None = None,
        xml: bool = False) -> list[Any]:
        """Queue ``fn(client)`` for each of ``fns`` into one multirequest (one HTTP call).

        Returns one slot per call: its result (``xml``: its XML element, :func:`_send_xml`), or
        the translated :class:`KarchiveError` when that sub-call failed for good (the others
        still ran: reference §2). Sub-calls that failed transiently (throttled, INVALID_KS) are
        sent again, alone together, with :meth:`call`'s backoff; a failure of the whole request
        is retried or raised like :meth:`call`.
        """
        service, _, action = label.partition(".")
        results: list[Any] = [None] * len(fns)
        pending = list(range(len(fns)))
        attempt = 0
        while pending:
            attempt += 1
            batch = [fns[i] for i in pending]

            def send(client: Any, batch: list[Callable[[Any], object]] = batch) -> list[Any]:
                if xml:
                    return _send_xml(client, batch, multi=True)
                client.startMultiRequest()
                try:
                    for fn in batch:
                        fn(client)
                except BaseException:
                    client.callsQueue = []
                    client.multiRequestReturnType = None
                    raise
                return list(client.doMultiRequest())

            answers = self._run(label, len(batch), send, what="multirequest", fields=fields)
            retry: list[int] = []
            delay: TransientError | None = None
            saw_invalid_ks = False
            throttled = False
            for index, answer in zip(pending, answers, strict=True):
                if isinstance(answer, KalturaException):
                    answer = self._translate(answer, label)
                    # The HTTP request counted as "multirequest"; this is one slot of it.
                    self.metrics.kaltura_call(label, SUB_CALL_PREFIX + outcome(answer))
                    if isinstance(answer, _InvalidKs) and attempt == 1:
                        saw_invalid_ks = True
                        retry.append(index)
                        continue
                    if isinstance(answer, TransientError) and attempt < self._max_attempts:
                        throttled = throttled or isinstance(answer, RateLimited)
                        retry.append(index)
                        delay = answer
                        continue
                results[index] = answer
            if throttled:
                self.pacer.penalise(service, action)  # once per answer, not once per slot
            if saw_invalid_ks:
                self.renew()
            if delay is not None:
                self._sleep(self._backoff(label, attempt, delay))
            pending = retry
        return results

    def _run(self, label: str, weight: int, fn: Callable[[Any], T], what: str = "",  # noqa: C901 — the adapter's one retry loop; each branch is a row of its retry table
             fields: str | None = None) -> T:
        operation = what or label
        service, _, action = label.partition(".")
        renewed = False
        attempt = 0
        while True:
            attempt += 1
            counted = False
            self.pacer.acquire(service, action, weight)
            try:
                # Starting or renewing the KS is a call too: retried like the one it serves.
                client = self.client
                with self._timed(client, label), _shaped(client, fields):
                    result = fn(client)
            except KarchiveError as exc:
                error = exc  # from session.start, which counted itself
                counted = True
            except LOW_LEVEL as exc:
                error = self._translate(exc, label)
            else:
                self.metrics.kaltura_call(operation, "ok")
                return result
            if isinstance(error, _InvalidKs) and not renewed:
                # The server's clock decides; renew once and retry at once.
                self.metrics.kaltura_call(operation, "invalid_ks")
                renewed = True
                self.renew()
                attempt -= 1
                continue
            if not counted:
                self.metrics.kaltura_call(operation, outcome(error))
            if isinstance(error, RateLimited):
                self.pacer.penalise(service, action)
            if isinstance(error, _Unanswered):
                limit = TIMEOUT_ATTEMPTS if error.failure in _TIMEOUTS else NETWORK_ATTEMPTS
                if attempt >= min(limit, self._max_attempts):
                    raise self._network_error(error, attempt) from None
                netfail.log.warning("Kaltura at %s: %s (%s); trying again (%d of %d)",
                                    self.settings.service_url, error.failure.value, error.call,
                                    attempt + 1, min(limit, self._max_attempts))
            elif not isinstance(error, TransientError) or attempt >= self._max_attempts:
                raise error
            self._sleep(self._backoff(label, attempt, error))

    def _network_error(self, error: _Unanswered, attempts: int) -> NetworkError:
        wait = read_timeout(error.call, self.settings.timeout)
        return NetworkError(self._scrub(netfail.describe(
            "Kaltura", self.settings.service_url, error.call, error.failure,
            setting="kaltura.service_url", read_timeout=wait, attempts=attempts)),
            source=Source.KALTURA)

    def _backoff(self, label: str, attempt: int, error: TransientError) -> float:
        if error.delay is not None:
            return error.delay
        if isinstance(error, RateLimited):
            return self._window(label) + random.uniform(0, 1)
        ceiling = min(self._backoff_cap, self._backoff_base * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)  # jitter: never in lock-step with others

    def _window(self, label: str) -> float:
        """How long after an ``ACTION_BLOCKED`` a fresh window has surely opened.

        Kaltura's windows are fixed, opened by their first call, and a refusal does not extend
        them (``KalturaResponseCacher::rateLimit``, reference §11.7): one window's length after a
        refusal, the window that refused it is over. A retry sooner only spends calls on more
        refusals — and five quick ones can all land in the same window.
        """
        service, _, action = label.partition(".")
        rate = self.settings.rate_for(service, action)
        return rate.per_seconds if rate is not None else KALTURA_WINDOW

    # -- translation ----------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        for secret in (self._ks, self._secret()):
            if secret:
                text = text.replace(secret, "***")
        return text

    def _translate(self, exc: BaseException, label: str) -> KarchiveError:
        """A failure of the call ``label`` as karchive's error, scrubbed of the KS and secret."""
        return translate(exc, label, self._scrub)


def translate(exc: BaseException, label: str, scrub: Callable[[str], str] = str
              ) -> KarchiveError:
    """The one place a KalturaClient failure becomes karchive's error: the tables above,
    the network table for what never got an answer (``adapters/network.py``); ``source``
    kaltura on all of them."""
    if isinstance(exc, KalturaException):
        code = str(exc.code)
        message = scrub(f"{label}: {exc.message} ({code})")
        error = CODES.get(code) or (NotFound if code.endswith(NOT_FOUND_SUFFIX)
                                    else PermanentError)
        return error(message, source=Source.KALTURA)
    failure = netfail.diagnose(exc)
    if failure is not None:
        return _Unanswered(failure, label)
    if isinstance(exc, KalturaClientException):
        message = scrub(f"{label}: {exc.message} (client code {exc.code})")
        error = CLIENT_CODES.get(int(exc.code), PermanentError)
        return error(message, source=Source.KALTURA)
    # What requests or urllib3 let through unwrapped, with no network failure named: a body
    # cut mid-read, a protocol hiccup; worth another try.
    return TransientError(scrub(f"{label}: {type(exc).__name__}: {exc}"), source=Source.KALTURA)


def _send_xml(client: Any, fns: Sequence[Callable[[Any], object]], *, multi: bool) -> list[Any]:
    """Send the calls ``fns`` queue (one request; a multirequest when ``multi``) and answer each
    with its result's XML element, or the ``KalturaException`` of a sub-call that failed.

    The client's own calls build a KalturaObject per answer by reflection, every class of the
    inheritance chain walking every element again (Base.py ``fromXmlImpl``): two fifths of a
    full walk's time went there. The request is still the client's — its queue, parameters, KS,
    signature, HTTP and parse (Client.py ``doQueue``, ``getExceptionIfError``, as its
    ``doMultiRequest`` reads them); only the building of objects is left out. A single call's
    error is raised by ``doQueue`` itself, as the client's calls raise it.
    """
    client.startMultiRequest()  # the service methods queue their call instead of sending it
    try:
        for fn in fns:
            fn(client)
        if not multi:
            client.multiRequestReturnType = None  # one call: sent to service/<s>/action/<a>
        result = client.doQueue()
    finally:
        client.callsQueue = []
        client.multiRequestReturnType = None
    if not multi:
        return [result]
    answers: list[Any] = []
    for child in result:
        error = client.getExceptionIfError(child)
        answers.append(child if error is None else error)
    return answers


@contextlib.contextmanager
def _shaped(client: Any, fields: str | None) -> Iterator[None]:
    """Ask for only ``fields`` of the answer's objects, for the calls queued inside (under the
    session's lock: the client holds one request's configuration at a time).

    Kaltura's detached response profile (``responseProfile``, type INCLUDE_FIELDS) fills only
    the listed properties of each object a call answers (kaltura/server
    api_v3/lib/types/KalturaObject.php, fromObject), and the request's ``ignoreNull=1`` leaves
    the others out of the XML (api_v3/lib/KalturaXmlSerializer.php): the observation's pages
    shrink to the fields it reads, and the client parses a third of the elements. The client
    sends its ``clientConfiguration`` as request-level parameters (Client.py getRequestParams),
    where ``ignoreNull`` belongs; the profile goes with each call (queueServiceActionCall).
    """
    if fields is None:
        yield
        return
    profile = KalturaDetachedResponseProfile()
    profile.type = KalturaResponseProfileType.INCLUDE_FIELDS
    profile.fields = fields
    client.requestConfiguration["responseProfile"] = profile
    client.clientConfiguration["ignoreNull"] = 1
    try:
        yield
    finally:
        client.requestConfiguration.pop("responseProfile", None)
        client.clientConfiguration.pop("ignoreNull", None)
