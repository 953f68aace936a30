"""Owner notices in the pipeline, end to end over real servers: ``karchive plan`` and ``apply``
(in process, the real CLI) and the daemon's cycle against the sandbox — the real KalturaClient
over HTTP, boto3 over HTTP to its S3, smtplib to its SMTP sink.

The plan shows ``✉ notify`` lines and holds every swap until the owner's grace period is over;
apply sends one message per owner (recorded only once accepted), archives what it may, and
swaps once the sandbox's clock (Kaltura's, which notices run on) has moved past the period. A
play, an exemption or a policy change that no longer selects an entry cancels its notice; an
owner with no address or a refused one keeps their entries held, and is reported — with the
addresses from Kaltura's users or from a real slapd's ``mail``. Plan, ``health``, ``stats`` and
``/metrics`` count the held entries alike, and a saved plan sends the notices it shows.
"""

from __future__ import annotations

import csv
import io
import json
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ldap3 import MODIFY_ADD, Connection, Server
from ldap3.utils.dn import escape_rdn
from notice_world import PREFIX, policy_text
from slapd import PEOPLE, ROOT_DN, ROOT_PASSWORD, SUFFIX, Person, Slapd

from controller.adapters.kaltura.session import KalturaSession
from controller.adapters.kaltura.write import KalturaWriter
from controller.cli import main
from controller.runtime.daemon import Daemon, DaemonSettings
from controller.runtime.metrics import Metrics
from policies.loader import parse_policy
from sandbox.runner import Sandbox

DAY = 86400
RULE = """placeholder: {placeholder}
rules:
  - name: old-lectures
    match: {{unplayed_for: {age}, media_types: [video]}}
    state: placeholder
limits: {{max_replace_share: 1.0}}
"""


class World:
    """A small sandbox, a policy file for it with notices, and the CLI in process."""

    def __init__(self, sandbox: Sandbox, folder: Path, capsys: pytest.CaptureFixture[str]):
        self.sandbox = sandbox
        self.folder = folder
        self.capsys = capsys
        self.policy = folder / "policy.yaml"
        self.write_policy()

    def write_policy(self, age: str = "1y") -> None:
        env = self.sandbox.env()
        rule = RULE.format(placeholder=env["KARCHIVE_PLACEHOLDER"], age=age)
        self.policy.write_text(policy_text(env, self.folder, rule))

    def cli(self, *args: str) -> tuple[int, str]:
        self.capsys.readouterr()
        code = main([args[0], "-f", str(self.policy), *args[1:]])
        return code, self.capsys.readouterr().out

    def plan(self) -> dict[str, Any]:
        code, out = self.cli("plan", "--json", "--quiet")
        assert code == 0, out
        document: dict[str, Any] = json.loads(out)
        return document

    def apply(self) -> str:
        code, out = self.cli("apply", "--auto-approve", "--quiet")
        assert code in (0, 1), out  # 1: the sandbox's unhealthy entries are reported
        return out

    def apply_file(self, saved: Path) -> str:
        code, out = self.cli("apply", str(saved), "--auto-approve", "--quiet")
        assert code in (0, 1), out
        return out

    def advance(self, seconds: float) -> None:
        self.sandbox.backend.clock.advance(seconds)  # type: ignore[union-attr]

    def emails(self) -> dict[str, str]:
        backend: Any = self.sandbox.backend
        with backend.lock:
            return {u.id: u.email for u in backend.users.values() if u.email}

    def tags(self, entry_id: str) -> set[str]:
        backend: Any = self.sandbox.backend
        with backend.lock:
            return {t.strip() for t in backend.entries[entry_id].tags.split(",") if t.strip()}

    def markers(self) -> set[str]:
        """Entry ids with a notice marker in the archive."""
        listed = self.sandbox.s3_client().list_objects_v2(Bucket=self.sandbox.bucket,
                                                          Prefix=PREFIX)
        return {obj["Key"][len(PREFIX):].split("/")[0] for obj in listed.get("Contents", ())
                if "/notice/" in obj["Key"]}

    def mail(self) -> list[Any]:
        return self.sandbox.smtp.messages()  # type: ignore[union-attr]


@pytest.fixture
def world(make_sandbox: Callable[..., Sandbox], tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> World:
    sandbox = make_sandbox(entries=40, seed=7, max_size=256 << 10, conversion_delay=0.0)
    for name, value in sandbox.env().items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    return World(sandbox, tmp_path, capsys)


def _owners(document: dict[str, Any]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for notice in document["notices"]:
        found.setdefault(notice["owner"], set()).add(notice["entry_id"])
    return found


def _by_action(document: dict[str, Any], action: str) -> dict[str, dict[str, Any]]:
    return {i["entry_id"]: i for i in document["items"] if i["action"] == action}


def test_told_once_per_owner_held_through_the_grace_period_then_swapped(world: World) -> None:
    first = world.plan()
    owners = _owners(first)
    selected = set().union(*owners.values())
    assert len(selected) > 5 and any(len(ids) > 1 for ids in owners.values())
    # Nothing is swapped yet: each selected entry is archived (content kept) with its swap held.
    assert not _by_action(first, "replace")
    archives = _by_action(first, "archive")
    assert {i for i, item in archives.items() if item["notice"] == "notice"} == selected
    assert first["summary"]["notices"] == {"held": len(selected), "in_grace": 0,
                                           "owners": len(owners), "entries": len(selected)}
    assert first["summary"]["observed"]["awaiting_notice"] == len(selected)
    code, text = world.cli("plan", "--quiet")
    assert code == 0 and f"✉ notify {sorted(owners)[0]}: notice of " in text
    assert f"{len(selected)} held for notices, {len(owners)} owners to notify." in text

    emails = world.emails()
    reachable = {o for o in owners if o in emails}
    unreachable = set(owners) - reachable
    assert reachable and unreachable  # the sandbox seeds owners without an address
    out = world.apply()
    for owner in sorted(reachable):
        assert f"✉ notice sent to {owner} ({len(owners[owner])} entr" in out
    for owner in sorted(unreachable):
        assert f"✉ notice NOT sent to {owner} ({len(owners[owner])} entr" in out
        assert "no address" in out
    mail = world.mail()
    assert len(mail) == len(reachable)  # one message per owner, all their entries in it
    for message in mail:
        body = message.get_body(("plain",)).get_content()
        [owner] = [o for o in reachable if emails[o] in message["X-Envelope-To"]]
        assert {e for e in selected if e in body} == owners[owner]
    told = set().union(*(owners[o] for o in reachable))
    assert world.markers() == told

    # In the grace period: held with the date it becomes due; nobody is told twice.
    second = world.plan()
    held = _by_action(second, "hold")
    assert {i for i, item in held.items() if item["notice"] == "grace"} == told
    assert all(item["due_at"] >= first["planned_at"] + 30 * DAY - 5 for i, item in held.items()
               if i in told)
    assert set(_owners(second)) == unreachable
    assert second["summary"]["observed"]["in_grace"] == len(told)
    world.apply()
    assert len(world.mail()) == len(reachable)

    # Kaltura's clock moves past the grace period: the swaps of the told entries run, the
    # others still wait for a notice their owners never got.
    world.advance(31 * DAY)
    due = world.plan()
    assert set(_by_action(due, "replace")) == told
    world.apply()
    assert all("flavors_deleted" in world.tags(entry) for entry in told)
    assert not any("flavors_deleted" in world.tags(entry) for entry in selected - told)
    assert {i for i, item in _by_action(world.plan(), "hold").items()
            if item["notice"] == "notice"} == selected - told


def _play(sandbox: Sandbox, entry_id: str) -> None:
    request = urllib.request.Request(
        f"{sandbox.kaltura.url}/admin/play", method="POST",  # type: ignore[union-attr]
        data=json.dumps({"entryId": entry_id}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10):
        pass


def test_a_play_an_exemption_or_a_policy_change_cancels_the_notice(world: World) -> None:
    world.apply()
    told = world.markers()
    assert len(told) >= 3
    played, exempted, *rest = sorted(told)
    _play(world.sandbox, played)
    policy = parse_policy(world.policy.read_text(), str(world.policy), base_dir=world.folder,
                          environ={})
    KalturaWriter(KalturaSession(policy.kaltura)).add_tags(exempted, frozenset({"archive_exempt"}))
    world.apply()  # the records of both are dropped; the others stand
    assert world.markers() == set(rest)

    # A policy that no longer selects them: every record goes.
    world.write_policy(age="50y")
    world.apply()
    assert world.markers() == set()
    # Selected again past the old grace period: a new notice, never a swap on the old one.
    world.write_policy()
    world.advance(31 * DAY)
    again = world.plan()
    assert not _by_action(again, "replace")
    assert set(rest) <= set().union(*_owners(again).values())


def test_a_refused_address_holds_its_entries_and_the_daemon_counts_it(world: World) -> None:
    emails = world.emails()
    owners = _owners(world.plan())
    reachable = sorted(o for o in owners if o in emails)
    bounced = reachable[0]
    world.sandbox.smtp.refuse([emails[bounced]])  # type: ignore[union-attr]
    metrics = Metrics()
    daemon = Daemon(DaemonSettings(world.policy, interval=60.0, state_dir=world.folder / "s"),
                    metrics)
    assert daemon.cycle("test")
    sent = metrics.value("karchive_notices_sent_total")
    assert sent == len(reachable) - 1
    assert metrics.value("karchive_notices_failed_total", {"reason": "bounced"}) == 1
    assert metrics.value("karchive_notices_failed_total", {"reason": "no_address"}) == \
        len(owners) - len(reachable)
    # One message per owner per cycle, and once: the next cycle tells nobody new.
    assert daemon.cycle("test")
    assert metrics.value("karchive_notices_sent_total") == sent
    told = set().union(*(owners[o] for o in reachable[1:]))
    assert metrics.value("karchive_entries_in_grace") == len(told)
    assert metrics.value("karchive_entries_awaiting_notice") == \
        len(set().union(*owners.values())) - len(told)
    world.advance(31 * DAY)
    assert daemon.cycle("test")
    assert not any("flavors_deleted" in world.tags(entry) for entry in owners[bounced])
    assert all("flavors_deleted" in world.tags(entry) for entry in told)


def test_plan_health_stats_and_metrics_count_the_held_entries_alike(world: World) -> None:
    world.apply()  # some owners told (in grace), the others not (awaiting a notice)
    summary = world.plan()["summary"]
    code, text = world.cli("stats", "--format", "json", "--quiet")
    stats = json.loads(text)
    code, text = world.cli("health", "--quiet")
    rows = list(csv.DictReader(io.StringIO(text), delimiter="\t"))
    metrics = Metrics()
    Daemon(DaemonSettings(world.policy, plan_only=True, state_dir=world.folder / "s"),
           metrics).cycle("test")
    observed = summary["observed"]
    grace, awaiting = observed["in_grace"], observed["awaiting_notice"]
    assert grace > 0 and awaiting > 0
    assert stats["held_for_notices"] == {"in_grace": grace, "awaiting_notice": awaiting}
    assert summary["notices"]["held"] == grace + awaiting
    assert summary["notices"]["in_grace"] == grace
    statuses = Counter(row["notice"] for row in rows)
    assert statuses["grace"] + statuses["remind"] == grace and statuses["notice"] == awaiting
    assert all(row["notice_due"] for row in rows if row["notice"] in ("grace", "notice"))
    assert metrics.value("karchive_entries_in_grace") == grace
    assert metrics.value("karchive_entries_awaiting_notice") == awaiting


def test_a_saved_plan_sends_the_notices_it_shows(world: World) -> None:
    saved = world.folder / "plan.json"
    code, _ = world.cli("plan", "--out", str(saved), "--quiet")
    assert code == 0
    shown = _owners(json.loads(saved.read_text()))
    emails = world.emails()
    out = world.apply_file(saved)
    for owner in (o for o in shown if o in emails):
        assert f"✉ notice sent to {owner}" in out
    assert len(world.mail()) == sum(1 for o in shown if o in emails)
    assert world.markers() == set().union(*(ids for o, ids in shown.items() if o in emails))
    # Applied again, the same file tells nobody twice.
    world.apply_file(saved)
    assert len(world.mail()) == sum(1 for o in shown if o in emails)


def test_addresses_from_the_directory_mail_attribute(
        world: World, tmp_path_factory: pytest.TempPathFactory) -> None:
    owners = _owners(world.plan())
    uids = sorted({o.split("@")[0] for o in owners})
    with Slapd([Person(uid, uid.title()) for uid in uids]) as server:
        conn = Connection(Server(server.url), ROOT_DN, ROOT_PASSWORD, auto_bind=True)
        without = uids[0]
        for uid in uids[1:]:
            conn.modify(f"uid={escape_rdn(uid)},{PEOPLE}",
                        {"mail": [(MODIFY_ADD, [f"{uid}@people.example.edu"])]})
            assert conn.result["result"] == 0, conn.result
        conn.unbind()
        text = world.policy.read_text().replace(
            "  keep: {", "  addresses: directory\n  keep: {")
        text += f'directory: {{url: "{server.url}", base: "{SUFFIX}"}}\n'
        world.policy.write_text(text)
        out = world.apply()
    mail = world.mail()
    assert len(mail) == len(uids) - 1
    assert all(m["To"].addresses[0].domain == "people.example.edu" for m in mail)
    [unreachable] = [o for o in owners if o.split("@")[0] == without]
    assert f"✉ notice NOT sent to {unreachable}" in out
    assert world.markers() == set().union(*(ids for o, ids in owners.items()
                                            if o != unreachable))


def test_an_owner_is_told_when_a_played_placeholder_comes_back(world: World) -> None:
    text = world.policy.read_text()
    text = text.replace("  keep: {", "  tell_restored: true\n  keep: {")
    text = text.replace("storage: {bucket:", "storage: {storage_class: STANDARD_IA, bucket:")
    world.policy.write_text(text)
    world.apply()
    world.advance(31 * DAY)
    world.apply()
    emails = world.emails()
    swapped = sorted(e for e in world.markers() if "flavors_deleted" in world.tags(e))
    entry_id = swapped[0]
    backend: Any = world.sandbox.backend
    with backend.lock:
        owner, name = backend.entries[entry_id].user_id, backend.entries[entry_id].name
    before = len(world.mail())
    _play(world.sandbox, entry_id)
    out = world.apply()
    assert f"✉ told {owner} that 1 of their videos are back" in out
    assert "flavors_deleted" not in world.tags(entry_id)
    [back] = world.mail()[before:]
    assert back["To"].addresses[0].addr_spec == emails[owner]
    assert str(back["Subject"]).strip() == "1 of your videos is back in Kaltura"
    body = back.get_body(("plain",)).get_content()
    assert name in body and entry_id in body and "X-Karchive-Notice" not in back
    # Told once: the next run has nothing to restore and tells nobody.
    world.apply()
    assert len(world.mail()) == before + 1
