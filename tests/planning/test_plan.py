"""The diff: every transition, fingerprints, the summary, rendering and the plan file."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from planning_factory import (
    BOTH_TAGS,
    NOW,
    PLACEHOLDER_SIZE,
    VIDEO_SIZE,
    archive,
    archived,
    entry,
    flavor,
    placeholder,
    placeholder_flavor,
)

from policies.observed import TAG_ARCHIVED, TAG_REPLACED, ObservedEntry, RestoreStatus
from policies.plan import (
    CHAINS,
    Action,
    Plan,
    PlanFormatError,
    PlanItem,
    diff,
    fingerprint,
    stale_items,
)
from policies.schema import DesiredState, Policy
from policies.state import ObservedState


def policy(state: str | None, **changes: Any) -> Policy:
    document: dict[str, Any] = {
        "version": 1,
        "kaltura": {"service_url": "http://k", "partner_id": 1, "admin_secret": "s"},
        "storage": {"bucket": "bkt"},
        "placeholder": "https://cdn.example/placeholder.mp4",
        "allow_delete": True,
        "rules": [] if state is None else [{"name": "r", "state": state}],
    }
    return Policy.model_validate(document | changes)


def only_item(subject: ObservedEntry, state: str | None) -> PlanItem | None:
    plan = diff([subject], policy(state), NOW, PLACEHOLDER_SIZE)
    assert plan.observed_count == 1
    return plan.items[0] if plan.items else None


ARCHIVE, REPLACE, BOTH = ("archive",), ("replace",), ("archive", "replace")
FROZEN, THAWING, THAWED, READABLE = (RestoreStatus.FROZEN, RestoreStatus.THAWING,
                                     RestoreStatus.THAWED, RestoreStatus.READABLE)


@pytest.mark.parametrize(
    ("subject", "want", "action", "reconcilers", "size"),
    [
        (entry(), "archived", Action.ARCHIVE, ARCHIVE, VIDEO_SIZE),
        # Original to placeholder: archive and replace in one item, counted as a replace.
        (entry(), "placeholder", Action.REPLACE, BOTH, VIDEO_SIZE),
        (archived(), "placeholder", Action.REPLACE, REPLACE, 0),
        # Edited after archival (same size, new flavor): archived again, never replaced.
        (archived(flavors=(flavor(flavor_id="0_edited01"),)), "archived", Action.ARCHIVE,
         ARCHIVE, VIDEO_SIZE),
        (archived(flavors=(flavor(flavor_id="0_edited01"),)), "placeholder", Action.REPLACE,
         BOTH, VIDEO_SIZE),
        (placeholder(archive=archive(restore=FROZEN)), "archived", Action.THAW, ("thaw",),
         VIDEO_SIZE),
        (placeholder(archive=archive(restore=THAWING)), "archived", Action.WAIT, (), 0),
        (placeholder(archive=archive(restore=THAWED)), "archived", Action.RESTORE,
         ("restore",), VIDEO_SIZE),
        (placeholder(archive=archive(restore=READABLE)), "archived", Action.RESTORE,
         ("restore",), VIDEO_SIZE),
        # A stale tag with no copy: the archive re-tags, no separate repair needed.
        (entry(tags=frozenset({TAG_ARCHIVED})), "archived", Action.ARCHIVE, ARCHIVE, VIDEO_SIZE),
        # An interrupted archive (copy, no tag): just the tag.
        (entry(archive=archive()), "archived", Action.REPAIR, ("repair",), 0),
        (entry(archive=archive()), "placeholder", Action.REPAIR, ("repair",), 0),
        (placeholder(flavors=(flavor(flavor_id="0_back0001"),)), "archived", Action.REPAIR,
         ("repair",), 0),
        (archived(replacement_status=1), "placeholder", Action.WAIT, (), 0),
        # A deletion archives (and verifies) everything itself first.
        (entry(), "deleted", Action.DELETE, ("delete",), VIDEO_SIZE),
        (archived(), "deleted", Action.DELETE, ("delete",), 0),
        (placeholder(), "deleted", Action.DELETE, ("delete",), 0),
        (entry(status=-1), "archived", Action.UNHEALTHY, (), 0),
    ],
)
def test_transitions(subject: ObservedEntry, want: str, action: Action,
                     reconcilers: tuple[str, ...], size: int) -> None:
    item = only_item(subject, want)
    assert item is not None
    assert (item.action, item.reconcilers, item.bytes) == (action, reconcilers, size)
    assert not reconcilers or reconcilers in CHAINS
    assert item.to_state is DesiredState(want)
    assert item.rule == "r"
    assert item.fingerprint == fingerprint(subject)


@pytest.mark.parametrize(
    ("subject", "want"),
    [
        (archived(), "archived"),
        (placeholder(), "placeholder"),
        (placeholder(), None),  # placeholder -> unmanaged: nothing
        (entry(), None),
        (archived(), None),
        # Unmanaged entries get no repairs, and unhealthy ones karchive never touched are quiet.
        (entry(archive=archive()), None),
        (entry(status=-1), None),
    ],
)
def test_no_item_when_the_entry_is_where_the_policy_wants_it(subject: ObservedEntry,
                                                             want: str | None) -> None:
    assert only_item(subject, want) is None


@pytest.mark.parametrize(
    "subject",
    [
        entry(tags=BOTH_TAGS, flavors=(placeholder_flavor(),)),  # content may be lost
        archived(replacement_status=4),
        placeholder(flavors=(flavor(flavor_id="0_other001", size_bytes=5),)),
    ],
)
def test_unhealthy_entries_karchive_touched_are_reported_even_when_unmanaged(
    subject: ObservedEntry
) -> None:
    item = only_item(subject, None)
    assert item is not None and item.action is Action.UNHEALTHY
    assert item.from_state is ObservedState.UNHEALTHY


def test_a_placeholder_made_by_a_size_rule_stays_a_placeholder() -> None:
    # The rule selects big videos; once swapped, the entry's flavor is the small placeholder.
    # Were it sized by that flavor, the next cycle would restore it and the one after replace it.
    rules = [{"name": "big", "match": {"min_size": "100MB"}, "state": "placeholder"},
             {"name": "rest", "match": {}, "state": "archived"}]
    plan = diff([placeholder()], policy(None, rules=rules), NOW, PLACEHOLDER_SIZE)
    assert plan.items == ()


def test_repair_items_carry_their_tag_changes() -> None:
    item = only_item(placeholder(tags=frozenset({TAG_REPLACED}),
                                 flavors=(flavor(flavor_id="0_back0001"),)), "archived")
    assert item is not None
    assert (item.add_tags, item.remove_tags) == ((TAG_ARCHIVED,), (TAG_REPLACED,))


def test_a_played_placeholder_is_thawed_by_restore_on_play() -> None:
    subject = placeholder(last_played_at=NOW - 60)
    plan = diff([subject], policy(None, restore_on_play=True), NOW, PLACEHOLDER_SIZE)
    assert [(i.action, i.rule) for i in plan.items] == [(Action.THAW, "restore_on_play")]
    assert plan.items[0].reason == "played since replaced; thaw the archive copy"


FACT_CHANGES: list[dict[str, Any]] = [
    {"tags": frozenset({"lecture", TAG_ARCHIVED, "new"})},
    {"status": 4},
    {"updated_at": NOW - 1},
    {"flavors": (flavor(flavor_id="0_other001"),)},
    {"flavors": (flavor(size_bytes=VIDEO_SIZE + 1),)},
    {"flavors": (flavor(status=1),)},
    {"archive": archive(key="karchive/0_entry001/original/x.mp4")},
    {"archive": archive(size_bytes=1)},
    {"archive": archive(etag='"other"')},
    {"archive": archive(restore=THAWING)},
    {"archive": None},
    {"replacement_status": 1},
]


@pytest.mark.parametrize("change", FACT_CHANGES)
def test_fingerprint_changes_with_every_relevant_fact(change: dict[str, Any]) -> None:
    assert fingerprint(archived(**change)) != fingerprint(archived())


@pytest.mark.parametrize(
    "change",
    [{"name": "renamed"}, {"plays": 99}, {"last_played_at": NOW}, {"categories": ("X",)},
     {"tags": frozenset({TAG_ARCHIVED, "lecture"})}, {"duration": 1}],
)
def test_fingerprint_ignores_facts_no_transition_depends_on(change: dict[str, Any]) -> None:
    assert fingerprint(archived(**change)) == fingerprint(archived())


def test_fingerprint_is_sha256_hex() -> None:
    value = fingerprint(entry())
    assert len(value) == 64 and int(value, 16) >= 0


def mixed_plan() -> Plan:
    entries = [
        entry(entry_id="0_arch0001"),
        entry(entry_id="0_arch0002", flavors=(flavor(size_bytes=1_288_490_189),)),
        archived(entry_id="0_repl0001"),
        placeholder(entry_id="0_rest0001", archive=archive(restore=READABLE),
                    last_played_at=NOW - 5),
        placeholder(entry_id="0_thaw0001", last_played_at=NOW - 5),
        placeholder(entry_id="0_wait0001", archive=archive(restore=THAWING),
                    last_played_at=NOW - 5),
        entry(entry_id="0_sick0001", tags=BOTH_TAGS, flavors=(placeholder_flavor(),)),
        entry(entry_id="0_fine0001", tags=frozenset({"archive_exempt"})),
    ]
    rules = [{"name": "big", "match": {"min_size": "1GiB"}, "state": "archived"},
             {"name": "old-lectures", "match": {"entry_ids": ["0_repl0001"]},
              "state": "placeholder"},
             {"name": "rest", "match": {"entry_ids": ["0_arch0001"]}, "state": "archived"}]
    return diff(entries, policy(None, rules=rules, restore_on_play=True), NOW, PLACEHOLDER_SIZE)


def test_render_opens_with_the_table_is_terraform_like_and_ends_with_the_summary() -> None:
    # Thaws first: a cycle its limits cut short still starts every one of them.
    assert mixed_plan().render() == "\n".join([
        "Plan for 8 entries observed at 2026-05-28 20:26 UTC:",
        "",
        "  action     entries        size",
        "  thaw             1   286.1 MiB",
        "  archive          2     1.5 GiB",
        "  replace          1",
        "  restore          1   286.1 MiB",
        "  total            5     2.0 GiB",
        "",
        "  rule               entries        size",
        "  big                      1     1.2 GiB",
        "  old-lectures             1",
        "  rest                     1   286.1 MiB",
        "  restore_on_play          2   572.2 MiB",
        "",
        "  Not acted on:",
        "    1 unhealthy that karchive manages (the ! lines below)",
        "    1 waiting on a thaw or on Kaltura",
        "",
        "* thaw 0_thaw0001 (rule: restore_on_play, 286.1 MiB)",
        "+ archive 0_arch0001 (rule: rest, 286.1 MiB)",
        "+ archive 0_arch0002 (rule: big, 1.2 GiB)",
        "~ replace 0_repl0001 (rule: old-lectures)",
        "← restore 0_rest0001 (rule: restore_on_play, 286.1 MiB)",
        "! unhealthy 0_sick0001: placeholder with no archive copy: content may be lost",
        ". wait 0_wait0001: played since replaced; waiting for the thaw to finish "
        "(rule: restore_on_play)",
        "",
        "Plan: 2 to archive, 1 to replace, 1 to restore, 1 to thaw. 1 unhealthy, 1 waiting.",
    ])


def body(text: str) -> list[str]:
    """A rendered plan's lines after its opening table."""
    lines = text.splitlines()
    if not lines[0].startswith("Plan for "):
        return lines
    rest = lines[1:]
    return rest[next(i for i, line in enumerate(rest) if line and not line.startswith("  ")):]


@pytest.mark.parametrize(
    ("subject", "first"),
    [
        (entry(), "archive 286.1 MiB first"),
        (archived(flavors=(flavor(flavor_id="0_edited01"),)), "re-archive 286.1 MiB first"),
        (archived(archive=archive(key="0_entry001", layout="legacy", flavor_id=None)),
         "verify the old copy or archive 286.1 MiB first"),
    ],
)
def test_a_replace_says_what_it_archives_first_and_counts_its_bytes(subject: ObservedEntry,
                                                                    first: str) -> None:
    plan = diff([subject], policy("placeholder"), NOW, PLACEHOLDER_SIZE)
    item = plan.items[0]
    assert (item.action, item.bytes, plan.total_bytes) == (Action.REPLACE, VIDEO_SIZE, VIDEO_SIZE)
    assert body(plan.render())[0] == f"~ replace 0_entry001 (rule: r, {first})"


def test_render_colours_deletions_red_on_a_terminal() -> None:
    plan = diff([archived()], policy("deleted"), NOW, PLACEHOLDER_SIZE)
    header, first = body(plan.render(color=True))[:2]
    assert header.startswith("\x1b[1;31m1 entries will be DELETED from Kaltura")
    assert first == "\x1b[1;31m- delete 0_entry001 (rule: r)\x1b[0m"
    assert "\x1b" not in plan.render()


def test_render_shows_deletions_apart_after_the_other_changes() -> None:
    rules = [{"name": "keep", "match": {"entry_ids": ["0_a"]}, "state": "archived"},
             {"name": "purge", "match": {"entry_ids": ["0_b", "0_c"]}, "state": "deleted"}]
    entries = [entry(entry_id="0_a"), archived(entry_id="0_b"), entry(entry_id="0_c")]
    lines = body(diff(entries, policy(None, rules=rules), NOW, PLACEHOLDER_SIZE).render())
    assert lines[0].startswith("+ archive 0_a")
    assert lines[1] == ""
    assert lines[2] == ("2 entries will be DELETED from Kaltura (each archived completely and "
                        "verified first):")
    assert [line.split()[2] for line in lines[3:5]] == ["0_b", "0_c"]
    assert all(line.startswith("- delete") for line in lines[3:5])
    assert lines[-1].endswith("2 to delete.")


@pytest.mark.parametrize(
    ("entries", "state", "summary"),
    [
        ([], "archived", "No changes."),
        ([archived()], "archived", "No changes."),
        ([entry(status=-1)], "archived", "No changes. 1 unhealthy."),
        ([entry(), entry(entry_id="0_b")], "archived",
         "Plan: 2 to archive, 0 to replace, 0 to restore."),
        ([entry(archive=archive())], "archived",
         "Plan: 0 to archive, 0 to replace, 0 to restore, 1 to repair."),
        ([entry(), archived(entry_id="0_b")], "deleted",
         "Plan: 0 to archive, 0 to replace, 0 to restore, 2 to delete."),
    ],
)
def test_summary(entries: list[ObservedEntry], state: str, summary: str) -> None:
    plan = diff(entries, policy(state), NOW, PLACEHOLDER_SIZE)
    assert plan.summary() == summary
    assert plan.has_changes is summary.startswith("Plan:")


def test_json_round_trip_is_exact() -> None:
    plan = mixed_plan()
    text = plan.to_json()
    document = json.loads(text)
    assert document["format_version"] == 4
    assert document["target"] == {"partner_id": plan.target.partner_id,
                                  "location": plan.target.location,
                                  "prefix": plan.target.prefix}
    assert document["summary_text"] == plan.summary()
    assert document["observed_count"] == 8
    assert Plan.from_json(text) == plan


def test_the_json_summary_holds_the_tables_figures() -> None:
    summary = json.loads(mixed_plan().to_json())["summary"]
    assert summary["actions"] == {
        "archive": {"count": 2, "bytes": VIDEO_SIZE + 1_288_490_189},
        "replace": {"count": 1, "bytes": 0},
        "thaw": {"count": 1, "bytes": VIDEO_SIZE},
        "restore": {"count": 1, "bytes": VIDEO_SIZE},
    }
    assert summary["changes"] == {"count": 5, "bytes": 3 * VIDEO_SIZE + 1_288_490_189}
    assert summary["rules"]["restore_on_play"] == {"count": 2, "bytes": 2 * VIDEO_SIZE}
    assert summary["unhealthy"] == {"managed": 1, "unmanaged": 0}
    assert summary["waiting"] == 1
    assert summary["this_cycle"]["admitted"] == summary["changes"]
    assert summary["this_cycle"]["deferred"] == {}
    observed = summary["observed"]
    assert observed["entries"] == 8
    # The thawing placeholder counts as restoring; the others by their classification.
    assert observed["by_state"] == {"original": 3, "archived": 1, "placeholder": 2,
                                    "restoring": 1, "unhealthy": 1}
    assert observed["by_desired"] == {"unmanaged": 2, "archived": 5, "placeholder": 1,
                                      "deleted": 0}
    assert observed["thaws_in_progress"] == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not a plan file: invalid JSON at line 1; write it with 'karchive plan --out FILE'"),
        ("[]", "not a plan file: expected a JSON object"),
        ('{"format_version": 1}', "plan format_version 1 is not supported (this karchive "
         "reads 4); plan again"),
        ('{"format_version": 4, "planned_at": 1}', "damaged plan file ('items'); plan again"),
        ('{"format_version": 4, "planned_at": 1, "observed_count": 1, "items": []}',
         "damaged plan file ('target'); plan again"),
        ('{"format_version": 4, "planned_at": true, "observed_count": 1, "items": [], '
         '"target": {"partner_id": 1, "location": "b", "prefix": ""}}',
         "damaged plan file (expected a whole number, got True); plan again"),
        ('{"format_version": 4, "planned_at": 1, "observed_count": 1, "items": [], '
         '"target": {"partner_id": 1, "location": "b"}}',
         "damaged plan file (target must be {partner_id, location, prefix}); plan again"),
        ("[" * 100_000, "not a plan file: JSON nested too deeply"),
        ('{"format_version": 4, "planned_at": 1, "observed_count": 0, "items": [], '
         '"target": {"partner_id": 1, "location": "b", "prefix": ""}}',
         "damaged plan file ('summary'); plan again"),
    ],
)
def test_unreadable_plan_files_are_refused_in_one_line(text: str, message: str) -> None:
    with pytest.raises(PlanFormatError) as caught:
        Plan.from_json(text)
    assert str(caught.value).startswith(message)


def test_a_plan_file_with_unknown_item_keys_is_refused() -> None:
    document = json.loads(mixed_plan().to_json())
    document["items"][0]["surprise"] = 1
    with pytest.raises(PlanFormatError, match="unknown item keys"):
        Plan.from_json(json.dumps(document))


def test_stale_items_are_those_whose_entry_changed() -> None:
    entries = [entry(entry_id="0_aaaaaaaa"), entry(entry_id="0_bbbbbbbb"),
               archived(entry_id="0_cccccccc")]
    saved = diff(entries, policy("placeholder"), NOW, PLACEHOLDER_SIZE)
    assert stale_items(saved, diff(entries, policy("placeholder"), NOW + 60,
                                   PLACEHOLDER_SIZE)) == ()
    # One was edited, one was archived by someone else meanwhile.
    changed = [replace(entries[0], updated_at=NOW + 1),
               archived(entry_id="0_bbbbbbbb"), entries[2]]
    fresh = diff(changed, policy("placeholder"), NOW + 60, PLACEHOLDER_SIZE)
    assert [item.entry_id for item in stale_items(saved, fresh)] == ["0_aaaaaaaa", "0_bbbbbbbb"]


def test_items_are_ordered_safest_first_then_by_entry() -> None:
    actions = [item.action for item in mixed_plan().items]
    assert actions == [Action.THAW, Action.ARCHIVE, Action.ARCHIVE, Action.REPLACE,
                       Action.RESTORE, Action.UNHEALTHY, Action.WAIT]
    assert mixed_plan().total_bytes == 2 * VIDEO_SIZE + 1_288_490_189 + VIDEO_SIZE


def test_an_empty_plan_round_trips() -> None:
    empty = diff([], policy("archived"), NOW, PLACEHOLDER_SIZE)
    assert empty.observed_count == 0
    assert json.loads(empty.to_json())["items"] == []
    assert Plan.from_json(empty.to_json()) == empty
