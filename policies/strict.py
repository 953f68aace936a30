"""The base of every policy model: frozen, unknown keys refused, no true/false for a number.

Shared by ``policies/schema.py`` and the sections it includes from their own modules
(``policies/directory.py``, ``policies/notice_settings.py``): pydantic would read
``partner_id: true`` as partner 1, and ``timeout: true`` as one second.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


class LocatedValueError(ValueError):
    """A model-level check that knows which field is wrong: ``path`` continues the error's
    location, so the loader can point at the line of that field rather than of the section."""

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path


class Strict(BaseModel):
    """Base of every policy model: frozen values, unknown keys rejected, and no boolean where
    a number is wanted (pydantic would read ``partner_id: true`` as partner 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_numbers(cls, data: Any) -> Any:
        return refuse_bool_numbers(cls, data)


def refuse_bool_numbers(model: type[BaseModel], data: Any) -> Any:
    """``data`` unchanged, or a located error for a true/false given to a numeric field."""
    if not isinstance(data, dict):
        return data
    for name, value in data.items():
        field = model.model_fields.get(name)
        if field is None or not isinstance(value, bool):
            continue
        wanted = {arg for arg in (typing.get_args(field.annotation) or (field.annotation,))}
        if bool not in wanted and wanted & {int, float}:
            raise LocatedValueError((name,), f"{value!r} is not a number; write digits, e.g. 42")
    return data
