"""uploadToken through the real client: chunks, resume, resumeAt, final chunk, errors."""

from __future__ import annotations

import pytest
from emu_api import Api, named
from KalturaClient.exceptions import KalturaException
from KalturaClient.Plugins.Core import (
    KalturaFilterPager,
    KalturaUploadToken,
    KalturaUploadTokenFilter,
)

from sandbox.kaltura.records import UploadTokenStatus


def new_token(api: Api) -> str:
    token = api.client.uploadToken.add(KalturaUploadToken(fileName="big.mp4", fileSize=30))
    assert token.status.getValue() == UploadTokenStatus.PENDING
    return token.id


def test_chunks_resume_at_the_end_and_finish(api: Api) -> None:
    c, token = api.client, new_token(api)
    first = c.uploadToken.upload(token, named(b"A" * 10), False, False)
    assert first.status.getValue() == UploadTokenStatus.PARTIAL_UPLOAD
    assert first.uploadedFileSize == 10
    c.uploadToken.upload(token, named(b"B" * 10), True, False, -1)
    last = c.uploadToken.upload(token, named(b"C" * 10), True, True, -1)
    assert last.status.getValue() == UploadTokenStatus.FULL_UPLOAD
    assert last.uploadedFileSize == 30
    assert bytes(api.backend.tokens[token].data) == b"A" * 10 + b"B" * 10 + b"C" * 10
    assert c.uploadToken.get(token).status.getValue() == UploadTokenStatus.FULL_UPLOAD


def test_resume_at_overwrites_from_an_offset(api: Api) -> None:
    c, token = api.client, new_token(api)
    c.uploadToken.upload(token, named(b"A" * 20), False, False)
    done = c.uploadToken.upload(token, named(b"Z" * 10), True, True, 10)  # re-send a lost chunk
    assert done.uploadedFileSize == 20
    assert bytes(api.backend.tokens[token].data) == b"A" * 10 + b"Z" * 10


def test_out_of_order_chunks_wait_for_the_gap(api: Api) -> None:
    c, token = api.client, new_token(api)
    c.uploadToken.upload(token, named(b"A" * 10), False, False)
    early = c.uploadToken.upload(token, named(b"C" * 10), True, True, 20)
    assert early.status.getValue() == UploadTokenStatus.PARTIAL_UPLOAD
    assert early.uploadedFileSize == 10
    done = c.uploadToken.upload(token, named(b"B" * 10), True, False, 10)
    assert done.status.getValue() == UploadTokenStatus.FULL_UPLOAD
    assert bytes(api.backend.tokens[token].data) == b"A" * 10 + b"B" * 10 + b"C" * 10


def test_resume_with_nothing_uploaded_is_refused(api: Api) -> None:
    with pytest.raises(KalturaException) as err:
        api.client.uploadToken.upload(new_token(api), named(b"x"), True, True, -1)
    assert err.value.code == "UPLOAD_TOKEN_CANNOT_RESUME"


def test_upload_to_a_full_token_is_refused(api: Api) -> None:
    c, token = api.client, new_token(api)
    c.uploadToken.upload(token, named(b"x"), False, True)
    with pytest.raises(KalturaException) as err:
        c.uploadToken.upload(token, named(b"y"), True, True, -1)
    assert err.value.code == "UPLOAD_TOKEN_INVALID_STATUS_FOR_UPLOAD"


def test_unknown_token_is_not_found(api: Api) -> None:
    for call in (lambda: api.client.uploadToken.get("0_nothing"),
                 lambda: api.client.uploadToken.upload("0_nothing", named(b"x")),
                 lambda: api.client.uploadToken.delete("0_nothing")):
        with pytest.raises(KalturaException) as err:
            call()
        assert err.value.code == "UPLOAD_TOKEN_NOT_FOUND"


def test_list_and_delete(api: Api) -> None:
    c = api.client
    first, second = new_token(api), new_token(api)
    c.uploadToken.upload(second, named(b"x"), False, True)
    full = c.uploadToken.list(KalturaUploadTokenFilter(statusEqual=UploadTokenStatus.FULL_UPLOAD),
                              KalturaFilterPager(pageSize=10))
    assert [t.id for t in full.objects] == [second] and full.totalCount == 1
    c.uploadToken.delete(first)
    assert [t.id for t in c.uploadToken.list(None, None).objects] == [second]
