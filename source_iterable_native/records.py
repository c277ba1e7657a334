"""Iterable's almost-ISO datetimes repaired to RFC 3339, and the key of an exported event."""

import functools
import re
from datetime import datetime
from typing import Any

import xxhash

_ALMOST_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2})(?::(\d{2})(?:[.,](\d+))?(?:\.\d+)?)? ?([Zz]|[+-]\d{2}(?::?\d{2})?)$"
)
"""The forms repaired: date, `T`, `t` or a space, hours and minutes, optional seconds with an optional
fraction (comma or dot) and an ignored second fraction, an optional space, then `Z` or an offset of
hours with optional minutes. Anything else is not taken for a datetime."""

LEAP_SECOND = ("59", "999999")
"""`23:59:60` (a leap second) becomes the last microsecond before the next second: the instant
stays in its minute and day, sorts after every earlier one and before the next second."""


def _instant(repaired: str) -> tuple[str, datetime] | None:
    """(`repaired`, its instant), or None when the date or time does not exist."""
    try:
        return repaired, datetime.fromisoformat(repaired)
    except ValueError:
        return None


def rfc3339_instant(value: str) -> tuple[str, datetime] | None:
    """`value` as an RFC 3339 date-time and the instant it denotes, or None when it is not one of
    the forms repaired. The repaired string is parsed once, which both checks and reads it.

    Handles `2026-01-14 06:20:22 +00:00`, missing seconds (`2026-01-14 06:20 +00:00`), offsets
    without a colon (`+0000`) or of whole hours (`+00`), the malformed double fraction
    `2025-12-19T22:43:34.134105.123Z` (the first fraction is kept: it is the precise one), and
    leap seconds (see LEAP_SECOND).
    """
    # Iterable's usual form, every separator in place, is read without the regular expression:
    # Python's parser takes it as it is and checks that the rest are digits of a real instant.
    # RFC 3339 is the same string with `T` for its first space and without its second.
    if (
        len(value) == 26
        and value[4] == "-"
        and value[7] == "-"
        and value[10] == " "
        and value[13] == ":"
        and value[16] == ":"
        and value[19] == " "
        and value[20] in "+-"
        and value[23] == ":"
    ):
        try:
            return value.replace(" ", "T", 1).replace(" ", "", 1), datetime.fromisoformat(value)
        except ValueError:
            pass  # a leap second, a date that does not exist, or not digits
    return matched_instant(value)


def matched_instant(value: str) -> tuple[str, datetime] | None:
    """`rfc3339_instant` by the regular expression alone, Iterable's usual form included."""
    match = _ALMOST_RFC3339.match(value)
    if match is None:
        return None
    date, minutes, seconds, fraction, offset = match.groups()
    if seconds == "60":
        seconds, fraction = LEAP_SECOND
    if offset in "Zz":
        offset = "Z"
    elif len(offset) == 3:
        offset = f"{offset}:00"
    elif len(offset) == 5:
        offset = f"{offset[:3]}:{offset[3:]}"
    return _instant(f"{date}T{minutes}:{seconds or '00'}{'.' + fraction if fraction else ''}{offset}")


RECENT_DATETIMES = 4096
"""Datetime strings whose repair is remembered: records exported together often share their
seconds, and a record's own datetimes often repeat (a user's profile fields)."""


@functools.lru_cache(maxsize=RECENT_DATETIMES)
def repaired_instant(value: str) -> tuple[str, datetime] | None:
    """`rfc3339_instant(value)`, remembered for the most recent strings."""
    return rfc3339_instant(value)


def repair_datetime(value: str) -> str:
    """Iterable's almost-ISO datetimes as RFC 3339 (see `rfc3339_instant`); any other string unchanged."""
    repaired = repaired_instant(value)
    return value if repaired is None else repaired[0]


def _looks_like_datetime(value: str) -> bool:
    return len(value) >= 17 and value[4] == "-" and value[13] == ":"


def repair_datetimes(value: Any) -> Any:
    """`value` with every almost-ISO datetime string in it repaired, nested values included."""
    if isinstance(value, str):
        return repair_datetime(value) if _looks_like_datetime(value) else value
    if isinstance(value, dict):
        entries: Any = value.items()
    elif isinstance(value, list):
        entries = enumerate(value)
    else:
        return value
    # The per-document hot path: the datetime test is inlined, and only containers recurse.
    for k, v in entries:
        kind = type(v)
        if kind is str:
            if len(v) >= 17 and v[4] == "-" and v[13] == ":":
                value[k] = repair_datetime(v)
        elif kind is dict or kind is list:
            repair_datetimes(v)
    return value


def _id_part(value: Any) -> str:
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    return value if type(value) is str else str(value)


def estuary_id(record: dict[str, Any], event_type: str) -> str:
    """The 32-hex-digit xxh128 key of an event, as Estuary's existing Iterable connector computes
    it: `createdAt|email|itblUserId|campaignId|eventName|eventType`, with `createdAt` exactly as
    Iterable sent it. Null and missing values hash as empty, booleans as `true`/`false`, numbers in
    decimal."""
    get = record.get
    c, e, u, k, n = get("createdAt"), get("email"), get("itblUserId"), get("campaignId"), get("eventName")
    # Formatting is str() for every JSON value but a boolean, which it spells `True`/`False`: a
    # key holding either word is built again part by part (a string with the word is unchanged).
    joined = (
        f"{'' if c is None else c}|{'' if e is None else e}|{'' if u is None else u}|"
        f"{'' if k is None else k}|{'' if n is None else n}|{event_type}"
    )
    if "True" in joined or "False" in joined:
        joined = "|".join(map(_id_part, (c, e, u, k, n, event_type)))
    return xxhash.xxh128_hexdigest(joined.encode())
