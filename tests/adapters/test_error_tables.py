"""Every adapter's one error table: no low-level exception leaves an adapter untranslated.

For each outside system, every exception class its library defines (walked from the library's
own exceptions modules, not listed by hand) is raised through the adapter's call wrapper or its
translation, and must come out as a class of karchive's tree carrying that adapter's ``source``,
chained to the original (httpx's test that none of httpcore's exceptions is unmapped). The
table's named cases — the ones callers act on — are checked one by one.
"""

from __future__ import annotations

import errno
import inspect
import io
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import botocore.exceptions
import ldap3.core.exceptions
import pytest
import requests.exceptions
import urllib3.exceptions
from botocore.exceptions import ClientError
from KalturaClient.exceptions import KalturaClientException, KalturaException

from controller.adapters.kaltura import download, session
from controller.adapters.ldap import LOW_LEVEL as LDAP_LOW_LEVEL
from controller.adapters.ldap import Directory, DirectoryError
from controller.adapters.storage import local, s3
from controller.errors import (
    Conflict,
    InProgress,
    KarchiveError,
    NotFound,
    PermanentError,
    RateLimited,
    Source,
    TransientError,
    outcome,
)
from controller.runtime.metrics import CallCounter
from policies.directory import DirectorySettings

OUTCOMES = {"ok", "not_found", "conflict", "in_progress", "rate_limited", "network", "transient",
            "error"}


def exception_classes(*modules: ModuleType) -> list[type[BaseException]]:
    """The exceptions each module defines itself (not those it imports from the stdlib)."""
    found = {value for module in modules for value in vars(module).values()
             if inspect.isclass(value) and issubclass(value, Exception)
             and not issubclass(value, Warning) and value.__module__ == module.__name__}
    return sorted(found, key=lambda cls: (cls.__module__, cls.__name__))


def instance(cls: type[BaseException]) -> BaseException:
    """An instance of ``cls`` without knowing its constructor (botocore's need named fields)."""
    if issubclass(cls, ClientError):
        return cls({"Error": {"Code": "Boom", "Message": "boom"},
                    "ResponseMetadata": {"HTTPStatusCode": 400}}, "PutObject")
    if cls is urllib3.exceptions.InvalidChunkLength:
        # It describes itself from the response it was reading: a response cut at byte 3.
        response = urllib3.HTTPResponse(io.BytesIO(b"abc"), preload_content=False)
        return cls(response, b"zz")
    for args in ((), ("boom",), ("boom", -1), (0, 1)):
        try:
            made = cls(*args)
            str(made)  # some need the right kind of argument to describe themselves
        except Exception:  # noqa: BLE001, S112 - try the next signature
            continue
        return made
    made = cls.__new__(cls)
    Exception.__init__(made, "boom")
    made.kwargs = {}  # type: ignore[attr-defined]
    return made


def _raising(exc: BaseException) -> Any:
    def call() -> None:
        raise exc

    return call


# -- S3 -----------------------------------------------------------------------------------------

BOTOCORE = exception_classes(botocore.exceptions)
URLLIB3 = exception_classes(urllib3.exceptions)
OS_ERRORS = [OSError, ConnectionRefusedError, ConnectionResetError, TimeoutError,
             FileNotFoundError, PermissionError, BrokenPipeError]


@pytest.mark.parametrize("cls", [*BOTOCORE, *URLLIB3, *OS_ERRORS], ids=lambda c: c.__name__)
def test_no_botocore_exception_leaves_the_s3_seam_untranslated(cls: type[BaseException]) -> None:
    exc = instance(cls)
    counter = CallCounter()
    with pytest.raises(KarchiveError) as caught:
        s3.s3_call(counter, "PutObject", _raising(exc), bucket="b", key="k")
    assert caught.value.source is Source.S3
    assert caught.value.__cause__ is exc
    [(operation, label)] = counter.s3
    assert operation == "PutObject" and label in OUTCOMES


def _client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")


@pytest.mark.parametrize(("code", "status", "key", "expected"), [
    ("PreconditionFailed", 412, "k", Conflict),  # a lost IfNoneMatch / IfMatch
    ("ConditionalRequestConflict", 409, "k", Conflict),  # a concurrent conditional write
    ("", 412, "k", Conflict),  # a HEAD-like answer without a body
    ("RestoreAlreadyInProgress", 409, "k", InProgress),
    ("NoSuchKey", 404, "k", NotFound),
    ("404", 404, "k", NotFound),
    ("NoSuchBucket", 404, "k", PermanentError),
    ("NoSuchKey", 404, None, PermanentError),  # a bucket-level call: the bucket is missing
    ("AccessDenied", 403, "k", PermanentError),
    ("SlowDown", 503, "k", TransientError),
    ("InternalError", 500, None, TransientError),
    ("SomethingNew", 400, "k", PermanentError),
])
def test_the_s3_table_tells_what_callers_act_on(code: str, status: int, key: str | None,
                                                 expected: type[KarchiveError]) -> None:
    error = s3.translate(_client_error(code, status), "PutObject", "b", key)
    assert type(error) is expected
    assert error.source is Source.S3
    assert "s3://b" in str(error)


# -- Kaltura ------------------------------------------------------------------------------------

REQUESTS = exception_classes(requests.exceptions)


@pytest.mark.parametrize("cls", [KalturaException, KalturaClientException, *REQUESTS, *URLLIB3,
                                 *OS_ERRORS], ids=lambda c: c.__name__)
def test_no_kaltura_client_exception_escapes_the_session(cls: type[BaseException]) -> None:
    exc = instance(cls)
    # What the session's loop catches is what its table translates: nothing else gets by.
    assert isinstance(exc, session.LOW_LEVEL)
    error = session.translate(exc, "media.list")
    assert isinstance(error, KarchiveError) and error.source is Source.KALTURA
    assert outcome(error) in OUTCOMES


@pytest.mark.parametrize(("code", "expected"), [
    ("ACTION_BLOCKED", RateLimited),
    ("ENTRY_ID_NOT_FOUND", NotFound),
    ("FLAVOR_ASSET_ID_NOT_FOUND", NotFound),
    ("ENTRY_REPLACEMENT_ALREADY_EXISTS", Conflict),
    ("INVALID_KS", PermanentError),  # renewed once by the session, then permanent
    ("SERVICE_FORBIDDEN", PermanentError),
])
def test_the_kaltura_codes_table(code: str, expected: type[KarchiveError]) -> None:
    error = session.translate(KalturaException("m", code), "media.get")
    assert isinstance(error, expected) and error.source is Source.KALTURA
    assert code in str(error)


@pytest.mark.parametrize(("code", "expected"), [
    (-2, TransientError), (-4, TransientError), (-9, TransientError), (-1, PermanentError),
    (-7, PermanentError)])
def test_the_kaltura_client_codes_table(code: int, expected: type[KarchiveError]) -> None:
    error = session.translate(KalturaClientException("m", code), "media.list")
    assert type(error) is expected


def test_a_secret_never_reaches_the_message() -> None:
    error = session.translate(KalturaException("bad ks djJ8SECRET", "X"), "media.list",
                              lambda text: text.replace("djJ8SECRET", "***"))
    assert "SECRET" not in str(error)


@pytest.mark.parametrize("cls", [*URLLIB3, *OS_ERRORS], ids=lambda c: c.__name__)
def test_every_download_failure_is_in_the_download_table(cls: type[BaseException]) -> None:
    assert isinstance(instance(cls), download.LOW_LEVEL)


@pytest.mark.parametrize(("status", "expected"), [
    (404, NotFound), (429, TransientError), (503, TransientError), (403, PermanentError)])
def test_the_download_statuses_table(status: int, expected: type[KarchiveError]) -> None:
    with pytest.raises(KarchiveError) as caught:
        download._check_status(status, "https://k/p/1", allowed=(200,))
    assert type(caught.value) is expected and caught.value.source is Source.KALTURA


# -- LDAP ---------------------------------------------------------------------------------------

LDAP3 = exception_classes(ldap3.core.exceptions)


@pytest.fixture(scope="module")
def directory() -> Iterator[Directory]:
    settings = DirectorySettings(url="ldap://127.0.0.1:9", base="dc=example,dc=edu",
                                 active_filter="(uid={uid})")
    yield Directory(settings)


@pytest.mark.parametrize("cls", [*LDAP3, *OS_ERRORS], ids=lambda c: c.__name__)
def test_no_ldap3_exception_leaves_the_ldap_adapter_untranslated(
        cls: type[BaseException], directory: Directory) -> None:
    exc = instance(cls)
    assert isinstance(exc, LDAP_LOW_LEVEL)
    error = directory._translate(exc, "search")
    assert isinstance(error, DirectoryError) and error.source is Source.LDAP
    assert isinstance(error, TransientError | PermanentError)


# -- the folder archive -------------------------------------------------------------------------

@pytest.mark.parametrize(("exc", "expected"), [
    (FileNotFoundError(errno.ENOENT, "gone"), NotFound),
    (FileExistsError(errno.EEXIST, "there"), Conflict),
    (PermissionError(errno.EACCES, "denied"), PermanentError),
    (OSError(errno.ENOSPC, "full"), PermanentError),
    (OSError(errno.ESTALE, "stale NFS handle"), TransientError),
    (TimeoutError(errno.ETIMEDOUT, "timed out"), TransientError),
])
def test_the_folder_table(exc: OSError, expected: type[KarchiveError]) -> None:
    error = local.translate(exc, "file:///nas/k", "write")
    assert type(error) is expected and error.source is Source.DIRECTORY


def test_a_folder_the_archive_cannot_write_is_an_error_of_the_tree(tmp_path: Path) -> None:
    files = local.FileArchive(tmp_path)
    (tmp_path / "karchive").write_bytes(b"a file where a folder must go")
    with pytest.raises(PermanentError) as caught:
        files.put_bytes("karchive/0_a/manifest.json", b"{}", content_type="application/json")
    assert caught.value.source is Source.DIRECTORY
    assert isinstance(caught.value.__cause__, NotADirectoryError)
