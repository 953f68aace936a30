"""The catalogue's users: one ``KalturaUser`` for every owner and creator the entries name.

On a real partner an entry's owner always exists as a kuser (Kaltura creates it when the entry
names it: kuserPeer::createKuserForPartner), with whatever names and address the partner's user
data holds — some have no e-mail at all, some are blocked (reference section 11.5). The owners'
ids come from the entries' draw (``draw.owner_pool``); everything else about a user is drawn from
its own ``random.Random``, derived from the catalogue's seed, so adding or changing users never
changes the entries (the entries' generator is not touched here).

Names follow the owner id (``ab`` + surname, the way the pool builds ids): ``jdoe`` is a J. Doe.
Addresses are ``{uid}@example.edu``; an owner id without a domain gets that address too, unless it
is one of the users without an address.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping

from sandbox.catalogue.truth import YEAR
from sandbox.kaltura.records import User, UserStatus

DOMAIN = "example.edu"
NO_EMAIL_SHARE = 0.08
BLOCKED_SHARE = 0.04
NEVER_LOGGED_IN_SHARE = 0.25
DAY = 24 * 3600

_FIRST_NAMES: dict[str, tuple[str, ...]] = {
    "a": ("Ada", "Amir", "Anna"), "b": ("Ben", "Beatriz"), "c": ("Chen", "Clara"),
    "d": ("David", "Dana"), "e": ("Elena", "Emeka"), "f": ("Fatima", "Felix"),
    "g": ("Grace", "Gustavo"), "h": ("Hana", "Hugo"), "i": ("Inés", "Ivan"),
    "j": ("James", "Julia"), "k": ("Kenji", "Kwame"), "l": ("Lena", "Luis"),
    "m": ("María", "Malik"), "n": ("Nora", "Nikhil"), "o": ("Omar", "Olga"),
    "p": ("Priya", "Pablo"), "r": ("Rosa", "Raj"), "s": ("Sofia", "Samuel"),
    "t": ("Tomás", "Thandiwe"), "v": ("Vera", "Viktor"), "w": ("Wei", "Wanda"),
}
# How the pool's lower-case surnames are written (the rest are simply capitalised).
_SURNAMES = {"obrien": "O'Brien", "muller": "Müller", "dubois": "Dubois", "novak": "Novák"}


def user_seed(seed: int) -> random.Random:
    """The users' own generator: derived from the catalogue seed, never the entries' one."""
    return random.Random(f"karchive-sandbox-users:{seed}")


def names_of(uid: str) -> tuple[str, str, int]:
    """(first-name initial, last name, variant) read from an owner id such as ``jdoe@x`` or
    ``abchen12``: the pool builds ids as two initials and a surname, plus a number when taken."""
    local = uid.split("@", 1)[0]
    base = local.rstrip("0123456789")
    number = local[len(base):]
    surname = base[2:] or base
    return base[:1], _SURNAMES.get(surname, surname.capitalize()), int(number or 0)


def draw_users(owners: Iterable[str], first_seen: Mapping[str, int], seed: int, now: float,
               partner_id: int = 100) -> list[User]:
    """One user per owner id, in the pool's order. ``first_seen`` is the createdAt of each owner's
    first entry: a user exists before the entries it owns."""
    rng = user_seed(seed)
    now_i = int(now)
    users: list[User] = []
    for uid in owners:
        initial, last_name, variant = names_of(uid)
        choices = _FIRST_NAMES.get(initial, ("Alex",))
        first_name = choices[(int(len(choices) * rng.random()) + variant) % len(choices)]
        if uid in first_seen:
            created = first_seen[uid] - int(90 * DAY * rng.random()) - DAY
        else:
            created = now_i - int(12 * YEAR * rng.random()) - DAY
        has_email = rng.random() >= NO_EMAIL_SHARE
        email = (uid if "@" in uid else f"{uid}@{DOMAIN}") if has_email else ""
        blocked = rng.random() < BLOCKED_SHARE
        login = None
        if rng.random() >= NEVER_LOGGED_IN_SHARE:
            login = created + int((now_i - created) * rng.random())
        user = User(
            id=uid, partner_id=partner_id, screen_name=f"{first_name} {last_name}",
            email=email.lower(), status=UserStatus.BLOCKED if blocked else UserStatus.ACTIVE,
            created_at=created, updated_at=max(created, login or 0),
            last_login_time=login, status_updated_at=created, first_name=first_name,
            last_name=last_name, login_enabled=login is not None, external_id=uid,
        )
        user.refresh_full_name()
        users.append(user)
    return users
