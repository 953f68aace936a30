"""Adding captions and attachments through the real client (add, then setContent from an upload
token), as `karchive recreate` does; error paths included."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
from emu_api import Api, make_entry, upload
from KalturaClient.exceptions import KalturaException
from KalturaClient.Plugins.Attachment import (
    KalturaAttachmentAsset,
    KalturaAttachmentAssetFilter,
    KalturaAttachmentAssetService,
)
from KalturaClient.Plugins.Caption import (
    KalturaCaptionAsset,
    KalturaCaptionAssetFilter,
    KalturaCaptionAssetService,
)
from KalturaClient.Plugins.Core import KalturaUploadedFileTokenResource, KalturaUrlResource


def error_code(call: Callable[[], object]) -> str:
    with pytest.raises(KalturaException) as err:
        call()
    return str(err.value.code)


def test_a_caption_is_added_empty_then_filled_from_an_upload_token(api: Api) -> None:
    entry = make_entry(api.backend, 1)
    captions = KalturaCaptionAssetService(api.client)
    added = captions.add(entry.id, KalturaCaptionAsset(language="French", label="Français",
                                                       format="3", fileExt="vtt"))
    assert added.status.getValue() == 0
    assert (added.language.getValue(), added.label, added.format.getValue(),
            added.fileExt) == ("French", "Français", "3", "vtt")
    text = b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nBonjour\n"
    token = upload(api, text, "fr.vtt")
    filled = captions.setContent(added.id, KalturaUploadedFileTokenResource(token=token))
    assert filled.status.getValue() == 2 and filled.size == len(text)
    listed = captions.list(KalturaCaptionAssetFilter(entryIdEqual=entry.id), None)
    assert [x.id for x in listed.objects] == [added.id]
    assert requests.get(captions.getUrl(added.id), timeout=10).content == text
    # A used token is closed: it cannot fill a second asset.
    assert error_code(lambda: captions.setContent(
        added.id, KalturaUploadedFileTokenResource(token=token))) == \
        "UPLOAD_TOKEN_INVALID_STATUS_FOR_ADD_ENTRY"


def test_an_attachment_is_added_then_filled_and_bad_calls_are_refused(api: Api) -> None:
    entry = make_entry(api.backend, 1)
    attachments = KalturaAttachmentAssetService(api.client)
    added = attachments.add(entry.id, KalturaAttachmentAsset(filename="slides.pdf",
                                                             title="Slides", fileExt="pdf"))
    token = upload(api, b"%PDF-1.4 slides", "slides.pdf")
    attachments.setContent(added.id, KalturaUploadedFileTokenResource(token=token))
    listed = attachments.list(KalturaAttachmentAssetFilter(entryIdEqual=entry.id), None)
    assert [(x.filename, x.title, x.status.getValue()) for x in listed.objects] == [
        ("slides.pdf", "Slides", 2)]
    assert requests.get(attachments.getUrl(added.id), timeout=10).content == b"%PDF-1.4 slides"
    assert error_code(lambda: attachments.add("0_nothere", KalturaAttachmentAsset())) == \
        "ENTRY_ID_NOT_FOUND"
    assert error_code(lambda: attachments.setContent(
        "0_nothere", KalturaUploadedFileTokenResource(token=token))) == \
        "ATTACHMENT_ASSET_ID_NOT_FOUND"
    assert error_code(lambda: attachments.setContent(
        added.id, KalturaUrlResource(url="http://127.0.0.1:9/x.pdf"))) == \
        "RESOURCE_TYPE_NOT_SUPPORTED"
