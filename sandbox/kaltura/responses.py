"""The action table: (service, action) -> handler(backend, params, ctx) -> result.

Handlers turn the decoded request params (nested dicts of strings; uploaded files as bytes) into
typed arguments, call the backend, and make download URLs absolute with ``ctx.base_url``. All
semantics live in ``models``; all encoding lives in ``wire``. session.start / session.end are not
here: the session module owns them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from sandbox.kaltura.models import KalturaBackend
from sandbox.kaltura.models.errors import missing_parameter
from sandbox.kaltura.records import CallContext, ListResponse, MediaEntry, entry_copy

Handler = Callable[[KalturaBackend, dict[str, Any], CallContext], Any]

_URL_FIELDS = ("data_url", "download_url", "thumbnail_url")


def _req(params: Mapping[str, Any], name: str) -> str:
    value = params.get(name)
    if value is None or value == "" or isinstance(value, Mapping):
        raise missing_parameter(name)
    return str(value)


def _obj(params: Mapping[str, Any], name: str, *, required: bool = False) -> dict[str, Any]:
    value = params.get(name)
    if isinstance(value, Mapping):
        return dict(value)
    if required:
        raise missing_parameter(name)
    return {}


def _bool(params: Mapping[str, Any], name: str, default: bool) -> bool:
    value = params.get(name)
    if value is None or value == "":
        return default
    return str(value).strip().lower() in ("1", "true", "yes")


def _int(params: Mapping[str, Any], name: str, default: int) -> int:
    value = params.get(name)
    if value is None or value == "":
        return default
    return int(float(str(value)))


def _url(ctx: CallContext, path: str) -> str:
    return ctx.base_url.rstrip("/") + path


def _entry(entry: MediaEntry, ctx: CallContext) -> MediaEntry:
    """A copy of the entry whose URL fields are absolute (the backend keeps paths)."""
    changes: dict[str, Any] = {name: _url(ctx, value) for name in _URL_FIELDS
               if (value := getattr(entry, name)) and value.startswith("/")}
    return entry_copy(entry, **changes) if changes else entry


def _entries(response: ListResponse, ctx: CallContext) -> ListResponse:
    return ListResponse(response.object_type, [_entry(e, ctx) for e in response.objects],
                        response.total_count)


# -- media / baseEntry -----------------------------------------------------------------------


def media_list(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> ListResponse:
    return _entries(b.list_entries(_obj(p, "filter"), _obj(p, "pager")), ctx)


def base_list(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> ListResponse:
    # baseEntry.list answers KalturaBaseEntryListResponse whose items carry their concrete type
    # (KalturaMediaEntry): kaltura/server KalturaBaseEntryArray::fromDbArray builds each item with
    # KalturaEntryFactory::getInstanceByType, and the client accepts any KalturaBaseEntry subclass.
    return _entries(b.list_entries(_obj(p, "filter"), _obj(p, "pager"), base=True), ctx)


def media_get(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> MediaEntry:
    return _entry(b.get_media(_req(p, "entryId")), ctx)  # `version` is accepted and ignored


def media_add(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> MediaEntry:
    return _entry(b.add_media(_obj(p, "entry", required=True), ctx.user_id), ctx)


def media_update(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> MediaEntry:
    fields = _obj(p, "mediaEntry") or _obj(p, "baseEntry")
    return _entry(b.update_media(_req(p, "entryId"), fields), ctx)


def media_delete(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> None:
    b.delete_media(_req(p, "entryId"))


def media_add_content(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> MediaEntry:
    return _entry(b.add_content(_req(p, "entryId"), _obj(p, "resource") or None), ctx)


def media_update_content(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> MediaEntry:
    return _entry(b.update_content(_req(p, "entryId"), _obj(p, "resource", required=True)), ctx)


def media_approve_replace(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> MediaEntry:
    return _entry(b.approve_replace(_req(p, "entryId")), ctx)


def media_cancel_replace(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> MediaEntry:
    return _entry(b.cancel_replace(_req(p, "entryId")), ctx)


def media_update_thumbnail(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> MediaEntry:
    offset = float(_req(p, "timeOffset"))
    return _entry(b.update_thumbnail(_req(p, "entryId"), offset), ctx)


def esearch_entries(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> Any:
    pager = p.get("pager")
    response = b.search_entries(_obj(p, "searchParams", required=True),
                                pager if isinstance(pager, Mapping) else None)
    hits = [dataclasses.replace(hit, object=_entry(hit.object, ctx)) for hit in response.objects]
    return dataclasses.replace(response, objects=hits)


# -- flavorAsset -------------------------------------------------------------------------------


def flavor_list(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> ListResponse:
    return b.list_flavors(_obj(p, "filter"), _obj(p, "pager"))


def flavor_get(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> Any:
    return b.get_flavor(_req(p, "id"))


def flavor_get_url(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> str:
    return _url(ctx, b.flavor_url(_req(p, "id")))


def flavor_with_params(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> list[Any]:
    return b.flavor_assets_with_params(_req(p, "entryId"))


def flavor_delete(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> None:
    b.delete_flavor(_req(p, "id"))


def flavor_convert(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> None:
    b.convert_flavor(_req(p, "entryId"), int(_req(p, "flavorParamsId")))


def flavor_reconvert(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> None:
    b.reconvert_flavor(_req(p, "id"))


# -- uploadToken -------------------------------------------------------------------------------


def token_add(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> Any:
    return b.add_token(_obj(p, "uploadToken"), ctx.user_id)


def token_upload(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> Any:
    data = p.get("fileData")
    if not isinstance(data, bytes | bytearray):
        raise missing_parameter("fileData")
    return b.upload_chunk(
        _req(p, "uploadTokenId"), bytes(data), resume=_bool(p, "resume", False),
        final_chunk=_bool(p, "finalChunk", True), resume_at=_int(p, "resumeAt", -1),
    )


def token_get(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> Any:
    return b.get_token(_req(p, "uploadTokenId"))


def token_list(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> ListResponse:
    return b.list_tokens(_obj(p, "filter"), _obj(p, "pager"))


def token_delete(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> None:
    b.delete_token(_req(p, "uploadTokenId"))


# -- thumbAsset --------------------------------------------------------------------------------


def thumb_list(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> ListResponse:
    return b.list_thumbs(_obj(p, "filter"), _obj(p, "pager"))


def thumb_get(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> Any:
    return b.get_thumb(_req(p, "thumbAssetId"))


def thumb_get_url(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> str:
    return _url(ctx, b.thumb_url(_req(p, "id")))


def thumb_generate(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> Any:
    return b.generate_thumb_for(_req(p, "entryId"), _obj(p, "thumbParams"))


def thumb_set_default(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> None:
    b.set_default_thumb(_req(p, "thumbAssetId"))


def thumb_add_from_url(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> Any:
    return b.add_thumb_from_url(_req(p, "entryId"), _req(p, "url"))


def thumb_add(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> Any:
    return b.add_thumb(_req(p, "entryId"), _obj(p, "thumbAsset"))


def thumb_set_content(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> Any:
    return b.set_thumb_content(_req(p, "id"), _obj(p, "contentResource", required=True))


def thumb_delete(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> None:
    b.delete_thumb(_req(p, "thumbAssetId"))


# -- captions and attachments ------------------------------------------------------------------


def caption_list(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> ListResponse:
    return b.list_captions(_obj(p, "filter"), _obj(p, "pager"))


def caption_get(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> Any:
    return b.get_caption(_req(p, "captionAssetId"))


def caption_get_url(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> str:
    return _url(ctx, b.caption_url(_req(p, "id")))


def caption_add(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> Any:
    return b.add_caption(_req(p, "entryId"), _obj(p, "captionAsset"))


def caption_set_content(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> Any:
    return b.set_caption_content(_req(p, "id"), _obj(p, "contentResource", required=True))


def attachment_add(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> Any:
    return b.add_attachment(_req(p, "entryId"), _obj(p, "attachmentAsset"))


def attachment_set_content(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> Any:
    return b.set_attachment_content(_req(p, "id"), _obj(p, "contentResource", required=True))


def attachment_list(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> ListResponse:
    return b.list_attachments(_obj(p, "filter"), _obj(p, "pager"))


def attachment_get(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> Any:
    return b.get_attachment(_req(p, "attachmentAssetId"))


def attachment_get_url(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> str:
    return _url(ctx, b.attachment_url(_req(p, "id")))


# -- users -------------------------------------------------------------------------------------


def user_get(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> Any:
    value = p.get("userId")
    return b.get_user("" if value is None or isinstance(value, Mapping) else str(value), ctx)


def user_list(b: KalturaBackend, p: dict[str, Any], ctx: CallContext) -> ListResponse:
    return b.list_users(_obj(p, "filter"), _obj(p, "pager"))


_MEDIA: dict[str, Handler] = {
    "list": media_list, "get": media_get, "add": media_add, "update": media_update,
    "delete": media_delete, "addcontent": media_add_content,
    "updatecontent": media_update_content, "approvereplace": media_approve_replace,
    "cancelreplace": media_cancel_replace, "updatethumbnail": media_update_thumbnail,
}
_BASE_ENTRY: dict[str, Handler] = {
    "list": base_list, "get": media_get, "update": media_update, "delete": media_delete,
    "addcontent": media_add_content, "updatecontent": media_update_content,
}

ACTIONS: dict[tuple[str, str], Handler] = {
    **{("media", a): h for a, h in _MEDIA.items()},
    **{("baseentry", a): h for a, h in _BASE_ENTRY.items()},
    ("elasticsearch_esearch", "searchentry"): esearch_entries,
    ("flavorasset", "list"): flavor_list,
    ("flavorasset", "get"): flavor_get,
    ("flavorasset", "geturl"): flavor_get_url,
    ("flavorasset", "delete"): flavor_delete,
    ("flavorasset", "getflavorassetswithparams"): flavor_with_params,
    ("flavorasset", "convert"): flavor_convert,
    ("flavorasset", "reconvert"): flavor_reconvert,
    ("uploadtoken", "add"): token_add,
    ("uploadtoken", "upload"): token_upload,
    ("uploadtoken", "get"): token_get,
    ("uploadtoken", "list"): token_list,
    ("uploadtoken", "delete"): token_delete,
    ("thumbasset", "list"): thumb_list,
    ("thumbasset", "get"): thumb_get,
    ("thumbasset", "geturl"): thumb_get_url,
    ("thumbasset", "generate"): thumb_generate,
    ("thumbasset", "setasdefault"): thumb_set_default,
    ("thumbasset", "addfromurl"): thumb_add_from_url,
    ("thumbasset", "add"): thumb_add,
    ("thumbasset", "setcontent"): thumb_set_content,
    ("thumbasset", "delete"): thumb_delete,
    ("caption_captionasset", "list"): caption_list,
    ("caption_captionasset", "get"): caption_get,
    ("caption_captionasset", "geturl"): caption_get_url,
    ("caption_captionasset", "add"): caption_add,
    ("caption_captionasset", "setcontent"): caption_set_content,
    ("attachment_attachmentasset", "list"): attachment_list,
    ("attachment_attachmentasset", "get"): attachment_get,
    ("attachment_attachmentasset", "geturl"): attachment_get_url,
    ("attachment_attachmentasset", "add"): attachment_add,
    ("attachment_attachmentasset", "setcontent"): attachment_set_content,
    ("user", "get"): user_get,
    ("user", "list"): user_list,
}
