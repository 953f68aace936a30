"""The cycle's sending step end to end, over real servers: the sandbox's Kaltura users (the
real KalturaClient), its S3 (boto3 over HTTP) for the record, its SMTP sink for the mail.
Grouped per owner, held when an owner has no address or bounces, told once, due after the grace
period, and a kill between the server's acceptance and the record sends one duplicate, never
none."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

from notice_world import PREFIX, notices_of, policy_for, s3_archive, subject_json, subjects

from controller.adapters.addresses import KalturaAddresses
from controller.adapters.kaltura.session import KalturaSession
from controller.adapters.smtp import Mailer
from controller.runtime.notices import NoticeStore, Outcome, Sending, send_notices, timing
from policies.messages import NOTICE_HEADER
from policies.notices import Status, Subject, assess
from policies.schema import Policy
from sandbox.runner import Sandbox

DAY = 86400
ROOT = Path(__file__).resolve().parents[2]


def sending(sandbox: Sandbox, policy: Policy, clock: Callable[[], float]) -> Sending:
    notices = notices_of(policy)
    return Sending(notices, policy.kaltura.partner_id, policy.restore_on_play,
                   NoticeStore(s3_archive(sandbox), PREFIX), Mailer(notices.smtp),
                   KalturaAddresses(KalturaSession(policy.kaltura)), clock=clock)


def cycle(sandbox: Sandbox, policy: Policy, chosen: list[Subject], now: int):  # type: ignore[no-untyped-def]
    send = sending(sandbox, policy, lambda: now)
    verdicts = assess(chosen, send.store.load(), timing(notices_of(policy)), now)
    try:
        return verdicts, send_notices(verdicts, send, now)
    finally:
        send.mailer.close()


def test_owners_are_told_once_each_and_the_change_waits_out_the_grace_period(
        make_sandbox: Callable[..., Sandbox], tmp_path: Path) -> None:
    sandbox = make_sandbox(entries=60, seed=7)
    policy = policy_for(sandbox.env(), tmp_path)
    chosen = subjects(sandbox, 12)
    owners = {s.owner for s in chosen}
    assert 1 < len(owners) < len(chosen)  # some owners have several entries
    now = int(sandbox.backend.clock.now())  # type: ignore[union-attr]

    verdicts, report = cycle(sandbox, policy, chosen, now)
    assert {v.status for v in verdicts} == {Status.NOTICE}
    assert report.count(Outcome.SENT) == len(owners) and not report.errors
    mail = sandbox.smtp.messages()  # type: ignore[union-attr]
    assert len(mail) == len(owners)
    for message in mail:
        listed = {s.entry_id for s in chosen if s.entry_id in message.get_body(
            ("plain",)).get_content()}  # type: ignore[union-attr]
        owner = {s.owner for s in chosen if s.entry_id in listed}
        assert len(owner) == 1 and listed == {s.entry_id for s in chosen if s.owner in owner}
        assert "media-team@example.edu" in message["X-Envelope-To"]
        assert "https://karchive.example.edu/keep/" in message.get_body(
            ("plain",)).get_content()  # type: ignore[union-attr]

    # Every later cycle inside the grace period sends nothing and allows nothing.
    for later in (now + 3600, now + 20 * DAY):
        verdicts, report = cycle(sandbox, policy, chosen, later)
        assert {v.status for v in verdicts} == {Status.GRACE} and report.owners == ()
        assert not any(v.allows_change for v in verdicts)
    assert len(sandbox.smtp.messages()) == len(owners)  # type: ignore[union-attr]
    # A reminder 7 days before, once; then the change is due.
    verdicts, report = cycle(sandbox, policy, chosen, now + 23 * DAY + 60)
    assert {v.status for v in verdicts} == {Status.REMIND}
    assert report.count(Outcome.SENT) == len(owners)
    verdicts, _ = cycle(sandbox, policy, chosen, now + 23 * DAY + 120)
    assert {v.status for v in verdicts} == {Status.GRACE}
    verdicts, _ = cycle(sandbox, policy, chosen, now + 30 * DAY + 60)
    assert all(v.allows_change for v in verdicts)
    assert len(sandbox.smtp.messages()) == 2 * len(owners)  # type: ignore[union-attr]


def test_no_address_or_a_bounce_holds_the_owners_entries(
        make_sandbox: Callable[..., Sandbox], tmp_path: Path) -> None:
    sandbox = make_sandbox(entries=30, seed=8)
    policy = policy_for(sandbox.env(), tmp_path)
    chosen = subjects(sandbox, 6)
    first, second = sorted({s.owner for s in chosen})[:2]
    sandbox.smtp.refuse([_email(sandbox, first)])  # type: ignore[union-attr]
    _admin_user(sandbox, {"id": second, "email": ""})
    now = int(sandbox.backend.clock.now())  # type: ignore[union-attr]
    _, report = cycle(sandbox, policy, chosen, now)
    rows = {row.owner: row for row in report.owners}
    assert rows[first].outcome is Outcome.BOUNCED and "550" in rows[first].detail
    assert rows[second].outcome is Outcome.NO_ADDRESS
    assert set(rows[first].holding) == {s.entry_id for s in chosen if s.owner == first}
    told = {s.owner for s in chosen} - {first, second}
    assert {o for o, r in rows.items() if r.outcome is Outcome.SENT} == told
    # Nothing recorded for the held owners: the next cycle still will not swap them.
    later, _ = cycle(sandbox, policy, chosen, now + 31 * DAY)
    held = {s.entry_id for s in chosen if s.owner in (first, second)}
    assert {v.entry_id for v in later if v.status is Status.NOTICE} == held
    assert not any(v.allows_change for v in later if v.entry_id in held)


def test_a_kill_between_acceptance_and_record_sends_one_duplicate_never_none(
        make_sandbox: Callable[..., Sandbox], tmp_path: Path) -> None:
    sandbox = make_sandbox(entries=30, seed=9)
    policy_file = tmp_path / "policy.json"
    policy = policy_for(sandbox.env(), tmp_path)
    chosen = [s for s in subjects(sandbox, 10) if s.owner == subjects(sandbox, 1)[0].owner]
    now = int(sandbox.backend.clock.now())  # type: ignore[union-attr]
    policy_file.write_text(json.dumps({"dir": str(tmp_path), "now": now, "env": sandbox.env(),
                                       "subjects": [subject_json(s) for s in chosen]}))
    # A child process sends the notice and is killed (os._exit) the instant the server has
    # accepted it: the clock read that stamps the record is the kill point.
    child = subprocess.run([sys.executable, str(Path(__file__).with_name("killed_sender.py")),
                            str(policy_file)], cwd=ROOT, capture_output=True, text=True,
                           timeout=120)
    assert child.returncode == 137, child.stderr
    assert len(sandbox.smtp.messages()) == 1  # type: ignore[union-attr]
    assert NoticeStore(s3_archive(sandbox), PREFIX).load() == {}  # accepted, never recorded

    verdicts, report = cycle(sandbox, policy, chosen, now + 60)
    assert {v.status for v in verdicts} == {Status.NOTICE} and report.count(Outcome.SENT) == 1
    first, again = sandbox.smtp.messages()  # type: ignore[union-attr]
    assert first[NOTICE_HEADER] == again[NOTICE_HEADER]  # recognisably the same notice
    assert first["Message-ID"] != again["Message-ID"]
    verdicts, report = cycle(sandbox, policy, chosen, now + 120)
    assert {v.status for v in verdicts} == {Status.GRACE} and report.owners == ()
    assert len(sandbox.smtp.messages()) == 2  # type: ignore[union-attr]


def _email(sandbox: Sandbox, user_id: str) -> str:
    with sandbox.backend.lock:  # type: ignore[union-attr]
        return str(sandbox.backend.users[user_id].email)  # type: ignore[union-attr]


def _admin_user(sandbox: Sandbox, spec: dict[str, str]) -> None:
    request = urllib.request.Request(f"{sandbox.kaltura.url}/admin/users",  # type: ignore[union-attr]
                                     data=json.dumps(spec).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30):
        pass
