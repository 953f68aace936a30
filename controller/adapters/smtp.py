"""The one seam to the mail server: owner notices handed over by SMTP, failures translated once.

An edge of the pipeline: the cycle's sending step (``controller/runtime/notices.py``) gives
:meth:`Mailer.send` one rendered message (``policies.messages``) per owner; ``Sent`` means the
server ACCEPTED it (``250`` after DATA) — the moment the notice is recorded, never before
(at-least-once). Settings are the policy's ``notices.smtp`` (``policies.notice_settings``).

One transaction per message, command by command (smtplib's low-level calls rather than
``send_message``, so the owner's RCPT is judged on its own): MAIL FROM the sender, RCPT TO the
owner — a refusal there is the owner's bounce, and nothing is sent — then RCPT TO the media
team's copy (a refusal of the copy is reported on ``Sent``, the owner's message still goes), then
DATA. The connection (STARTTLS or TLS from the first byte, AUTH when a user is set, certificates
always verified) is opened on the first message and reused for the cycle's next ones.

Errors are translated here, in :data:`ERRORS` and :func:`translate`, into the tree of
``controller.errors``, every one with ``source=Source.SMTP``:

- the owner's address refused with 5xx at RCPT → :class:`RecipientRefused` (a PermanentError for
  that address only: the owner's entries are held, other owners are still sent to);
- 4xx anywhere (greylisting, a full queue, "try again later") → TransientError;
- refused sender, failed AUTH, no STARTTLS offered, an untrusted certificate, 5xx on DATA →
  PermanentError (the settings or the message need fixing; retrying will not help);
- the server unreachable, silent, or dropping the connection → NetworkError, worded by
  ``controller/adapters/network.py`` (endpoint, call, what to check).

One retry level, here: a NetworkError or TransientError met while connecting or before DATA is
retried on a new connection up to ``smtp.retries`` times with a doubling pause (nothing was sent,
so a retry cannot duplicate a message); a failure during or after DATA is not retried — the
server may have accepted the message, so the next cycle sends it again, at most one duplicate,
which its ``X-Karchive-Notice`` header makes recognisable. A 4xx on the owner's RCPT is not
retried within the cycle either (greylisting asks for minutes). Nothing above this adapter
retries what it raises. Every command sent is counted through the metrics sink as
``smtp_call(operation, outcome)``, operations ``connect``, ``starttls``, ``login``, ``send``
(MAIL + RCPT + DATA), ``quit``. The password never appears in a message, a log or a metric.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Protocol, TypeVar

from controller.adapters import network as netfail
from controller.errors import (
    KarchiveError,
    NetworkError,
    PermanentError,
    Source,
    TransientError,
    lookup,
    outcome,
)
from policies.notice_settings import Security, SmtpSettings

T = TypeVar("T")
_BACKOFF_BASE = 1.0  # seconds before the first reconnect; doubled each time
_SETTING = "notices.smtp.host and notices.smtp.port"


class SmtpMetrics(Protocol):
    def smtp_call(self, operation: str, outcome: str) -> None: ...


class NoSmtpMetrics:
    def smtp_call(self, operation: str, outcome: str) -> None:
        return None


class RecipientRefused(PermanentError):
    """The server refused the owner's address at RCPT time (5xx): a bounce, for this address
    only. ``address`` and ``code`` say which and how."""

    def __init__(self, message: str, *, address: str, code: int) -> None:
        super().__init__(message, source=Source.SMTP)
        self.address = address
        self.code = code


@dataclass(frozen=True, slots=True)
class Sent:
    """The server accepted the message (its DATA reply) for the owner."""

    reply: str
    copy_refused: str | None = None  # the media team's address, if the server refused it


# Low-level exception → what it means, the most specific class first (``lookup``): a reply code
# refines the answer where the server gave one (:func:`translate`).
ERRORS: dict[type[BaseException], type[KarchiveError]] = {
    smtplib.SMTPAuthenticationError: PermanentError,
    smtplib.SMTPNotSupportedError: PermanentError,
    smtplib.SMTPSenderRefused: PermanentError,
    smtplib.SMTPRecipientsRefused: PermanentError,
    smtplib.SMTPDataError: PermanentError,
    smtplib.SMTPHeloError: TransientError,
    smtplib.SMTPResponseException: PermanentError,
    smtplib.SMTPServerDisconnected: NetworkError,
    smtplib.SMTPConnectError: NetworkError,
    smtplib.SMTPException: PermanentError,
    ssl.SSLCertVerificationError: PermanentError,
    ssl.SSLError: NetworkError,
    OSError: NetworkError,  # refused, unreachable, timed out, reset (socket.timeout is one)
}
_ADVICE: dict[type[BaseException], str] = {
    smtplib.SMTPAuthenticationError: "check notices.smtp.user and the password",
    smtplib.SMTPNotSupportedError: "the server does not offer STARTTLS: use security: tls, or "
                                   "a submission server that offers it",
    smtplib.SMTPSenderRefused: "check notices.sender: the server will not send as that address",
    ssl.SSLCertVerificationError: "set notices.smtp.ca_file to the CA that signed the server's "
                                  "certificate, or check notices.smtp.host",
}


def translate(exc: BaseException, operation: str, endpoint: str, secret: str = ""
              ) -> KarchiveError:
    """``exc`` (from smtplib, ssl or a socket) as karchive's error, with ``source`` smtp."""
    kind = lookup(ERRORS, exc) or PermanentError
    code = getattr(exc, "smtp_code", None)
    reply = getattr(exc, "smtp_error", b"")
    said = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    if isinstance(code, int) and 400 <= code < 500:
        kind = TransientError  # the server's own "try again later"
    if kind is NetworkError:
        failure = netfail.diagnose(exc) or netfail.Failure.RESET
        text = netfail.describe("the mail server", endpoint, operation, failure,
                                setting=_SETTING)
    else:
        advice = next((a for cls, a in _ADVICE.items() if isinstance(exc, cls)), "")
        head = f"the mail server at {endpoint} refused {operation}"
        detail = f" ({code} {said.strip()})" if code else f" ({type(exc).__name__}: {exc})"
        text = head + detail + (f"; {advice}" if advice else "")
    if secret:
        text = text.replace(secret, "***")
    return kind(" ".join(text.split()), source=Source.SMTP)


class Mailer:
    """Sends owner notices through the policy's SMTP server. Not thread-safe: one per cycle."""

    def __init__(self, settings: SmtpSettings, *, metrics: SmtpMetrics | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.endpoint = f"smtp://{settings.host}:{settings.effective_port}"
        self._metrics = metrics or NoSmtpMetrics()
        self._sleep = sleep
        self._secret = settings.password.get_secret_value() if settings.password else ""
        self._conn: smtplib.SMTP | None = None

    # -- the one entry point -------------------------------------------------------------------

    def send(self, message: EmailMessage, to: str, copy_to: str | None = None) -> Sent:
        """Hand ``message`` to the server for ``to`` (and the copy); Sent once it is accepted."""
        sender = parseaddr(str(message["From"]))[1]
        data = message.as_bytes(policy=email_policy.SMTP)
        attempt = 0
        while True:
            try:
                conn = self._connection()
                copy_refused = self._envelope(conn, sender, to, copy_to)
                break
            except NetworkError:
                # Nothing was sent yet: a new connection cannot duplicate the message.
                self._drop()
                if attempt >= self.settings.retries:
                    raise
                self._sleep(_BACKOFF_BASE * 2**attempt)
                attempt += 1
            except KarchiveError:
                self._drop()  # a refusal or a 4xx: the connection may be mid-transaction
                raise
        code, reply = self._step("send", lambda: conn.data(data), after_data=True)
        return Sent(f"{code} {reply.decode('utf-8', 'replace')}".strip(), copy_refused)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            self._step("quit", conn.quit)
        except KarchiveError:
            conn.close()  # already gone: nothing to say goodbye to

    def __enter__(self) -> Mailer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the network seam: every smtplib call and exception is here ----------------------------

    def _step(self, operation: str, fn: Callable[[], T], *, after_data: bool = False) -> T:
        try:
            with netfail.watch.call(f"the mail server {self.endpoint} ({operation})",
                                    self.settings.timeout):
                result = fn()
        except KarchiveError as error:  # already karchive's (a refused owner)
            self._metrics.smtp_call(operation, outcome(error))
            raise
        except (smtplib.SMTPException, OSError) as exc:
            translated = translate(exc, operation, self.endpoint, self._secret)
            self._metrics.smtp_call(operation, outcome(translated))
            if after_data:
                self._drop()
            raise translated from exc
        self._metrics.smtp_call(operation, "ok")
        return result

    def _connection(self) -> smtplib.SMTP:
        if self._conn is not None:
            return self._conn
        s = self.settings
        context = ssl.create_default_context(cafile=str(s.ca_file) if s.ca_file else None)
        host, port, timeout = s.host, s.effective_port, s.timeout

        def connect() -> smtplib.SMTP:
            if s.security is Security.TLS:
                return smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
            return smtplib.SMTP(host, port, timeout=timeout)

        conn = self._step("connect", connect)
        self._conn = conn
        if s.security is Security.STARTTLS:
            self._step("starttls", lambda: (conn.ehlo(), conn.starttls(context=context)))
        if s.user is not None:
            user = s.user
            self._step("login", lambda: conn.login(user, self._secret))
        return conn

    def _envelope(self, conn: smtplib.SMTP, sender: str, to: str,
                  copy_to: str | None) -> str | None:
        """MAIL and RCPTs; the owner's refusal raises, the copy's is returned."""

        def open_envelope() -> str | None:
            conn.ehlo_or_helo_if_needed()
            code, reply = conn.mail(sender)
            if code != 250:
                conn.rset()
                raise smtplib.SMTPSenderRefused(code, reply, sender)
            code, reply = conn.rcpt(to)
            if code not in (250, 251):
                conn.rset()
                raise self._refusal(to, code, reply)
            if copy_to:
                copy_code, _ = conn.rcpt(copy_to)
                if copy_code not in (250, 251):
                    return copy_to
            return None

        return self._step("send", open_envelope)

    def _refusal(self, address: str, code: int, reply: bytes) -> KarchiveError:
        """The owner's RCPT refused: a bounce (5xx) or the server's "later" (4xx)."""
        said = " ".join(reply.decode("utf-8", "replace").split())
        where = f"the mail server at {self.endpoint}"
        if 400 <= code < 500:
            return TransientError(f"{where} deferred the address {address} ({code} {said}); "
                                  "the next cycle tries again", source=Source.SMTP)
        return RecipientRefused(f"{where} refused the address {address} ({code} {said}); "
                                "the owner's address needs fixing in Kaltura or the directory",
                                address=address, code=code)

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()

