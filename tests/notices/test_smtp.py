"""The SMTP adapter (controller/adapters/smtp.py) against real SMTP servers on loopback: the
sandbox's sink (aiosmtpd) with STARTTLS, TLS and AUTH, a refused recipient, a 4xx, a server that
drops the connection and one that is not there."""

from __future__ import annotations

import smtplib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from controller.adapters.smtp import ERRORS, Mailer, RecipientRefused, translate
from controller.errors import NetworkError, PermanentError, Source, TransientError
from policies.notice_settings import SmtpSettings
from sandbox.smtp import SmtpSink, _Keeper


class Calls:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def smtp_call(self, operation: str, outcome: str) -> None:
        self.seen.append((operation, outcome))


def message(to: str = "ann@example.edu") -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = "Media Team <media@example.edu>"
    mail["To"] = to
    mail["Subject"] = "Vidéos"
    mail.set_content("Hello Ann, ünïcode body\n.\n..a line starting with dots\n",
                     cte="quoted-printable")
    return mail


def settings(sink_or_port: SmtpSink | int, **kw: Any) -> SmtpSettings:
    port = sink_or_port if isinstance(sink_or_port, int) else sink_or_port.port
    values: dict[str, Any] = {"host": "127.0.0.1", "port": port, "security": "none",
                              "timeout": 5, **kw}
    return SmtpSettings.model_validate(values)


def test_a_message_is_accepted_and_kept_by_the_sink(make_sink: Callable[..., SmtpSink]) -> None:
    sink = make_sink()
    calls = Calls()
    with Mailer(settings(sink), metrics=calls) as mailer:
        sent = mailer.send(message(), "ann@example.edu", "team@example.edu")
        mailer.send(message("bob@example.edu"), "bob@example.edu")
    assert sent.reply.startswith("250") and sent.copy_refused is None
    first, second = sink.messages()
    assert first["X-Envelope-To"] == "ann@example.edu, team@example.edu"
    assert first["X-Envelope-From"] == "media@example.edu"
    assert first["Subject"] == "Vidéos"
    assert "..a line starting with dots" in first.get_content()
    assert second["X-Envelope-To"] == "bob@example.edu"
    # One connection for both messages; every command counted.
    assert calls.seen == [("connect", "ok"), ("send", "ok"), ("send", "ok"), ("send", "ok"),
                          ("send", "ok"), ("quit", "ok")]


def test_starttls_and_auth_with_a_verified_certificate(
        make_sink: Callable[..., SmtpSink], certificate: tuple[Path, Path]) -> None:
    sink = make_sink(tls=True, login=("karchive", "p4ss-w0rd"))
    good = settings(sink, security="starttls", user="karchive", password="p4ss-w0rd",
                    ca_file=str(certificate[1]))
    with Mailer(good) as mailer:
        mailer.send(message(), "ann@example.edu")
    assert len(sink.messages()) == 1

    wrong = settings(sink, security="starttls", user="karchive", password="nope-nope",
                     ca_file=str(certificate[1]))
    with pytest.raises(PermanentError) as refused, Mailer(wrong) as mailer:
        mailer.send(message(), "ann@example.edu")
    assert refused.value.source is Source.SMTP and "nope-nope" not in str(refused.value)
    assert "check notices.smtp.user and the password" in str(refused.value)

    untrusted = settings(sink, security="starttls", user="karchive", password="p4ss-w0rd")
    with pytest.raises(PermanentError, match="set notices.smtp.ca_file"), Mailer(untrusted) as m:
        m.send(message(), "ann@example.edu")
    assert len(sink.messages()) == 1


def test_starttls_is_required_when_asked_for(make_sink: Callable[..., SmtpSink]) -> None:
    plain = make_sink()  # offers no STARTTLS
    with pytest.raises(PermanentError, match="does not offer STARTTLS"), \
            Mailer(settings(plain, security="starttls")) as mailer:
        mailer.send(message(), "ann@example.edu")
    assert plain.messages() == []


def test_tls_from_the_first_byte(certificate: tuple[Path, Path], tmp_path: Path) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certificate[1]), str(certificate[0]))
    keeper = SmtpSink(tmp_path / "tls")
    port = _free_port()
    server = Controller(_Keeper(keeper.folder), hostname="127.0.0.1", port=port,
                        ssl_context=context, ready_timeout=10)
    server.start()
    try:
        with Mailer(settings(port, security="tls", ca_file=str(certificate[1]))) as mailer:
            mailer.send(message(), "ann@example.edu")
    finally:
        server.stop()
    assert len(keeper.messages()) == 1


def test_a_refused_owner_is_a_bounce_and_the_next_owner_still_gets_mail(
        make_sink: Callable[..., SmtpSink]) -> None:
    sink = make_sink()
    sink.refuse(["Gone@Example.edu"])
    calls = Calls()
    with Mailer(settings(sink), metrics=calls) as mailer:
        with pytest.raises(RecipientRefused) as bounced:
            mailer.send(message("gone@example.edu"), "gone@example.edu", "team@example.edu")
        sent = mailer.send(message(), "ann@example.edu")
    assert bounced.value.address == "gone@example.edu" and bounced.value.code == 550
    assert bounced.value.source is Source.SMTP
    assert "refused the address gone@example.edu (550" in str(bounced.value)
    assert sent.reply.startswith("250")
    # The refused owner's message went to nobody, not even the copy.
    assert [m["X-Envelope-To"] for m in sink.messages()] == ["ann@example.edu"]
    assert ("send", "error") in calls.seen


def test_a_refused_copy_does_not_stop_the_owners_message(
        make_sink: Callable[..., SmtpSink]) -> None:
    sink = make_sink()
    sink.refuse(["team@example.edu"])
    with Mailer(settings(sink)) as mailer:
        sent = mailer.send(message(), "ann@example.edu", "team@example.edu")
    assert sent.copy_refused == "team@example.edu"
    assert [m["X-Envelope-To"] for m in sink.messages()] == ["ann@example.edu"]


class ScriptedServer:
    """A TCP server on loopback that speaks a few SMTP lines and then does as scripted:
    ``drop_after`` commands it closes the connection; ``rcpt_reply`` answers RCPT."""

    def __init__(self, *, drop_after: int | None = None, rcpt_reply: bytes = b"250 OK") -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.drop_after = drop_after
        self.rcpt_reply = rcpt_reply
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.sendall(b"220 scripted ESMTP\r\n")
                reader = conn.makefile("rb")
                for count, line in enumerate(reader, start=1):
                    if self.drop_after is not None and count > self.drop_after:
                        break
                    verb = line[:4].upper()
                    if verb in (b"EHLO", b"HELO"):
                        conn.sendall(b"250 scripted\r\n")
                    elif verb == b"RCPT":
                        conn.sendall(self.rcpt_reply + b"\r\n")
                    elif verb == b"QUIT":
                        conn.sendall(b"221 bye\r\n")
                        break
                    else:
                        conn.sendall(b"250 OK\r\n")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedServer]]:
    made: list[ScriptedServer] = []

    def make(**kw: Any) -> ScriptedServer:
        made.append(ScriptedServer(**kw))
        return made[-1]

    yield make
    for server in made:
        server.close()


def test_a_server_that_drops_the_connection_is_retried_then_a_network_error(
        scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(drop_after=1)  # answers EHLO, then hangs up on MAIL
    slept: list[float] = []
    with pytest.raises(NetworkError) as down, \
            Mailer(settings(server.port, retries=2), sleep=slept.append) as mailer:
        mailer.send(message(), "ann@example.edu")
    assert down.value.source is Source.SMTP
    assert server.connections == 3 and slept == [1.0, 2.0]
    assert "\n" not in str(down.value) and f"127.0.0.1:{server.port}" in str(down.value)


def test_a_greylisting_4xx_is_transient_and_not_retried_in_the_cycle(
        scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(rcpt_reply=b"450 4.2.0 greylisted, try again later")
    with pytest.raises(TransientError) as later, \
            Mailer(settings(server.port, retries=2), sleep=lambda _: None) as mailer:
        mailer.send(message(), "ann@example.edu")
    assert not isinstance(later.value, NetworkError | RecipientRefused)
    assert later.value.source is Source.SMTP and server.connections == 1


def test_no_server_is_a_network_error_naming_the_setting() -> None:
    port = _free_port()  # nothing listens there
    with pytest.raises(NetworkError, match="refused the connection.*notices.smtp.host") as down, \
            Mailer(settings(port, retries=1), sleep=lambda _: None) as mailer:
        mailer.send(message(), "ann@example.edu")
    assert down.value.source is Source.SMTP


def test_no_smtplib_error_escapes_the_table() -> None:
    classes = [getattr(smtplib, name) for name in dir(smtplib)
               if isinstance(getattr(smtplib, name), type)
               and issubclass(getattr(smtplib, name), Exception)]
    assert classes
    for cls in classes:
        assert any(issubclass(cls, known) for known in ERRORS), cls
        error = translate(_instance(cls), "send", "smtp://h:25", "hunter2")
        assert error.source is Source.SMTP and "\n" not in str(error)


def _instance(cls: type[Exception]) -> Exception:
    for args in ((451, b"later"), ({"a@b": (550, b"no")},), (550, b"no", "a@b"), ("x",), ()):
        try:
            return cls(*args)
        except TypeError:
            continue
    raise AssertionError(cls)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
