import pytest
import orjson

from source_iterable_native.records import (
    ExportedStream,
    MalformedRecord,
    estuary_id,
    repair_datetime,
    repair_datetimes,
)


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
            {"createdAt": "2026-01-14 06:20:22 +00:00", "email": "a@b.com", "campaignId": 123, "itblUserId": None},
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


def test_event_record_keeps_raw_created_at_in_key() -> None:
    stream = ExportedStream("emailSend", "createdAt", None)
    line = orjson.dumps({"createdAt": "2026-01-14 06:20:22 +00:00", "email": "a@b.com", "campaignId": 123})
    record = stream.record(line, "here")
    assert record.doc["_estuary_id"] == "c080ecd353a363a39321c34936a16296"
    assert record.doc["eventType"] == "emailSend"
    assert record.doc["createdAt"] == "2026-01-14T06:20:22+00:00"
    assert record.cursor.isoformat() == "2026-01-14T06:20:22+00:00"


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
