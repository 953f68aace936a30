"""Messages (policies.messages): one multipart/alternative mail per owner, escaped, with the
headers a reader and a duplicate filter need. Pure."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

import pytest

from policies.durations import Duration, TimeUnit
from policies.loader import PolicyError, parse_policy
from policies.messages import NOTICE_HEADER, Back, Keep, Setting, render, render_back
from policies.notice_settings import NoticesSettings
from policies.notices import Consequence, Contact, Subject, Timing, assess, letters

NOW = 1_800_000_000
DAY = 86400
TIMING = Timing(Duration(30, TimeUnit.DAY))


def settings(tmp_path: Path, extra: str = "") -> NoticesSettings:
    text = f"""\
version: 1
kaltura: {{service_url: "https://k.example", partner_id: 1, admin_secret: s}}
storage: {{bucket: bucket}}
notices:
  before: 30d
  sender: "Media Team <media@example.edu>"
  reply_to: help@example.edu
  copy_to: media-team@example.edu
  entry_url: "https://kms.example.edu/media/{{entry_id}}?p={{partner_id}}"
  smtp: {{host: smtp.example.edu}}
{extra}"""
    loaded = parse_policy(text, "policy.yaml", base_dir=tmp_path, environ={}).notices
    assert loaded is not None
    return loaded


def letter_for(*subjects: Subject) -> object:
    sent, _ = letters(assess(subjects, {}, TIMING, NOW), {"ann": Contact(
        "ann@example.edu", "Ann Example")}.get, TIMING, NOW)
    return sent[0]


SWAP = Subject("0_aaaaaaaa", "ann", Consequence.SWAP, "old", 'Physics <script>alert(1)</script>',
               150 << 20, NOW - 1200 * DAY)
PURGE = Subject("0_bbbbbbbb", "ann", Consequence.PURGE, "gone", "Never watched", 0, None)


def test_one_message_lists_every_entry_as_text_and_escaped_html(tmp_path: Path) -> None:
    keep = Keep("https://karchive.example.edu/keep/t0k3n", NOW + 60 * DAY, NOW + 730 * DAY)
    message = render(letter_for(SWAP, PURGE), settings(tmp_path),  # type: ignore[arg-type]
                     Setting(partner_id=4242, restore_on_play=True, now=NOW), keep)
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    for body in (text, html):
        assert "https://kms.example.edu/media/0_aaaaaaaa?p=4242" in body
        assert "150.0 MiB" in body and "Never watched" in body
        assert "14 February 2027" in body  # NOW + 30 days
        assert "deleted from Kaltura" in body and "placeholder video" in body
        assert "https://karchive.example.edu/keep/t0k3n" in body
        assert "anyone who plays it brings it back" in body
    assert "Physics <script>alert(1)</script>" in text
    assert "<script>" not in html and "Physics &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "last played 3 October 2023" in text and "never" in text
    assert parsed["Subject"] == "2 of your videos will be replaced or deleted on 14 February 2027"
    assert parsed["To"] == "ann@example.edu" and parsed["Cc"] == "media-team@example.edu"
    assert parsed["Reply-To"] == "help@example.edu"
    assert parsed["From"] == "Media Team <media@example.edu>"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["Message-ID"].endswith("@example.edu>")
    assert parsed[NOTICE_HEADER] == letter_for(SWAP, PURGE).notice_id  # type: ignore[attr-defined]


def test_without_a_keep_link_the_message_says_how_to_keep(tmp_path: Path) -> None:
    message = render(letter_for(SWAP), settings(tmp_path),  # type: ignore[arg-type]
                     Setting(partner_id=1, restore_on_play=False, now=NOW))
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "reply to this message before 14 February 2027" in text
    assert "brings it back" not in text
    assert message["Subject"] == "1 of your videos will be replaced by a placeholder on " \
        "14 February 2027"


def test_each_message_has_its_own_message_id(tmp_path: Path) -> None:
    made = {render(letter_for(SWAP), settings(tmp_path),  # type: ignore[arg-type]
                   Setting(1, True, NOW))["Message-ID"] for _ in range(3)}
    assert len(made) == 3


def test_a_template_that_fails_on_its_data_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad.txt").write_text("{{ nobody_defined_me }}")
    broken = settings(tmp_path, "  templates: {text: bad.txt}\n")
    with pytest.raises(ValueError, match="a notice template failed: .*nobody_defined_me") as e:
        render(letter_for(SWAP), broken, Setting(1, True, NOW))  # type: ignore[arg-type]
    assert "\n" not in str(e.value)


def test_a_subject_template_cannot_inject_headers(tmp_path: Path) -> None:
    named = Subject("0_aaaaaaaa", "ann", Consequence.SWAP, "r", "a\r\nBcc: evil@example.com")
    odd = settings(tmp_path, "  templates: {subject: '{{ entries[0].name }}'}\n")
    message = render(letter_for(named), odd, Setting(1, True, NOW))  # type: ignore[arg-type]
    assert message["Bcc"] is None and message["Subject"] == "a Bcc: evil@example.com"


@pytest.mark.parametrize(("entries", "subject"), [
    ((("0_aaaaaaaa", "Physics <script>alert(1)</script>"),),
     "1 of your videos is back in Kaltura"),
    ((("0_aaaaaaaa", "One"), ("0_bbbbbbbb", "")), "2 of your videos are back in Kaltura"),
])
def test_the_back_message_lists_the_entries_escaped(
        tmp_path: Path, entries: tuple[tuple[str, str], ...], subject: str) -> None:
    back = Back("ann", Contact("ann@example.edu", "Ann Example"), entries)
    message = render_back(back, settings(tmp_path), Setting(7, True, NOW))
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert str(parsed["Subject"]).strip() == subject
    assert parsed["To"] == "ann@example.edu" and parsed["Cc"] == "media-team@example.edu"
    assert NOTICE_HEADER not in parsed  # not a notice: nothing waits on it
    text = parsed.get_body(("plain",)).get_content()
    html = parsed.get_body(("html",)).get_content()
    for entry_id, name in entries:
        assert f"https://kms.example.edu/media/{entry_id}?p=7" in text
        assert (name or entry_id) in text
    if "<script>" in entries[0][1]:
        assert "<script>" not in html and "&lt;script&gt;" in html
    assert text.startswith("Hello Ann Example,")


def test_a_back_template_that_does_not_compile_is_a_policy_error(tmp_path: Path) -> None:
    (tmp_path / "back.txt").write_text("{% for %}")
    with pytest.raises(PolicyError) as caught:
        settings(tmp_path, "  templates: {back_text: back.txt}\n")
    assert str(caught.value).startswith("policy.yaml:11: notices.templates.back_text: template "
                                        "line 1: ")
