import random
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
import orjson
import xxhash

from source_iterable_native.export.streams import ExportedStream, MalformedRecord
from source_iterable_native.records import (
    estuary_id,
    matched_instant,
    repair_datetime,
    repair_datetimes,
    rfc3339_instant,
)

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
"""RFC 3339's date-time, as JSON Schema's `format: date-time` checks it (a leap second aside)."""


@pytest.mark.parametrize(
    "raw, repaired",
    [
        ("2026-01-14 06:20:22 +00:00", "2026-01-14T06:20:22+00:00"),
        ("2026-01-14 06:20:22 +0000", "2026-01-14T06:20:22+00:00"),
        ("2026-01-14 06:20:22 -0530", "2026-01-14T06:20:22-05:30"),
        ("2026-01-14 06:20:22.123 +00:00", "2026-01-14T06:20:22.123+00:00"),
        ("2025-12-19T22:43:34.134105.000Z", "2025-12-19T22:43:34.134105Z"),
        ("2026-01-14T06:20:22Z", "2026-01-14T06:20:22Z"),
        ("2026-01-14T06:20:22.5+01:00", "2026-01-14T06:20:22.5+01:00"),
        # Forms a cursor was accepted in but that were written back as they came.
        ("2026-01-14 06:20 +00:00", "2026-01-14T06:20:00+00:00"),
        ("2026-01-14T06:20Z", "2026-01-14T06:20:00Z"),
        ("2026-01-14 06:20:22+00", "2026-01-14T06:20:22+00:00"),
        ("2026-01-14 06:20:22 -05", "2026-01-14T06:20:22-05:00"),
        ("2025-12-19T22:43:34.134105.123Z", "2025-12-19T22:43:34.134105Z"),
        ("2025-12-19T22:43:34.134105.000+0000", "2025-12-19T22:43:34.134105+00:00"),
        ("2026-01-14t06:20:22z", "2026-01-14T06:20:22Z"),
        ("2026-01-14T06:20:22,5Z", "2026-01-14T06:20:22.5Z"),
        ("2026-01-14T06:20:22.123456789Z", "2026-01-14T06:20:22.123456789Z"),
        # Leap seconds: the last microsecond of the second before.
        ("2016-12-31T23:59:60Z", "2016-12-31T23:59:59.999999Z"),
        ("2016-12-31 23:59:60.5 +00:00", "2016-12-31T23:59:59.999999+00:00"),
    ],
)
def test_repairs_iterable_datetimes(raw: str, repaired: str) -> None:
    assert repair_datetime(raw) == repaired


@pytest.mark.parametrize(
    "lookalike",
    [
        "2026-01-14 06:20",
        "2026-01-14 06:20:22",
        "2015-11-13",
        "2026-13-14 06:20:22 +00:00",
        "2026-01-14 25:20:22 +00:00",
        "x2026-01-14 06:20:22 +00:00",
        "2026-01-14 06:20:22 +00:00 UTC",
        "2026-01-14 06:20:22 +0",
        "order 2026-01-14 06:20:22 +00:00",
        "2026-01-14 06:20 +0",
        "2026-01-14T06:20:22+00:00:00",
        "2026-01-14T06:20:22+05:3",
        "2026-01-14T06:20:22 UTC",
        "2026-01-14T06:61:00Z",
        "2026-02-30T06:20:22Z",
        "2026-01-14T06:20:61Z",
        "2026-01-14T06:20:22+25:00",
        "2026-01-14T0620Z",
        "2026-01-14T06Z",
    ],
)
def test_leaves_lookalikes_untouched(lookalike: str) -> None:
    assert repair_datetime(lookalike) == lookalike


def test_repairs_nested_values() -> None:
    record = {
        "createdAt": "2026-01-14 06:20:22 +00:00",
        "itblInternal": {"documentUpdatedAt": "2026-01-14 06:20:22 +0000", "n": 3},
        "items": [{"at": "2026-01-14 06:20:22 +00:00"}, "2026-01-14 06:20:22 +00:00", 7],
        "note": "2026-01-14 06:20",
    }
    assert repair_datetimes(record) == {
        "createdAt": "2026-01-14T06:20:22+00:00",
        "itblInternal": {"documentUpdatedAt": "2026-01-14T06:20:22+00:00", "n": 3},
        "items": [{"at": "2026-01-14T06:20:22+00:00"}, "2026-01-14T06:20:22+00:00", 7],
        "note": "2026-01-14 06:20",
    }


@pytest.mark.parametrize(
    "record, event_type, digest",
    [
        (
            {"createdAt": "2026-01-14 06:20:22 +00:00", "email": "a@b.com", "campaignId": 123},
            "emailSend",
            "c080ecd353a363a39321c34936a16296",
        ),
        # Null and missing values hash alike, numbers in decimal form.
        (
            {
                "createdAt": "2026-01-14 06:20:22 +00:00",
                "email": "a@b.com",
                "campaignId": 123,
                "itblUserId": None,
            },
            "emailSend",
            "c080ecd353a363a39321c34936a16296",
        ),
    ],
)
def test_estuary_id_matches_existing_connector(record: dict, event_type: str, digest: str) -> None:
    assert estuary_id(record, event_type) == digest


@pytest.mark.parametrize(
    "record, event_type, digest",
    [
        # xxh128("2026-01-14 06:20:22 +00:00||u1||signup|customEvent")
        (
            {"createdAt": "2026-01-14 06:20:22 +00:00", "itblUserId": "u1", "eventName": "signup"},
            "customEvent",
            "4de8be8fb04a4021224138d2eb49a6a9",
        ),
        # xxh128("2025-12-19T22:43:34.134105.000Z|x@y.io||0||emailOpen"): createdAt before repair.
        (
            {"createdAt": "2025-12-19T22:43:34.134105.000Z", "email": "x@y.io", "campaignId": 0},
            "emailOpen",
            "c385285aa1f3c378100b29a90b2a2d96",
        ),
    ],
)
def test_estuary_id_vectors_are_pinned(record: dict, event_type: str, digest: str) -> None:
    assert estuary_id(record, event_type) == digest


@pytest.mark.parametrize(
    "record, hashed",
    [
        ({"createdAt": "c", "email": True, "campaignId": 1}, "c|true||1||t"),
        ({"createdAt": "c", "itblUserId": False, "campaignId": 0}, "c||false|0||t"),
        ({"createdAt": "c", "campaignId": 1}, "c|||1||t"),
        ({"createdAt": "c", "campaignId": 2.5, "eventName": None}, "c|||2.5||t"),
        ({"email": "e", "itblUserId": "u", "eventName": "n"}, "|e|u||n|t"),
        # The words themselves, in strings, are kept as they are.
        ({"createdAt": "c", "email": "True@x.io", "eventName": "False"}, "c|True@x.io|||False|t"),
        ({"createdAt": "c", "eventName": "True", "campaignId": True}, "c|||true|True|t"),
        ({"createdAt": "c", "campaignId": [True, 1]}, "c|||[True, 1]||t"),
    ],
)
def test_estuary_id_spells_each_json_value(record: dict, hashed: str) -> None:
    assert estuary_id(record, "t") == xxhash.xxh128_hexdigest(hashed.encode())


def test_event_record_keeps_raw_created_at_in_key() -> None:
    stream = ExportedStream("emailSend", "createdAt", None)
    line = orjson.dumps({"createdAt": "2026-01-14 06:20:22 +00:00", "email": "a@b.com", "campaignId": 123})
    doc, key, cursor = stream.record(line, "here")
    assert doc["_estuary_id"] == key == "c080ecd353a363a39321c34936a16296"
    assert doc["eventType"] == "emailSend"
    assert doc["createdAt"] == "2026-01-14T06:20:22+00:00"
    assert cursor.isoformat() == "2026-01-14T06:20:22+00:00"


@pytest.mark.parametrize(
    "line, message",
    [
        (b"{not json", "invalid JSON"),
        (b'{"email": "a@b.com"}', "record has no createdAt"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"createdAt": "yesterday"}', "is not a datetime"),
    ],
)
def test_malformed_lines_name_their_location(line: bytes, message: str) -> None:
    stream = ExportedStream("emailSend", "createdAt", None)
    with pytest.raises(MalformedRecord, match=f"file f-1, line 7: .*{message}"):
        stream.record(line, "export of emailSend, file f-1, line 7")


def test_user_without_key_field_is_reported() -> None:
    stream = ExportedStream("user", "profileUpdatedAt", "itblUserId")
    with pytest.raises(MalformedRecord, match="record has no itblUserId"):
        stream.record(b'{"profileUpdatedAt": "2026-01-14 06:20:22 +00:00", "email": "a@b.com"}', "at")


def _cursor_of(value: object) -> tuple[str, datetime]:
    """An event's `createdAt` as its document writes it, and its cursor."""
    doc, _, cursor = ExportedStream("emailSend", "createdAt", None).record(
        orjson.dumps({"createdAt": value}), "here"
    )
    return doc["createdAt"], cursor


@pytest.mark.parametrize(
    "value, instant",
    [
        ("2026-01-14 06:20:22 +00:00", datetime(2026, 1, 14, 6, 20, 22, tzinfo=UTC)),
        ("2026-01-14 06:20 +00:00", datetime(2026, 1, 14, 6, 20, tzinfo=UTC)),
        ("2026-01-14 06:20:22-08", datetime(2026, 1, 14, 14, 20, 22, tzinfo=UTC)),
        ("2025-12-19T22:43:34.134105.123Z", datetime(2025, 12, 19, 22, 43, 34, 134105, tzinfo=UTC)),
        ("2016-12-31T23:59:60Z", datetime(2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ("2026-01-14T01:00:00+05:30", datetime(2026, 1, 13, 19, 30, tzinfo=UTC)),
    ],
)
def test_parses_each_repaired_form_to_its_instant(value: str, instant: datetime) -> None:
    repaired, parsed = _cursor_of(value)
    assert parsed == instant
    assert repaired == repair_datetime(value)
    assert RFC3339.match(repair_datetime(value))
    assert datetime.fromisoformat(repair_datetime(value)) == parsed


@pytest.mark.parametrize(
    "value",
    [
        # Python's own parser takes these, but they are not written back in RFC 3339: refused.
        "20260114T062022Z",
        "2026-W03-3T06:20:22Z",
        "2026-01-14T06Z",
        "2026-01-14T0620Z",
        "2026-01-14T06:20:22+00:00:00",
        # The length and spaces of Iterable's usual form, other separators.
        "2026-W03-3 06:20:22 +00:00",
        "2026-01-14 06:20.22 +00:00",
        "2026-01-14 0620:22. +00:00",
        # Not datetimes with a time zone at all.
        "2026-01-14T06:20:22",
        "2026-01-14",
        "2026-01-14 06:20:22 UTC",
        "2026-01-14T24:00:00Z",
        "",
        1768371622,
        None,
    ],
)
def test_refuses_cursors_it_cannot_write_back_in_rfc3339(value: object) -> None:
    with pytest.raises(MalformedRecord, match="here: createdAt .* is not a datetime with a time zone"):
        _cursor_of(value)


def test_usual_form_shortcut_answers_as_the_regular_expression() -> None:
    """Values one or two characters away from Iterable's usual form, with look-alike separators
    and digits among the changes: the shortcut must neither take what the regular expression
    refuses nor read anything differently."""
    rnd = random.Random(12)
    usual = "2026-05-27 23:49:32 +00:00"
    alphabet = "0123456789 -:+TtZzW.,x\t_\u0663\uff11"
    for _ in range(30_000):
        chars = list(usual)
        for _ in range(rnd.randint(1, 2)):
            chars[rnd.randrange(len(chars))] = rnd.choice(alphabet)
        value = "".join(chars)
        assert rfc3339_instant(value) == matched_instant(value), value


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-14 06:20 +00:00",
        "2026-01-14 06:20:22+00",
        "2025-12-19T22:43:34.134105.123Z",
        "2016-12-31 23:59:60 +00:00",
    ],
)
def test_every_datetime_of_a_record_is_written_back_in_rfc3339(value: str) -> None:
    stream = ExportedStream("user", "profileUpdatedAt", "email")
    line = orjson.dumps(
        {"email": "a@b.com", "profileUpdatedAt": value, "nested": {"at": value}, "list": [value]}
    )
    doc, key, cursor = stream.record(line, "here")
    assert key == "a@b.com"
    assert RFC3339.match(doc["profileUpdatedAt"]), doc["profileUpdatedAt"]
    assert doc["nested"]["at"] == doc["list"][0] == doc["profileUpdatedAt"]
    assert cursor == datetime.fromisoformat(doc["profileUpdatedAt"])


@pytest.mark.parametrize(
    "line",
    [
        # The cursor holds every dash of the line: only it is repaired, the walk is skipped.
        b'{"createdAt":"2026-01-14 06:20:22 +00:00","email":"a@b.com","campaignId":1}',
        b'{"createdAt":"2026-01-14 06:20:22 +0000","email":"a@b.com","city":"Lyon"}',
        b'{"createdAt":"2025-12-19T22:43:34.134105.000Z","note":"2026 06:20:22"}',
        b'{"createdAt":"2016-12-31 23:59:60 +00:00","email":"a@b.com"}',
        b'{"createdAt":"2026-01-14 06:20:22 -05:00","email":"a@b.com"}',
        # Other strings with dashes: every value is walked.
        b'{"createdAt":"2026-01-14 06:20:22 +00:00","sentAt":"2026-01-14 06:20:21 +00:00"}',
        b'{"createdAt":"2026-01-14 06:20:22 +00:00","items":[{"at":"2026-01-14 06:20 +00:00"}]}',
        b'{"createdAt":"2026-01-14 06:20:22 +00:00","userAgent":"SM-G973F","n":-3}',
        # A dash spelled as an escape is not counted in the bytes: the backslash forces the walk.
        b'{"createdAt":"2026-01-14 06:20:22 +00:00","sentAt":"2026\\u002d01\\u002d14 06:20:21 +00:00"}',
        b'{"createdAt":"2026\\u002d01\\u002d14 06:20:22 +00:00","email":"a@b.com"}',
    ],
)
def test_event_documents_are_the_walked_repair_of_their_lines(line: bytes) -> None:
    expected = orjson.loads(line)
    key = estuary_id(expected, "emailOpen")
    expected |= {"_estuary_id": key, "eventType": "emailOpen"}
    repair_datetimes(expected)
    doc, doc_key, cursor = ExportedStream("emailOpen", "createdAt", None).record(line, "here")
    assert doc == expected
    assert doc_key == key
    assert cursor == datetime.fromisoformat(expected["createdAt"])
    assert list(doc) == list(expected)


@pytest.mark.parametrize("cursor", ["2026-02-30 06:20:22 +00:00", "2026-01-14 06:20:22", "yesterday"])
def test_a_cursor_alone_in_its_line_is_still_refused_when_not_a_datetime(cursor: str) -> None:
    line = orjson.dumps({"createdAt": cursor, "email": "a@b.com"})
    with pytest.raises(MalformedRecord, match="here: createdAt .* is not a datetime with a time zone"):
        ExportedStream("emailOpen", "createdAt", None).record(line, "here")


def test_repair_keeps_the_offset_and_order_of_instants() -> None:
    base = datetime(2026, 1, 14, 6, 20, 22, tzinfo=timezone(timedelta(hours=-8)))
    forms = [base.strftime("%Y-%m-%d %H:%M:%S %z"), base.strftime("%Y-%m-%d %H:%M:%S%z")[:-2]]
    assert [repair_datetime(f) for f in forms] == ["2026-01-14T06:20:22-08:00"] * 2
