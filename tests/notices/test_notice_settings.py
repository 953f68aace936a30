"""The notices: section of policy.yaml: defaults, files it reads, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.loader import PolicyError, parse_policy
from policies.notice_settings import AddressSource, Security

BASE = """\
version: 1
kaltura: {service_url: "https://k.example", partner_id: 1, admin_secret: s3cret}
storage: {bucket: bucket}
"""
NOTICES = """\
notices:
  before: 30d
  sender: "Media Team <media@example.edu>"
  smtp: {host: smtp.example.edu}
"""


def load(text: str, base: Path) -> object:
    return parse_policy(BASE + text, "policy.yaml", base_dir=base, environ={})


def test_a_minimal_section_takes_the_shipped_defaults(tmp_path: Path) -> None:
    notices = load(NOTICES, tmp_path).notices  # type: ignore[attr-defined]
    assert str(notices.before) == "30d" and notices.remind == ()
    assert notices.addresses is AddressSource.KALTURA and notices.keep is None
    assert notices.smtp.security is Security.STARTTLS and notices.smtp.effective_port == 587
    assert "{{ entry.url }}" in notices.templates.text and "<table" in notices.templates.html


def test_files_are_read_relative_to_the_policy(tmp_path: Path) -> None:
    (tmp_path / "keep.secret").write_text("0123456789abcdef" * 4 + "\n")
    (tmp_path / "smtp.pw").write_text("mail-pass\n")
    (tmp_path / "mine.txt").write_text("Hi {{ owner_name }}: {{ count }}\n")
    text = NOTICES.replace("smtp: {host: smtp.example.edu}", """\
smtp: {host: smtp.example.edu, security: tls, user: karchive, password_file: smtp.pw}
  remind: [1d, 7d]
  templates: {text: mine.txt}
  keep: {base_url: "https://karchive.example.edu/keep/", secret_file: keep.secret}""")
    notices = load(text, tmp_path).notices  # type: ignore[attr-defined]
    assert notices.smtp.password.get_secret_value() == "mail-pass"
    assert notices.smtp.effective_port == 465
    assert [str(r) for r in notices.remind] == ["7d", "1d"]  # longest first
    assert notices.templates.text == "Hi {{ owner_name }}: {{ count }}\n"
    assert notices.keep.base_url == "https://karchive.example.edu/keep"
    assert notices.keep.secret.get_secret_value() == "0123456789abcdef" * 4
    assert str(notices.keep.keep_for) == "2y"


MISTAKES = [
    ("before: 30d", "before: 12h", "policy.yaml:5: notices.before: before: 12h is less than a day"),
    ("before: 30d", "before: soon", "policy.yaml:5: notices.before: 'soon' is not a duration"),
    ('sender: "Media Team <media@example.edu>"', "sender: media", "notices.sender: 'media' is "
     "not a mail address"),
    ("smtp: {host: smtp.example.edu}", "smtp: {host: h, security: ssl}", "notices.smtp.security:"
     " 'ssl' is not allowed; use one of: starttls, tls, none"),
    ("smtp: {host: smtp.example.edu}", "smtp: {host: h, port: 70000}", "notices.smtp.port: "),
    ("smtp: {host: smtp.example.edu}", "smtp: {host: h, user: u}", "smtp user and password go "
     "together"),
    ("smtp: {host: smtp.example.edu}", "smtp: {host: h, security: none, user: u, password: p}",
     "would send the password in clear"),
    ("smtp: {host: smtp.example.edu}", "smtp: {host: h, timeout: true}", "is not a number"),
    ("smtp: {host: smtp.example.edu}", "smtp: {host: h, pasword: p}", "unknown key 'pasword'; "
     "did you mean 'password'?"),
    ("before: 30d", "before: 30d\n  remind: [30d]", "remind[0]: 30d is not shorter than before"),
    ("before: 30d", "before: 30d\n  entry_url: https://kms.example/media/{id}", "must be an "
     "http(s) URL with {entry_id} in it"),
    ("before: 30d", "before: 30d\n  entry_url: https://kms.example/{entry_id}/{x}", "knows only "
     "{entry_id} and {partner_id}, not {x}"),
    ("before: 30d", "before: 30d\n  addresses: directory", "policy.yaml:6: notices.addresses: "
     "addresses: directory needs the 'directory:' section"),
    ("before: 30d", "before: 30d\n  templates: {html: missing.html}", "cannot read "
     "templates.html"),
    ("before: 30d", "before: 30d\n  templates: {subject: '{{ count '}", "template line 1"),
    ("before: 30d", "before: 30d\n  keep: {base_url: 'https://k.example', secret_file: short}",
     "keep secret_file holds 5 bytes; use at least 32"),
    ("before: 30d", "before: 30d\n  keep: {base_url: 'https://k.example', secret_file: nope}",
     "cannot read keep secret_file"),
    ("before: 30d", "before: 30d\n  keep: {base_url: 'https://k.example', secret_file: short, "
     "secret: abc}", "the keep secret comes from secret_file only"),
]


@pytest.mark.parametrize(("old", "new", "expected"), MISTAKES, ids=[m[2][:40] for m in MISTAKES])
def test_each_mistake_is_one_line_naming_the_field(tmp_path: Path, old: str, new: str,
                                                   expected: str) -> None:
    (tmp_path / "short").write_text("short")
    with pytest.raises(PolicyError) as caught:
        load(NOTICES.replace(old, new), tmp_path)
    message = str(caught.value)
    assert "\n" not in message and expected in message
    assert "s3cret" not in message


def test_a_password_is_never_echoed(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        load(NOTICES.replace("smtp: {host: smtp.example.edu}",
                             "smtp: {host: h, user: u, password: [hunter2]}"), tmp_path)
    assert "hunter2" not in str(caught.value)
