"""Directory (LDAP) settings: where owners are looked up and what makes an owner "active".

Part of the policy (``directory:`` in policy.yaml). The controller's directory adapter reads these
settings to answer, for each distinct entry owner, whether the person is still active, their name
and their org unit; the policy's owner selector and ``karchive list --with-owner`` / ``karchive
owners`` consume the answers. Pure: validation only, no I/O — the adapter reads ``password_file``.

The defaults reproduce the Princeton ``add_ldap_status.py`` (base, filter, attributes, userId →
uid by stripping ``@domain``) so a partner that used it only writes the URL; every piece is
configurable because another directory will name things differently.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Self

from pydantic import (
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from policies.strict import Strict

# The placeholder an active filter must contain: the uid, escaped, is substituted for it.
UID_PLACEHOLDER = "{uid}"

# The Princeton expression (reference/prior-tools.md): an account whose authentication is enabled
# or "going away" (still valid, scheduled to end) is active; anyone else, or no one, is not.
PRINCETON_BASE = "o=princeton university,c=us"
PRINCETON_ACTIVE_FILTER = (
    "(&(uid={uid})(|(puresource=authentication=enabled)(puresource=authentication=goingaway)))"
)

# OpenLDAP's default size limit is 500 entries per search (slapd.conf(5) ``sizelimit``); an OR
# of more uids than that could be cut short, so a batch never asks for more.
MAX_BATCH_SIZE = 500


class UidMapping(StrEnum):
    """How a Kaltura userId becomes a directory uid."""

    STRIP_DOMAIN = "strip-domain"  # "jdoe@princeton.edu" -> "jdoe"
    AS_IS = "as-is"


class DirectorySettings(Strict):
    """The ``directory:`` section of policy.yaml."""

    url: str = Field(description="ldap://host[:port] or ldaps://host[:port]")
    bind_dn: str | None = Field(default=None, description="absent: anonymous bind")
    # The policy loader interpolates ${ENV} before validation, so "${LDAP_PASSWORD}" works here.
    password: SecretStr | None = None
    password_file: Path | None = Field(default=None, description="read by the adapter, stripped")
    ca_file: Path | None = Field(
        default=None, description="CA bundle for ldaps:// (default: the system's trust store)"
    )
    base: str = PRINCETON_BASE
    active_filter: str = PRINCETON_ACTIVE_FILTER
    uid_attribute: str = "uid"
    name_attributes: tuple[str, ...] = ("displayName", "cn")  # first present wins
    org_unit_attribute: str = "ou"
    user_id_to_uid: UidMapping = UidMapping.STRIP_DOMAIN
    batch_size: int = Field(default=50, ge=1, le=MAX_BATCH_SIZE)
    cache_ttl: float = Field(default=3600.0, ge=0, le=30 * 86400,
                             description="seconds an answer is reused")
    timeout: float = Field(default=10.0, gt=0, le=600,
                           description="connect and receive timeout, seconds")
    retries: int = Field(default=2, ge=0, le=10, description="retries of a transient failure")

    @field_validator("url")
    @classmethod
    def _url_is_ldap(cls, url: str) -> str:
        scheme, sep, rest = url.partition("://")
        if not sep or scheme.lower() not in ("ldap", "ldaps") or not rest.strip("/"):
            raise ValueError(f"url must be ldap://host[:port] or ldaps://host[:port], got {url!r}")
        return url

    @field_validator("password_file", "ca_file")
    @classmethod
    def _relative_to_policy(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        # Like every path in policy.yaml, a relative one is relative to the policy's folder
        # (the loader passes it as ``base_dir`` in the validation context).
        base = (info.context or {}).get("base_dir")
        if path is None or path.is_absolute() or base is None:
            return path
        return Path(base) / path

    @field_validator("active_filter")
    @classmethod
    def _filter_is_sound(cls, text: str) -> str:
        text = text.strip()
        if UID_PLACEHOLDER not in text:
            raise ValueError(f"active_filter must contain the placeholder {UID_PLACEHOLDER}")
        if not (text.startswith("(") and text.endswith(")")) or not _balanced(text):
            raise ValueError("active_filter must be one parenthesised filter, e.g. (uid={uid})")
        return text

    @field_validator("uid_attribute", "org_unit_attribute")
    @classmethod
    def _attribute_name(cls, name: str) -> str:
        return _check_attribute(name)

    @field_validator("name_attributes")
    @classmethod
    def _attribute_names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        if not names:
            raise ValueError("name_attributes needs at least one attribute")
        return tuple(_check_attribute(n) for n in names)

    @model_validator(mode="after")
    def _credentials_agree(self) -> Self:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        has_secret = self.password is not None or self.password_file is not None
        # A bind DN without a password is an "unauthenticated bind" (RFC 4513 §5.1.2): servers
        # treat it as anonymous, which would hide a missing secret behind empty results.
        if self.bind_dn and not has_secret:
            raise ValueError("bind_dn needs password or password_file (or drop bind_dn: anonymous)")
        if has_secret and not self.bind_dn:
            raise ValueError("password given without bind_dn")
        if self.ca_file is not None and not self.is_ldaps:
            raise ValueError("ca_file applies to ldaps:// only")
        return self

    @property
    def is_ldaps(self) -> bool:
        return self.url.lower().startswith("ldaps://")

    def uid_for(self, user_id: str) -> str:
        """The directory uid of a Kaltura userId ('' when there is none to look up)."""
        user_id = user_id.strip()
        if self.user_id_to_uid is UidMapping.STRIP_DOMAIN:
            user_id = user_id.split("@", 1)[0]
        return user_id.strip()


def _balanced(text: str) -> bool:
    depth = 0
    escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def _check_attribute(name: str) -> str:
    # RFC 4512 §2.5: a descriptor (letters, digits, hyphens, a letter first) or a numeric OID.
    name = name.strip()
    ok_descr = name.isascii() and name[:1].isalpha() and all(c.isalnum() or c == "-" for c in name)
    ok_oid = bool(name) and all(part.isdigit() for part in name.split("."))
    if not (ok_descr or ok_oid):
        raise ValueError(f"{name!r} is not an LDAP attribute name")
    return name
