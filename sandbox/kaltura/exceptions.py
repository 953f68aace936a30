"""API errors of the emulator. Models and actions raise these; wire.py encodes them in one place.

Every error carries Kaltura's string code, its message text, and its named args, exactly as the
server sends them inside ``<error>`` (see the reference, section 3).
"""

from __future__ import annotations


class KalturaError(Exception):
    """An API error returned as a KalturaAPIException (HTTP 200, ``<error>`` in ``<result>``)."""

    def __init__(self, code: str, message: str, args: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.args_map: dict[str, str] = dict(args or {})

    def __repr__(self) -> str:
        return f"KalturaError({self.code!r}, {self.message!r})"


def entry_not_found(entry_id: str) -> KalturaError:
    message = f'Entry id "{entry_id}" not found'
    return KalturaError("ENTRY_ID_NOT_FOUND", message, {"ENTRY_ID": entry_id})
