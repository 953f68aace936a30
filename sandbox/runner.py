"""The whole sandbox in one object: the Kaltura emulator with a seeded catalogue, a local S3, and
a mail server that keeps what it accepts as ``.eml`` files (``sandbox.smtp``).

Tests, benchmarks, the demo and ``karchive sandbox up`` all start the sandbox through ``Sandbox``:

    with Sandbox(entries=2000, seed=1) as sb:
        os.environ.update(sb.env())   # what karchive reads: KALTURA_*, AWS_*, KARCHIVE_BUCKET

Start-up order: the backend (generated from the seed, or loaded from ``state_file``), the
Kaltura server, moto's S3 with its bucket, then the bucket's contents: the objects the Princeton
tool would have left for the catalogue's legacy entries, or, on a restart from ``state_file``,
every object saved beside it at the last ``stop()``; last the SMTP sink, writing into
``mail_dir`` (default: a folder removed at ``stop()``; give one to keep the mail).

State across restarts: Kaltura's state is the backend snapshot in ``state_file`` (the same JSON
``POST /admin/snapshot`` writes); S3 lives in moto's memory, so ``stop()`` also saves the bucket's
objects in ``<state_file>.s3/`` and the next start puts them back (storage class and metadata
kept; restores in progress are not). A snapshot written by ``/admin/snapshot`` alone has no bucket
beside it: the bucket then starts empty.
"""

from __future__ import annotations

import gc
import json
import os
import shlex
import shutil
import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sandbox.catalogue import CatalogueSummary, LegacyObject, generate, legacy_objects
from sandbox.kaltura.content import SeededContent
from sandbox.kaltura.models import Clock, KalturaBackend
from sandbox.kaltura.records import Partner
from sandbox.kaltura.server import KalturaSandbox
from sandbox.s3 import ACCESS_KEY_ID, DEFAULT_BUCKET, REGION, SECRET_ACCESS_KEY, LocalS3
from sandbox.smtp import SmtpSink

ADMIN_USER_ID = "karchive@example.edu"
PLACEHOLDER_NAME = "placeholder.mp4"
PLACEHOLDER_BYTES = 256 * 1024  # a small video's worth: what replaces archived content


def shell_exports(env: Mapping[str, str]) -> str:
    """``export KEY='value'`` lines, shell-quoted: ``eval "$(karchive sandbox up)"``, ``source``."""
    return "".join(f"export {key}={shlex.quote(value)}\n" for key, value in env.items())


def read_export(line: str) -> tuple[str, str] | None:
    """(key, value) of one ``shell_exports`` line; None for any other line."""
    text = line.strip()
    if not text.startswith("export ") or "=" not in text:
        return None
    key, _, quoted = text.removeprefix("export ").partition("=")
    words = shlex.split(quoted)
    return key.strip(), words[0] if words else ""


def placeholder_video() -> bytes:
    """The sandbox's placeholder video: fixed bytes (the emulator never decodes media)."""
    return SeededContent(seed=0x9_1ACE, size=PLACEHOLDER_BYTES).read(0, PLACEHOLDER_BYTES)


def admin_client(env: Mapping[str, str]) -> Any:
    """A real KalturaClient with an admin KS, from the variables ``env()`` (or ``up``) gives.

    For tests, benchmarks and the demo: one session, as karchive itself keeps one per process.
    """
    # Imported here: the client loads all its plugins (~0.4 s), and the CLI's other commands
    # never need it.
    from KalturaClient import KalturaClient, KalturaConfiguration
    from KalturaClient.Plugins.Core import KalturaSessionType

    client = KalturaClient(KalturaConfiguration(env["KALTURA_SERVICE_URL"]))
    ks = client.session.start(
        env["KALTURA_ADMIN_SECRET"],
        env["KALTURA_USER_ID"],
        KalturaSessionType.ADMIN,
        int(env["KALTURA_PARTNER_ID"]),
    )
    client.setKs(ks)
    return client


class Sandbox:
    """``Sandbox(entries=2000, seed=1, restore_delay=0.0, state_file=None)``, then ``start()``.

    Attributes once started: ``kaltura`` (KalturaSandbox), ``backend`` (KalturaBackend),
    ``s3`` (LocalS3), ``s3_url``, ``bucket``, ``smtp`` (SmtpSink), ``summary`` (the
    CatalogueSummary; None when the state came from ``state_file``).
    """

    def __init__(
        self,
        entries: int = 2000,
        seed: int = 1,
        restore_delay: float = 0.0,
        state_file: str | os.PathLike[str] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        s3_port: int = 0,
        bucket: str = DEFAULT_BUCKET,
        conversion_delay: float | None = None,
        approval: bool = False,
        max_size: int | None = None,
        now: float | None = None,
        mail_dir: str | os.PathLike[str] | None = None,
        smtp_port: int = 0,
    ) -> None:
        self.entries = entries
        self.seed = seed
        self.restore_delay = restore_delay
        self.state_file = Path(state_file) if state_file is not None else None
        self.host, self.port, self.s3_port = host, port, s3_port
        self.conversion_delay = conversion_delay
        self.approval = approval
        self.max_size = max_size
        self.now = now
        self.bucket = bucket
        self.mail_dir = Path(mail_dir) if mail_dir is not None else None
        self.smtp_port = smtp_port
        self.smtp: SmtpSink | None = None
        self.summary: CatalogueSummary | None = None
        self.backend: KalturaBackend | None = None
        self.kaltura: KalturaSandbox | None = None
        self.s3: LocalS3 | None = None
        self._workdir: Path | None = None

    # ------------------------------------------------------------------------------ lifecycle

    def start(self) -> Sandbox:
        self.backend = self._load_or_generate()
        partner = self.backend.partner
        if self.conversion_delay is not None:
            partner.conversion_delay = self.conversion_delay
        if self.approval:
            partner.replacement_requires_approval = True
        try:
            self.kaltura = KalturaSandbox(self.backend, host=self.host, port=self.port).start()
            self.s3 = LocalS3(
                self.bucket, host=self.host, port=self.s3_port, restore_delay=self.restore_delay
            ).start()
            self.bucket = self.s3.bucket
            self._fill_bucket()
            self._workdir = Path(tempfile.mkdtemp(prefix="karchive-sandbox-"))
            self.placeholder_path.write_bytes(placeholder_video())
            mail = self.mail_dir if self.mail_dir is not None else self._workdir / "mail"
            self.smtp = SmtpSink(mail, host=self.host, port=self.smtp_port).start()
        except BaseException:
            self.stop(save=False)
            raise
        return self

    def stop(self, *, save: bool = True) -> None:
        """Stop both servers; with a ``state_file``, save Kaltura's state and the bucket first.

        A second ``stop()`` does nothing (fixtures stop what a test may have stopped already).
        """
        if self.kaltura is None and self.s3 is None and self.smtp is None:
            return
        if save and self.state_file is not None and self.backend is not None:
            self.save()
        if self.kaltura is not None:
            self.kaltura.stop()
        if self.s3 is not None:
            self.s3.stop()
        if self.smtp is not None:
            self.smtp.stop()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
        self.kaltura = self.s3 = self.smtp = None
        self._workdir = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def save(self) -> None:
        """Write the backend snapshot (atomically) and the bucket's objects beside it."""
        assert self.state_file is not None and self.backend is not None
        with self.backend.lock:
            data = self.backend.snapshot()
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, self.state_file)
        if self.s3 is not None:
            self.s3.export_objects(self._objects_dir())

    # ------------------------------------------------------------------------------ access

    @property
    def placeholder_path(self) -> Path:
        """Where the running sandbox keeps its placeholder video (``KARCHIVE_PLACEHOLDER``)."""
        assert self._workdir is not None, "the sandbox is not started"
        return self._workdir / PLACEHOLDER_NAME

    @property
    def s3_url(self) -> str:
        return self._started_s3().url

    def env(self) -> dict[str, str]:
        """The variables karchive (and policy.yaml's ``${…}``) read to find the sandbox."""
        kaltura = self._started_kaltura()
        assert self.backend is not None
        partner = self.backend.partner
        return {
            "KALTURA_SERVICE_URL": kaltura.url,
            "KALTURA_PARTNER_ID": str(partner.id),
            "KALTURA_ADMIN_SECRET": partner.admin_secret,
            "KALTURA_USER_ID": ADMIN_USER_ID,
            "AWS_ENDPOINT_URL": self.s3_url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "KARCHIVE_BUCKET": self.bucket,
            "KARCHIVE_PLACEHOLDER": str(self.placeholder_path),
            **self._started_smtp().env(),
        }

    def s3_client(self) -> Any:
        return self._started_s3().client()

    def kaltura_client(self) -> Any:
        """A real KalturaClient with an admin KS for this sandbox."""
        return admin_client(self.env())

    # ------------------------------------------------------------------------------ internals

    def _load_or_generate(self) -> KalturaBackend:
        if self.state_file is not None and self.state_file.exists():
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
            backend: KalturaBackend = KalturaBackend.from_snapshot(data)
        else:
            backend = KalturaBackend(partner=Partner(), clock=Clock())
            now = self.now if self.now is not None else backend.clock.now()
            self.summary = generate(backend, self.entries, self.seed, now=now,
                                    max_size=self.max_size)
        # The catalogue lives as long as the server: out of the collector's generations, its
        # million records are never scanned again, so requests that allocate (the first
        # listings, eSearch's text analysis) do not pay full collections over all of them.
        gc.freeze()
        return backend

    def _fill_bucket(self) -> None:
        s3 = self._started_s3()
        if self.summary is None:
            objects_dir = self._objects_dir()
            if (objects_dir / "index.json").exists():
                s3.import_objects(objects_dir)
            return
        objects = legacy_objects(self.summary)
        if not objects:
            return
        client = s3.loader()

        def put(obj: LegacyObject) -> None:
            # The Princeton layout: the bare entry id at the bucket root, no metadata.
            client.put_object(
                Bucket=self.bucket,
                Key=obj.key,
                Body=obj.content.read(0, obj.content.size),
                StorageClass=obj.storage_class,
            )

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(put, objects))

    def _objects_dir(self) -> Path:
        assert self.state_file is not None
        return self.state_file.with_name(self.state_file.name + ".s3")

    def _started_kaltura(self) -> KalturaSandbox:
        if self.kaltura is None:
            raise RuntimeError("the sandbox is not started: call start() first")
        return self.kaltura

    def _started_smtp(self) -> SmtpSink:
        if self.smtp is None:
            raise RuntimeError("the sandbox is not started: call start() first")
        return self.smtp

    def _started_s3(self) -> LocalS3:
        if self.s3 is None:
            raise RuntimeError("the sandbox is not started: call start() first")
        return self.s3
