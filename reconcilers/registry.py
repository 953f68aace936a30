"""Which reconcilers carry out a plan item: an explicit table by name, no import side effects.

A plan item names its reconcilers (``PlanItem.reconcilers``, set by ``policies.plan``: an entry
going from ``original`` to ``placeholder`` names ``archive`` then ``replace``); :func:`chain`
finds them here, in that order, each idempotent. Each reconciler declares what it needs
(``reconcilers.base.Needs``); :func:`needs_of` adds what the reconcilers it runs itself need, and
:func:`all_needs` is what every transition together needs — the reconcilers' share of the IAM
policy ``karchive permissions`` prints.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from reconcilers.archive import Archive
from reconcilers.base import Needs, Reconciler
from reconcilers.purge import Purge
from reconcilers.recover import Recover
from reconcilers.recreate import Recreate
from reconcilers.repair import Repair
from reconcilers.replace import Replace
from reconcilers.restore import Restore
from reconcilers.thaw import Thaw

_ALL: tuple[Reconciler, ...] = (Archive(), Replace(), Thaw(), Restore(), Recover(), Repair(),
                                Purge(), Recreate())
RECONCILERS: dict[str, Reconciler] = {reconciler.name: reconciler for reconciler in _ALL}


class Named(Protocol):
    """Anything that names the reconcilers carrying it out (a plan item, a request)."""

    @property
    def reconcilers(self) -> tuple[str, ...]: ...


def chain(item: Named) -> tuple[Reconciler, ...]:
    """The reconcilers for ``item``, in order; empty when it names none, or one this version
    of karchive does not have (the executor then refuses the item)."""
    found = tuple(RECONCILERS[name] for name in item.reconcilers if name in RECONCILERS)
    return found if found and len(found) == len(item.reconcilers) else ()


def needs_of(name: str) -> Needs:
    """What the reconciler ``name`` needs, the reconcilers it runs itself included."""
    seen: set[str] = set()
    total = Needs()
    todo = [name]
    while todo:
        current = todo.pop(0)
        if current in seen:
            continue
        seen.add(current)
        reconciler = RECONCILERS[current]
        total = total | reconciler.needs
        todo += list(reconciler.uses)
    return total


def all_needs(names: Iterable[str] | None = None) -> Needs:
    """What every registered reconciler (or those of ``names``) needs together."""
    total = Needs()
    for name in RECONCILERS if names is None else names:
        total = total | needs_of(name)
    return total
