"""Owners' addresses (controller/adapters/addresses.py): from the sandbox's Kaltura users over
the real KalturaClient, and from a real slapd's mail attribute."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ldap3 import MODIFY_ADD, Connection, Server
from ldap3.utils.dn import escape_rdn
from ldap_people import KNOWN_PEOPLE, ODD_UID, settings_for
from slapd import PEOPLE, ROOT_DN, ROOT_PASSWORD, Slapd

from controller.adapters.addresses import DirectoryAddresses, KalturaAddresses
from controller.adapters.kaltura.session import KalturaSession
from controller.errors import TransientError
from policies.notices import Contact
from policies.schema import KalturaSettings
from sandbox.runner import Sandbox


class Counter:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def kaltura_call(self, operation: str, outcome: str) -> None:
        self.calls.append(operation)


def session_for(sandbox: Sandbox, metrics: Any = None) -> KalturaSession:
    env = sandbox.env()
    return KalturaSession(KalturaSettings(
        service_url=env["KALTURA_SERVICE_URL"], partner_id=int(env["KALTURA_PARTNER_ID"]),
        admin_secret=env["KALTURA_ADMIN_SECRET"], user_id=env["KALTURA_USER_ID"]),
        metrics=metrics)


def test_kaltura_users_give_addresses_and_names(make_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = make_sandbox(entries=20, seed=3)
    admin = sandbox.kaltura.url  # type: ignore[union-attr]
    for spec in ({"id": "ann", "email": "Ann.Example@Example.edu", "firstName": "Ann",
                  "lastName": "Example"},
                 {"id": "nomail", "email": ""},
                 {"id": "blocked", "email": "blocked@example.edu", "status": 0},
                 {"id": "gone", "email": "gone@example.edu", "status": 2}):
        _admin_user(admin, spec)
    counter = Counter()
    book = KalturaAddresses(session_for(sandbox, counter))
    found = book.contacts(["ann", "nomail", "blocked", "gone", "nobody", "ann"])
    assert found == {"ann": Contact("Ann.Example@Example.edu", "Ann Example"), "nomail": None,
                     "blocked": Contact("blocked@example.edu", "blocked"), "gone": None,
                     "nobody": None}
    assert counter.calls.count("user.list") == 1


def test_kaltura_lookups_go_500_ids_a_call(sandbox: Sandbox) -> None:
    assert sandbox.backend is not None
    with sandbox.backend.lock:
        owners = sorted({e.user_id for e in sandbox.backend.all_entries() if e.user_id})
        emails = {u.id: u.email for u in sandbox.backend.users.values()}
    wanted = (owners * 3)[:1100] if len(owners) < 1100 else owners[:1100]
    wanted = list(dict.fromkeys(wanted)) + [f"ghost{i}" for i in range(1100)]
    counter = Counter()
    found = KalturaAddresses(session_for(sandbox, counter)).contacts(wanted)
    assert counter.calls.count("user.list") == -(-len(wanted) // 500)
    for user_id in wanted:
        address = emails.get(user_id, "")
        assert (found[user_id].address if found[user_id] else "") == address, user_id
    assert any(found[o] is None for o in owners)  # the catalogue has owners without an address


def _admin_user(base: str, spec: dict[str, Any]) -> None:
    request = urllib.request.Request(f"{base}/admin/users", data=json.dumps(spec).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30):
        pass


@pytest.fixture
def mail_slapd() -> Iterator[Slapd]:
    with Slapd(KNOWN_PEOPLE) as server:
        conn = Connection(Server(server.url), ROOT_DN, ROOT_PASSWORD, auto_bind=True)
        for uid, mail in (("alice", "alice@example.edu"), ("zoe", "zoe@example.edu"),
                          (ODD_UID, "odd@example.edu")):
            conn.modify(f"uid={escape_rdn(uid)},{PEOPLE}", {"mail": [(MODIFY_ADD, [mail])]})
            assert conn.result["result"] == 0, conn.result
        conn.unbind()
        yield server


def test_directory_mail_by_uid_escaped_and_batched(mail_slapd: Slapd) -> None:
    settings = settings_for(mail_slapd, batch_size=2)
    with DirectoryAddresses(settings) as book:
        found = book.contacts(["alice@example.edu", "ZOE", "carl", f"{ODD_UID}@x", "nobody",
                               ""])
        searches = book.searches
    assert found == {"alice@example.edu": Contact("alice@example.edu", "Alice Active"),
                     "ZOE": Contact("zoe@example.edu", "Zoë Ångström"),
                     "carl": None,  # in the directory, no mail
                     f"{ODD_UID}@x": Contact("odd@example.edu", "Odd Uid"),
                     "nobody": None, "": None}
    assert searches == 3  # 5 uids, 2 a search


def test_directory_down_raises_instead_of_answering_no_address(mail_slapd: Slapd) -> None:
    settings = settings_for(mail_slapd, retries=1)
    slept: list[float] = []
    with DirectoryAddresses(settings, sleep=slept.append) as book:
        mail_slapd.stop()
        with pytest.raises(TransientError):
            book.contacts(["alice"])
    assert slept == [0.5]
