"""The Kaltura API v3 emulator: a threaded HTTP server that real clients talk to.

Split the way moto splits a service, so state and semantics never mix with the wire:

    exceptions.py  KalturaError(code, message, args): every API error, raised by models or actions
    records.py     the domain records (entries, assets, flavor params, tokens, users, eSearch
                   results) as dataclasses whose snake_case fields are the wire fields in camelCase
    models/        state and semantics: listing and eSearch over one index, replacement, upload
                   tokens, assets, users. No HTTP here. One ``KalturaBackend`` holds a partner's
                   whole state.
    responses.py   the action table: (service, action) -> handler(backend, params, ctx) -> result.
                   A handler turns the decoded request params (nested dicts of strings, file
                   uploads as bytes) into typed arguments and calls the backend.
    wire.py        request decoding (JSON, form-encoded, multipart) and response encoding
                   (XML format 2, JSON format 1); errors become wire responses in one place.
    sessions.py    KS v1 / v2 signing and validation, session.start / session.end.
    throttle.py    per (service, action) limits in fixed windows (refused calls counted)
                   -> ACTION_BLOCKED.
    faults.py      injected faults (API error, HTML 5xx, empty body, delay, cut-off download).
    admin.py       the /admin endpoints (plays, faults, limits, clock, partner, stats, snapshot,
                   users): state tests and the CLI set from outside, JSON in and out.
    server.py      the routes (the urls.py of moto): /api_v3/..., flavor downloads, /admin/...

Contract between ``server``/``wire`` and ``responses``/``models``:

- ``responses.ACTIONS: dict[tuple[str, str], Handler]`` keys are lower-cased service and action.
- ``Handler = Callable[[KalturaBackend, dict[str, Any], CallContext], Any]``.
- A handler returns a record (a dataclass with ``object_type: ClassVar[str]``), a ``ListResponse``,
  a list of records (a bare Kaltura array), a ``str`` (KS, URL), an ``int``/``bool``, or ``None``
  (void); or raises ``KalturaError``.
- ``CallContext`` (in records.py) carries the partner id, the session's user id, type and
  privileges, and ``base_url`` (scheme://host:port of the server) to build download URLs.
"""
