"""Owners' mail addresses: from Kaltura's users (``user.list``) or the directory's ``mail``.

An edge of the pipeline, asked once per cycle by the sending step
(``controller/runtime/notices.py``) for the owners who get a message — never for every owner of
the catalogue. The policy's ``notices.addresses`` picks the source:

- ``kaltura``: :class:`KalturaAddresses`, ``user.list`` with ``idIn`` of up to 500 user ids a
  call (Kaltura cuts every ``*In`` list at 500: reference/kaltura-api.md §11.5), through the one
  Kaltura session (its pacing, retries, error table and call counts: this adds none of its own).
  A user listed with an empty ``email`` has no address; a deleted user is not listed and has
  none either. The greeting's name is the user's ``fullName``, else their ``screenName``.
- ``directory``: :class:`DirectoryAddresses`, the LDAP ``mail`` attribute (or the one the
  policy names) of the owner's directory entry, found by uid as the owner-status lookups find
  it: it extends that adapter (``controller/adapters/ldap.py``) and so shares its connection, its
  error table (source ``ldap``) and its one retry level; the batches are ORs of up to
  ``directory.batch_size`` escaped uids, one search each.

Both answer ``{user_id: Contact | None}`` for every id asked; a failure of the source raises
(karchive's error tree), and the caller holds every letter of the cycle (no address is not the
same as "could not ask").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

from KalturaClient.Plugins.Core import KalturaFilterPager, KalturaUserFilter
from ldap3.utils.conv import escape_filter_chars

from controller.adapters.ldap import Directory, DirectoryTransientError, _key, _values
from policies.notices import Contact

T = TypeVar("T")
MAX_IDS = 500  # Kaltura's cut of an *In filter


class KalturaCaller(Protocol):
    """The slice of the Kaltura session this needs (``KalturaSession.call``)."""

    def call(self, label: str, fn: Callable[[Any], T]) -> T: ...


class AddressBook(Protocol):
    """Where the sending step finds owners' addresses."""

    def contacts(self, user_ids: Iterable[str]) -> dict[str, Contact | None]: ...


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


class KalturaAddresses:
    """Owners' addresses from their Kaltura users."""

    def __init__(self, session: KalturaCaller) -> None:
        self.session = session

    def contacts(self, user_ids: Iterable[str]) -> dict[str, Contact | None]:
        wanted = list(dict.fromkeys(u for u in user_ids if u))
        found: dict[str, Contact | None] = dict.fromkeys(wanted)
        for start in range(0, len(wanted), MAX_IDS):
            batch = wanted[start:start + MAX_IDS]
            flt = KalturaUserFilter()
            flt.idIn = ",".join(batch)
            pager = KalturaFilterPager()
            pager.pageSize = MAX_IDS
            listed = self.session.call("user.list", _lister(flt, pager))
            for user in listed.objects or ():
                user_id, address = _text(user.id), _text(user.email)
                if user_id in found and address:
                    found[user_id] = Contact(address, _text(user.fullName)
                                             or _text(user.screenName))
        return found


def _lister(flt: Any, pager: Any) -> Callable[[Any], Any]:
    return lambda client: client.user.list(flt, pager)


class DirectoryAddresses(Directory):
    """Owners' addresses from the directory's ``mail`` attribute (``mail_attribute``)."""

    def __init__(self, *args: Any, mail_attribute: str = "mail", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mail_attribute = mail_attribute

    def contacts(self, user_ids: Iterable[str]) -> dict[str, Contact | None]:
        uid_of = {user_id: self.settings.uid_for(user_id) for user_id in user_ids}
        uids = list(dict.fromkeys(uid for uid in uid_of.values() if uid))
        by_key: dict[str, Contact] = {}
        size = self.settings.batch_size
        with self._lock:
            for start in range(0, len(uids), size):
                by_key.update(self._mail_batch(uids[start:start + size]))
        return {user_id: by_key.get(_key(uid)) if uid else None
                for user_id, uid in uid_of.items()}

    def _mail_batch(self, batch: Sequence[str]) -> dict[str, Contact]:
        settings = self.settings
        wanted = {_key(uid) for uid in batch}
        query = "(|" + "".join(f"({settings.uid_attribute}={escape_filter_chars(uid)})"
                               for uid in batch) + ")"
        attributes = [settings.uid_attribute, self.mail_attribute, *settings.name_attributes]
        attempt = 0
        while True:  # the directory adapter's one retry level, as its owner lookups do
            try:
                people = self._search(query, attributes)
                break
            except DirectoryTransientError:
                self._drop_connection()
                if attempt >= settings.retries:
                    raise
                self._sleep(min(0.5 * 2**attempt, 8.0))
                attempt += 1
        found: dict[str, Contact] = {}
        for _dn, attrs in people:
            mail = _values(attrs, self.mail_attribute)
            name = next((v for a in settings.name_attributes for v in _values(attrs, a)[:1]), "")
            for uid in _values(attrs, settings.uid_attribute):
                key = _key(uid)
                if key in wanted and key not in found and mail:
                    found[key] = Contact(mail[0].strip(), name)
        return found
