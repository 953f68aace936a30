"""The one seam to S3: building the boto3 client and translating botocore failures.

The inventory (``inventory.py``) and the reconcilers' writers call S3 through :func:`s3_call`, so
every failure becomes karchive's error tree here, once, and every call is counted. The rule that
matters (the Princeton tool's flaw 9): only "this key does not exist" is :class:`NotFound`. A 403,
a missing bucket, throttling, a 5xx or a dropped connection is an error — never "absent", or an
unreadable bucket would look like a bucket with nothing archived in it.

Timeouts: a short connect timeout (``netfail.CONNECT_TIMEOUT``) and a read timeout by call
kind: the metadata client (listings, HEADs, tags, the lease, restores, small objects) waits
``META_READ_TIMEOUT``; the data client (``kind="data"``: parts, multipart completion, streamed
reads) waits ``DATA_READ_TIMEOUT``. botocore retries (``S3_ATTEMPTS``) are the one retry level
of a network failure; what is left becomes one line naming the endpoint and what to check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

from controller.adapters import network as netfail
from controller.errors import (
    KarchiveError,
    NetworkError,
    NotFound,
    PermanentError,
    TransientError,
)
from policies.schema import StorageSettings

T = TypeVar("T")

# S3 error codes that mean "slow down / try again" (botocore's retry handler treats these as
# throttling or transient: botocore/data/_retry.json).
_THROTTLING = frozenset({
    "Throttling", "ThrottlingException", "SlowDown", "RequestLimitExceeded",
    "RequestThrottled", "TooManyRequestsException", "ServiceUnavailable", "InternalError",
    "RequestTimeout", "RequestTimeoutException",
})  # fmt: skip
_KEY_ABSENT = frozenset({"NoSuchKey", "404", "NotFound", "NoSuchVersion"})
META_READ_TIMEOUT = 10.0  # a listing page, a HEAD, a tag: milliseconds on a healthy S3
DATA_READ_TIMEOUT = 120.0  # a part's answer, a multipart completion (minutes for big objects)
S3_ATTEMPTS = 3  # botocore's, throttling and network failures alike: a silent S3 costs ~40 s
_WHERE = "storage.endpoint_url (or AWS_ENDPOINT_URL)"


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
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=netfail.CONNECT_TIMEOUT,
        read_timeout=DATA_READ_TIMEOUT if kind == "data" else META_READ_TIMEOUT,
        # Path-style keeps a custom endpoint (moto, MinIO) working with any bucket name.
        s3={"addressing_style": "path"} if settings.endpoint_url else None,
        max_pool_connections=32,
    )
    return boto3.client(
        "s3", endpoint_url=settings.endpoint_url, region_name=settings.region, config=config
    )


def translate(
    exc: BaseException, operation: str, bucket: str, key: str | None = None
) -> KarchiveError:
    """Map a botocore failure to karchive's tree. ``key`` None: a bucket-level call."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionError,
        HTTPClientError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    where = f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        # A HEAD has no body: its 404 comes back with the code "404".
        if key is not None and (code in _KEY_ABSENT or (status == 404 and code != "NoSuchBucket")):
            return NotFound(f"{operation} {where}: no such key")
        if code == "NoSuchBucket" or (key is None and status == 404):
            return PermanentError(f"{operation} {where}: the bucket does not exist; check "
                                  "storage.bucket and storage.endpoint_url in the policy")
        if status == 403 or code in ("AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId",
                                     "SignatureDoesNotMatch"):
            return PermanentError(f"{operation} {where}: access denied ({code or status}); "
                                  "check the AWS credentials and the bucket policy")
        if code in _THROTTLING or status in (429, 500, 502, 503, 504):
            return TransientError(f"{operation} {where}: {code or status}, try again later")
        return PermanentError(f"{operation} {where}: {code or status}: "
                              f"{error.get('Message', '')}".rstrip(": "))
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return PermanentError(f"{operation} {where}: no AWS credentials; set AWS_ACCESS_KEY_ID "
                              "and AWS_SECRET_ACCESS_KEY or an AWS profile")
    failure = netfail.diagnose(exc)
    if failure is not None:
        url = urlsplit(str((getattr(exc, "kwargs", None) or {}).get("endpoint_url") or ""))
        endpoint = f"{url.scheme}://{url.netloc}" if url.netloc else where
        return NetworkError(netfail.describe("S3", endpoint, f"{operation} {where}", failure,
                                             setting=_WHERE))
    if isinstance(exc, ConnectionError | HTTPClientError):
        return TransientError(f"{operation} {where}: cannot reach S3 ({type(exc).__name__})")
    if isinstance(exc, BotoCoreError):
        return PermanentError(f"{operation} {where}: {exc}")
    return PermanentError(f"{operation} {where}: {type(exc).__name__}: {exc}")


def s3_call(
    metrics: S3Metrics | None,
    operation: str,
    fn: Callable[[], T],
    *,
    bucket: str,
    key: str | None = None,
) -> T:
    """Run one S3 request, count it, and raise karchive errors only."""
    from botocore.exceptions import BotoCoreError, ClientError

    sink = metrics or NoS3Metrics()
    try:
        with netfail.watch.call(f"S3 ({operation} s3://{bucket})", None):
            result = fn()
    except (ClientError, BotoCoreError) as exc:
        error = translate(exc, operation, bucket, key)
        sink.s3_call(operation, _outcome(error))
        raise error from exc
    sink.s3_call(operation, "ok")
    return result


def _outcome(error: KarchiveError) -> str:
    if isinstance(error, NotFound):
        return "not_found"
    if isinstance(error, TransientError):
        return "transient"
    return "error"
