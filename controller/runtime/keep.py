"""The keep listener: the one-click link in an owner's notice, served on a port of its own.

Where it sits: beside the daemon (``karchive run --keep-address HOST:PORT`` starts it), outside
the cycle. An owner opens ``{notices.keep.base_url}/{token}`` from their message:

- ``GET`` shows the entries the link names (from its grant, ``policies.keeplink``) and a confirm
  button, and changes NOTHING — mail scanners and link previews follow GET links;
- ``POST`` (the button's form, carrying a token derived from the link) keeps them: it adds the
  dated keep tag (``karchive_keep_until_YYYYMMDD``, ``notices.keep.keep_for`` from now) to each
  entry through the Kaltura port, then records the grant as used (write-once, in the archive),
  and the next cycle's desired state treats the entries as exempt until that date, which also
  cancels their notices.

A forged, altered, expired or used link, a POST without the page's form token, or anything else
gets the same 404 page with no detail; the page never names an entry the link does not, and an
entry whose owner changed since the message is skipped silently. Kaltura failing mid-way leaves
the grant unused (the tags already added are harmless: adding them again is idempotent), so the
owner can press again. Responses are never cached, never framed, and send no referrer (the token
is in the URL).
"""

from __future__ import annotations

import html
import logging
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from controller.errors import KarchiveError
from controller.runtime.http import Listener
from controller.runtime.notices import NoticeStore
from policies import keeplink
from policies.keeplink import Grant
from policies.messages import day
from policies.notice_settings import KeepLinks
from policies.notices import after
from reconcilers.ports import EntryDetails

log = logging.getLogger("karchive.keep")

MAX_FORM = 4096  # bytes of a POST body: the form has one short field
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "form-action 'self'; frame-ancestors 'none'",
}
_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title></head>
<body style="font-family: sans-serif; line-height: 1.4; color: #222; max-width: 40em;
margin: 2em auto; padding: 0 1em"><h1 style="font-size: 1.4em">{title}</h1>{body}</body></html>
"""
REFUSED = ("This link does not work", "<p>It may have expired or been used already. To keep "
           "your videos, reply to the message you received.</p>")


class KeepTarget(Protocol):
    """What a keep needs of Kaltura (``KalturaWriter`` is one): read an entry, add a tag."""

    def entry(self, entry_id: str) -> EntryDetails: ...

    def add_tags(self, entry_id: str, tags: frozenset[str]) -> frozenset[str]: ...


class Keeper:
    """The keep decisions, apart from HTTP: find and check a link's grant, apply a keep."""

    def __init__(self, settings: KeepLinks, store: NoticeStore, kaltura: KeepTarget, *,
                 clock: Callable[[], float] = time.time,
                 on_keep: Callable[[int], None] | None = None) -> None:
        self.settings = settings
        self.store = store
        self.kaltura = kaltura
        self.clock = clock
        self.on_keep = on_keep or (lambda count: None)
        self._secret = settings.secret.get_secret_value()

    def check(self, token: str) -> Grant | None:
        """The grant ``token`` stands for, if the link is genuine, unexpired and unused."""
        nonce = keeplink.nonce_of(token)
        if nonce is None:
            return None
        grant = self.store.grant(nonce)
        if not keeplink.valid(token, grant, self._secret, int(self.clock())):
            return None
        return None if self.store.used(nonce) else grant

    def form(self, token: str) -> str:
        return keeplink.form_token(token, self._secret)

    def keep(self, token: str, form: str) -> tuple[int, int] | None:
        """Apply the keep: (entries kept, until when), or None for a refused request."""
        grant = self.check(token)
        if grant is None or not keeplink.form_valid(token, form, self._secret):
            return None
        until = after(self.settings.keep_for, int(self.clock()))
        tag = frozenset({keeplink.keep_tag(until)})
        kept = 0
        for entry_id in grant.entry_ids:
            # Only the owner's own entries: one given away since the message is not theirs.
            if self.kaltura.entry(entry_id).user_id != grant.owner:
                continue
            self.kaltura.add_tags(entry_id, tag)
            kept += 1
        self.store.claim(grant.nonce)
        self.on_keep(kept)
        log.info("keep link used by %s: %d entries kept until %s", grant.owner, kept,
                 day(until))
        return kept, until


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def _token(self) -> str:
        path = urllib.parse.urlsplit(self.path).path
        return urllib.parse.unquote(path.rstrip("/").rpartition("/")[2])

    def do_GET(self) -> None:  # noqa: N802 - the http.server naming
        self._answer(self._page)

    def do_POST(self) -> None:  # noqa: N802
        self._answer(self._act)

    def _answer(self, make: Callable[[], tuple[int, str, str]]) -> None:
        try:
            status, title, body = make()
        except KarchiveError as exc:
            log.warning("keep request failed: %s", exc)
            status, title, body = 503, "Not saved", ("<p>Your videos could not be kept just "
                                                     "now. Please try again later.</p>")
        except Exception:  # the owner gets a page, never a dropped connection
            log.exception("keep request failed")
            status, title, body = 500, "Not saved", "<p>Something went wrong. Please try again " \
                                                    "later.</p>"
        page = _PAGE.format(title=html.escape(title), body=body).encode()
        self.send_response(status)
        for name, value in {**_HEADERS, "Content-Type": "text/html; charset=utf-8",
                            "Content-Length": str(len(page))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(page)

    def _page(self) -> tuple[int, str, str]:
        token = self._token()
        grant = self.server.keeper.check(token)
        if grant is None:
            return 404, *REFUSED
        names = dict(grant.names)
        rows = "".join(f"<li>{html.escape(names.get(e) or e)}</li>" for e in grant.entry_ids)
        until = day(after(self.server.keeper.settings.keep_for, int(self.server.keeper.clock())))
        form = html.escape(self.server.keeper.form(token), quote=True)
        body = (f"<p>Keep these {len(grant.entry_ids)} videos as they are until {until}?</p>"
                f"<ul>{rows}</ul><form method=\"post\"><input type=\"hidden\" name=\"form\" "
                f"value=\"{form}\"><button type=\"submit\" style=\"padding: 0.6em 1.2em; "
                f"font-size: 1em\">Keep my videos</button></form>")
        return 200, "Keep your videos", body

    def _act(self) -> tuple[int, str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_FORM:
            return 404, *REFUSED
        fields = urllib.parse.parse_qs(self.rfile.read(length).decode("ascii", "replace"))
        done = self.server.keeper.keep(self._token(), (fields.get("form") or [""])[0])
        if done is None:
            return 404, *REFUSED
        count, until = done
        return 200, "Kept", (f"<p>Done: {count} video{'s' if count != 1 else ''} will stay as "
                             f"they are until {day(until)}.</p>")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # the URL holds the token: never in a log line


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], keeper: Keeper) -> None:
        super().__init__(address, _Handler)
        self.keeper = keeper


class KeepServer(Listener):
    """``KeepServer(keeper, address, port).start()``; ``.url``; ``.stop()``."""

    def __init__(self, keeper: Keeper, address: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(_Server((address, port), keeper), "karchive-keep")
