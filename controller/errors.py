"""The error tree every adapter translates into, and the conventions every adapter follows.

The tree itself is defined in ``policies.errors`` (the lowest layer, so reconcilers raise and
catch the same types) and re-exported here::

    KarchiveError             .source: Source | None — the system that failed
    ├── UsageError            bad input (policy, flags, plan file): one line, exit 1
    ├── TransientError        may pass; .delay: seconds to wait, when the system said so
    │   ├── RateLimited       Kaltura's ACTION_BLOCKED (the session paces, then retries)
    │   └── NetworkError      unreachable or silent, worded by the adapter's network table
    └── PermanentError        retrying will not help
        ├── NotFound          the object is not there (an answer, not a failure)
        ├── Conflict          someone else wrote first: S3 412 PreconditionFailed, 409
        │                     ConditionalRequestConflict; Kaltura ENTRY_REPLACEMENT_ALREADY_EXISTS
        ├── InProgress        already under way: S3 409 RestoreAlreadyInProgress
        └── IntegrityError    bytes or metadata differ from what was recorded: never act on it

Adapter conventions (``controller/adapters/``: ``kaltura/``, ``storage/``, ``ldap.py``,
``smtp.py``; one seam per outside system):

1. **One typed port.** An adapter is a class (or a few) whose public methods are the only way
   the rest of karchive reaches that system. The reconcilers' half of each port is a Protocol
   in ``reconcilers/ports.py``; the observation's half is typed where it is defined. Nothing
   outside ``controller/adapters/`` imports the system's library (botocore/boto3,
   KalturaClient, ldap3, smtplib): an import-linter contract enforces it.
2. **One error table.** Every low-level exception is translated in ONE place per adapter: a
   module-level table (low-level exception type, or the system's error code → a class of the
   tree above) consulted by one function, in the httpx style — the most specific entry wins
   (:func:`lookup`), and the adapter raises ``translate(exc, …) from exc`` so the chain is kept
   for the log. Network failures are named by the adapter's network table
   (``controller/adapters/network.py``: no DNS, refused, unreachable, timeouts, TLS, reset) and
   raised as :class:`NetworkError` in one line naming the endpoint, the call and what to check.
   Nothing above an adapter inspects ``__cause__`` or message text: the class says what
   happened, ``source`` says where. A test walks each library's exception classes and proves
   that none escapes its table unmapped (``tests/adapters/test_error_tables.py``).
3. **The source on every error.** Each error an adapter raises carries ``source=`` a
   :class:`Source` — ``kaltura``, ``s3``, ``directory`` (the folder archive), ``ldap``,
   ``smtp`` — so the daemon's readiness, the logs and the metrics say which system failed
   without reading the message. Errors karchive raises from its own reasoning (a reconciler's
   IntegrityError, a bad plan file) have ``source`` None.
4. **Every call counted.** Each request the adapter sends is counted once through the metrics
   sink it was given: ``sink.<source>_call(operation, outcome)`` — ``kaltura_call``,
   ``s3_call``, ``ldap_call``, ``smtp_call`` (``controller/runtime/metrics.py`` turns them into
   ``karchive_<source>_calls_total{operation, outcome}``). ``operation`` is the system's own
   name for the call (Kaltura ``service.action`` in lower case, S3's API operation
   ``PutObject``, LDAP ``bind`` / ``search``, SMTP ``connect`` / ``send``); ``outcome`` is
   :func:`outcome` of the translated error, or ``"ok"``. A retried call counts every attempt it
   sends; a retry a library makes inside one call (botocore's) counts with that call.
5. **One retry level.** An adapter retries what is worth retrying at exactly one level — its
   own loop, or its library's (botocore's standard mode), never both — and its module
   docstring says which and why. An error that leaves an adapter has been retried as much as
   it will be: callers above (the executor) do not retry it again; the entry backs off
   instead (:func:`retried`). ``TransientError.delay`` carries a wait the system asked for.
6. **No secrets** in any message, log line or metric label: a KS, a password, a signature are
   scrubbed by the adapter that holds them, before the error is raised.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from policies.errors import (
    Conflict,
    InProgress,
    IntegrityError,
    KarchiveError,
    NetworkError,
    NotFound,
    PermanentError,
    RateLimited,
    Source,
    TransientError,
    UsageError,
)

T = TypeVar("T")

__all__ = [
    "Conflict",
    "InProgress",
    "IntegrityError",
    "KarchiveError",
    "NetworkError",
    "NotFound",
    "PermanentError",
    "RateLimited",
    "Source",
    "TransientError",
    "UsageError",
    "lookup",
    "outcome",
    "retried",
]


def lookup(table: Mapping[type[BaseException], T], exc: BaseException) -> T | None:
    """The entry for the most specific class of ``exc`` that ``table`` names (httpx's rule:
    a subclass's own entry beats its parent's), or None when no class of it is in the table."""
    for cls in type(exc).__mro__:
        if cls in table:
            return table[cls]
    return None


def outcome(error: KarchiveError | None) -> str:
    """The ``outcome`` label of a call that raised ``error`` (None: it succeeded)."""
    if error is None:
        return "ok"
    for cls, label in _OUTCOMES:
        if isinstance(error, cls):
            return label
    return "error"


_OUTCOMES: tuple[tuple[type[KarchiveError], str], ...] = (
    (NotFound, "not_found"),
    (Conflict, "conflict"),
    (InProgress, "in_progress"),
    (RateLimited, "rate_limited"),
    (NetworkError, "network"),
    (TransientError, "transient"),
)


def retried(error: KarchiveError) -> bool:
    """Whether ``error`` already went through an adapter's retries (convention 5): it names its
    source system, or it is a NetworkError, which only adapters raise once their tries are
    spent. The executor retries only transient conditions karchive found itself."""
    return error.source is not None or isinstance(error, NetworkError)
