"""How an export data type's lines become documents: parsed, datetimes repaired, keyed, and the
record's cursor read."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import orjson

from ..records import estuary_id, repair_datetimes, repaired_instant, rfc3339


class MalformedRecord(RuntimeError):
    pass


class ExportedRecord(NamedTuple):
    doc: dict[str, Any]
    key: str
    cursor: datetime


def parse_datetime(value: Any, field: str, location: object) -> datetime:
    """The instant of a datetime in one of the forms `rfc3339` repairs; nothing else is accepted, so
    that every value parsed as a datetime is also written back in RFC 3339."""
    repaired = rfc3339(value) if isinstance(value, str) else None
    if repaired is None:
        raise _not_a_datetime(value, field, location)
    return datetime.fromisoformat(repaired)


def _not_a_datetime(value: Any, field: str, location: object) -> MalformedRecord:
    return MalformedRecord(f"{location}: {field} {value!r} is not a datetime with a time zone")


def _parse_repaired(value: Any, field: str, location: object) -> datetime:
    """parse_datetime of a value `repair_datetimes` already saw: for the repaired usual form
    (`2026-01-14T06:20:22+00:00`), one `fromisoformat`."""
    if (
        type(value) is str
        and len(value) == 25
        and value[10] == "T"
        and value[22] == ":"
        and value[19] in "+-"
    ):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    return parse_datetime(value, field, location)


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

        cursor = raw[self.cursor_field]
        if type(cursor) is str and line.count(b"-") == cursor.count("-") and b"\\" not in line:
            # The cursor holds every dash of the line: `repair_datetimes` would change no other
            # string (a datetime has its dash at [4]), so the walk is skipped. A backslash rules
            # this out, as an escape can spell a dash.
            repaired = repaired_instant(cursor)
            if repaired is None:
                raise _not_a_datetime(cursor, self.cursor_field, location)
            raw[self.cursor_field] = repaired[0]
            return ExportedRecord(raw, key, repaired[1])
        doc = repair_datetimes(raw)
        return ExportedRecord(doc, key, _parse_repaired(doc[self.cursor_field], self.cursor_field, location))
