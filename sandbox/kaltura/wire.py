"""Wire format of the emulator: request decoding and response encoding (reference section 2-3).

The server hands raw HTTP pieces in; this module gives back the nested params the action
handlers read, and turns whatever a handler returned (record, list response, string, number,
``None`` or a ``KalturaError``) into the bytes a real Kaltura server would send. Errors become wire
responses here and nowhere else: the dispatcher passes a raised ``KalturaError`` in as a result.

Decoding:
- JSON bodies (what KalturaClient sends): kept as they are, with scalars turned into strings for
  the raw clients that send numbers or booleans; ``{"-": ""}`` (an empty array) becomes ``[]``;
  ``name__null`` keys pass through for the handlers to clear fields with.
- form-encoded bodies and query strings: ``filter[objectType]=x`` and ``0:service=media`` become
  nested dicts (``[]`` brackets and ``:`` both nest, as Kaltura's own request parser accepts).
- multipart/form-data: the ``json`` field holds the params; every file field becomes an
  ``UploadedFile`` (``bytes`` with the base name of its filename) nested by its name, so a
  multirequest's ``"1:fileData"`` lands in sub-call 1.

Encoding (format 2, XML, the default; format 1, JSON): the shapes KalturaClient's ``Base.py`` and
``Client.py`` parse. Integral floats are written as integers because the client reads some float
fields with ``int()`` and some int fields are floats here (``getXmlNodeInt`` would drop "12.0").
A call's ``responseProfile`` (a ``KalturaDetachedResponseProfile``) shapes its result
(:func:`shaped`), and a request's ``ignoreNull=1`` drops the XML's null fields, as the server
does (:func:`ignore_null`).
"""

from __future__ import annotations

import dataclasses
import email.parser
import email.policy
import json
import math
import posixpath
import re
from collections.abc import Iterable
from enum import Enum
from typing import Any
from urllib.parse import parse_qsl

from sandbox.kaltura.exceptions import KalturaError
from sandbox.kaltura.records import ListResponse

FORMAT_JSON = "1"
FORMAT_XML = "2"

XML_CONTENT_TYPE = "text/xml; charset=utf-8"
JSON_CONTENT_TYPE = "application/json; charset=utf-8"


class UploadedFile(bytes):
    """The bytes of an uploaded file field, with the base name of the filename the client gave."""

    filename: str

    def __new__(cls, data: bytes, filename: str = "") -> UploadedFile:
        obj = super().__new__(cls, data)
        # Only the base name: a client path such as C:\\videos\\a.mp4 or ../../etc must not leak in.
        obj.filename = posixpath.basename(filename.replace("\\", "/"))
        return obj


# --------------------------------------------------------------------------------------- decoding


def decode_request(query: str, content_type: str, body: bytes) -> dict[str, Any]:
    """Merge the query string and the body into one nested params dict (body wins, as in PHP)."""
    params = nest(parse_qsl(query, keep_blank_values=True))
    ctype = content_type.split(";", 1)[0].strip().lower()
    if not body:
        return params
    if ctype == "multipart/form-data":
        merge(params, _decode_multipart(content_type, body))
    elif ctype == "application/x-www-form-urlencoded":
        merge(params, nest(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)))
    else:
        # KalturaClient always says application/json; raw scripts sometimes send no type at all.
        try:
            decoded = json.loads(body)
        except ValueError as exc:
            raise KalturaError("INVALID_JSON", f"Request body is not valid JSON: {exc}") from exc
        if isinstance(decoded, dict):
            merge(params, normalise(decoded))
    return params


_KEY_SPLIT = re.compile(r"\]\[|\[|\]|:")


def nest(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """``[("filter[objectType]", "x"), ("0:service", "media")]`` -> nested dicts."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        parts = [p for p in _KEY_SPLIT.split(key) if p != ""] or [key]
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    return normalise(out)


def normalise(value: Any) -> Any:
    """Scalars to strings (bool as 1/0), ``{"-": ""}`` to ``[]``; nested dicts and lists kept."""
    if isinstance(value, dict):
        if value == {"-": ""}:
            return []
        return {str(k): normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, bytes) or value is None:
        return value
    if isinstance(value, int | float):
        return _number_text(value)
    return value if isinstance(value, str) else str(value)


def merge(into: dict[str, Any], other: dict[str, Any]) -> None:
    """Deep-merge ``other`` into ``into``; the later source wins on scalar conflicts."""
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value


def _decode_multipart(content_type: str, body: bytes) -> dict[str, Any]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise KalturaError("INVALID_MULTIPART", "Multipart body could not be parsed")
    params: dict[str, Any] = {}
    files: list[tuple[str, Any]] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        raw = part.get_payload(decode=True)
        payload = raw if isinstance(raw, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            files.append((name, UploadedFile(payload, filename)))
        elif name == "json":
            decoded = json.loads(payload or b"{}")
            if isinstance(decoded, dict):
                merge(params, normalise(decoded))
        else:
            files.append((name, payload.decode("utf-8", "replace")))
    merge(params, nest(files))
    return params


def response_format(params: dict[str, Any]) -> str:
    """Format 1 is JSON; anything else (2 XML, the default; 3 PHP, unsupported here) is XML."""
    return FORMAT_JSON if str(params.get("format", FORMAT_XML)) == FORMAT_JSON else FORMAT_XML


# --------------------------------------------------------------------------------------- encoding


def encode_response(result: Any, fmt: str, execution_time: float = 0.0, *,
                    skip_nulls: bool = False) -> tuple[bytes, str]:
    """One call's result (or KalturaError) -> (body, content type)."""
    if fmt == FORMAT_JSON:
        return json.dumps(to_json(result), separators=(",", ":")).encode(), JSON_CONTENT_TYPE
    return _xml_document(xml_value(result, skip_nulls), execution_time), XML_CONTENT_TYPE


def encode_multi_response(
    results: list[Any], fmt: str, execution_time: float = 0.0, *, skip_nulls: bool = False
) -> tuple[bytes, str]:
    """A multirequest: one ``<item>`` (XML) or array element (JSON) per sub-call, errors inline."""
    if fmt == FORMAT_JSON:
        body = json.dumps([to_json(r) for r in results], separators=(",", ":"))
        return body.encode(), JSON_CONTENT_TYPE
    inner = "".join(f"<item>{xml_value(r, skip_nulls)}</item>" for r in results)
    return _xml_document(inner, execution_time), XML_CONTENT_TYPE


def ignore_null(params: dict[str, Any]) -> bool:
    """The request's ``ignoreNull``: "1" (or true) leaves null fields out of the XML instead of
    writing them empty. kaltura/server api_v3/lib/KalturaFrontController.php
    (setSerializerByFormat: ``$this->params["ignoreNull"] === "1"``) and
    api_v3/lib/KalturaXmlSerializer.php (serializeObject: ``if ($this->_ignoreNull === true &&
    $value === null) continue;``). A request-level parameter: for a multirequest, the whole
    response. JSON drops nulls anyway."""
    return str(params.get("ignoreNull", "")).lower() in ("1", "true")


# KalturaResponseProfileType (KalturaClient Plugins/Core.py, the server's ResponseProfileType).
INCLUDE_FIELDS, EXCLUDE_FIELDS = "1", "2"


@dataclasses.dataclass(frozen=True, slots=True)
class Shaped:
    """A result as a detached response profile shapes it. kaltura/server
    api_v3/lib/types/KalturaObject.php (fromObject and the generated mapping code: with
    INCLUDE_FIELDS only the listed properties are filled from the object, with EXCLUDE_FIELDS
    all but those; the others stay null; ``objectType`` is always written). A list response
    shapes its objects (``KalturaXxxArray::fromDbArray($list, $responseProfile)``), never its own
    ``objects`` and ``totalCount``."""

    value: Any
    fields: frozenset[str]
    include: bool

    def keeps(self, tag: str) -> bool:
        return (tag in self.fields) is self.include


def shaped(result: Any, profile: Any) -> Any:
    """``result`` under the call's ``responseProfile`` param, when it is a detached profile of
    either type; any other value (none, a stored profile's holder) leaves it as it is."""
    if not isinstance(profile, dict) or isinstance(result, KalturaError) or result is None:
        return result
    kind = str(profile.get("type", ""))
    if kind not in (INCLUDE_FIELDS, EXCLUDE_FIELDS):
        return result
    fields = frozenset(f.strip() for f in str(profile.get("fields", "")).split(",") if f.strip())
    return Shaped(result, fields, kind == INCLUDE_FIELDS)


def _xml_document(inner: str, execution_time: float) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><xml><result>'
        f"{inner}</result><executionTime>{execution_time:.4f}</executionTime></xml>"
    ).encode()


_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"})
# XML 1.0 forbids most control characters even escaped; a real server strips them too.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _esc(text: str) -> str:
    if _XML_INVALID.search(text):
        text = _XML_INVALID.sub("", text)
    return text.translate(_ESCAPES)


def _number_text(value: int | float) -> str:
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return str(int(value))
        return repr(value)
    return str(value)


def camel(name: str) -> str:
    """``size_in_bytes`` -> ``sizeInBytes``."""
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


_FIELD_CACHE: dict[type, tuple[tuple[str, str], ...]] = {}


def wire_fields(cls: type) -> tuple[tuple[str, str], ...]:
    """(attribute, wire name) of a record class, computed once: encoding 500 entries is hot.

    The record's ``NULLS`` (fields it never fills) come last; they have no attribute, so
    ``getattr(record, name, None)`` reads them as None.
    """
    cached = _FIELD_CACHE.get(cls)
    if cached is None:
        hidden: frozenset[str] = getattr(cls, "HIDDEN", frozenset())
        cached = tuple(
            (f.name, camel(f.name))
            for f in dataclasses.fields(cls)
            if not f.name.startswith("_") and f.name not in hidden and f.name != "object_type"
        ) + tuple((name, camel(name)) for name in getattr(cls, "NULLS", ()))
        _FIELD_CACHE[cls] = cached
    return cached


def _error_xml(err: KalturaError) -> str:
    args = "".join(
        "<item><objectType>KalturaApiExceptionArg</objectType>"
        f"<name>{_esc(k)}</name><value>{_esc(str(v))}</value></item>"
        for k, v in err.args_map.items()
    )
    return (
        f"<error><code>{_esc(err.code)}</code><message>{_esc(err.message)}</message>"
        f"<objectType>KalturaAPIException</objectType><args>{args}</args></error>"
    )


def _record_xml(value: Any, skip_nulls: bool, shape: Shaped | None = None) -> str:
    parts = [f"<objectType>{value.object_type}</objectType>"]
    for attr, tag in wire_fields(type(value)):
        item: Any = getattr(value, attr, None) if shape is None or shape.keeps(tag) else None
        if item is None and skip_nulls:
            continue
        # Most fields are plain str or int (bool and enums are not): written without the general
        # dispatch, which a 500-entry page would run 16,000 times.
        kind = type(item)
        text = _esc(item) if kind is str else str(item) if kind is int else xml_value(item,
                                                                                       skip_nulls)
        parts.append(f"<{tag}>{text}</{tag}>")
    return "".join(parts)


def _is_record(value: Any) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def xml_value(value: Any, skip_nulls: bool = False, shape: Shaped | None = None) -> str:
    """The XML inside a ``<result>`` (or a field element) for any result value; ``skip_nulls``:
    the request's ``ignoreNull``; ``shape``: the response profile the result's record (or a
    list response's records) is filled under — never its fields' own values."""
    if value is None:
        return ""
    if isinstance(value, Shaped):
        return xml_value(value.value, skip_nulls, value)
    if isinstance(value, str):
        return _esc(value)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Enum):
        return xml_value(value.value)
    if isinstance(value, int | float):
        return _number_text(value)
    if isinstance(value, KalturaError):
        return _error_xml(value)
    if isinstance(value, ListResponse):
        items = "".join(f"<item>{xml_value(o, skip_nulls, shape)}</item>" for o in value.objects)
        return (
            f"<objectType>{value.object_type}</objectType><objects>{items}</objects>"
            f"<totalCount>{value.total_count}</totalCount>"
        )
    if _is_record(value):
        return _record_xml(value, skip_nulls, shape)
    if isinstance(value, dict):
        parts = []
        if "objectType" in value:
            parts.append(f"<objectType>{_esc(str(value['objectType']))}</objectType>")
        for key, item in value.items():
            if key != "objectType" and not (item is None and skip_nulls):
                parts.append(f"<{key}>{xml_value(item, skip_nulls)}</{key}>")
        return "".join(parts)
    if isinstance(value, list | tuple):
        return "".join(f"<item>{xml_value(v, skip_nulls)}</item>" for v in value)
    if isinstance(value, bytes):
        return _esc(value.decode("utf-8", "replace"))
    return _esc(str(value))


def to_json(value: Any, shape: Shaped | None = None) -> Any:
    """The JSON (format 1) form: nulls dropped, ``objectType`` on every object, bools as bools;
    ``shape``: the response profile a record's fields are filled under (as in :func:`xml_value`)."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Shaped):
        return to_json(value.value, value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, KalturaError):
        return {
            "code": value.code,
            "message": value.message,
            "objectType": "KalturaAPIException",
            "args": dict(value.args_map),
        }
    if isinstance(value, ListResponse):
        return {
            "objectType": value.object_type,
            "objects": [to_json(o, shape) for o in value.objects],
            "totalCount": value.total_count,
        }
    if _is_record(value):
        out: dict[str, Any] = {"objectType": value.object_type}
        for attr, tag in wire_fields(type(value)):
            item = getattr(value, attr, None) if shape is None or shape.keeps(tag) else None
            if item is not None:
                out[tag] = to_json(item)
        return out
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


# ------------------------------------------------------------------------- multirequest references

_REFERENCE = re.compile(r"\{(\d+):result((?::[^{}:]+)*)\}")
_UNRESOLVED = object()


def resolve_references(params: Any, results: list[Any]) -> Any:
    """Replace ``{N:result[:path]}`` (N 1-based) in every string of ``params`` by earlier results.

    A reference to an error result, to a later call, or along a path that does not exist stays as
    written: the sub-call then sees the literal text (and usually fails with a not-found error),
    which is what a caller debugging a multirequest wants to see.
    """
    if isinstance(params, dict):
        return {k: resolve_references(v, results) for k, v in params.items()}
    if isinstance(params, list):
        return [resolve_references(v, results) for v in params]
    if not isinstance(params, str) or "{" not in params:
        return params

    def substitute(match: re.Match[str]) -> str:
        found = _lookup(results, int(match.group(1)), match.group(2))
        return match.group(0) if found is _UNRESOLVED else _scalar_text(found)

    return _REFERENCE.sub(substitute, params)


def _lookup(results: list[Any], number: int, path: str) -> Any:
    if not 1 <= number <= len(results):
        return _UNRESOLVED
    node = results[number - 1]
    for step in [p for p in path.split(":") if p]:
        node = _step(node, step)
        if node is _UNRESOLVED:
            return _UNRESOLVED
    if isinstance(node, KalturaError):
        return _UNRESOLVED
    return node


def _step(node: Any, step: str) -> Any:
    if node is None or isinstance(node, KalturaError):
        return _UNRESOLVED
    if isinstance(node, Shaped):  # a reference reads the result as the profile filled it
        inner = node.value
        if isinstance(inner, ListResponse):
            objects = [Shaped(o, node.fields, node.include) for o in inner.objects]
            return {"objects": objects, "totalCount": inner.total_count}.get(step, _UNRESOLVED)
        if _is_record(inner) and not node.keeps(step):
            return None
        return _step(inner, step)
    if isinstance(node, list | tuple):
        return node[int(step)] if step.isdigit() and int(step) < len(node) else _UNRESOLVED
    if isinstance(node, ListResponse):
        return {"objects": node.objects, "totalCount": node.total_count}.get(step, _UNRESOLVED)
    if isinstance(node, dict):
        return node.get(step, _UNRESOLVED)
    if dataclasses.is_dataclass(node):
        for attr, tag in wire_fields(type(node)):
            if tag == step:
                return getattr(node, attr, None)
    return _UNRESOLVED


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Enum):
        return _scalar_text(value.value)
    if isinstance(value, int | float):
        return _number_text(value)
    return value if isinstance(value, str) else json.dumps(to_json(value))

