"""Desired state: what the policy wants for one entry.

The second step of the pure core, after the adapters' observation and beside
``policies.state`` (what the entry is): exemptions first (the policy's, then an owner's keep tag
that has not lapsed: ``policies.keeplink``), then the rules in order (first match wins), then
``restore_on_play``. The planner diffs this decision against the observed state.
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.keeplink import kept
from policies.observed import TAG_REPLACED, ObservedEntry
from policies.schema import DesiredState, Policy
from policies.selectors import compile_match, in_categories

EXEMPT = "exempt"  # the Decision.rule of an exempt entry
KEPT = "kept"  # the Decision.rule of an entry its owner kept (a keep tag not yet lapsed)
NO_RULE = ""  # no rule matched
RESTORE_ON_PLAY = "restore_on_play"
MEDIA_VIDEO = 1  # KalturaMediaType.VIDEO


@dataclass(frozen=True, slots=True)
class Decision:
    """The desired state of one entry and the rule (or reason) that decided it."""

    state: DesiredState
    rule: str

    @property
    def managed(self) -> bool:
        return self.state is not DesiredState.UNMANAGED


def is_exempt(entry: ObservedEntry, policy: Policy) -> bool:
    """An exemption tag or category: the entry is left alone whatever the rules say."""
    exempt = policy.exemptions
    if not {tag.lower() for tag in entry.tags}.isdisjoint(exempt.tags):
        return True
    return bool(exempt.categories) and in_categories(entry, exempt.categories)


def played_since_swap(entry: ObservedEntry) -> bool:
    """A placeholder someone played after it was swapped in.

    The swap created the placeholder's original flavor, so a lastPlayedAt later than that flavor's
    updatedAt is a play of the placeholder: the viewer wanted the real video. Both are whole
    seconds, so a play in the swap's own second counts too: taken for a play of the placeholder
    it costs one thaw too many; missed, the viewer keeps the placeholder until they play again.
    """
    original = entry.original
    if TAG_REPLACED not in entry.tags or original is None or entry.last_played_at is None:
        return False
    return entry.last_played_at >= original.updated_at


class Decider:
    """The policy fixed at one instant, its rules compiled once: ``decider(entry)`` is
    :func:`desired_state` for a whole catalogue without re-reading the policy per entry."""

    __slots__ = ("policy", "now", "_rules")

    def __init__(self, policy: Policy, now: int) -> None:
        self.policy = policy
        self.now = now
        self._rules = [(rule, compile_match(rule.match, now)) for rule in policy.rules]

    def __call__(self, entry: ObservedEntry) -> Decision:
        # An exempt entry is never touched, not even brought back: the exemption is the owner's.
        if is_exempt(entry, self.policy):
            return Decision(DesiredState.UNMANAGED, EXEMPT)
        # Kept by its owner with a keep link: exempt the same way until the tag's date.
        if kept(entry.tags, self.now):
            return Decision(DesiredState.UNMANAGED, KEPT)
        decision = Decision(DesiredState.UNMANAGED, NO_RULE)
        for rule, holds in self._rules:
            if holds(entry):
                state = rule.state
                # The placeholder is a video: swapping it into an image or audio entry would
                # break that entry, so those are kept archived instead.
                if state is DesiredState.PLACEHOLDER and entry.media_type != MEDIA_VIDEO:
                    state = DesiredState.ARCHIVED
                decision = Decision(state, rule.name)
                break
        # A played placeholder comes back whatever rule matched: someone wants to watch it.
        if self.policy.restore_on_play and played_since_swap(entry):
            return Decision(DesiredState.ARCHIVED, RESTORE_ON_PLAY)
        return decision


def desired_state(entry: ObservedEntry, policy: Policy, now: int) -> Decision:
    """The policy's verdict for ``entry`` at ``now``: exemptions, then the first matching
    rule, then ``restore_on_play``."""
    global _last_decider
    decider = _last_decider
    # Callers loop over a catalogue with one policy and one instant: reuse the compiled rules.
    if decider is None or decider.policy is not policy or decider.now != now:
        decider = _last_decider = Decider(policy, now)
    return decider(entry)


_last_decider: Decider | None = None
