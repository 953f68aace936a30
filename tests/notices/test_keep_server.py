"""The keep listener (controller/runtime/keep.py) over real HTTP, with the sandbox's Kaltura
(the real KalturaClient through karchive's writer) and its S3 for grants: GET changes nothing,
the POST keeps, and forged, expired, replayed, altered and GET-only requests change nothing."""

from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from notice_world import PREFIX, SECRET, notices_of, policy_for, s3_archive

from controller.adapters.kaltura.session import KalturaSession
from controller.adapters.kaltura.write import KalturaWriter
from controller.runtime.keep import Keeper, KeepServer
from controller.runtime.notices import NoticeStore
from policies import keeplink
from policies.durations import Duration, TimeUnit
from policies.keeplink import Grant
from policies.notices import after
from sandbox.runner import Sandbox

DAY = 86400


@dataclass
class Scene:
    sandbox: Sandbox
    server: KeepServer
    store: NoticeStore
    now: list[float]
    owner: str
    mine: list[str]  # the owner's entries the grant names
    other: str  # an entry of another owner, never named
    kept: list[int]

    def tags(self, entry_id: str) -> set[str]:
        with self.sandbox.backend.lock:  # type: ignore[union-attr]
            entry = self.sandbox.backend.entries[entry_id]  # type: ignore[union-attr]
            return {t.strip() for t in entry.tags.split(",") if t.strip()}

    def link(self, grant: Grant) -> str:
        return f"{self.server.url}/keep/{keeplink.token(grant, SECRET)}"

    def grant(self, entry_ids: list[str] | None = None, expires_in: int = 60 * DAY) -> Grant:
        ids = entry_ids if entry_ids is not None else self.mine
        grant = Grant.issue(_random(), self.owner, {e: f"Lecture {e}" for e in ids},
                            int(self.now[0]), int(self.now[0]) + expires_in)
        self.store.save_grant(grant)
        return grant


_counter = [0]


def _random() -> bytes:
    _counter[0] += 1
    return _counter[0].to_bytes(16, "big")


@pytest.fixture
def scene(make_sandbox: Callable[..., Sandbox], tmp_path: Path) -> Iterator[Scene]:
    sandbox = make_sandbox(entries=40, seed=11)
    policy = policy_for(sandbox.env(), tmp_path)
    keep = notices_of(policy).keep
    assert keep is not None
    with sandbox.backend.lock:  # type: ignore[union-attr]
        entries = sorted(sandbox.backend.all_entries(), key=lambda e: e.id)  # type: ignore[union-attr]
    by_owner: dict[str, list[str]] = {}
    for entry in entries:
        by_owner.setdefault(entry.user_id, []).append(entry.id)
    owner = max(by_owner, key=lambda o: len(by_owner[o]))
    other = next(e.id for e in entries if e.user_id != owner)
    store = NoticeStore(s3_archive(sandbox), PREFIX)
    now = [float(sandbox.backend.clock.now())]  # type: ignore[union-attr]
    kept: list[int] = []
    keeper = Keeper(keep, store, KalturaWriter(KalturaSession(policy.kaltura)),
                    clock=lambda: now[0], on_keep=kept.append)
    with KeepServer(keeper) as server:
        yield Scene(sandbox, server, store, now, owner, by_owner[owner][:3], other, kept)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def post(url: str, form: str | None) -> tuple[int, str]:
    data = urllib.parse.urlencode({"form": form} if form is not None else {}).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def form_of(page: str) -> str:
    found = re.search(r'name="form" value="([^"]+)"', page)
    assert found, page
    return found[1]


def keep_tags(scene: Scene, entry_id: str) -> set[str]:
    return {t for t in scene.tags(entry_id) if t.startswith(keeplink.KEEP_TAG_PREFIX)}


def test_get_shows_the_entries_and_changes_nothing_then_post_keeps(scene: Scene) -> None:
    grant = scene.grant()
    link = scene.link(grant)
    for _ in range(3):  # a mail scanner, a preview, the owner
        status, page = get(link)
        assert status == 200 and "Keep my videos" in page
    for entry_id in scene.mine:
        assert f"Lecture {entry_id}" in page and not keep_tags(scene, entry_id)
    assert scene.other not in page
    assert not scene.store.used(grant.nonce)

    status, page = post(link, form_of(page))
    assert status == 200 and "3 videos will stay as they are until" in page
    expected = keeplink.keep_tag(after(Duration(2, TimeUnit.YEAR), int(scene.now[0])))
    for entry_id in scene.mine:
        assert keep_tags(scene, entry_id) == {expected}
    assert not keep_tags(scene, scene.other)
    assert scene.store.used(grant.nonce) and scene.kept == [3]


def test_a_used_link_is_refused_like_any_other(scene: Scene) -> None:
    grant = scene.grant()
    link = scene.link(grant)
    form = form_of(get(link)[1])
    assert post(link, form)[0] == 200
    refused_get, refused_post = get(link), post(link, form)
    assert refused_get[0] == refused_post[0] == 404
    assert refused_get[1] == refused_post[1] == get(f"{scene.server.url}/keep/nothing")[1]
    assert scene.kept == [3]


def _refused(scene: Scene, url: str, form: str | None = "x") -> None:
    before = {e: scene.tags(e) for e in [*scene.mine, scene.other]}
    status, page = get(url)
    assert status == 404 and "This link does not work" in page
    status, page = post(url, form)
    assert status == 404 and "This link does not work" in page
    assert {e: scene.tags(e) for e in [*scene.mine, scene.other]} == before
    assert scene.kept == []


def test_forged_altered_and_expired_links_change_nothing(scene: Scene) -> None:
    grant = scene.grant()
    token = keeplink.token(grant, SECRET)
    forged = keeplink.token(grant, "another secret of the same good length")
    altered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    longer = token.replace(f".{grant.expires}.", f".{grant.expires + DAY}.")
    unknown = keeplink.token(Grant.issue(b"\x09" * 16, scene.owner, {scene.other: "x"},
                                         grant.issued_at, grant.expires), SECRET)
    for bad in (forged, altered, longer, unknown, "garbage", ""):
        _refused(scene, f"{scene.server.url}/keep/{bad}", keeplink.form_token(bad, SECRET))
    scene.now[0] += 61 * DAY  # past the link's expiry
    _refused(scene, scene.link(grant), keeplink.form_token(token, SECRET))


def test_a_post_without_the_pages_form_token_changes_nothing(scene: Scene) -> None:
    grant, elsewhere = scene.grant(), scene.grant()
    link = scene.link(grant)
    for form in (None, "", keeplink.form_token(keeplink.token(elsewhere, SECRET), SECRET),
                 keeplink.token(grant, SECRET)):
        status, _ = post(link, form)
        assert status == 404
    assert not any(keep_tags(scene, e) for e in scene.mine)
    assert not scene.store.used(grant.nonce)


def test_an_entry_given_to_someone_else_since_the_message_is_skipped(scene: Scene) -> None:
    grant = scene.grant([*scene.mine[:1], scene.other])
    status, page = post(scene.link(grant), form_of(get(scene.link(grant))[1]))
    assert status == 200 and "1 video will stay" in page
    assert keep_tags(scene, scene.mine[0]) and not keep_tags(scene, scene.other)
