"""The sandbox's mail server: a real SMTP server on loopback that keeps what it accepts as files.

Owner notices go out over SMTP; in tests, benchmarks and the demo they go here. ``SmtpSink`` runs
aiosmtpd's server in a thread of its own and writes every accepted message as an ``.eml`` file
(RFC 5322 bytes as received, after two ``X-Envelope-From`` / ``X-Envelope-To`` lines saying what
the SMTP envelope held, as ``Return-Path`` / ``Delivered-To`` do in a real mailbox) into its
folder, in the order accepted: ``000001.eml``, ``000002.eml``, … — so a person opens the folder
and reads the mail karchive sent.

It can be told to refuse addresses, as a mail server does for a mailbox that does not exist: an
address listed in the folder's ``refused.txt`` (one a line, any case; read at every RCPT, so
another process can change it while the sink runs) is answered ``550 5.1.1`` at RCPT time — a
bounce at SMTP time, which karchive must tell apart from a server that is down. Optionally it
offers STARTTLS (a given ``ssl.SSLContext``) and requires AUTH LOGIN/PLAIN with one user and
password, as a submission server (port 587) does.

The sandbox talks only SMTP: it imports nothing of karchive.
"""

from __future__ import annotations

import os
import socket
import ssl
import threading
from collections.abc import Iterable
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

REFUSED_FILE = "refused.txt"


class _Keeper:
    """aiosmtpd's handler: refuses listed recipients, stores each accepted message."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._count = len(list(folder.glob("*.eml")))

    def refused(self) -> set[str]:
        try:
            text = (self.folder / REFUSED_FILE).read_text(encoding="utf-8")
        except FileNotFoundError:
            return set()
        return {line.strip().lower() for line in text.splitlines() if line.strip()}

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,  # noqa: N802
                          address: str, rcpt_options: list[str]) -> str:
        if address.strip().lower() in self.refused():
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session,  # noqa: N802
                          envelope: Envelope) -> str:
        content = envelope.original_content or b""
        head = (f"X-Envelope-From: {envelope.mail_from}\r\n"
                f"X-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n").encode()
        with self._lock:
            self._count += 1
            name = f"{self._count:06d}.eml"
        target = self.folder / name
        tmp = self.folder / f".{name}.tmp"
        tmp.write_bytes(head + content)
        os.replace(tmp, target)  # a reader never sees half a message
        return f"250 2.0.0 OK: queued as {name}"


class _Authenticator:
    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user.encode(), password.encode()

    def __call__(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                 auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == self.user
              and auth_data.password == self.password)
        return AuthResult(success=ok, handled=False)


class SmtpSink:
    """``SmtpSink(folder)``, then ``start()``; ``host``/``port`` once started.

    ``tls``: offer STARTTLS with this server context (and then require it before AUTH);
    ``login``: (user, password) that AUTH must give, and then every message needs AUTH.
    """

    def __init__(self, folder: Path | str, *, host: str = "127.0.0.1", port: int = 0,
                 tls: ssl.SSLContext | None = None, login: tuple[str, str] | None = None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.port = port
        self._tls = tls
        self._login = login
        self._controller: Controller | None = None

    def start(self) -> SmtpSink:
        port = self.port or _free_port(self.host)
        options: dict[str, Any] = {}
        if self._tls is not None:
            options.update(tls_context=self._tls, require_starttls=True)
        if self._login is not None:
            options.update(authenticator=_Authenticator(*self._login), auth_required=True,
                           auth_require_tls=self._tls is not None)
        else:
            options.update(auth_require_tls=False)
        # The readiness probe aiosmtpd makes would fail a STARTTLS-only server on some
        # versions; ready_timeout bounds the wait either way.
        controller = Controller(_Keeper(self.folder), hostname=self.host, port=port,
                                ready_timeout=10.0, **options)
        controller.start()
        self._controller, self.port = controller, port
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def refuse(self, addresses: Iterable[str]) -> None:
        """Answer these addresses ``550`` at RCPT from now on (replaces the list)."""
        text = "".join(f"{address.strip()}\n" for address in addresses)
        tmp = self.folder / f".{REFUSED_FILE}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.folder / REFUSED_FILE)

    def files(self) -> list[Path]:
        """The accepted messages' files, oldest first."""
        return sorted(self.folder.glob("[0-9]*.eml"))

    def messages(self) -> list[EmailMessage]:
        """The accepted messages, parsed (``X-Envelope-To`` says who the server delivered to)."""
        return [message_from_bytes(path.read_bytes(), policy=policy.default)  # type: ignore[misc]
                for path in self.files()]

    def env(self) -> dict[str, str]:
        """What a policy's ``notices.smtp`` reads to find this server, and where mail lands."""
        return {"KARCHIVE_SMTP_HOST": self.host, "KARCHIVE_SMTP_PORT": str(self.port),
                "KARCHIVE_MAIL_DIR": str(self.folder)}


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
