"""Which reconcilers run a plan item: an explicit table, no import side effects.

An item from ``original`` to ``placeholder`` carries the archive steps and the replace steps
(``policies.plan``): it runs archive, then replace, in that order, each idempotent.
"""

from __future__ import annotations

from policies.plan import Action, PlanItem
from reconcilers.archive import Archive
from reconcilers.base import Reconciler
from reconcilers.purge import Purge
from reconcilers.recover import Recover
from reconcilers.repair import Repair
from reconcilers.replace import Replace
from reconcilers.restore import Restore
from reconcilers.thaw import Thaw

RECONCILERS: dict[Action, Reconciler] = {
    Action.ARCHIVE: Archive(),
    Action.REPLACE: Replace(),
    Action.THAW: Thaw(),
    Action.RESTORE: Restore(),
    Action.RECOVER: Recover(),
    Action.REPAIR: Repair(),
    Action.DELETE: Purge(),  # archives (and verifies) everything itself before deleting
}


def chain(item: PlanItem) -> tuple[Reconciler, ...]:
    """The reconcilers for ``item``, in order; empty for an item apply does not execute."""
    if item.action is Action.REPLACE and "upload" in item.steps:
        return (RECONCILERS[Action.ARCHIVE], RECONCILERS[Action.REPLACE])
    found = RECONCILERS.get(item.action)
    return (found,) if found is not None else ()
