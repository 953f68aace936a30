"""karchive's own error tree. Adapters translate library failures into it, at the edge, once.

    KarchiveError
    ├── UsageError            bad input from the user (policy, flags, plan file): exit 1, one line
    ├── TransientError        worth retrying after ``delay`` seconds (network, 5xx, throttling)
    │   ├── RateLimited       Kaltura answered ACTION_BLOCKED: pace, then retry
    │   └── NetworkError      unreachable or silent after the adapter's own retries: not
    │                         retried again above it (the entry backs off instead)
    └── PermanentError        retrying will not help: report it and move on
        ├── NotFound          the object is not there (an answer, not a failure)
        ├── Conflict          someone else wrote first (a lost IfNoneMatch / IfMatch)
        └── IntegrityError    bytes or metadata do not match what was expected: never act on it

Retry behaviour is carried by the type (kopf's TemporaryError / PermanentError): callers catch
``TransientError`` to back off and ``PermanentError`` to report, and never inspect messages.
Messages never contain secrets (a KS, a password, a presigned URL's signature).
"""

from __future__ import annotations


class KarchiveError(Exception):
    """Base of every error karchive raises on purpose."""


class UsageError(KarchiveError):
    """The user's input is wrong; the message names the problem and the fix."""


class TransientError(KarchiveError):
    """A failure that may pass: retry after ``delay`` seconds (None: caller's backoff decides)."""

    def __init__(self, message: str, *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class RateLimited(TransientError):
    """Kaltura refused the call with ACTION_BLOCKED; the pacer slows that action class down."""


class NetworkError(TransientError):
    """Kaltura, S3 or LDAP could not be reached or did not answer, and the adapter that met it
    has already retried; the message names the endpoint and what to check."""


class PermanentError(KarchiveError):
    """A failure that retrying will not fix."""


class NotFound(PermanentError):
    """The object asked for does not exist."""


class Conflict(PermanentError):
    """A concurrent writer got there first."""


class IntegrityError(PermanentError):
    """Content or metadata differ from what was recorded or expected."""
