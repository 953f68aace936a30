"""user.get and user.list through the real client; users made by entries and by /admin/users."""

from __future__ import annotations

import json

import pytest
import requests
from emu_api import Api
from KalturaClient import KalturaClient
from KalturaClient.exceptions import KalturaException
from KalturaClient.Plugins.Core import (
    KalturaFilterPager,
    KalturaMediaEntry,
    KalturaUserFilter,
    KalturaUserOrderBy,
)

from sandbox.kaltura.models import KalturaBackend
from sandbox.kaltura.records import User, UserStatus


def person(n: int, **fields: object) -> User:
    values: dict[str, object] = {"first_name": f"First{n}", "last_name": f"Last{n}",
                                 "email": f"user{n:04d}@example.edu", "created_at": 1000 + n,
                                 "updated_at": 2000 - n, **fields}
    user = User(id=f"user{n:04d}", partner_id=100, **values)  # type: ignore[arg-type]
    user.refresh_full_name()
    return user


@pytest.fixture
def people(backend: KalturaBackend) -> KalturaBackend:
    for n in range(700):
        backend.insert_user(person(n, status=UserStatus.BLOCKED if n % 10 == 3 else 1,
                                   email="" if n % 25 == 7 else f"user{n:04d}@example.edu"))
    return backend


def admin(api: Api, body: object) -> tuple[int, dict[str, object]]:
    response = requests.post(f"{api.server.url}/admin/users", data=json.dumps(body), timeout=10)
    return response.status_code, response.json()


def ids(response: object) -> list[str]:
    return [u.id for u in response.objects]  # type: ignore[attr-defined]


def test_user_get_returns_the_user_with_its_names_and_status(api: Api, people: KalturaBackend
                                                             ) -> None:
    user = api.client.user.get("user0003")
    assert type(user).__name__ == "KalturaUser"
    assert (user.id, user.firstName, user.lastName, user.fullName, user.email) == (
        "user0003", "First3", "Last3", "First3 Last3", "user0003@example.edu")
    assert user.status.getValue() == UserStatus.BLOCKED  # blocked users are found
    assert user.partnerId == 100 and user.createdAt == 1003
    assert api.client.user.get("user0007").email == ""


def test_user_get_errors(api: Api, people: KalturaBackend) -> None:
    with pytest.raises(KalturaException) as caught:
        api.client.user.get("nobody")
    assert (caught.value.code, caught.value.message) == ("INVALID_USER_ID", "Invalid user id")
    assert admin(api, {"id": "user0001", "status": UserStatus.DELETED})[0] == 200
    with pytest.raises(KalturaException) as caught:
        api.client.user.get("user0001")  # deleted users are not found
    assert caught.value.code == "INVALID_USER_ID"


def test_a_user_session_sees_only_its_own_user(api: Api, people: KalturaBackend,
                                               _kclient: KalturaClient) -> None:
    partner = api.backend.partner
    _kclient.setKs(None)
    _kclient.setKs(_kclient.session.start(partner.user_secret, "user0002", 0, partner.id))
    assert _kclient.user.get("").id == "user0002"  # no id: the session's user
    assert _kclient.user.get("user0002").id == "user0002"
    with pytest.raises(KalturaException) as caught:
        _kclient.user.get("user0004")
    assert caught.value.code == "CANNOT_RETRIEVE_ANOTHER_USER_USING_NON_ADMIN_SESSION"
    assert caught.value.message == 'cannot retrieve another user "user0004" using non-admin session'


def test_user_list_id_in_is_cut_at_500_and_keeps_table_order(api: Api, people: KalturaBackend
                                                              ) -> None:
    wanted = [f"user{n:04d}" for n in reversed(range(650))] + ["nobody"]
    listed = api.client.user.list(KalturaUserFilter(idIn=",".join(wanted)),
                                  KalturaFilterPager(pageSize=500))
    assert listed.totalCount == 500  # the first 500 values: users 649 .. 150
    assert ids(listed) == [f"user{n:04d}" for n in range(150, 650)]
    assert type(listed).__name__ == "KalturaUserListResponse"


def test_user_list_filters(api: Api, people: KalturaBackend) -> None:
    c = api.client
    assert ids(c.user.list(KalturaUserFilter(idEqual="user0042"), None)) == ["user0042"]
    blocked = c.user.list(KalturaUserFilter(statusEqual=UserStatus.BLOCKED), None)
    assert blocked.totalCount == 70 and all(u.id.endswith("3") for u in blocked.objects)
    both = c.user.list(KalturaUserFilter(statusIn="0,1"), None)
    assert both.totalCount == 700
    like = c.user.list(KalturaUserFilter(emailLike="USER012"), None)  # case-insensitive
    assert ids(like) == [f"user{n:04d}" for n in range(120, 130) if n % 25 != 7]
    starts = c.user.list(KalturaUserFilter(firstNameStartsWith="first69"), None)
    assert ids(starts) == ["user0069"] + [f"user{n:04d}" for n in range(690, 700)]
    last = c.user.list(KalturaUserFilter(lastNameStartsWith="Last1", orderBy="-createdAt"),
                       KalturaFilterPager(pageSize=3))
    assert last.totalCount == 111 and ids(last) == ["user0199", "user0198", "user0197"]


def test_user_list_pages_and_orders(api: Api, people: KalturaBackend) -> None:
    c = api.client
    default = c.user.list(None, None)
    assert default.totalCount == 700 and len(default.objects) == 30
    page = c.user.list(KalturaUserFilter(orderBy=KalturaUserOrderBy.UPDATED_AT_ASC),
                       KalturaFilterPager(pageSize=2, pageIndex=2))
    assert ids(page) == ["user0697", "user0696"]  # updatedAt = 2000 - n


def test_an_entry_naming_a_new_user_makes_that_user(api: Api) -> None:
    added = api.client.media.add(KalturaMediaEntry(name="new", mediaType=1, userId="jnew"))
    assert added.userId == "jnew"
    user = api.client.user.get("jnew")
    assert (user.screenName, user.firstName, user.email, user.status.getValue()) == (
        "jnew", "jnew", "", UserStatus.ACTIVE)
    api.client.media.update(added.id, KalturaMediaEntry(userId="kother"))
    assert api.client.user.get("kother").fullName == "kother"


def test_admin_users_adds_and_edits_and_refuses_nonsense_whole(api: Api) -> None:
    code, body = admin(api, [{"id": "ada", "firstName": "Ada", "lastName": "Lovelace",
                              "email": "ada@example.edu"},
                             {"id": "bob", "status": 0}])
    assert code == 200 and [u["id"] for u in body["users"]] == ["ada", "bob"]  # type: ignore[index]
    assert api.client.user.get("ada").fullName == "Ada Lovelace"
    assert api.client.user.get("bob").status.getValue() == UserStatus.BLOCKED
    admin(api, {"id": "ada", "email": ""})
    assert api.client.user.get("ada").email == "" and api.client.user.get("ada").lastName
    code, body = admin(api, [{"id": "carol"}, {"id": "dave", "shoeSize": 9}])
    assert code == 400 and "shoeSize" in str(body["error"])
    code, _ = admin(api, {"id": "erin", "status": 7})
    assert code == 400
    with pytest.raises(KalturaException):
        api.client.user.get("carol")  # nothing of a refused request was made
    assert requests.get(f"{api.server.url}/admin/users", timeout=10).json() == {"count": 2}
