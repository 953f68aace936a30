"""Kaltura, S3 and LDAP that cannot be reached or never answer: a plan fails soon, in one line
naming the endpoint and what to check, and says meanwhile that it is waiting.

Real sockets only: a server that accepts connections and never answers (a thread holding them
open), a port nobody listens on, and an address with no route — the last one from inside a
network namespace of its own (``unshare -rn``), where nothing but a down loopback exists, so
no packet ever leaves the machine.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.adapters.ldap import Directory, DirectoryError
from policies.directory import DirectorySettings

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 60  # seconds: the acceptance bound for a plan against a silent server

POLICY = """\
version: 1
kaltura:
  service_url: {kaltura}
  partner_id: 100
  admin_secret: not-a-real-secret-1234
storage:
{storage}
rules: []
"""


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose server accepts every connection and never sends a byte."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    for conn in held:
        conn.close()
    listener.close()


def closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])  # closed again when the block ends


def plan(tmp_path: Path, kaltura: str, *, bucket_endpoint: str | None = None,
         quiet: bool = True, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    if bucket_endpoint is None:
        archive = tmp_path / "archive"
        archive.mkdir(exist_ok=True)
        storage = f"  url: file://{archive}"
    else:
        storage = f"  bucket: some-bucket\n  endpoint_url: {bucket_endpoint}"
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.format(kaltura=kaltura, storage=storage))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AWS_ACCESS_KEY_ID": "x",
           "AWS_SECRET_ACCESS_KEY": "y", "AWS_DEFAULT_REGION": "us-east-1"}
    argv = [*prefix, sys.executable, "-m", "controller.cli", "plan", "-f", str(path)]
    return subprocess.run([*argv, *(["--quiet"] if quiet else [])], env=env, text=True,
                          capture_output=True, timeout=DEADLINE)


def only_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("karchive: error: ") and "Traceback" not in result.stderr
    return lines[0]


def test_a_kaltura_that_accepts_and_never_answers_fails_the_plan_in_one_line(
    tmp_path: Path, silent_port: int
) -> None:
    result = plan(tmp_path, f"http://127.0.0.1:{silent_port}", quiet=False)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    # While it waits it says so; then one error line, the last.
    assert any(line.startswith(f"waiting for Kaltura at http://127.0.0.1:{silent_port} "
                               "(session.start): no answer for ") for line in lines)
    errors = [line for line in lines if line.startswith("karchive: error: ")]
    assert errors == [lines[-1]]
    assert errors[0] == (
        f"karchive: error: Kaltura at http://127.0.0.1:{silent_port} accepted the connection "
        "but did not answer session.start within 15 s (2 tries); check that "
        "kaltura.service_url points at the service itself and that it is up")


def test_an_s3_that_accepts_and_never_answers_fails_the_plan_in_one_line(
    tmp_path: Path, silent_port: int
) -> None:
    line = only_line(plan(tmp_path, f"http://127.0.0.1:{closed_port()}",
                          bucket_endpoint=f"http://127.0.0.1:{silent_port}"))
    assert line.startswith(f"karchive: error: S3 at http://127.0.0.1:{silent_port} accepted "
                           "the connection but did not answer ListObjectsV2 s3://some-bucket")
    assert "storage.endpoint_url" in line


def test_a_refused_port_names_itself_and_the_setting(tmp_path: Path) -> None:
    port = closed_port()
    line = only_line(plan(tmp_path, f"http://127.0.0.1:{port}"))
    assert line == (f"karchive: error: Kaltura at http://127.0.0.1:{port} refused the "
                    "connection (session.start, 3 tries); check the host and port in "
                    "kaltura.service_url and that the service is running")
    noisy = plan(tmp_path, f"http://127.0.0.1:{port}", quiet=False)
    assert f"Kaltura at http://127.0.0.1:{port}: refused the connection (session.start); " \
           "trying again (2 of 3)" in noisy.stderr.splitlines()


def test_a_refused_s3_port_names_the_endpoint(tmp_path: Path) -> None:
    port = closed_port()
    line = only_line(plan(tmp_path, "http://127.0.0.1:1",
                          bucket_endpoint=f"http://127.0.0.1:{port}"))
    assert line.startswith(f"karchive: error: S3 at http://127.0.0.1:{port} refused the "
                           "connection (ListObjectsV2 s3://some-bucket)")


NAMESPACE = ("unshare", "--user", "--map-root-user", "--net")


@pytest.fixture
def no_network() -> tuple[str, ...]:
    """A command prefix running its command in a network namespace with no routes at all."""
    assert shutil.which("unshare"), "unshare (util-linux) is needed for this test"
    probe = subprocess.run([*NAMESPACE, "true"], capture_output=True, text=True)
    assert probe.returncode == 0, f"cannot make a network namespace: {probe.stderr.strip()}"
    return NAMESPACE


def test_an_unreachable_address_says_so(tmp_path: Path, no_network: tuple[str, ...]) -> None:
    line = only_line(plan(tmp_path, "http://192.0.2.10", prefix=no_network))
    assert line.startswith("karchive: error: Kaltura at http://192.0.2.10 is unreachable, no "
                           "route to the host (session.start, 3 tries); check "
                           "kaltura.service_url, this machine's network")


def test_a_name_that_does_not_resolve_says_so(tmp_path: Path,
                                              no_network: tuple[str, ...]) -> None:
    line = only_line(plan(tmp_path, "https://kaltura.example.invalid", prefix=no_network))
    assert line.startswith("karchive: error: Kaltura at https://kaltura.example.invalid: the "
                           "host name does not resolve (session.start, 3 tries); check the "
                           "host name in kaltura.service_url")


def directory(url: str) -> Directory:
    return Directory(DirectorySettings(url=url, base="o=example", timeout=2, retries=0))


def test_an_ldap_server_that_refuses_is_named_with_its_setting() -> None:
    port = closed_port()
    with pytest.raises(DirectoryError) as caught:
        directory(f"ldap://127.0.0.1:{port}")._connection()
    assert str(caught.value) == (
        f"the directory at ldap://127.0.0.1:{port} refused the connection (bind); check the "
        "host and port in directory.url and that the service is running")


def test_an_ldap_server_that_never_answers_times_out_in_its_timeout(silent_port: int) -> None:
    with pytest.raises(DirectoryError) as caught:
        directory(f"ldap://127.0.0.1:{silent_port}")._connection()
    assert str(caught.value).startswith(
        f"the directory at ldap://127.0.0.1:{silent_port} accepted the connection but did not "
        "answer bind within 2 s; check that directory.url points at the service itself")
