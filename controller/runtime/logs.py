"""Logging for every karchive command: human or JSON lines, the entry id as a field, no secrets.

Code logs with the standard library and passes structured facts as ``extra``::

    log.info("archived", extra={"entry_id": "0_abc", "action": "archive", "bytes": 123})

or through :func:`for_entry`, which binds the entry id once. :func:`configure` installs one
handler on the root logger with a :class:`SecretFilter` and either :class:`HumanFormatter`
(``message  entry_id=0_abc action=archive``) or :class:`JsonFormatter` (one JSON object a line,
the extras as top-level keys), so a log pipeline can filter on ``entry_id`` without parsing text.

The filter is the last line of defence for design.md's "secrets never in logs": it replaces any
value registered with :meth:`SecretFilter.add` (the admin secret, the AWS secret key) and the
shapes secrets take on the wire (a ``ks=`` parameter, a presigned URL's signature, an
``Authorization`` header) before a record is formatted, exception text included.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import traceback
from collections.abc import Iterable, Mapping, MutableMapping
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

LogFormat = Literal["human", "json"]
REDACTED = "***"

# The attributes every LogRecord has; anything else on a record came in through ``extra``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName",
}  # fmt: skip

# Secret shapes: KS in query strings and JSON/form bodies; SigV4 presigned URL parts;
# HTTP authorization headers; AWS secret keys in KEY=VALUE text.
_PATTERNS = (
    re.compile(r"(?i)(\bks[\"']?\s*[=:]\s*[\"']?)[A-Za-z0-9+/=_\-|.]{16,}"),
    re.compile(r"(?i)(X-Amz-(?:Signature|Credential|Security-Token)=)[^&\s\"']+"),
    re.compile(r"(?i)(\bAuthorization[\"']?\s*[:=]\s*[\"']?)[^\"'\n]+"),
    re.compile(r"(?i)((?:secret|password|admin_secret|aws_secret_access_key)[\"']?\s*[=:]\s*"
               r"[\"']?)[^\s\"',}]+"),
)


class SecretFilter(logging.Filter):
    """Rewrites each record's message (and exception text) with secrets replaced by ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """Register one secret value; too short a value would scrub ordinary words, so skip it."""
        if secret and len(secret) >= 6:
            with self._lock:
                # Longest first, so a secret that contains another is replaced whole.
                self._secrets = tuple(sorted({*self._secrets, secret}, key=len, reverse=True))

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.scrub(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
            record.exc_info = None  # the formatter must not render the raw exception again
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, self.scrub(value))
        return True


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class HumanFormatter(logging.Formatter):
    """``2024-05-01 12:00:00 INFO  controller.runtime.daemon  cycle done  entry_id=0_abc``."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%d %H:%M:%S")
        line = f"{when} {record.levelname:<7} {record.name}  {record.getMessage()}"
        fields = _extras(record)
        if fields:
            line += "  " + " ".join(f"{k}={_plain(v)}" for k, v in fields.items())
        if record.exc_text:
            line += "\n" + record.exc_text
        return line


def _plain(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if (" " in text or not text) else text


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, then every extra field."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _extras(record).items():
            document.setdefault(key, value)
        if record.exc_text:
            document["exception"] = record.exc_text
        return json.dumps(document, default=str, ensure_ascii=False)


class _EntryAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


def for_entry(logger: logging.Logger, entry_id: str, **fields: Any) -> logging.LoggerAdapter:  # type: ignore[type-arg]
    """A logger that adds ``entry_id`` (and ``fields``) to every record it emits."""
    return _EntryAdapter(logger, {"entry_id": entry_id, **fields})


_installed: tuple[logging.Handler, SecretFilter] | None = None


def configure(
    fmt: LogFormat = "human",
    *,
    level: int | str = logging.INFO,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> SecretFilter:
    """Install karchive's handler on the root logger (replacing a previous one); return its
    filter so the caller can register secrets it learns later (e.g. from a reloaded policy)."""
    global _installed
    root = logging.getLogger()
    if _installed is not None:
        root.removeHandler(_installed[0])
    handler = logging.StreamHandler(stream or sys.stderr)
    scrubber = SecretFilter(secrets)
    handler.addFilter(scrubber)
    handler.setFormatter(JsonFormatter() if fmt == "json" else HumanFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    # Libraries that log request bodies or URLs at DEBUG stay quiet unless asked for.
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "apscheduler"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # APScheduler warns each time a cycle outlasts its interval; the daemon says so itself.
    logging.getLogger("apscheduler.scheduler").setLevel(max(logging.ERROR, root.level))
    _installed = (handler, scrubber)
    return scrubber


def secrets_from_env(environ: Mapping[str, str]) -> list[str]:
    """The secret values a process environment holds, to register with the filter."""
    names = ("KALTURA_ADMIN_SECRET", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
             "LDAP_PASSWORD", "KARCHIVE_LDAP_PASSWORD")
    return [environ[n] for n in names if environ.get(n)]
