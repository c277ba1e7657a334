"""How an export data type's lines become documents: parsed, datetimes repaired, keyed, and the
record's cursor read."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from ..records import estuary_id, repair_datetimes, repaired_instant


class MalformedRecord(RuntimeError):
    pass


ExportedRecord = tuple[dict[str, Any], str, datetime]
"""(document, key, cursor) of one exported line. A plain tuple: a NamedTuple's constructor runs
in Python, and this is built once per record."""

BACKSLASH = ord("\\")
"""Searched for as a byte value: `bytes in bytes` first tries its argument as an integer and
builds, then discards, a TypeError on every call."""
DASH = ord("-")


@dataclass(frozen=True)
class ExportedStream:
    """How one export data type's records become documents."""

    data_type: str
    cursor_field: str
    key_field: str | None
    """The document key for users (`email` or `itblUserId`); None for events (`_estuary_id`)."""

    def record(self, line: bytes, location: object) -> ExportedRecord:
        """The document of one exported line. `location` names the line in errors; it is
        formatted only when the line is malformed."""
        try:
            raw = orjson.loads(line)
        except orjson.JSONDecodeError as err:
            raise MalformedRecord(f"{location}: invalid JSON ({err})") from None
        if not isinstance(raw, dict):
            raise MalformedRecord(f"{location}: expected a JSON object, got {type(raw).__name__}")
        if self.cursor_field not in raw:
            raise MalformedRecord(f"{location}: record has no {self.cursor_field}")

        if self.key_field is None:
            key = estuary_id(raw, self.data_type)
            raw["_estuary_id"] = key
            raw["eventType"] = self.data_type
        else:
            value = raw.get(self.key_field)
            if value is None or value == "":
                raise MalformedRecord(f"{location}: record has no {self.key_field}, the collection key")
            key = str(value)

        sent = raw[self.cursor_field]
        # The cursor is taken only in a form `rfc3339_instant` repairs, so that every value read
        # as a datetime is also written back in RFC 3339.
        parsed = repaired_instant(sent) if type(sent) is str else None
        if parsed is None:
            raise MalformedRecord(
                f"{location}: {self.cursor_field} {sent!r} is not a datetime with a time zone"
            )
        repaired, cursor = parsed
        if BACKSLASH not in line and line.count(DASH) == sent.count("-"):
            # The cursor holds every dash of the line: `repair_datetimes` would change no other
            # string (a datetime has its dash at [4]), so the walk is skipped. A backslash rules
            # this out, as an escape can spell a dash.
            raw[self.cursor_field] = repaired
        else:
            repair_datetimes(raw)
        return raw, key, cursor
