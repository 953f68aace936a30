"""The composition root: every adapter one run uses, built from one policy, in one place.

This is the only module that knows which concrete adapter serves which port: the Kaltura session
(``adapters/kaltura``), the archive — an S3 bucket (``adapters/storage/bucket.py``) or a folder
(``adapters/storage/local.py``), with the matching lease —, the owners' directory
(``adapters/ldap.py``) when a rule reads ``owner_status``, the downloads from Kaltura
(``adapters/kaltura/download.py``), and — when the policy has a ``notices:`` section — the mail
server (``adapters/smtp.py``) and the owners' address book (``adapters/addresses.py``). Every
adapter gets the same metrics sink, so each call any of them makes is counted once (the
conventions of ``controller/errors.py``).

The runtime (``runtime/pipeline.py`` for the observation, ``runtime/executor.py`` through
:meth:`Adapters.context` for the reconcilers, ``runtime/daemon.py`` when the policy's
connection settings change) asks for an :class:`Adapters` and never builds a client itself.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from controller.adapters.addresses import AddressBook, DirectoryAddresses, KalturaAddresses
from controller.adapters.kaltura.download import HttpSource, fetch_small
from controller.adapters.kaltura.session import KalturaSession
from controller.adapters.kaltura.write import KalturaWriter
from controller.adapters.ldap import Directory
from controller.adapters.smtp import Mailer
from controller.adapters.storage import Store
from controller.adapters.storage.bucket import BucketStore
from controller.adapters.storage.lease import LeasePort
from controller.adapters.storage.local import FolderStore
from controller.adapters.storage.shard_lease import ShardLease
from controller.errors import PermanentError
from policies.notice_settings import AddressSource
from policies.schema import Policy
from policies.shards import WHOLE, Shard
from reconcilers.base import Context, Placeholder, Settings
from reconcilers.ports import JournalPort, MetricsPort, NullMetrics

# Placeholder loaded by the context unless one is given: the policy's (a file or a URL).
FROM_POLICY: Any = object()


@dataclass(slots=True)
class Adapters:
    """The adapters of one policy. ``metrics`` is the one sink they all count through.
    ``shard``: the entries they serve (``policies/shards.py``); ``policy`` is its share."""

    policy: Policy
    metrics: Any
    kaltura: KalturaSession
    store: Store
    directory: Directory | None
    downloads: HttpSource
    _addresses: DirectoryAddresses | None = None  # built on first use (notices: directory)
    shard: Shard = WHOLE

    def lease(self, *, duration: float) -> LeasePort:
        """The one-actor lease of this shard on the policy's archive (``{prefix}lease.json``,
        or ``{prefix}lease-I-of-N.json``), held only while no other shard count holds one."""
        prefix, store = self.policy.storage.prefix, self.store

        def siblings() -> list[tuple[str, Any]]:
            return [(name, store.lease(f"{prefix}{name}", duration=duration).read)
                    for name in store.lease_names(prefix)]

        own = store.lease(f"{prefix}{self.shard.lease_name}", duration=duration)
        return ShardLease(own, self.shard, siblings)

    def context(self, journal: JournalPort, *, placeholder: Any = FROM_POLICY,
                restore_via: str = "url") -> Context:
        """The reconcilers' Context over these adapters (their ports, their settings); the
        uploads' part buffers within the policy's ``limits`` (``copy_memory`` shared by the
        ``concurrency`` copies, ``parallel_parts`` uploading at once in each)."""
        policy = self.policy
        metrics: MetricsPort = self.metrics
        limits = policy.limits
        return Context(
            kaltura=KalturaWriter(self.kaltura),
            archive=self.store.archive(parallel_parts=limits.parallel_parts,
                                       part_memory=limits.part_memory),
            source=self.downloads,
            journal=journal,
            settings=settings_from(policy, restore_via=self.store.restore_via(restore_via)),
            placeholder=load_placeholder(policy) if placeholder is FROM_POLICY else placeholder,
            metrics=metrics,
        )

    def serving(self, policy: Policy) -> Adapters:
        """These connections for an edited ``policy`` whose connection settings are unchanged
        (the daemon's reload): its rules, limits and settings, the same clients."""
        return replace(self, policy=self.shard.share(policy))

    def mailer(self) -> Mailer:
        """The mail server of the policy's notices: it connects on its first message, and is
        closed after the cycle's."""
        notices = self.policy.notices
        assert notices is not None, "a mailer is asked for only when the policy has notices"
        return Mailer(notices.smtp, metrics=self.metrics)

    def address_book(self) -> AddressBook:
        """Where owners' addresses come from (``notices.addresses``): the Kaltura users, or
        the directory's ``mail`` attribute (its own connection, closed with the adapters)."""
        notices = self.policy.notices
        assert notices is not None, "an address book is asked for only with notices"
        if notices.addresses is AddressSource.KALTURA:
            return KalturaAddresses(self.kaltura)
        if self._addresses is None:
            assert self.policy.directory is not None  # the schema refuses it otherwise
            self._addresses = DirectoryAddresses(self.policy.directory, metrics=self.metrics,
                                                 mail_attribute=notices.mail_attribute)
        return self._addresses

    def close(self) -> None:
        if self.directory is not None:
            self.directory.close()
        if self._addresses is not None:
            self._addresses.close()
            self._addresses = None


def compose(policy: Policy, *, metrics: Any = None, owners: bool | None = None,
            s3_client: Any = None, shard: Shard = WHOLE) -> Adapters:
    """Every adapter for ``policy``. ``owners``: build the LDAP directory (default: when a rule
    reads ``owner_status`` and the policy names a directory). ``s3_client`` replaces the
    bucket's metadata client (tests that want fewer botocore attempts). ``shard``: serve only
    its entries, on its share of the partner's budgets (Kaltura's pace included)."""
    policy = shard.share(policy)
    sink = metrics if metrics is not None else NullMetrics()
    store: Store
    if policy.storage.directory is not None:
        store = FolderStore(policy.storage.directory, url=policy.storage.url)
    else:
        store = BucketStore(policy.storage, sink, client=s3_client)
    wants_owners = owners if owners is not None else policy.uses_owner_status()
    directory = None
    if wants_owners and policy.directory is not None:
        directory = Directory(policy.directory, metrics=sink)
    return Adapters(
        policy=policy,
        metrics=sink,
        kaltura=KalturaSession(policy.kaltura, metrics=sink, share=shard.count),
        store=store,
        directory=directory,
        downloads=HttpSource(timeout=policy.kaltura.timeout),
        shard=shard,
    )


def settings_from(policy: Policy, *, restore_via: str = "url") -> Settings:
    """What the reconcilers take from the policy, flattened."""
    storage = policy.storage
    return Settings(
        partner_id=policy.kaltura.partner_id,
        prefix=storage.prefix,
        layout=storage.layout,
        storage_class=storage.storage_class.value,
        part_size=policy.limits.part_size,
        restore_tier=storage.restore.tier.value,
        restore_days=storage.restore.days,
        restore_via=restore_via,
        legacy_placeholder_size=policy.legacy_placeholder_size,
    )


def load_placeholder(policy: Policy, base_dir: Path | None = None) -> Placeholder | None:
    """The placeholder video's bytes (a local file) or its URL and bytes (fetched once)."""
    location = policy.placeholder
    if not location:
        return None
    if "://" in location and not location.startswith("file://"):
        return Placeholder(location.rsplit("/", 1)[-1] or "placeholder.mp4",
                           fetch_small(location), url=location)
    path = Path(location.removeprefix("file://"))
    if not path.is_absolute() and base_dir is not None and not path.exists():
        path = base_dir / path
    try:
        return Placeholder(path.name, path.read_bytes())
    except OSError as exc:
        raise PermanentError(f"cannot read the placeholder video {str(path)!r} "
                             f"({exc.strerror}); fix `placeholder:` in the policy") from None


def placeholder_size(policy: Policy) -> int | None:
    """Bytes of the placeholder video, when it is a local file (tells it apart from content)."""
    location = policy.placeholder
    if not location:
        return None
    if "://" in location and not location.startswith("file://"):
        return None
    path = Path(location.removeprefix("file://"))
    try:
        return path.stat().st_size
    except OSError:
        return None
