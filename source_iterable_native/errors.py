"""Request parsing errors as short, actionable messages instead of pydantic tracebacks."""

from typing import Any

import pydantic
from pydantic_core import ErrorDetails

from .config import ResourceConfig

SECRET_PARTS = ("credentials",)
"""Locations whose values are never echoed back: they may hold the API key."""

_DATETIME = (
    "must be a date and time like 2026-01-01T00:00:00Z (UTC) or with an offset like "
    "2026-01-01T00:00:00-08:00 (converted to UTC)"
)

_HINTS: dict[str, str] = {
    "missing": "is required",
    "time_delta_parsing": "must be an ISO 8601 duration such as PT12H or P1D",
    "time_delta_type": "must be an ISO 8601 duration such as PT12H or P1D",
    "datetime_from_date_parsing": _DATETIME,
    "datetime_parsing": _DATETIME,
    "datetime_type": _DATETIME,
    "timezone_aware": "needs a time zone: write it like 2026-01-01T00:00:00Z (UTC) or 2026-01-01T00:00:00-08:00",
}


def _pointer(loc: tuple[int | str, ...]) -> str:
    return "/" + "/".join(str(part) for part in loc)


def _where(loc: tuple[int | str, ...]) -> tuple[str, tuple[int | str, ...]]:
    """Which part of the request is wrong, and the location inside it."""
    if "config" in loc:
        at = loc.index("config")
        if "credentials" in loc:
            # The credentials union adds its discriminator value to the location; drop it.
            loc = tuple(p for p in loc if p != "Private App Credentials")
            at = loc.index("config")
        return "endpoint config", loc[at + 1 :]
    if "resourceConfig" in loc:
        at = loc.index("resourceConfig")
        binding = next((p for p in loc[:at] if isinstance(p, int)), None)
        return f"resource config of binding {binding}", loc[at + 1 :]
    return "request", loc


def _describe(error: ErrorDetails, where: str, loc: tuple[int | str, ...]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden" and where.startswith("resource config"):
        valid = ", ".join(
            p for p in ResourceConfig.model_json_schema()["properties"] if not p.startswith("_")
        )
        return f"{_pointer(loc)} is not a setting of a binding; remove it (valid settings: {valid})"
    if kind == "value_error":
        message = str(error["ctx"]["error"]) if "ctx" in error else error["msg"]
        return f"{_pointer(loc)}: {message}" if loc else message
    reason = _HINTS.get(kind) or error["msg"].replace("Input should", "should")
    shown = (
        "" if kind == "missing" or any(p in SECRET_PARTS for p in loc) else f" (got {_short(error['input'])})"
    )
    return f"{_pointer(loc)} {reason}{shown}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def request_errors(err: pydantic.ValidationError) -> list[str]:
    """One message per problem, naming the field and what to do about it."""
    messages = []
    for error in err.errors():
        where, loc = _where(tuple(error["loc"]))
        messages.append(f"Invalid {where}: {_describe(error, where, loc)}")
    return list(dict.fromkeys(messages))
