"""DirectorySettings: the ``directory:`` section of policy.yaml, validated without any server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from policies.directory import (
    PRINCETON_ACTIVE_FILTER,
    PRINCETON_BASE,
    DirectorySettings,
    UidMapping,
)
from policies.loader import parse_policy

URL = "ldaps://ldap.example.edu"


def make(**values: Any) -> DirectorySettings:
    return DirectorySettings.model_validate({"url": URL, **values})


def test_defaults_reproduce_the_princeton_script() -> None:
    settings = make()
    assert settings.base == PRINCETON_BASE == "o=princeton university,c=us"
    assert settings.active_filter == PRINCETON_ACTIVE_FILTER
    assert "(puresource=authentication=goingaway)" in settings.active_filter
    assert settings.uid_attribute == "uid"
    assert settings.name_attributes == ("displayName", "cn")
    assert settings.org_unit_attribute == "ou"
    assert settings.user_id_to_uid is UidMapping.STRIP_DOMAIN
    assert (settings.batch_size, settings.cache_ttl) == (50, 3600.0)
    assert settings.bind_dn is None and settings.password is None  # anonymous


@pytest.mark.parametrize(
    ("mapping", "user_id", "uid"),
    [
        ("strip-domain", "jdoe@princeton.edu", "jdoe"),
        ("strip-domain", "jdoe", "jdoe"),
        ("strip-domain", " jdoe@x@y ", "jdoe"),
        ("strip-domain", "@nobody", ""),
        ("as-is", "jdoe@princeton.edu", "jdoe@princeton.edu"),
        ("as-is", "", ""),
    ],
)
def test_user_ids_map_to_uids(mapping: str, user_id: str, uid: str) -> None:
    assert make(user_id_to_uid=mapping).uid_for(user_id) == uid


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"url": "http://ldap.example.edu"}, "ldap://host"),
        ({"url": "ldap://"}, "ldap://host"),
        ({"url": "ldap.example.edu"}, "ldap://host"),
        ({"active_filter": "(uid=jdoe)"}, "{uid}"),
        ({"active_filter": "(&(uid={uid})"}, "parenthesised"),
        ({"active_filter": "uid={uid}"}, "parenthesised"),
        ({"active_filter": "(uid={uid}))("}, "parenthesised"),
        ({"uid_attribute": "u id"}, "not an LDAP attribute"),
        ({"name_attributes": []}, "at least one"),
        ({"name_attributes": ["cn", "dïsplay"]}, "not an LDAP attribute"),
        ({"batch_size": 0}, "greater than or equal"),
        ({"batch_size": 501}, "less than or equal"),
        ({"cache_ttl": -1}, "greater than or equal"),
        ({"bind_dn": "cn=reader"}, "needs password"),
        ({"password": "x"}, "without bind_dn"),
        ({"bind_dn": "cn=r", "password": "x", "password_file": "/p"}, "not both"),
        ({"url": "ldap://h", "ca_file": "/ca.pem"}, "ldaps:// only"),
        ({"user_id_to_uid": "lowercase"}, "strip-domain"),
        ({"basedn": "o=x"}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_settings_are_refused_with_a_reason(values: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint.replace("(", r"\(").replace("{", r"\{")):
        make(**values)


@pytest.mark.parametrize(
    "attribute", ["uid", "sAMAccountName", "x-custom-1", "0.9.2342.19200300.100.1.1"]
)
def test_descriptor_and_oid_attribute_names_are_accepted(attribute: str) -> None:
    assert make(uid_attribute=attribute).uid_attribute == attribute


def test_the_password_is_secret_in_every_rendering() -> None:
    settings = make(bind_dn="cn=reader,o=x", password="hunter2")
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.model_dump())
    assert settings.password is not None and settings.password.get_secret_value() == "hunter2"


def test_settings_are_frozen() -> None:
    settings = make()
    with pytest.raises(ValidationError):
        settings.base = "o=elsewhere"  # type: ignore[misc]


POLICY = """\
version: 1
kaltura: {partner_id: 1, service_url: "http://127.0.0.1:1", admin_secret: "${KS_SECRET}"}
storage: {bucket: karchive-test}
directory:
  url: ldaps://ldap.example.edu
  bind_dn: uid=reader,o=example university,c=us
  password: ${LDAP_PASSWORD}
  base: o=example university,c=us
"""


def test_the_policy_loader_interpolates_the_password_from_the_environment() -> None:
    env = {"LDAP_PASSWORD": "from-env", "KS_SECRET": "s"}
    policy = parse_policy(POLICY, "policy.yaml", environ=env)
    assert policy.directory is not None
    assert policy.directory.password is not None
    assert policy.directory.password.get_secret_value() == "from-env"
    assert policy.directory.base == "o=example university,c=us"


def test_a_relative_password_file_is_relative_to_the_policy(tmp_path: Path) -> None:
    text = POLICY.replace("password: ${LDAP_PASSWORD}", "password_file: secrets/ldap")
    policy = parse_policy(text, "policy.yaml", base_dir=tmp_path, environ={"KS_SECRET": "s"})
    assert policy.directory is not None
    assert policy.directory.password_file == tmp_path / "secrets" / "ldap"
