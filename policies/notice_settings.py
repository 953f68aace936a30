"""The ``notices:`` section of policy.yaml: telling owners before their videos go cold.

Part of the policy, read by the pure notice core (``policies.notices``: how long the grace
period is, when reminders fall), by the message renderer (``policies.messages``: sender, links,
templates) and by the controller's edges (``controller/adapters/smtp.py``: the SMTP settings;
``controller/runtime/notices.py``: where owner addresses come from; ``controller/runtime/keep.py``:
the keep link's secret, lifetime and public URL). Pure validation; the only I/O is reading the
files the section names (a password file, the keep secret, template overrides), relative to the
policy file's folder, as ``policies.schema`` reads ``admin_secret_file`` and ``id_file``.

Like :class:`policies.directory.DirectorySettings` this module stands beside ``policies.schema``
(which imports it), so its models repeat the schema's two rules themselves: unknown keys are
refused and the models are frozen.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Self

from jinja2 import StrictUndefined, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import (
    BeforeValidator,
    Field,
    PlainSerializer,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from policies.durations import Duration, TimeUnit, parse_duration
from policies.strict import Strict

Span = Annotated[Duration, BeforeValidator(parse_duration), PlainSerializer(str, return_type=str)]

# An HMAC-SHA256 key shorter than its output weakens it (RFC 2104 §3): at least 32 bytes.
MIN_SECRET_BYTES = 32
# "Name <addr@host>" or a bare address: one @, no spaces or angle brackets in the address.
_ADDRESS_RE = re.compile(r"^(?:[^<>]*<)?([^\s<>@]+@[^\s<>@]+\.[^\s<>@]+)>?$")
_URL_RE = re.compile(r"^https?://[^/\s]+")
_LINK_FIELDS = frozenset({"entry_id", "partner_id"})
DEFAULT_ENTRY_URL = "https://kmc.kaltura.com/index.php/kmcng/content/entries/entry/{entry_id}"


def _base_dir(info: ValidationInfo) -> Path:
    return Path((info.context or {}).get("base_dir", "."))


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read {what} {str(path)!r} ({exc.strerror}); give a path "
                         "relative to the policy file") from None
    except UnicodeDecodeError:
        raise ValueError(f"{what} {str(path)!r} is not UTF-8 text; save it as UTF-8") from None


def check_address(value: str) -> str:
    """A mail address, bare or as ``Name <addr>``; ValueError naming the fix otherwise."""
    text = value.strip()
    if not _ADDRESS_RE.match(text) or "\n" in text or "\r" in text:
        raise ValueError(f"{value!r} is not a mail address; write e.g. media@example.edu or "
                         "'Media Team <media@example.edu>'")
    return text


class Security(StrEnum):
    """How the SMTP connection is protected."""

    STARTTLS = "starttls"  # plain connect (port 587), then STARTTLS before anything is sent
    TLS = "tls"  # TLS from the first byte (port 465, "SMTPS")
    NONE = "none"  # no encryption: a relay on the same host or a test sink only


class SmtpSettings(Strict):
    """The mail server that accepts the notices. The password never reaches a log or message."""

    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)  # None: 587, 465 or 25 by security
    security: Security = Security.STARTTLS
    user: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    ca_file: Path | None = None  # the CA that signed the server's certificate (else the system's)
    timeout: float = Field(default=30.0, gt=0, le=600)  # seconds per SMTP command
    retries: int = Field(default=2, ge=0, le=10)  # reconnects before a message is sent

    @field_validator("password_file", "ca_file")
    @classmethod
    def _relative(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        return None if path is None else _base_dir(info) / path

    @model_validator(mode="after")
    def _credentials(self) -> Self:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give smtp password or password_file, not both")
        if self.password_file is not None:
            secret = _read_text(self.password_file, "smtp password_file").rstrip("\r\n")
            object.__setattr__(self, "password", SecretStr(secret))
        if (self.user is None) != (self.password is None):
            raise ValueError("smtp user and password go together; give both or neither")
        if self.user is not None and self.security is Security.NONE:
            raise ValueError("smtp security 'none' would send the password in clear; use "
                             "starttls or tls")
        if self.ca_file is not None and self.security is Security.NONE:
            raise ValueError("smtp ca_file applies to starttls or tls only")
        return self

    @property
    def effective_port(self) -> int:
        """The port to connect to: the one given, else the standard one for ``security``."""
        if self.port is not None:
            return self.port
        return {Security.STARTTLS: 587, Security.TLS: 465, Security.NONE: 25}[self.security]


class AddressSource(StrEnum):
    """Where an owner's mail address comes from."""

    KALTURA = "kaltura"  # the Kaltura user's email (user.list with idIn)
    DIRECTORY = "directory"  # the directory's mail attribute (needs the policy's directory:)


# The templates' Jinja2 environments (``policies.messages`` renders with them): the sandbox,
# every undefined name an error, autoescaping for the HTML one.
TEMPLATE_ENVIRONMENTS = {html: SandboxedEnvironment(autoescape=html, undefined=StrictUndefined,
                                                    keep_trailing_newline=True)
                         for html in (False, True)}


def check_template(text: str, *, html: bool) -> str:
    """``text`` if Jinja2 can compile it; ValueError naming the template's line otherwise."""
    try:
        TEMPLATE_ENVIRONMENTS[html].parse(text)
    except TemplateSyntaxError as exc:
        raise ValueError(f"template line {exc.lineno}: {exc.message}; fix the template") from None
    return text


def _package_template(name: str) -> str:
    # Beside this module (package data): the shipped defaults are part of the package.
    return (Path(__file__).parent / "templates" / name).read_text(encoding="utf-8")


class Templates(Strict):
    """The message: a subject line and a plain-text and an HTML body (Jinja2, see
    ``policies.messages``). Each is the shipped default unless a path overrides it; the files
    are read when the policy is loaded, so a missing file is a policy error, not a failed send."""

    subject: str = "{{ count }} of your videos will be {{ headline }} on {{ first_date }}"
    text: str = Field(default_factory=lambda: _package_template("notice.txt"))
    html: str = Field(default_factory=lambda: _package_template("notice.html"))
    # The "your video is back" message (``notices.tell_restored``).
    back_subject: str = "{{ count }} of your videos {{ 'is' if count == 1 else 'are' }} back " \
                        "in Kaltura"
    back_text: str = Field(default_factory=lambda: _package_template("back.txt"))
    back_html: str = Field(default_factory=lambda: _package_template("back.html"))

    @field_validator("text", "html", "back_text", "back_html", mode="before")
    @classmethod
    def _from_path(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str):
            return value
        return _read_text(_base_dir(info) / value, f"templates.{info.field_name}")

    @field_validator("text", "html", "back_text", "back_html")
    @classmethod
    def _compiles(cls, text: str, info: ValidationInfo) -> str:
        return check_template(text, html=(info.field_name or "").endswith("html"))

    @field_validator("subject", "back_subject")
    @classmethod
    def _one_line(cls, subject: str) -> str:
        if "\n" in subject.strip() or not subject.strip():
            raise ValueError("subject must be one line of text")
        return check_template(subject.strip(), html=False)


class KeepLinks(Strict):
    """The one-click keep link each message carries, and what it does."""

    base_url: str  # where the keep listener is reachable by owners: https://host/keep
    secret_file: Path  # at least 32 bytes; whoever holds it can mint links
    keep_for: Span = Duration(2, TimeUnit.YEAR)  # how long a keep exempts the entries
    link_expiry: Span = Duration(60, TimeUnit.DAY)  # how long a link works after it is sent
    secret: SecretStr = SecretStr("")  # read from secret_file; never written in the policy

    @model_validator(mode="before")
    @classmethod
    def _no_inline_secret(cls, data: Any) -> Any:
        if isinstance(data, dict) and "secret" in data:
            raise ValueError("the keep secret comes from secret_file only; remove 'secret:'")
        return data

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not _URL_RE.match(url):
            raise ValueError(f"{url!r} is not an http(s) URL; e.g. https://karchive.example.edu/"
                             "keep")
        return url.rstrip("/")

    @model_validator(mode="after")
    def _read_secret(self, info: ValidationInfo) -> Self:
        path = _base_dir(info) / self.secret_file
        try:
            raw = path.read_bytes().strip()
        except OSError as exc:
            raise ValueError(f"cannot read keep secret_file {str(path)!r} ({exc.strerror}); "
                             "check the path and its permissions") from None
        if len(raw) < MIN_SECRET_BYTES:
            raise ValueError(f"keep secret_file holds {len(raw)} bytes; use at least "
                             f"{MIN_SECRET_BYTES} random bytes (e.g. openssl rand -hex 32)")
        object.__setattr__(self, "secret_file", path)
        object.__setattr__(self, "secret", SecretStr(raw.decode("utf-8", "surrogateescape")))
        return self


class NoticesSettings(Strict):
    """``notices:``: owners are told ``before`` a swap or a purge, and may keep their videos."""

    before: Span  # the grace period: no swap or purge sooner after the owner's notice
    remind: tuple[Span, ...] = ()  # reminders, each sent when this much of the period remains
    sender: str  # From:
    reply_to: str | None = None  # Reply-To:
    copy_to: str | None = None  # the media team, copied (Cc) on every message
    addresses: AddressSource = AddressSource.KALTURA
    mail_attribute: str = "mail"  # addresses: directory — the attribute holding the address
    entry_url: str = DEFAULT_ENTRY_URL  # link to an entry: {entry_id}, {partner_id}
    smtp: SmtpSettings
    templates: Templates = Field(default_factory=Templates)
    keep: KeepLinks | None = None  # absent: messages say to reply instead of a keep link
    tell_restored: bool = False  # tell owners when a played placeholder came back

    @field_validator("sender", "reply_to", "copy_to")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else check_address(value)

    @field_validator("mail_attribute")
    @classmethod
    def _attribute(cls, name: str) -> str:
        # RFC 4512 §2.5 descriptor: a letter, then letters, digits and hyphens.
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*", name.strip()):
            raise ValueError(f"{name!r} is not an LDAP attribute name; e.g. mail")
        return name.strip()

    @field_validator("entry_url")
    @classmethod
    def _entry_pattern(cls, pattern: str) -> str:
        names = set(re.findall(r"\{([^{}]*)\}", pattern))
        if not _URL_RE.match(pattern) or "{entry_id}" not in pattern:
            raise ValueError(f"{pattern!r} must be an http(s) URL with {{entry_id}} in it, e.g. "
                             f"{DEFAULT_ENTRY_URL}")
        if names - _LINK_FIELDS:
            raise ValueError("entry_url knows only {entry_id} and {partner_id}, not "
                             + ", ".join(f"{{{n}}}" for n in sorted(names - _LINK_FIELDS)))
        return pattern

    @field_validator("before")
    @classmethod
    def _at_least_a_day(cls, span: Duration) -> Duration:
        if span.seconds < 86400:
            raise ValueError(f"before: {span} is less than a day; owners need time to answer "
                             "(e.g. 30d)")
        return span

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        for index, span in enumerate(self.remind):
            if span.seconds >= self.before.seconds:
                raise ValueError(f"remind[{index}]: {span} is not shorter than before ("
                                 f"{self.before}); a reminder falls inside the grace period")
        if len({span.seconds for span in self.remind}) != len(self.remind):
            raise ValueError("remind lists the same reminder twice; keep one")
        if self.keep is not None and self.keep.link_expiry.seconds < self.before.seconds:
            raise ValueError(f"keep.link_expiry ({self.keep.link_expiry}) is shorter than before "
                             f"({self.before}): a link would stop working before the swap")
        # Reminders from the longest to the shortest, so "the latest one passed" is the last.
        object.__setattr__(self, "remind",
                           tuple(sorted(self.remind, key=lambda s: s.seconds, reverse=True)))
        return self
