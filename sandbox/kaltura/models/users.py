"""Users: ``user.get`` and ``user.list`` (reference section 11.5), and the users entries imply.

Every entry's ``userId`` and ``creatorId`` exist as a user: the catalogue seeds one per owner,
and an entry that names a user the partner does not have yet creates it, as Kaltura creates the
kuser when an entry names it (kaltura/server api_v3/lib/KalturaEntryService.php
``checkAndSetValidUserInsert`` / ``checkAndSetValidUserUpdate`` →
``kuserPeer::createKuserForPartner``, which sets screenName and firstName to the id, no address,
status ACTIVE).

Deleted users are neither found nor listed (kuserPeer's default criteria); blocked ones are.
``user.list`` filters the way the server's ``KalturaUserFilter`` maps to SQL: ``idIn`` is cut at
500 values like every ``*In``, ``*Like`` is a case-insensitive substring (``LIKE %v%``),
``*StartsWith`` a prefix (``LIKE v%``). Tests and the demo add or change users through
``/admin/users`` (``upsert_user``), like other admin state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from operator import attrgetter
from typing import Any

from sandbox.kaltura.exceptions import KalturaError
from sandbox.kaltura.models.listing import page, split_in
from sandbox.kaltura.models.state import BackendState
from sandbox.kaltura.records import CallContext, ListResponse, User, UserStatus

_ORDER: dict[str, Callable[[User], Any]] = {
    "createdat": attrgetter("created_at"), "updatedat": attrgetter("updated_at"),
    "id": attrgetter("id"),
}


def _flag(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true")


# What /admin/users may set, wire name -> (record field, conversion).
ADMIN_FIELDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "email": ("email", str), "firstName": ("first_name", str), "lastName": ("last_name", str),
    "screenName": ("screen_name", str), "status": ("status", int), "isAdmin": ("is_admin", _flag),
    "title": ("title", str), "company": ("company", str), "externalId": ("external_id", str),
    "lastLoginTime": ("last_login_time", lambda v: None if v is None else int(v)),
}


def invalid_user_id() -> KalturaError:
    # KalturaErrors::INVALID_USER_ID carries no argument: "Invalid user id".
    return KalturaError("INVALID_USER_ID", "Invalid user id")


def _like(value: Any) -> Callable[[str], bool]:
    needle = str(value).lower()
    return lambda text: needle in text.lower()


def _starts(value: Any) -> Callable[[str], bool]:
    prefix = str(value).lower()
    return lambda text: text.lower().startswith(prefix)


UserTest = Callable[[User], bool]


def _on(attr: str, test: Callable[[Any], bool]) -> UserTest:
    get = attrgetter(attr)
    return lambda user: test(get(user))


def _either(first: str, second: str, test: Callable[[str], bool]) -> UserTest:
    get_first, get_second = attrgetter(first), attrgetter(second)
    return lambda user: test(get_first(user)) or test(get_second(user))


def _tests(f: Mapping[str, Any]) -> list[UserTest]:
    """The filter's conditions, one predicate each (a list of 20,000 users needs no more)."""

    def given(name: str) -> bool:
        return f.get(name) not in (None, "")

    tests: list[UserTest] = []
    for name, attr, make in (
        ("emailLike", "email", _like), ("emailStartsWith", "email", _starts),
        ("screenNameLike", "screen_name", _like), ("screenNameStartsWith", "screen_name", _starts),
        ("firstNameStartsWith", "first_name", _starts),
        ("lastNameStartsWith", "last_name", _starts),
    ):
        if given(name):
            tests.append(_on(attr, make(f[name])))
    if given("idOrScreenNameStartsWith"):
        tests.append(_either("id", "screen_name", _starts(f["idOrScreenNameStartsWith"])))
    if given("firstNameOrLastNameStartsWith"):
        tests.append(_either("first_name", "last_name",
                             _starts(f["firstNameOrLastNameStartsWith"])))
    if given("idEqual"):
        tests.append(_on("id", str(f["idEqual"]).__eq__))
    for name, attr in (("statusEqual", "status"), ("typeEqual", "type")):
        if given(name):
            tests.append(_on(attr, int(f[name]).__eq__))
    for name, attr in (("statusIn", "status"), ("typeIn", "type")):
        if given(name):
            tests.append(_on(attr, frozenset(int(v) for v in split_in(f[name])).__contains__))
    for name, attr in (("isAdminEqual", "is_admin"), ("loginEnabledEqual", "login_enabled")):
        if given(name):
            tests.append(_on(attr, _flag(f[name]).__eq__))
    for name, attr in (("createdAtGreaterThanOrEqual", "created_at"),
                       ("updatedAtGreaterThanOrEqual", "updated_at")):
        if given(name):
            tests.append(_on(attr, int(f[name]).__le__))  # bound <= value
    for name, attr in (("createdAtLessThanOrEqual", "created_at"),
                       ("updatedAtLessThanOrEqual", "updated_at")):
        if given(name):
            tests.append(_on(attr, int(f[name]).__ge__))  # bound >= value
    return tests


class UsersMixin(BackendState):
    """user.get, user.list, and the users that entries name."""

    def insert_user(self, user: User) -> None:
        """Bulk load with no API semantics (the catalogue's users)."""
        self.users[user.id] = user

    def ensure_user(self, user_id: str) -> None:
        """The user an entry names exists afterwards (a new one is made as Kaltura makes it)."""
        user_id = user_id.strip()
        if not user_id:
            return
        existing = self.users.get(user_id)
        if existing is not None and existing.status != UserStatus.DELETED:
            return
        now = self.now()
        user = User(id=user_id, partner_id=self.partner.id, screen_name=user_id,
                    first_name=user_id, created_at=now, updated_at=now, status_updated_at=now)
        user.refresh_full_name()
        self.users.pop(user_id, None)  # a deleted user's id makes a new user, listed last
        self.users[user_id] = user

    def get_user(self, user_id: str, ctx: CallContext) -> User:
        """user.get: an empty id is the session's own user; a USER session sees only itself."""
        user_id = user_id or ctx.user_id
        if ctx.session_type != 2 and user_id != ctx.user_id:
            raise KalturaError(
                "CANNOT_RETRIEVE_ANOTHER_USER_USING_NON_ADMIN_SESSION",
                f'cannot retrieve another user "{user_id}" using non-admin session',
                {"USER_ID": user_id},
            )
        user = self.users.get(user_id)
        if user is None or user.status == UserStatus.DELETED:
            raise invalid_user_id()
        return user

    def list_users(self, f: Mapping[str, Any] | None, pager: Mapping[str, Any] | None
                   ) -> ListResponse:
        f = f or {}
        if f.get("idIn") not in (None, ""):
            wanted = dict.fromkeys(split_in(f["idIn"]))
            candidates = [self.users[i] for i in wanted if i in self.users]
            position = {uid: n for n, uid in enumerate(self.users)}
            candidates.sort(key=lambda u: position[u.id])  # SQL IN answers in table order
        else:
            candidates = list(self.users.values())
        tests = _tests(f)
        items = [u for u in candidates
                 if u.status != UserStatus.DELETED and all(t(u) for t in tests)]
        for part in reversed(str(f.get("orderBy") or "").split(",")):
            key = _ORDER.get(part.strip().lstrip("+-").lower())
            if key is not None:
                items.sort(key=key, reverse=part.strip().startswith("-"))
        return ListResponse("KalturaUserListResponse", page(items, pager), len(items))

    @staticmethod
    def check_user(fields: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """(id, record changes) of an /admin/users spec; ValueError says what is wrong with it."""
        user_id = str(fields.get("id") or "").strip()
        if not user_id:
            raise ValueError("a user needs an id")
        unknown = set(fields) - set(ADMIN_FIELDS) - {"id"}
        if unknown:
            raise ValueError(f"unknown user fields: {', '.join(sorted(unknown))}")
        changes = {ADMIN_FIELDS[k][0]: ADMIN_FIELDS[k][1](v) for k, v in fields.items()
                   if k != "id"}
        status = changes.get("status", UserStatus.ACTIVE)
        if status not in (UserStatus.BLOCKED, UserStatus.ACTIVE, UserStatus.DELETED):
            raise ValueError(f"status {status} is not 0 (blocked), 1 (active) or 2 (deleted)")
        return user_id, changes

    def upsert_user(self, fields: Mapping[str, Any]) -> User:
        """/admin/users: make the user ``fields["id"]`` or change the fields given."""
        with self.lock:
            user_id, changes = self.check_user(fields)  # first: a refused spec changes nothing
            self.ensure_user(user_id)
            user = self.users[user_id]
            before = user.status
            for attr, value in changes.items():
                setattr(user, attr, value)
            now = self.now()
            user.updated_at = now
            if user.status != before:
                user.status_updated_at = now
            if user.status == UserStatus.DELETED:
                user.deleted_at = now
            user.refresh_full_name()
            return user
