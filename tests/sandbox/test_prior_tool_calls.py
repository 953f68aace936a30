"""The calls the Princeton kaltura_archiver makes, in its order, run unchanged on the sandbox.

Reference section 11.1.12 and reference/prior-tools.md: it selects with eSearch, reads flavors
with getFlavorAssetsWithParams, deletes every flavor (the entry becomes NO_CONTENT), uploads the
placeholder with uploadToken and media.addContent, regenerates the thumbnail, then tags the
entry. Each step goes through the official client against a seeded sandbox.
"""

from __future__ import annotations

import io
from typing import Any

from esearch_helpers import AND, EXACT, NOT, PARTIAL, every_id, item, op
from KalturaClient import KalturaClient, KalturaConfiguration
from KalturaClient.Plugins.Core import (
    KalturaMediaEntry,
    KalturaSessionType,
    KalturaUploadedFileTokenResource,
    KalturaUploadToken,
)

from sandbox.catalogue import ARCHIVED_TAG, PLACEHOLDER_TAG, LegacyKind
from sandbox.runner import Sandbox, placeholder_video

# Its defaults: every status but DELETED, MODERATE and BLOCKED.
PRINCETON_STATUSES = "-1,-2,0,1,2,7,4"


def princeton_client(sandbox: Sandbox) -> KalturaClient:
    env = sandbox.env()
    client = KalturaClient(KalturaConfiguration(env["KALTURA_SERVICE_URL"]))
    # Five days, as it asks: the sandbox caps it to its maximum, as Kaltura caps it.
    ks = client.session.start(env["KALTURA_ADMIN_SECRET"], env["KALTURA_USER_ID"],
                              KalturaSessionType.ADMIN, int(env["KALTURA_PARTNER_ID"]), 432000,
                              "disableentitlement")
    client.setKs(ks)
    return client


def to_replace(client: KalturaClient) -> set[str]:
    selection = op(AND, item("media_type", EXACT, "1"), item("tags", PARTIAL, ARCHIVED_TAG),
                   op(NOT, item("tags", PARTIAL, PLACEHOLDER_TAG)))
    return set(every_id(client, selection, objectStatuses=PRINCETON_STATUSES))


def replace_video(client: KalturaClient, entry_id: str) -> None:
    """replace_video, step by step as the tool does it."""
    with_params = client.flavorAsset.getFlavorAssetsWithParams(entry_id)
    flavors = [i.flavorAsset for i in with_params if i.flavorAsset is not None]
    assert flavors and sum(f.size for f in flavors) > 0  # it sums the sizes in KB
    for flavor in flavors:
        client.flavorAsset.delete(flavor.id)
    data = placeholder_video()
    token = client.uploadToken.add(KalturaUploadToken(fileName="placeholder.mp4",
                                                      fileSize=len(data)))
    upload = io.BytesIO(data)
    upload.name = "placeholder.mp4"
    client.uploadToken.upload(token.id, upload)
    client.media.addContent(entry_id, KalturaUploadedFileTokenResource(token=token.id))
    client.media.updateThumbnail(entry_id, 1)
    tags = client.media.get(entry_id).tags
    client.media.update(entry_id, KalturaMediaEntry(tags=f"{tags}, {PLACEHOLDER_TAG}"))


def test_the_princeton_replace_runs_unchanged(make_sandbox: Any) -> None:
    sandbox = make_sandbox(entries=150, seed=1, conversion_delay=0)
    client = princeton_client(sandbox)
    archived = [i for i in sandbox.summary.legacy_ids(LegacyKind.ARCHIVED)
                if sandbox.backend.entries[i].media_type == 1]
    assert archived and set(archived) <= to_replace(client)
    entry_id = archived[0]
    owner = client.user.get(client.media.get(entry_id).userId)  # the owner, for a notice
    assert owner.id and owner.fullName

    replace_video(client, entry_id)

    entry = client.media.get(entry_id)
    assert entry.status.getValue() == "2"  # READY again, with the placeholder
    assert {PLACEHOLDER_TAG, ARCHIVED_TAG} <= set(entry.tags.split(", "))
    source = [i.flavorAsset for i in client.flavorAsset.getFlavorAssetsWithParams(entry_id)
              if i.flavorAsset is not None and i.flavorAsset.isOriginal]
    assert [f.sizeInBytes for f in source] == [len(placeholder_video())]
    assert entry_id not in to_replace(client)


def test_an_entry_it_emptied_is_found_and_takes_content_again(make_sandbox: Any) -> None:
    sandbox = make_sandbox(entries=150, seed=1, conversion_delay=0)
    client = princeton_client(sandbox)
    emptied = sandbox.summary.legacy_ids(LegacyKind.EMPTIED_BY_REPLACE)[0]
    found = every_id(client, op(AND, item("id", EXACT, emptied)),
                     objectStatuses=PRINCETON_STATUSES)
    assert found == [emptied]
    assert client.media.get(emptied).status.getValue() == "7"  # NO_CONTENT
    assert [i.flavorAsset for i in client.flavorAsset.getFlavorAssetsWithParams(emptied)
            if i.flavorAsset is not None] == []
    token = client.uploadToken.add(KalturaUploadToken(fileName="placeholder.mp4"))
    upload = io.BytesIO(placeholder_video())
    upload.name = "placeholder.mp4"
    client.uploadToken.upload(token.id, upload)
    client.media.addContent(emptied, KalturaUploadedFileTokenResource(token=token.id))
    assert client.media.get(emptied).status.getValue() == "2"
