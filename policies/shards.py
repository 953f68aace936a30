"""Shards: which daemon of a set owns which entry, and its share of the partner's budgets.

``karchive run --shard I/N`` (and ``plan``/``apply --shard I/N``) acts only on the entries this
module says shard ``I`` of ``N`` owns; the observation (``controller/runtime/observe.py``) drops
every other entry as it walks Kaltura's listing, before their flavors are fetched, so a shard's
flavor calls scale with its share. Kaltura's listing cannot filter by a hash, so every shard
still walks the whole of ``media.list``.

Ownership is a pure function of the entry id and N: the first 8 bytes of the SHA-256 of the
UTF-8 id, read big-endian, modulo N. It is the same on every machine, every process and every
Python (``hash()`` is salted per process and would split the library differently in each pod),
and spreads ids evenly whatever their shape. The entries of N shards are disjoint and cover the
library: each entry is owned by exactly one shard of a set.

The policy describes the partner, not one process, so each shard takes its share of what is
partner-wide (:meth:`Shard.share`): every Kaltura rate budget (``kaltura.rate_limits``, paced by
the session) is divided by N, so N shards together stay within the partner's limits; the
per-cycle budgets ``limits.transitions_per_cycle`` and ``limits.bytes_per_cycle`` are split so
that the set's cycles together do what the policy allows one cycle to do (the first
``total mod N`` shards take one more). ``limits.concurrency`` and ``part_size`` bound one
process's memory and connections: each pod keeps them whole. ``max_replace_share`` is a share,
checked against each shard's own plan.

Each shard holds a lease of its own (:attr:`Shard.lease_name`); an unsharded run is shard 0 of
1 and keeps the historical ``lease.json``. ``controller/adapters/storage/shard_lease.py`` keeps
two sets of different N (a re-split under way) from ever acting at once.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from policies.durations import Rate
from policies.schema import Limits, Policy

MAX_SHARDS = 1024  # a bound for typos (--shard 0/30000), far above any sane deployment
LEASE_NAME = "lease.json"  # the unsharded lease: its historical name
_SPEC_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
_LEASE_RE = re.compile(r"^lease-(\d+)-of-(\d+)\.json$")
_POD_RE = re.compile(r"-(\d+)$")
HINT = "give --shard I/N with 0 <= I < N, e.g. --shard 0/3"


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` of ``count``: the entries whose stable hash falls in it."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not 0 < self.count <= MAX_SHARDS or not 0 <= self.index < self.count:
            raise ValueError(f"{self.index}/{self.count} is not a shard; {HINT}")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def sharded(self) -> bool:
        return self.count > 1

    @property
    def label(self) -> str:
        """The ``shard`` label of its metrics: ``I/N``, or empty for an unsharded daemon (an
        empty label is no label: a single daemon's series are those it always had)."""
        return str(self) if self.sharded else ""

    @property
    def lease_name(self) -> str:
        """Its lease object under the prefix: ``lease-I-of-N.json`` (``lease.json`` unsharded)."""
        return f"lease-{self.index}-of-{self.count}.json" if self.sharded else LEASE_NAME

    def owns(self, entry_id: str) -> bool:
        """Whether ``entry_id`` belongs to this shard."""
        return not self.sharded or slot(entry_id, self.count) == self.index

    def part(self, total: int) -> int:
        """This shard's part of a partner-wide ``total``: the parts of a set add up to it."""
        return total // self.count + (1 if self.index < total % self.count else 0)

    def share(self, policy: Policy) -> Policy:
        """``policy`` as this shard runs it: its share of every partner-wide budget."""
        if not self.sharded:
            return policy
        rates = {name: Rate(rate.calls / self.count, rate.per_seconds)
                 for name, rate in policy.kaltura.rate_limits.items()}
        limits: Limits = policy.limits
        return policy.model_copy(update={
            "kaltura": policy.kaltura.model_copy(update={"rate_limits": rates}),
            "limits": limits.model_copy(update={
                "transitions_per_cycle": self.part(limits.transitions_per_cycle),
                "bytes_per_cycle": self.part(limits.bytes_per_cycle)}),
        })


WHOLE = Shard(0, 1)


def slot(entry_id: str, count: int) -> int:
    """The shard of ``count`` that owns ``entry_id`` (first 8 bytes of SHA-256, big-endian)."""
    digest = hashlib.sha256(entry_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def parse_shard(text: str) -> Shard:
    """``"I/N"`` → Shard; ValueError, one line, for anything else (``3/3``, ``a/b``, ``0/0``)."""
    found = _SPEC_RE.match(text)
    if found is None:
        raise ValueError(f"{text!r} is not a shard; {HINT}")
    return Shard(int(found[1]), int(found[2]))


def shard_of_pod(pod_name: str, count: str) -> Shard:
    """A StatefulSet pod's shard: its ordinal (the name's ``-<n>`` suffix) of ``count``."""
    found = _POD_RE.search(pod_name)
    if found is None:
        raise ValueError(f"pod name {pod_name!r} ends in no ordinal (-0, -1 ...); run the "
                         "shards as a StatefulSet, or give --shard I/N")
    if not count.strip().isdigit():
        raise ValueError(f"shard count {count!r} is not a number; set KARCHIVE_SHARDS to the "
                         "StatefulSet's replicas")
    return parse_shard(f"{found[1]}/{count.strip()}")


def shard_from(flag: str | None, env: Mapping[str, str], hostname: str) -> Shard:
    """The shard a command runs as: ``--shard I/N`` (``flag``), else ``$KARCHIVE_SHARD``
    (``I/N``), else — a StatefulSet's pod — the ordinal of ``$KARCHIVE_POD_NAME`` (or of the
    host name, which Kubernetes sets to the pod's) of ``$KARCHIVE_SHARDS``; else unsharded."""
    spec = flag if flag is not None else env.get("KARCHIVE_SHARD")
    if spec:
        return parse_shard(spec)
    count = env.get("KARCHIVE_SHARDS")
    if count:
        return shard_of_pod(env.get("KARCHIVE_POD_NAME") or hostname, count)
    return WHOLE


def shard_of_lease(name: str) -> Shard | None:
    """The shard whose lease object is called ``name`` (None for any other name)."""
    if name == LEASE_NAME:
        return WHOLE
    found = _LEASE_RE.match(name)
    if found is None:
        return None
    try:
        return Shard(int(found[1]), int(found[2]))
    except ValueError:
        return None  # not a name karchive writes: no shard's lease
