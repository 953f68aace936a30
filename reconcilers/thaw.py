"""thaw: ask S3 to restore a GLACIER / DEEP_ARCHIVE copy so that restore can read it.

``RestoreObject`` with the policy's tier and days. 202 (requested), 200 (already restored: the
days are extended) and 409 RestoreAlreadyInProgress all mean the thaw is on its way
(reference/s3-glacier.md); the restore reconciler takes over once HEAD says readable.
"""

from __future__ import annotations

from policies.errors import PermanentError
from policies.observed import RestoreStatus
from reconcilers import content, ports
from reconcilers.base import Context, Needs, Outcome

ACTION = "thaw"


class Thaw:
    name = ACTION
    needs = Needs(steps=("thaw",), s3=ports.S3_READ | ports.S3_LIST | ports.S3_THAW)
    uses: tuple[str, ...] = ()

    def run(self, entry_id: str, ctx: Context) -> Outcome:
        copy = content.find_copy(ctx, entry_id)
        if copy is None:
            raise PermanentError(f"{entry_id}: no archive copy to thaw")
        if copy.info.readable:
            return Outcome.skipped(f"{copy.key} is readable ({copy.info.storage_class})")
        before = {"key": copy.key, "tier": ctx.settings.restore_tier,
                  "days": ctx.settings.restore_days}
        with ctx.step(entry_id, ACTION, "thaw", before=before) as after:
            answer = ctx.archive.request_restore(
                copy.key, days=ctx.settings.restore_days, tier=ctx.settings.restore_tier)
            after["answer"] = answer
        return Outcome.done(f"thaw {answer} ({ctx.settings.restore_tier}, "
                            f"{ctx.settings.restore_days} days)")


def thaw_first(ctx: Context, entry_id: str, copy: content.Copy, then: str) -> Outcome | None:
    """A copy that cannot be read yet: the thaw requested (frozen) or waited for (thawing),
    and ``then`` (restore, recovery) follows; None once the copy is readable."""
    if copy.info.restore is RestoreStatus.FROZEN:
        Thaw().run(entry_id, ctx)
        return Outcome.waiting(f"thaw requested; {then} follows", ctx.settings.thaw_poll,
                               thawing=True)
    if not copy.info.readable:
        return Outcome.waiting("waiting for the thaw to finish", ctx.settings.thaw_poll,
                               thawing=True)
    return None
