"""Datetime formats Iterable emits and accepts."""

from __future__ import annotations

import functools
import random
import re
from datetime import UTC, datetime, timedelta, timezone

_SPACE_OFFSET = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d+)?)\s*(Z|[+-]\d{2}:?\d{2})?$")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Iterable occasionally writes a double fraction, e.g. 2025-12-19T22:43:34.134105.000Z.
_DOUBLE_FRACTION = re.compile(r"^(.*\.\d+)\.\d+(Z|[+-]\d{2}:?\d{2})$")


def to_dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def epoch_ms(ts: float) -> int:
    return int(ts * 1000)


def iterable_str(ts: float) -> str:
    """The usual export format: `2026-01-14 06:20:22 +00:00`."""
    return to_dt(ts).strftime("%Y-%m-%d %H:%M:%S +00:00")


@functools.lru_cache(maxsize=4096)
def _day_str(day: int) -> str:
    return to_dt(day * 86400).strftime("%Y-%m-%d")


@functools.lru_cache(maxsize=1 << 17)
def seconds_str(seconds: int) -> str:
    """`YYYY-MM-DD HH:MM:SS` of whole epoch seconds, without a strftime for each (the latest
    131,072 cached: a day and a half of seconds)."""
    day, rest = divmod(seconds, 86400)
    return f"{_day_str(day)} {rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}"


def iso_str(ts: float) -> str:
    return to_dt(ts).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_offset_str(ts: float, offset: str = "-06:00") -> str:
    sign = -1 if offset.startswith("-") else 1
    hours, minutes = int(offset[1:3]), int(offset[4:6])
    tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    return datetime.fromtimestamp(ts, tz).isoformat(timespec="milliseconds")


def varied_str(ts: float, rng: random.Random) -> tuple[str, float]:
    """Format a cursor time the way Iterable's exports do, with their occasional variants.

    Returns the string and the exact instant it denotes (seconds are truncated except in the
    malformed variant, which carries microseconds)."""
    roll = rng.random()
    if roll < 0.003:
        micros = rng.randrange(1_000_000)
        exact = int(ts) + micros / 1_000_000
        return to_dt(int(ts)).strftime("%Y-%m-%dT%H:%M:%S") + f".{micros:06d}.000Z", exact
    if roll < 0.06:
        return to_dt(ts).strftime("%Y-%m-%d %H:%M:%S +0000"), float(int(ts))
    return iterable_str(ts), float(int(ts))


def parse(value: str) -> float:
    """Parse any datetime form Iterable accepts or emits into epoch seconds. Raises ValueError."""
    text = value.strip()
    if not text:
        raise ValueError("empty datetime")
    fixed = _DOUBLE_FRACTION.match(text)
    if fixed:
        text = fixed.group(1) + fixed.group(2)
    if _DATE_ONLY.match(text):
        return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()
    m = _SPACE_OFFSET.match(text)
    if not m:
        raise ValueError(f"unrecognised datetime {value!r}")
    date, clock, offset = m.groups()
    offset = offset or "Z"
    if offset != "Z" and ":" not in offset:
        offset = offset[:3] + ":" + offset[3:]
    parsed = datetime.fromisoformat(f"{date}T{clock}{'+00:00' if offset == 'Z' else offset}")
    return parsed.timestamp()
