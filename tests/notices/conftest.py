"""Fixtures for the notice tests: an SMTP sink (the sandbox's, aiosmtpd on loopback), with or
without STARTTLS and AUTH, and a throwaway certificate for it.

The directory tests' slapd helpers are shared (owner addresses from LDAP ``mail``), and so is
the daemon tests' ``karchive run`` harness: their folders are put on the import path here.
"""

from __future__ import annotations

import ssl
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "directory"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "daemon"))

from slapd import _self_signed_for_loopback  # noqa: E402 - needs the path set above

from sandbox.smtp import SmtpSink  # noqa: E402


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(key, certificate) for 127.0.0.1, self-signed: the certificate is its own CA."""
    folder = tmp_path_factory.mktemp("tls")
    key_pem, cert_pem = _self_signed_for_loopback()
    (folder / "key.pem").write_bytes(key_pem)
    (folder / "cert.pem").write_bytes(cert_pem)
    return folder / "key.pem", folder / "cert.pem"


@pytest.fixture
def make_sink(tmp_path: Path, certificate: tuple[Path, Path]
              ) -> Iterator[Callable[..., SmtpSink]]:
    """``make_sink(tls=False, login=None)``: a started sink; stopped when the test ends."""
    made: list[SmtpSink] = []

    def make(*, tls: bool = False, login: tuple[str, str] | None = None, **kw: Any) -> SmtpSink:
        context = None
        if tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(certificate[1]), str(certificate[0]))
        sink = SmtpSink(tmp_path / f"mail{len(made)}", tls=context, login=login, **kw).start()
        made.append(sink)
        return sink

    yield make
    for sink in made:
        sink.stop()
