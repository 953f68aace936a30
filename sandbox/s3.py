"""The sandbox's local S3: moto's server on loopback, one bucket, and a Glacier restore delay.

karchive's archive side talks to this exactly as to AWS (boto3 over HTTP). moto does the work; this
module starts it on 127.0.0.1 (port 0 for tests), creates the bucket, sets the restore delay
through moto's state manager, and closes five gaps between moto 5.2 and S3 that the archive side
depends on (checked against the installed moto source, ``moto/s3/models.py`` and
``moto/moto_api/_internal/managed_state_model.py``):

1. ``ListObjectsV2`` ignores ``OptionalObjectAttributes=["RestoreStatus"]``. S3 then returns
   ``<RestoreStatus><IsRestoreInProgress>…</IsRestoreInProgress><RestoreExpiryDate>…`` on each
   object that has a restore requested or done, and nothing on the others
   (https://docs.aws.amazon.com/AmazonS3/latest/API/API_RestoreStatus.html). A small WSGI
   middleware adds the element, so an inventory needs no HEAD per object here either.
2. A restored key's state machine starts its clock when the object is *written*, not when the
   restore is requested, and reads "done" before its first transition: with a delay, an old
   object skips the wait and a fresh one reads restored at once. The middleware puts a key into
   ``IN_PROGRESS`` when its restore is accepted (202), so the delay counts from the request.
3. A second RestoreObject while one is running answers 200 in moto; S3 answers 409
   ``RestoreAlreadyInProgress``. The middleware answers that.
4. A conditional write (``If-None-Match`` / ``If-Match`` on PutObject, CompleteMultipartUpload or
   DeleteObject) is checked, then written, with no lock in moto: two racing writers can both
   pass the check. S3 decides them atomically (one wins, the other gets 412). The middleware
   runs conditional writes one at a time, so the check and the write are one step here too.
5. ``ListMultipartUploads`` reports every upload as initiated at one fixed instant in 2010;
   S3 reports when each was created, which is how a run tells a killed run's leftover upload
   (older than itself) from one a runner has in flight. The middleware notes when each
   CreateMultipartUpload was answered and puts that time in the listing.

moto's state is global to the process: two ``LocalS3`` in one process share objects and the
restore transition. Each gets its own bucket (a suffix is added when the name is taken), and the
restore transition is the last one set. Nothing survives ``stop()`` unless the runner saves it.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from lxml import etree
from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.s3.models import s3_backends
from werkzeug.serving import BaseWSGIServer, make_server

ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"  # moto accepts any credentials; these are not secrets
REGION = "us-east-1"
DEFAULT_BUCKET = "karchive-sandbox"
_RESTORE_MODEL = "s3::keyrestore"
_ARCHIVE_CLASSES = ("GLACIER", "DEEP_ARCHIVE")
_INDEX = "index.json"

StartResponse = Callable[..., Any]


class _QuietHandler(MotoRequestHandler):
    """No line on stderr per request: the sandbox prints its env lines and little else."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class LocalS3:
    """moto's S3 on loopback with one bucket. ``start()`` returns once the bucket exists."""

    def __init__(
        self,
        bucket: str = DEFAULT_BUCKET,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        restore_delay: float = 0.0,
    ) -> None:
        self.bucket = bucket
        self.host = host
        self.port = port
        self.restore_delay = restore_delay
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._transition_set = False

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> LocalS3:
        app = _RestoreFixes(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self.host, self.port, app, threaded=True, request_handler=_QuietHandler
        )
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="sandbox-s3", daemon=True
        )
        self._thread.start()
        self.bucket = self._create_bucket(self.bucket)
        if self.restore_delay > 0:
            self.set_restore_delay(self.restore_delay)
        return self

    def stop(self) -> None:
        """Stop the server; drop the bucket and any restore transition this server set from
        moto's process-global state, so the next LocalS3 in the process starts clean."""
        if self._server is not None:
            if self._transition_set:
                self.set_restore_delay(0)
            self._server.shutdown()
            self._server.server_close()
            _drop_bucket(self.bucket)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> LocalS3:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, **config: Any) -> Any:
        """A boto3 S3 client for this server, with the sandbox's credentials (``config``: extra
        botocore ``Config`` options)."""
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            region_name=REGION,
            config=Config(retries={"max_attempts": 2, "mode": "standard"}, **config),
        )

    def loader(self) -> Any:
        """A client for bulk loading: no request checksums (moto stores bodies at ~30 MB/s with
        boto3's default CRC32 trailer, ~40 MB/s without)."""
        return self.client(request_checksum_calculation="when_required")

    def set_restore_delay(self, seconds: float) -> None:
        """Restores take ``seconds`` from the request (0: at once, moto's default)."""
        if seconds <= 0:
            self._post_state("unset-transition", {"model_name": _RESTORE_MODEL})
            self._transition_set = False
        else:
            self.set_restore_transition({"progression": "time", "seconds": seconds})
        self.restore_delay = max(0.0, seconds)

    def set_restore_transition(self, transition: dict[str, Any]) -> None:
        """Any moto transition: ``{"progression": "manual", "times": N}`` completes a restore
        after N HEAD/GET reads of the object (no sleeping in tests)."""
        self._post_state("set-transition", {"model_name": _RESTORE_MODEL, "transition": transition})
        self._transition_set = True

    def export_objects(self, directory: Path) -> int:
        """Save every object of the bucket (bytes, storage class, metadata) under ``directory``.

        Read from moto's store, not over HTTP: a GLACIER object cannot be read there without a
        restore. Restore state is not kept (an object comes back un-restored).
        """
        directory.mkdir(parents=True, exist_ok=True)
        index = []
        bucket = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].buckets.get(self.bucket)
        store = bucket.keys if bucket is not None else {}
        for name in list(store.keys()):
            key = store.get(name)
            if key is None:
                continue
            file_name = "o-" + urllib.parse.quote(name, safe="")  # never the index name
            (directory / file_name).write_bytes(key.value)
            index.append(
                {
                    "key": name,
                    "file": file_name,
                    "storage_class": key.storage_class,
                    # moto keeps user metadata and Content-Type in one dict, user keys
                    # prefixed as on the wire.
                    "metadata": {
                        k.lower().removeprefix("x-amz-meta-"): v
                        for k, v in key.metadata.items()
                        if k.lower().startswith("x-amz-meta-")
                    },
                    "content_type": key.metadata.get("Content-Type") or "binary/octet-stream",
                }
            )
        (directory / _INDEX).write_text(json.dumps(index), encoding="utf-8")
        return len(index)

    def import_objects(self, directory: Path) -> int:
        """Put back what ``export_objects`` saved; returns how many objects."""
        index = json.loads((directory / _INDEX).read_text(encoding="utf-8"))
        s3 = self.loader()
        for item in index:
            s3.put_object(
                Bucket=self.bucket,
                Key=item["key"],
                Body=(directory / item["file"]).read_bytes(),
                StorageClass=item["storage_class"],
                Metadata=item["metadata"],
                ContentType=item["content_type"],
            )
        return len(index)

    def _post_state(self, verb: str, body: dict[str, Any]) -> None:
        # https://docs.getmoto.org/en/latest/docs/configuration/state_transition/index.html
        request = urllib.request.Request(
            f"{self.url}/moto-api/state-manager/{verb}",
            data=json.dumps(body).encode(),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def _create_bucket(self, wanted: str) -> str:
        s3 = self.client()
        name, suffix = wanted, 1
        while True:
            try:
                s3.head_bucket(Bucket=name)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                    raise
                s3.create_bucket(Bucket=name)
                return name
            # Taken by another LocalS3 in this process (moto's state is process-global).
            suffix += 1
            name = f"{wanted}-{suffix}"


def _moto_key(bucket: str, key: str) -> Any:
    """moto's FakeKey, read without counting as a read (``get_object`` advances manual
    transitions; the store does not)."""
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    found = backend.buckets.get(bucket)
    return None if found is None else found.keys.get(key)


def _drop_bucket(name: str) -> None:
    """Free the bucket's objects (moto spools big ones to temporary files) and its name."""
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    bucket = backend.buckets.pop(name, None)
    s3_backends.bucket_accounts.pop(name, None)
    if bucket is None:
        return
    for key_name in list(bucket.keys.keys()):
        for version in bucket.keys.getlist(key_name, []):
            dispose = getattr(version, "dispose", None)
            if dispose is not None:
                dispose()
    for multipart in list(bucket.multiparts.values()):
        multipart.dispose()


def _restore_in_progress(key: Any) -> bool:
    return key is not None and key._expiry is not None and key.status == "IN_PROGRESS"


_WRITES = frozenset({"PUT", "POST", "DELETE"})


class _RestoreFixes:
    """WSGI middleware over moto's app: the five fixes in the module docstring."""

    def __init__(self, app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]]) -> None:
        self.app = app
        self._conditional = threading.Lock()  # fix 4: one conditional write at a time
        self._initiated: dict[str, str] = {}  # fix 5: upload id -> when it was created

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        query = environ.get("QUERY_STRING", "")
        method = environ.get("REQUEST_METHOD", "")
        if method == "POST" and "restore" in query.split("&"):
            return self._restore(environ, start_response)
        if method in _WRITES and ("HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MATCH" in environ):
            with self._conditional:
                status, headers, body = _call(self.app, environ)
            start_response(status, headers)
            return [body]
        wanted = environ.get("HTTP_X_AMZ_OPTIONAL_OBJECT_ATTRIBUTES", "")
        if method == "GET" and "list-type=2" in query and "RestoreStatus" in wanted:
            return self._list_with_restore_status(environ, start_response)
        if "uploads" in query.split("&") and method in ("POST", "GET"):
            return self._uploads(environ, start_response, created=method == "POST")
        return self.app(environ, start_response)

    def _uploads(self, environ: dict[str, Any], start_response: StartResponse, *,
                 created: bool) -> Iterable[bytes]:
        """Fix 5: CreateMultipartUpload (POST ?uploads) notes the time; ListMultipartUploads
        (GET ?uploads) reports it."""
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        status, headers, body = _call(self.app, environ)
        if status.startswith("200") and body:
            root = etree.fromstring(body)
            ns = root.nsmap.get(None)
            q = (lambda tag: f"{{{ns}}}{tag}") if ns else (lambda tag: tag)
            if created:
                upload_id = root.findtext(q("UploadId"))
                if upload_id:
                    self._initiated[upload_id] = now
            else:
                for upload in root.iter(q("Upload")):
                    when = self._initiated.get(upload.findtext(q("UploadId")) or "")
                    initiated = upload.find(q("Initiated"))
                    if when is not None and initiated is not None:
                        initiated.text = when
                body = bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
                headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
                headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return [body]

    def _restore(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        bucket, _, key_name = environ.get("PATH_INFO", "").lstrip("/").partition("/")
        key_name = urllib.parse.unquote(key_name)
        if _restore_in_progress(_moto_key(bucket, key_name)):
            body = (
                '<?xml version="1.0" encoding="UTF-8"?><Error><Code>RestoreAlreadyInProgress'
                "</Code><Message>Object restore is already in progress</Message>"
                f"<Key>{_xml_text(key_name)}</Key></Error>"
            ).encode()
            start_response(
                "409 Conflict",
                [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
            )
            return [body]
        status, headers, body = _call(self.app, environ)
        if status.startswith("202"):
            key = _moto_key(bucket, key_name)
            if key is not None:
                # Count the delay from the request, and read "ongoing" until it has passed.
                key.status = "IN_PROGRESS"
                key._time_progressed = datetime.now()
                key._tick = 0
                # Settle it under the transition in force now ("immediate": done at once), so a
                # later change of transition does not reach back to this restore.
                _ = key.status
        start_response(status, headers)
        return [body]

    def _list_with_restore_status(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        status, headers, body = _call(self.app, environ)
        if status.startswith("200"):
            body = _add_restore_status(body)
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return [body]


def _call(app: Any, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    captured: dict[str, Any] = {}

    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured["status"], captured["headers"] = status, list(headers)
        return lambda data: None

    result = app(environ, start)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return captured["status"], captured["headers"], body


def _add_restore_status(body: bytes) -> bytes:
    root = etree.fromstring(body)
    ns = root.nsmap.get(None)
    q = (lambda tag: f"{{{ns}}}{tag}") if ns else (lambda tag: tag)
    bucket = root.findtext(q("Name")) or ""
    url_encoded = root.findtext(q("EncodingType")) == "url"
    for contents in root.iter(q("Contents")):
        name = contents.findtext(q("Key")) or ""
        key = _moto_key(bucket, urllib.parse.unquote(name) if url_encoded else name)
        if key is None or key._expiry is None or key.storage_class not in _ARCHIVE_CLASSES:
            continue  # never restored: S3 sends no RestoreStatus at all
        element = etree.SubElement(contents, q("RestoreStatus"))
        ongoing = key.status == "IN_PROGRESS"
        etree.SubElement(element, q("IsRestoreInProgress")).text = "true" if ongoing else "false"
        if not ongoing:
            expiry = key._expiry.strftime("%Y-%m-%dT%H:%M:%S.000Z")
            etree.SubElement(element, q("RestoreExpiryDate")).text = expiry
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
