"""A real OpenLDAP server on loopback, for the directory tests and bench/ldap_bench.py.

Writes a temporary ``slapd.conf`` (mdb backend, a tiny schema for Princeton's ``puresource``
attribute so the default active filter works unchanged), loads people with ``slapadd`` while the
server is down, then runs ``/usr/sbin/slapd`` in the foreground on 127.0.0.1 and a free port. The
same instance can be stopped and started again on the same port, which is how the tests drop the
connection under a live adapter. Needs the Debian packages ``slapd`` and ``ldap-utils``
(``.ci/run`` installs them).
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ldap3.utils.dn import escape_rdn

SLAPD = os.environ.get("KARCHIVE_SLAPD", "/usr/sbin/slapd")
SLAPADD = os.environ.get("KARCHIVE_SLAPADD", "/usr/sbin/slapadd")
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")  # Debian builds back_mdb as a loadable module

SUFFIX = "o=example university,c=us"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "s3cret-not-for-logs"  # noqa: S105 - a throwaway test server's password
PEOPLE = f"ou=people,{SUFFIX}"

# OID arc 1.3.6.1.4.1.32473 is IANA's example enterprise number (RFC 5612), for documentation.
PURESOURCE_SCHEMA = """\
attributetype ( 1.3.6.1.4.1.32473.1.1.1 NAME 'puresource'
  DESC 'Account state, as in Princeton directory: authentication=enabled|goingaway|disabled'
  EQUALITY caseIgnoreMatch
  SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
objectclass ( 1.3.6.1.4.1.32473.1.2.1 NAME 'puPerson'
  DESC 'Carries puresource beside inetOrgPerson'
  SUP top AUXILIARY MAY ( puresource ) )
"""

ENABLED = "authentication=enabled"
GOING_AWAY = "authentication=goingaway"
DISABLED = "authentication=disabled"


@dataclass(frozen=True, slots=True)
class Person:
    """One person to load. ``display_name=None`` leaves the attribute out (cn only)."""

    uid: str
    cn: str
    display_name: str | None = None
    ou: str | None = None
    puresource: str | None = ENABLED


def people_ldif(people: Iterable[Person]) -> str:
    """The suffix, ou=people and one inetOrgPerson+puPerson entry per person, as LDIF."""
    blocks = [
        _entry(SUFFIX, [("objectClass", "organization"), ("o", "example university")]),
        _entry(PEOPLE, [("objectClass", "organizationalUnit"), ("ou", "people")]),
    ]
    for person in people:
        attrs = [
            ("objectClass", "inetOrgPerson"),
            ("objectClass", "puPerson"),
            ("uid", person.uid),
            ("cn", person.cn),
            ("sn", person.cn.split()[-1]),
        ]
        if person.display_name is not None:
            attrs.append(("displayName", person.display_name))
        if person.ou is not None:
            attrs.append(("ou", person.ou))
        if person.puresource is not None:
            attrs.append(("puresource", person.puresource))
        blocks.append(_entry(f"uid={escape_rdn(person.uid)},{PEOPLE}", attrs))
    return "\n".join(blocks)


def _entry(dn: str, attrs: list[tuple[str, str]]) -> str:
    lines = [_line("dn", dn)] + [_line(name, value) for name, value in attrs]
    return "\n".join(lines) + "\n"


def _line(name: str, value: str) -> str:
    # RFC 2849: a value that is not a SAFE-STRING (non-ASCII, or a leading space, colon or '<')
    # is written base64 after '::'.
    safe = value.isascii() and value[:1] not in (" ", ":", "<") and "\n" not in value
    if safe:
        return f"{name}: {value}"
    return f"{name}:: {base64.b64encode(value.encode()).decode()}"


class Slapd:
    """A slapd in a temporary directory. Use as a context manager, or start() / stop()."""

    def __init__(
        self, people: Iterable[Person], *, workdir: Path | None = None, tls: bool = False
    ) -> None:
        self._own_dir = workdir is None
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="karchive-slapd-"))
        self.port = 0
        self.tls = tls
        self.ca_file = self.dir / "cert.pem"  # self-signed: the certificate is its own CA
        self._proc: subprocess.Popen[bytes] | None = None
        self._configure(people)

    @property
    def url(self) -> str:
        return f"{'ldaps' if self.tls else 'ldap'}://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _configure(self, people: Iterable[Person]) -> None:
        for tool in (SLAPD, SLAPADD):
            if not os.access(tool, os.X_OK):  # a clear error, never a skip
                raise RuntimeError(f"{tool} missing: apt-get install slapd ldap-utils")
        (self.dir / "db").mkdir(parents=True, exist_ok=True)
        (self.dir / "puresource.schema").write_text(PURESOURCE_SCHEMA)
        includes = [SCHEMA_DIR / f"{name}.schema" for name in ("core", "cosine", "inetorgperson")]
        includes.append(self.dir / "puresource.schema")
        conf = [f"include {path}" for path in includes]
        conf += [
            f"pidfile {self.dir / 'slapd.pid'}",
            f"argsfile {self.dir / 'slapd.args'}",
            *(self._tls_conf() if self.tls else []),
            f"modulepath {MODULE_DIR}",
            "moduleload back_mdb",
            "database mdb",
            f'suffix "{SUFFIX}"',
            f'rootdn "{ROOT_DN}"',
            f"rootpw {ROOT_PASSWORD}",
            f"directory {self.dir / 'db'}",
            "maxsize 268435456",
            "index objectClass eq",
            "index uid eq",
            "index puresource eq",
        ]
        self.conf = self.dir / "slapd.conf"
        self.conf.write_text("\n".join(conf) + "\n")
        ldif = self.dir / "people.ldif"
        ldif.write_text(people_ldif(people), encoding="utf-8")
        # -q: quick mode, fewer consistency checks; fine for a database built from scratch.
        _run([SLAPADD, "-q", "-f", str(self.conf), "-l", str(ldif)])

    def _tls_conf(self) -> list[str]:
        key = self.dir / "key.pem"
        key_pem, cert_pem = _self_signed_for_loopback()
        key.write_bytes(key_pem)
        self.ca_file.write_bytes(cert_pem)
        return [f"TLSCertificateFile {self.ca_file}", f"TLSCertificateKeyFile {key}"]

    def start(self) -> None:
        """Start on the previous port (a restart) or on a free one (first start)."""
        if self.running:
            return
        attempts = 1 if self.port else 5
        for _ in range(attempts):
            port = self.port or _free_port()
            log = open(self.dir / "slapd.log", "ab")  # noqa: SIM115 - lives as long as the process
            # -d 0: stay in the foreground (no fork) so the process is ours to stop; no debug.
            proc = subprocess.Popen(
                [SLAPD, "-f", str(self.conf), "-h", f"{self.url.split(':')[0]}://127.0.0.1:{port}/",
                 "-d", "0"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            log.close()
            if _wait_listening(proc, port):
                self._proc, self.port = proc, port
                return
            proc.kill()
            proc.wait()
        tail = (self.dir / "slapd.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"slapd did not start; its log ends with:\n{tail}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()  # SIGTERM: slapd shuts down cleanly and closes every connection
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Slapd:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _self_signed_for_loopback() -> tuple[bytes, bytes]:
    """A key and a self-signed certificate for IP 127.0.0.1 (cryptography comes with moto)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr.strip()}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(proc: subprocess.Popen[bytes], port: int, limit: float = 15.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False  # exited: the port was taken, or the configuration is wrong
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False
