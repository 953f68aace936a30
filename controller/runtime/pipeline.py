"""The pipeline: observe → classify once → diff. Every entry point plans through it.

``plan``, ``apply``, the daemon's cycle (``run``) and the reports (``list``, ``count``,
``health``, ``stats``) all call :meth:`Pipeline.run`; ``apply`` and the daemon then hand the
plan to the executor (``runtime/executor.py``), which records what it did in the journal and the
metrics. The stages, and where each lives:

    observe    runtime/observe.py       Kaltura's entries joined with the archive, a page at a time
    classify   policies/state.py        what each entry is        } policies.plan.Assessor,
    decide     policies/desired.py      what the policy wants     } once per entry
    diff       policies/plan.py         PlanBuilder: the items and the census, accumulated
    act        runtime/executor.py      each item through its reconcilers (reconcilers/)
    record     runtime/journal.py, runtime/metrics.py, runtime/state.py

Each entry is classified exactly once; whoever needs more than the plan (a report's rows, the
daemon's thaw clock) receives each :class:`~policies.plan.Assessment` as it is made, through
``each``, and keeps what it needs. The pipeline itself keeps only the plan's items and counts,
never the entries — and past a few thousand items, the items wait on disk
(``runtime/spill.py``) — so a page-by-page observation (and later an incremental index) fits
under the same call with memory flat in the catalogue's size.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controller.compose import Adapters
from controller.runtime.observe import KalturaPages, ObservationStats, Observer, Record
from controller.runtime.progress import ProgressSink
from controller.runtime.spill import SpillingItems
from policies.observed import COLD_CLASSES, ObservedEntry
from policies.plan import Assessment, Assessor, Plan, PlanBuilder
from policies.schema import DesiredState
from policies.state import ObservedState

Select = Callable[[ObservedEntry], bool]
Each = Callable[[Assessment], None]


@dataclass(frozen=True, slots=True)
class Planned:
    """What one pass of the pipeline produced: the plan, and what the observation cost."""

    plan: Plan
    observation: ObservationStats


class Pipeline:
    """Observe → classify → diff over one policy's adapters (``controller/compose.py``)."""

    def __init__(self, adapters: Adapters, *, progress: ProgressSink | None = None,
                 now: int | None = None) -> None:
        self.adapters = adapters
        self.progress = progress
        self.now = now

    def run(self, *, entry_ids: Sequence[str] | None = None,
            filter_overrides: Mapping[str, Any] | None = None, select: Select | None = None,
            limit: int | None = None, each: Each | None = None,
            source: KalturaPages | None = None, record: Record | None = None) -> Planned:
        """One observation and its plan. ``entry_ids``: only these entries (a saved plan's);
        ``filter_overrides``: Kaltura narrows the walk itself; ``select``: only the entries
        it accepts are assessed and counted (a report's filters), at most ``limit`` of them;
        ``each``: receives every assessment; ``source`` and ``record``: Kaltura's side read
        from the daemon's entry index instead of walked, or each walked page handed to it
        (``runtime/index.py``)."""
        policy = self.adapters.policy
        observer = Observer(self.adapters, progress=self.progress, now=self.now,
                            source=source, record=record)
        assess = Assessor(policy, observer.observed_at, observer.placeholder_size,
                          notice_now=observer.notice_now)
        # The items past a few thousand wait on disk (runtime/spill.py): memory stays flat.
        builder = PlanBuilder(policy, observer.observed_at, SpillingItems())
        # A store whose listing carries no restore status gets a HEAD for the copies it decides.
        heads = policy.storage.restore_status != "listing"
        taken = 0
        pages = observer.pages(entry_ids=entry_ids, filter_overrides=filter_overrides)
        for page in pages:
            for entry in page:
                if select is not None and not select(entry):
                    continue
                if limit is not None and taken >= limit:
                    break
                taken += 1
                assessment = assess(entry)
                if heads and restore_status_decides(assessment):
                    # The fresher facts are assessed in its place (once more, for this entry).
                    assessment = assess(observer.refresh(entry))
                builder.add(assessment)
                if each is not None:
                    each(assessment)
            if limit is not None and taken >= limit:
                pages.close()  # nothing more is wanted: stop walking Kaltura
                break
        return Planned(builder.plan(), observer.stats())


def restore_status_decides(assessment: Assessment) -> bool:
    """A cold copy of a placeholder the policy wants back, or of an emptied entry it manages:
    a thaw, a wait, a restore or a recovery hangs on its restore status."""
    copy = assessment.entry.archive
    if copy is None or copy.storage_class not in COLD_CLASSES:
        return False
    found, decision = assessment.observation, assessment.decision
    if found.recoverable:
        return decision.managed
    if found.state is not ObservedState.PLACEHOLDER:
        return False
    return decision.state is DesiredState.ARCHIVED
