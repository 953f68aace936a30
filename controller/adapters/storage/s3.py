"""The one seam to S3: the boto3 clients, the error table, and the wrapper every S3 call goes by.

Every request karchive sends to S3 — the inventory's listings, the writer's uploads and reads,
the lease — goes through :func:`s3_call` (or :class:`Body`, for a streamed GET's reads), which
counts it (``s3_call(operation, outcome)`` on the metrics sink: ``karchive_s3_calls_total``)
and turns every botocore failure into karchive's error tree in ONE place, :func:`translate`,
by the table below: the S3 error code first, then the HTTP status, then the exception's type
(the most specific wins). Every error carries ``source=s3``. The rule that matters most (the
Princeton tool's flaw 9): only "this key does not exist" is :class:`NotFound`; a 403, a missing
bucket, throttling, a 5xx or a dropped connection is an error — never "absent", or an
unreadable bucket would look like a bucket with nothing archived in it. A lost conditional
write (412 PreconditionFailed, 409 ConditionalRequestConflict) is :class:`Conflict`; a restore
asked twice (409 RestoreAlreadyInProgress) is :class:`InProgress`: callers catch the class,
never the code.

Integrity of the bytes: every body the data client sends is covered by a checksum header the
request's signature covers — a part's or a small object's ``x-amz-checksum-sha256`` (the writer
computes it), a multipart completion's ``Content-MD5`` (:func:`_md5_of_body`) — and S3 refuses a
body that does not match it. botocore would also hash every byte for the signature itself on a
plain-http endpoint (moto, MinIO; on https it already skips that for checksummed bodies); the
data client does not (``payload_signing_enabled: False``), as a third SHA-256 of each part
proves nothing the signed checksum does not.

Timeouts: a short connect timeout (``network.CONNECT_TIMEOUT``) and a read timeout by call
kind: the metadata client (listings, HEADs, tags, the lease, restores, small objects) waits
``META_READ_TIMEOUT``; the data client (``kind="data"``: parts, multipart completion, streamed
reads) waits ``DATA_READ_TIMEOUT``.

Retries, one level: botocore's own, in its "standard" mode (``S3_ATTEMPTS`` attempts with
backoff, for throttling, 5xx and network failures alike). botocore sees the HTTP answer and
the connection before anything of ours does, and a second loop around it would multiply the
attempts; so nothing here retries, and what fails after botocore's tries is final for the
caller (the executor backs the entry off).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    UndefinedModelAttributeError,
)
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ProxySchemeUnsupported

from controller.adapters import network
from controller.errors import (
    Conflict,
    InProgress,
    KarchiveError,
    NotFound,
    PermanentError,
    Source,
    TransientError,
    lookup,
    outcome,
)
from policies.schema import StorageSettings

T = TypeVar("T")

META_READ_TIMEOUT = 10.0  # a listing page, a HEAD, a tag: milliseconds on a healthy S3
DATA_READ_TIMEOUT = 120.0  # a part's answer, a multipart completion (minutes for big objects)
S3_ATTEMPTS = 3  # botocore's, throttling and network failures alike: a silent S3 costs ~40 s
_WHERE = "storage.endpoint_url (or AWS_ENDPOINT_URL)"
_DENIED = ("{call}: access denied ({code}); check the AWS credentials and the bucket policy")
_AGAIN = "{call}: {code}, try again later"


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the table: the class a failure becomes and the words it is told in
    (``{call}``: the operation and the key; ``{code}``: S3's code or status)."""

    error: type[KarchiveError]
    says: str


# S3 error codes (AWS S3 API reference, "Error responses"; the throttling codes as botocore's
# retry handler knows them, botocore/data/_retry.json). Checked first.
CODES: dict[str, Rule] = {
    "NoSuchKey": Rule(NotFound, "{call}: no such key"),
    "NoSuchVersion": Rule(NotFound, "{call}: no such key"),
    "NotFound": Rule(NotFound, "{call}: no such key"),
    "404": Rule(NotFound, "{call}: no such key"),  # a HEAD has no body: its code is the status
    "NoSuchBucket": Rule(PermanentError, "{call}: the bucket does not exist; check "
                                         "storage.bucket and storage.endpoint_url in the policy"),
    "PreconditionFailed": Rule(Conflict, "{call}: written first by another runner ({code})"),
    "412": Rule(Conflict, "{call}: written first by another runner ({code})"),
    "ConditionalRequestConflict": Rule(Conflict, "{call}: written at the same moment by "
                                                 "another runner ({code})"),
    "RestoreAlreadyInProgress": Rule(InProgress, "{call}: a restore is already in progress"),
    "AccessDenied": Rule(PermanentError, _DENIED),
    "AllAccessDisabled": Rule(PermanentError, _DENIED),
    "InvalidAccessKeyId": Rule(PermanentError, _DENIED),
    "SignatureDoesNotMatch": Rule(PermanentError, _DENIED),
    "403": Rule(PermanentError, _DENIED),
    **{code: Rule(TransientError, _AGAIN) for code in (
        "Throttling", "ThrottlingException", "SlowDown", "RequestLimitExceeded",
        "RequestThrottled", "TooManyRequestsException", "ServiceUnavailable", "InternalError",
        "RequestTimeout", "RequestTimeoutException")},
}
# HTTP status, for a code the table above does not name.
STATUSES: dict[int, Rule] = {
    403: Rule(PermanentError, _DENIED),
    412: Rule(Conflict, "{call}: written first by another runner ({code})"),
    **{status: Rule(TransientError, _AGAIN) for status in (429, 500, 502, 503, 504)},
}
# Exception types, most specific first by lookup(); network failures are named before these.
TYPES: dict[type[BaseException], Rule] = {
    NoCredentialsError: Rule(PermanentError, "{call}: no AWS credentials; set "
                             "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or an AWS profile"),
    PartialCredentialsError: Rule(PermanentError, "{call}: incomplete AWS credentials; set "
                                  "both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
    CredentialRetrievalError: Rule(PermanentError, "{call}: the AWS credentials could not be "
                                   "fetched ({code}); check the role or profile"),
    NoRegionError: Rule(PermanentError, "{call}: no AWS region; set storage.region in the "
                                        "policy or AWS_DEFAULT_REGION"),
    ParamValidationError: Rule(PermanentError, "{call}: refused by botocore before sending "
                                               "({code})"),
    # botocore's ConnectionError family (refused, reset, proxy) when the cause says no more.
    ConnectionError: Rule(TransientError, "{call}: cannot reach S3 ({code})"),
    HTTPClientError: Rule(TransientError, "{call}: cannot reach S3 ({code})"),
    Urllib3Error: Rule(TransientError, "{call}: the connection to S3 failed ({code})"),
    # urllib3's one exception outside its HTTPError family: a proxy it cannot speak to.
    ProxySchemeUnsupported: Rule(PermanentError, "{call}: {code}; check the HTTPS_PROXY "
                                                 "setting"),
    OSError: Rule(TransientError, "{call}: the connection to S3 failed ({code})"),
    BotoCoreError: Rule(PermanentError, "{call}: {code}"),
    # botocore's one exception outside its two families: a model it cannot read.
    UndefinedModelAttributeError: Rule(PermanentError, "{call}: {code}"),
}
# What s3_call catches: botocore's families, and what a streamed body may raise under them.
LOW_LEVEL = (ClientError, BotoCoreError, UndefinedModelAttributeError, Urllib3Error,
             ProxySchemeUnsupported, OSError)


# S3 API operation → the IAM action that authorises it (Service Authorization Reference, "Actions
# defined by Amazon S3"): how the operations this seam counts read as permissions.
IAM_ACTION: dict[str, str] = {
    "ListObjectsV2": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
    "HeadObject": "s3:GetObject",
    "GetObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CopyObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "UploadPartCopy": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "ListParts": "s3:ListMultipartUploadParts",
    "DeleteObject": "s3:DeleteObject",
    "RestoreObject": "s3:RestoreObject",
    "GetObjectTagging": "s3:GetObjectTagging",
    "PutObjectTagging": "s3:PutObjectTagging",
}


class S3Metrics(Protocol):
    def s3_call(self, operation: str, outcome: str) -> None: ...


class NoS3Metrics:
    def s3_call(self, operation: str, outcome: str) -> None:
        return None


def make_s3_client(settings: StorageSettings, *, max_attempts: int = S3_ATTEMPTS,
                   kind: str = "meta") -> Any:
    """A boto3 S3 client for the policy's storage settings; ``kind`` "data" for the client that
    moves bytes (a longer read timeout).

    Credentials come from the standard AWS chain (environment, profile, instance role), never
    from the policy. botocore retries throttling, 5xx and network failures itself ("standard"
    mode, with backoff); what still fails after that reaches :func:`translate`.
    """
    # boto3 is imported on first use: it costs a quarter of a second, which `karchive --help`,
    # `policy validate` and a folder archive never need to pay.
    import boto3
    from botocore.config import Config

    s3: dict[str, Any] = {}
    if settings.endpoint_url:
        # Path-style keeps a custom endpoint (moto, MinIO) working with any bucket name.
        s3["addressing_style"] = "path"
    if kind == "data":
        s3["payload_signing_enabled"] = False  # the signed checksum headers cover the bytes
    config = Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=network.CONNECT_TIMEOUT,
        read_timeout=DATA_READ_TIMEOUT if kind == "data" else META_READ_TIMEOUT,
        s3=s3 or None,
        # Every part in flight of every copy at once, and then some (limits.parallel_parts).
        max_pool_connections=64 if kind == "data" else 32,
    )
    client = boto3.client(
        "s3", endpoint_url=settings.endpoint_url, region_name=settings.region, config=config
    )
    if kind == "data":
        client.meta.events.register("before-call.s3.CompleteMultipartUpload", _md5_of_body)
    return client


def _md5_of_body(params: dict[str, Any], **_: Any) -> None:
    """A multipart completion's body (the list of parts) with its Content-MD5: signed, checked
    by S3, so the unsigned payload is still one S3 verifies."""
    import base64
    import hashlib

    body = params.get("body") or b""
    if isinstance(body, str):
        body = body.encode()
    digest = hashlib.md5(body, usedforsecurity=False).digest()
    params.setdefault("headers", {})["Content-MD5"] = base64.b64encode(digest).decode("ascii")


def translate(
    exc: BaseException, operation: str, bucket: str, key: str | None = None
) -> KarchiveError:
    """A botocore failure as karchive's error (``source`` s3), by the table above. ``key``
    None: a bucket-level call."""
    where = f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
    call = f"{operation} {where}"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        rule = CODES.get(code) or STATUSES.get(status)
        if rule is not None and rule.error is NotFound and key is None:
            # A bucket-level call answered 404: the bucket, not a key, is missing.
            rule = CODES["NoSuchBucket"]
        if rule is None and status == 404:
            rule = CODES["NotFound" if key is not None else "NoSuchBucket"]
        if rule is None:
            message = f"{call}: {code or status}: {error.get('Message', '')}".rstrip(": ")
            return PermanentError(message, source=Source.S3)
        return rule.error(rule.says.format(call=call, code=code or status), source=Source.S3)
    failure = network.diagnose(exc)
    if failure is not None:
        url = urlsplit(str((getattr(exc, "kwargs", None) or {}).get("endpoint_url") or ""))
        endpoint = f"{url.scheme}://{url.netloc}" if url.netloc else where
        return network.error("S3", endpoint, call, failure, setting=_WHERE, source=Source.S3)
    found = lookup(TYPES, exc)
    if found is None:
        return PermanentError(f"{call}: {type(exc).__name__}: {exc}", source=Source.S3)
    return found.error(found.says.format(call=call, code=_named(exc)), source=Source.S3)


def _named(exc: BaseException) -> str:
    # BotoCoreError's text is its own sentence; a bare class name says little more.
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def s3_call(
    metrics: S3Metrics | None,
    operation: str,
    fn: Callable[[], T],
    *,
    bucket: str,
    key: str | None = None,
    purpose: str = "",
) -> T:
    """Run one S3 request named ``operation`` (S3's API name: "PutObject"), count it, and
    raise karchive errors only; ``purpose`` ("the lease") is added to the error's words."""
    sink = metrics or NoS3Metrics()
    try:
        with network.watch.call(f"S3 ({operation} s3://{bucket})", None):
            result = fn()
    except LOW_LEVEL as exc:
        error = translate(exc, f"{operation} ({purpose})" if purpose else operation, bucket, key)
        sink.s3_call(operation, outcome(error))
        raise error from exc
    sink.s3_call(operation, "ok")
    return result


class Body:
    """A streamed GET's body (a ``Readable``): reads translated like the call that opened it,
    so a connection cut mid-stream is karchive's error, not botocore's."""

    def __init__(self, raw: Any, bucket: str, key: str) -> None:
        self._raw = raw
        self._bucket = bucket
        self._key = key

    def read(self, size: int = -1) -> bytes:
        try:
            return bytes(self._raw.read(size if size >= 0 else None))
        except LOW_LEVEL as exc:
            raise translate(exc, "GetObject (reading)", self._bucket, self._key) from exc

    def close(self) -> None:
        # A body that cannot close cleanly is dropped with its connection.
        with contextlib.suppress(*LOW_LEVEL):
            self._raw.close()
