"""``karchive run --keep-address``: the daemon serves the keep links of the notices it sends.

One sandbox and one daemon (a real ``karchive run`` subprocess) for the module: its first cycle
tells the owners, each message (read back from the sandbox's mail sink, as an owner's mail client
would get it) carries a link to the daemon's own keep listener; GET shows the entries and changes
nothing, the form's POST keeps them — the dated keep tag is in Kaltura — and the keep is counted
in ``/metrics``. The same, as an owner sees it: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, over WebDriver) opens the link of another message, shows the page, and the
owner's click on the button keeps their entries. A bad ``--keep-address``, or one without
``notices.keep`` in the policy, is one line and exit 1.

``KARCHIVE_SCREENSHOTS=docs/img`` also saves what the browser showed — the message's HTML part
as a mail client renders it, and the keep page — for the README (not on every run).
"""

from __future__ import annotations

import os
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from daemon_process import DaemonProcess, wait_for
from notice_world import policy_text
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from controller.cli import main
from policies import keeplink
from sandbox.runner import Sandbox

RULE = """placeholder: {placeholder}
rules:
  - name: old-lectures
    match: {{unplayed_for: 1y, media_types: [video]}}
    state: placeholder
limits: {{max_replace_share: 1.0}}
"""
LINK_RE = re.compile(r"(http://127\.0\.0\.1:\d+/keep/\S+)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """The module's sandbox, its daemon with a keep listener, and the messages it sent."""

    def __init__(self, sandbox: Sandbox, daemon: DaemonProcess) -> None:
        self.sandbox = sandbox
        self.daemon = daemon

    def messages(self) -> list[EmailMessage]:
        return self.sandbox.smtp.messages()  # type: ignore[union-attr]

    def tags(self, entry_id: str) -> set[str]:
        backend: Any = self.sandbox.backend
        with backend.lock:
            return {t.strip() for t in backend.entries[entry_id].tags.split(",") if t.strip()}

    def owned(self, owner: str) -> set[str]:
        backend: Any = self.sandbox.backend
        with backend.lock:
            return {e.id for e in backend.all_entries() if e.user_id == owner}


def link_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    found = LINK_RE.search(body.get_content())
    assert found, "the message carries no keep link"
    return found[1]


def listed(served: Served, message: EmailMessage) -> set[str]:
    """The entry ids a message lists (its owner's entries named in the text)."""
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    backend: Any = served.sandbox.backend
    with backend.lock:
        return {e.id for e in backend.all_entries() if e.id in text}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("keep")
    port = _free_port()
    with Sandbox(entries=40, seed=7, max_size=256 << 10, conversion_delay=0.0) as sandbox:
        env = sandbox.env()
        text = policy_text(env, folder, RULE.format(placeholder=env["KARCHIVE_PLACEHOLDER"]))
        text = text.replace("https://karchive.example.edu/keep", f"http://127.0.0.1:{port}/keep")
        (folder / "policy.yaml").write_text(text)
        daemon = DaemonProcess(folder / "policy.yaml", {**env, "KARCHIVE_STATE_DIR":
                               str(folder / "state")}, "--interval", "30",
                               "--keep-address", f"127.0.0.1:{port}")
        try:
            served = Served(sandbox, daemon)
            wait_for(lambda: daemon.metric("karchive_notices_sent_total"), 60,
                     "the first cycle's notices")
            yield served
        finally:
            daemon.stop()


def _open(url: str, form: dict[str, str] | None = None) -> tuple[int, str]:
    data = None if form is None else urllib.parse.urlencode(form).encode()
    try:
        with urllib.request.urlopen(url, data=data, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_the_link_in_a_sent_message_keeps_the_owners_entries(served: Served) -> None:
    message = served.messages()[0]
    link = link_of(message)
    entries = listed(served, message)
    assert entries
    status, page = _open(link)
    assert status == 200 and "Keep my videos" in page
    assert not any(t.startswith(keeplink.KEEP_TAG_PREFIX) for e in entries
                   for t in served.tags(e))  # a GET changes nothing
    form = re.search(r'name="form" value="([^"]+)"', page)
    assert form
    status, page = _open(link, {"form": form[1]})
    assert status == 200 and "Done:" in page
    for entry_id in entries:
        assert any(t.startswith(keeplink.KEEP_TAG_PREFIX) for t in served.tags(entry_id))
    assert served.daemon.metric("karchive_keeps_total") == len(entries)
    # Used once: the same link now gets the page that says nothing.
    assert _open(link)[0] == 404


def test_a_bad_keep_address_is_one_line_and_exit_1(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["run", "-f", str(tmp_path / "policy.yaml"), "--keep-address", "nowhere"])
    assert stopped.value.code == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "HOST:PORT" in err


def test_a_plan_only_daemon_serves_no_keep_links(served: Served, tmp_path: Path) -> None:
    env = served.sandbox.env()
    text = policy_text(env, tmp_path, RULE.format(placeholder=env["KARCHIVE_PLACEHOLDER"]))
    (tmp_path / "policy.yaml").write_text(text)
    daemon = DaemonProcess(tmp_path / "policy.yaml", {**env, "KARCHIVE_STATE_DIR":
                           str(tmp_path / "state")}, "--plan-only",
                           "--keep-address", f"127.0.0.1:{_free_port()}")
    assert daemon.proc.wait(timeout=60) == 1
    daemon.stop()
    errors = [r for r in daemon.logs if r.get("level") in ("ERROR", "error")]
    assert len(errors) == 1 and "--plan-only" in errors[0]["message"]


def test_keep_address_without_keep_links_in_the_policy_is_one_line_and_exit_1(
        served: Served, tmp_path: Path) -> None:
    env = served.sandbox.env()
    text = policy_text(env, tmp_path, RULE.format(placeholder=env["KARCHIVE_PLACEHOLDER"]))
    text = "\n".join(line for line in text.splitlines() if not line.startswith("  keep:"))
    (tmp_path / "policy.yaml").write_text(text + "\n")
    daemon = DaemonProcess(tmp_path / "policy.yaml", {**env, "KARCHIVE_STATE_DIR":
                           str(tmp_path / "state")}, "--keep-address", f"127.0.0.1:{_free_port()}")
    assert daemon.proc.wait(timeout=60) == 1  # it stops by itself, before any cycle
    daemon.stop()
    errors = [r for r in daemon.logs if r.get("level") in ("ERROR", "error")]
    assert len(errors) == 1 and "notices.keep" in errors[0]["message"]


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """Headless Chromium, driven through Debian's chromedriver (no driver download)."""
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("KARCHIVE_CHROMIUM", "/usr/bin/chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=760,820", "--disable-gpu"):
        options.add_argument(argument)
    service = Service(os.environ.get("KARCHIVE_CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _screenshot(driver: WebDriver, name: str) -> None:
    folder = os.environ.get("KARCHIVE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / name))


def test_an_owner_keeps_their_videos_from_the_message_in_chromium(
        served: Served, browser: WebDriver, tmp_path: Path) -> None:
    messages = served.messages()
    assert len(messages) >= 2  # another owner than the first test's
    message = messages[-1]
    entries = listed(served, message)
    html = message.get_body(("html",))
    assert html is not None and entries
    # The message as HTML mail renders it: the link the owner clicks is in it.
    page = tmp_path / "message.html"
    page.write_text(html.get_content(), encoding="utf-8")
    browser.get(page.as_uri())
    link = browser.find_element(By.PARTIAL_LINK_TEXT, "Keep these videos")
    href = link.get_attribute("href")
    assert href == link_of(message)
    _screenshot(browser, "notice-message.png")

    browser.get(href)
    assert browser.title == "Keep your videos"
    shown = browser.find_element(By.TAG_NAME, "ul").text
    backend: Any = served.sandbox.backend
    with backend.lock:
        names = {backend.entries[e].name for e in entries}
    assert all(name in shown for name in names)
    assert not any(t.startswith(keeplink.KEEP_TAG_PREFIX) for e in entries
                   for t in served.tags(e))  # opening the page kept nothing
    _screenshot(browser, "keep-page.png")
    browser.find_element(By.TAG_NAME, "button").click()
    WebDriverWait(browser, 30).until(lambda d: d.title == "Kept")
    assert f"Done: {len(entries)} video" in browser.find_element(By.TAG_NAME, "body").text
    for entry_id in entries:
        assert any(t.startswith(keeplink.KEEP_TAG_PREFIX) for t in served.tags(entry_id))

