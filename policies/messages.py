"""The owner's message: one :class:`policies.notices.Letter` rendered as a MIME message.

Pure, after the notice core decided who gets a message: the policy's templates (Jinja2, the
shipped ``policies/templates/notice.txt`` and ``notice.html`` unless overridden) are filled in
with the owner's entries — name, link in Kaltura, size, last played, what will happen and on
which date — and the keep link, and put into an ``email.message.EmailMessage``
(multipart/alternative: plain text, then HTML). The runtime hands it to the SMTP adapter.

Templates run in Jinja2's sandbox with every undefined name an error, the HTML one with
autoescaping on, so an entry named ``<script>`` is text in the mail, never markup. Headers:
From, To, Cc (the media team's copy), Reply-To, Subject, Date, a unique Message-ID,
``Auto-Submitted: auto-generated`` (RFC 3834: no auto-replies to it), and
``X-Karchive-Notice``, the letter's ``notice_id``: a message sent again after a crash between
the server's acceptance and the record carries the same value, so a person (or a filter) sees it
is the same notice. :func:`render_back` makes the optional "your videos are back" message
(``notices.tell_restored``) from the ``back_*`` templates, with the same headers save
``X-Karchive-Notice``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import TYPE_CHECKING, Any

from jinja2 import TemplateError

from policies.durations import format_size
from policies.notice_settings import TEMPLATE_ENVIRONMENTS as _ENVIRONMENTS
from policies.notices import Consequence, Contact, Letter

if TYPE_CHECKING:
    from policies.notice_settings import NoticesSettings

NOTICE_HEADER = "X-Karchive-Notice"
WHAT = {
    Consequence.SWAP: "its video is replaced by a short placeholder video (the original is "
                      "kept in the archive)",
    Consequence.PURGE: "it is deleted from Kaltura (a complete copy is kept in the archive)",
}
HEADLINE = {Consequence.SWAP: "replaced by a placeholder", Consequence.PURGE: "deleted"}


def day(instant: int) -> str:
    """A date for people: ``1 December 2026`` (UTC)."""
    moment = datetime.fromtimestamp(instant, UTC)
    return f"{moment.day} {moment:%B %Y}"


@dataclass(frozen=True, slots=True)
class Keep:
    """The keep link of one letter: its URL, until when it works, until when it keeps."""

    url: str
    link_expires: int
    keeps_until: int


@dataclass(frozen=True, slots=True)
class Setting:
    """What a message needs besides the letter: the partner (for entry links), whether a played
    placeholder comes back (the message promises it only then), and the instant it is made."""

    partner_id: int
    restore_on_play: bool
    now: int


def context(letter: Letter, settings: NoticesSettings, setting: Setting,
            keep: Keep | None) -> dict[str, Any]:
    """The names the templates see."""
    entries = []
    for verdict in letter.verdicts:
        subject = verdict.subject
        assert subject is not None  # a letter lists NOTICE / REMIND verdicts only
        played = subject.last_played_at
        entries.append({
            "entry_id": subject.entry_id,
            "name": subject.name or subject.entry_id,
            "url": settings.entry_url.format(entry_id=subject.entry_id,
                                             partner_id=setting.partner_id),
            "size": format_size(subject.size_bytes) if subject.size_bytes else "size unknown",
            "last_played": day(played) if played else "never",
            "what": WHAT[subject.consequence],
            "consequence": subject.consequence.value,
            "date": day(letter.due_at[subject.entry_id]),
        })
    kinds = {v.subject.consequence for v in letter.verdicts if v.subject is not None}
    headline = HEADLINE[kinds.pop()] if len(kinds) == 1 else "replaced or deleted"
    return {
        "owner": letter.owner,
        "owner_name": letter.contact.name or letter.owner,
        "count": len(entries),
        "entries": entries,
        "headline": headline,
        "first_date": day(min(letter.due_at.values())),
        "reminder": letter.reminder,
        "restore_on_play": setting.restore_on_play,
        "reply_to": settings.reply_to or "",
        "keep_url": keep.url if keep else "",
        "keep_until": day(keep.keeps_until) if keep else "",
        "link_expires": day(keep.link_expires) if keep else "",
    }


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def render(letter: Letter, settings: NoticesSettings, setting: Setting,
           keep: Keep | None = None) -> EmailMessage:
    """The message for ``letter``. ValueError (one line) when a template fails on its data."""
    names = context(letter, settings, setting, keep)
    templates = settings.templates
    parts = _fill((templates.subject, templates.text, templates.html), names)
    message = _message(settings, letter.contact.address, parts, setting.now, letter.notice_id)
    message[NOTICE_HEADER] = letter.notice_id
    return message


@dataclass(frozen=True, slots=True)
class Back:
    """One owner's "your videos are back" message: the played placeholders the cycle brought
    back (``notices.tell_restored``), as (entry id, name)."""

    owner: str
    contact: Contact
    entries: tuple[tuple[str, str], ...]

    @property
    def message_key(self) -> str:
        text = "\n".join([self.owner, *sorted(entry_id for entry_id, _ in self.entries)])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def render_back(back: Back, settings: NoticesSettings, setting: Setting) -> EmailMessage:
    """The "back" message for ``back`` (the ``back_*`` templates); ValueError when one fails."""
    names: dict[str, Any] = {
        "owner": back.owner, "owner_name": back.contact.name or back.owner,
        "count": len(back.entries), "reply_to": settings.reply_to or "",
        "entries": [{"entry_id": entry_id, "name": name or entry_id,
                     "url": settings.entry_url.format(entry_id=entry_id,
                                                      partner_id=setting.partner_id)}
                    for entry_id, name in back.entries],
    }
    templates = settings.templates
    parts = _fill((templates.back_subject, templates.back_text, templates.back_html), names)
    return _message(settings, back.contact.address, parts, setting.now, back.message_key)


def _fill(templates: tuple[str, str, str], names: dict[str, Any]) -> tuple[str, str, str]:
    """(subject, text, HTML) from their templates; the HTML one autoescaped. ValueError (one
    line) when a template fails on its data."""
    subject_template, text_template, html_template = templates
    try:
        subject = _one_line(_ENVIRONMENTS[False].from_string(subject_template).render(names))
        names["subject"] = subject
        text = _ENVIRONMENTS[False].from_string(text_template).render(names)
        html = _ENVIRONMENTS[True].from_string(html_template).render(names)
    except TemplateError as exc:
        raise ValueError(f"a notice template failed: {_one_line(str(exc))}; fix "
                         "notices.templates") from None
    return subject, text, html


def _message(settings: NoticesSettings, to: str, parts: tuple[str, str, str], now: int,
             key: str) -> EmailMessage:
    """The MIME message: the headers every message of karchive carries, text then HTML."""
    subject, text, html = parts
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = to
    if settings.copy_to:
        message["Cc"] = settings.copy_to
    if settings.reply_to:
        message["Reply-To"] = settings.reply_to
    message["Subject"] = subject
    message["Date"] = formatdate(now, usegmt=True)
    domain = parseaddr(settings.sender)[1].rpartition("@")[2] or None
    message["Message-ID"] = make_msgid(idstring=key[:16], domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    # Quoted-printable: 7-bit safe through any relay, whatever the names' characters.
    message.set_content(text, cte="quoted-printable")
    message.add_alternative(html, subtype="html", cte="quoted-printable")
    return message
