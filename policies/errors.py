"""karchive's own error tree. Adapters translate library failures into it, at the edge, once.

    KarchiveError             .source: which outside system said so (None: karchive's own finding)
    ├── UsageError            bad input from the user (policy, flags, plan file): exit 1, one line
    ├── TransientError        worth retrying after ``delay`` seconds (network, 5xx, throttling)
    │   ├── RateLimited       Kaltura answered ACTION_BLOCKED: pace, then retry
    │   └── NetworkError      unreachable or silent after the adapter's own retries: not
    │                         retried again above it (the entry backs off instead)
    └── PermanentError        retrying will not help: report it and move on
        ├── NotFound          the object is not there (an answer, not a failure)
        ├── Conflict          someone else wrote first (S3 412 PreconditionFailed, 409
        │                     ConditionalRequestConflict; Kaltura's replacement already exists)
        ├── InProgress        what was asked is already under way (S3 409
        │                     RestoreAlreadyInProgress): an answer, not a failure
        └── IntegrityError    bytes or metadata do not match what was expected: never act on it

Retry behaviour is carried by the type (kopf's TemporaryError / PermanentError): callers catch
``TransientError`` to back off and ``PermanentError`` to report, and never inspect messages or
``__cause__``. Which system failed is carried by ``source`` (a :class:`Source`), set by the
adapter that translated the failure; an error with a source has already been retried by that
adapter as much as it ever will be (``controller/errors.py`` states the conventions).
Messages never contain secrets (a KS, a password, a presigned URL's signature).

The tree lives here, in the lowest layer, so that reconcilers (which may not import the
controller) raise and catch the same types the adapters translate into.
"""

from __future__ import annotations

from enum import StrEnum


class Source(StrEnum):
    """The outside systems karchive talks to; one adapter each (``controller/adapters/``)."""

    KALTURA = "kaltura"  # the API, and downloads from Kaltura's serve URLs
    S3 = "s3"  # the bucket, its lease included
    DIRECTORY = "directory"  # the archive in a local or mounted folder (storage.url)
    LDAP = "ldap"  # the owners' directory
    SMTP = "smtp"  # the mail server owner notices go through


class KarchiveError(Exception):
    """Base of every error karchive raises on purpose."""

    def __init__(self, message: str = "", *, source: Source | None = None) -> None:
        super().__init__(message)
        self.source = source


class UsageError(KarchiveError):
    """The user's input is wrong; the message names the problem and the fix."""


class TransientError(KarchiveError):
    """A failure that may pass: retry after ``delay`` seconds (None: caller's backoff decides)."""

    def __init__(self, message: str = "", *, delay: float | None = None,
                 source: Source | None = None) -> None:
        super().__init__(message, source=source)
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


class InProgress(PermanentError):
    """What was asked for is already being done (a Glacier restore requested earlier)."""


class IntegrityError(PermanentError):
    """Content or metadata differ from what was recorded or expected."""
