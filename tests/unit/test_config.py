import re
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from source_iterable_native.config import EVENT_TYPES, DataCenter, EndpointConfig, ProjectType


def config(**overrides: object) -> dict:
    base: dict = {
        "credentials": {"credentials_title": "Private App Credentials", "access_token": "k"},
        "project_type": "Email-based",
    }
    base.update(overrides)
    return base


def test_defaults() -> None:
    c = EndpointConfig.model_validate(config())
    assert c.project_type is ProjectType.EMAIL_BASED
    assert c.start_date is None
    assert c.advanced.window_size == timedelta(hours=12)
    assert c.advanced.list_users_timeout == timedelta(minutes=30)
    assert c.advanced.late_data_lag == timedelta(hours=1)
    assert c.advanced.data_center is DataCenter.US
    assert c.advanced.event_types is None
    assert len(EVENT_TYPES) == 52 and {"rcsSend", "rcsSendSkip"} <= set(EVENT_TYPES)


def test_blank_start_date_means_thirty_days_back() -> None:
    c = EndpointConfig.model_validate(config(start_date=""))
    now = datetime(2026, 11, 27, tzinfo=UTC)
    assert c.start(now) == now - timedelta(days=30)


def test_start_date_parses() -> None:
    c = EndpointConfig.model_validate(config(start_date="2024-01-01T00:00:00Z"))
    assert c.start_date == datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "start_date, utc",
    [
        ("2026-01-01T00:00:00-08:00", datetime(2026, 1, 1, 8, tzinfo=UTC)),
        ("2026-01-01T00:00:00+05:30", datetime(2025, 12, 31, 18, 30, tzinfo=UTC)),
        ("2026-01-01T00:00:00+00:00", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-01-01T00:00:00.5Z", datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)),
    ],
)
def test_start_date_with_an_offset_is_converted_to_utc(start_date: str, utc: datetime) -> None:
    c = EndpointConfig.model_validate(config(start_date=start_date))
    assert c.start_date == utc
    # Export windows are rendered from the wall-clock fields: they must be UTC's.
    assert c.start_date is not None and c.start_date.utcoffset() == timedelta(0)
    assert c.start_date.replace(tzinfo=None) == utc.replace(tzinfo=None)


@pytest.mark.parametrize(
    "start_date, matches",
    [
        ("", True),
        ("2026-01-01T00:00:00Z", True),
        ("2026-01-01T00:00:00-08:00", True),
        ("2026-01-01T00:00:00.250+05:30", True),
        ("2026-01-01", False),
        ("2026-01-01T00:00:00", False),
        ("2026-01-01 00:00:00Z", False),
    ],
)
def test_spec_pattern_says_which_start_dates_are_accepted(start_date: str, matches: bool) -> None:
    pattern = EndpointConfig.model_json_schema()["properties"]["start_date"]["pattern"]
    assert bool(re.match(pattern, start_date)) is matches
    if matches:
        EndpointConfig.model_validate(config(start_date=start_date))


def test_capture_all_users_starts_users_in_2013_and_leaves_events_at_start_date() -> None:
    now = datetime(2026, 11, 27, tzinfo=UTC)
    on = EndpointConfig.model_validate(config(start_date="2026-01-01T00:00:00Z"))
    assert on.advanced.capture_all_users is True
    assert on.users_start(now) == datetime(2013, 1, 1, tzinfo=UTC)
    assert on.start(now) == datetime(2026, 1, 1, tzinfo=UTC)
    off = EndpointConfig.model_validate(
        config(start_date="2026-01-01T00:00:00Z", advanced={"capture_all_users": False})
    )
    assert off.users_start(now) == off.start(now) == datetime(2026, 1, 1, tzinfo=UTC)
    blank = EndpointConfig.model_validate(config(advanced={"capture_all_users": False}))
    assert blank.users_start(now) == now - timedelta(days=30)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"project_type": "Email"}, "Input should be 'Email-based', 'UserID-based' or 'Hybrid'"),
        ({"start_date": "yesterday"}, "Input should be a valid datetime"),
        ({"start_date": "2999-01-01T00:00:00Z"}, "is in the future"),
        ({"advanced": {"window_size": "PT0S"}}, "Window size must be between PT1S and P365D, got PT0S"),
        ({"advanced": {"window_size": "P400D"}}, "Window size must be between PT1S and P365D, got P400D"),
        ({"advanced": {"window_size": "twelve hours"}}, "Input should be a valid timedelta"),
        ({"advanced": {"list_users_timeout": "PT1M"}}, "List users timeout must be between PT5M and PT6H"),
        ({"advanced": {"late_data_lag": "P2D"}}, "Late data lag must be between PT0S and P1D"),
        (
            {"advanced": {"event_types": ["emailSend", "emailSent"]}},
            "Unknown event type\\(s\\) emailSent. Valid event types are: emailSend, ",
        ),
        ({"advanced": {"data_center": "APAC"}}, "Input should be 'US' or 'EU'"),
        (
            {"credentials": {"credentials_title": "Private App Credentials", "access_token": ""}},
            "at least 1 character",
        ),
    ],
)
def test_bad_values_have_readable_errors(overrides: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        EndpointConfig.model_validate(config(**overrides))


def test_missing_project_type_is_required() -> None:
    raw = config()
    del raw["project_type"]
    with pytest.raises(ValidationError, match="project_type\n  Field required"):
        EndpointConfig.model_validate(raw)


@pytest.mark.parametrize(
    "override, origin",
    [
        (None, "https://api.iterable.com"),
        ("http://127.0.0.1:8123", "http://127.0.0.1:8123"),
        ("http://localhost:9/", "http://localhost:9"),
        ("https://proxy.example.com", "https://proxy.example.com"),
    ],
)
def test_api_origin(monkeypatch: pytest.MonkeyPatch, override: str | None, origin: str) -> None:
    if override:
        monkeypatch.setenv("ITERABLE_API_BASE_URL", override)
    else:
        monkeypatch.delenv("ITERABLE_API_BASE_URL", raising=False)
    assert EndpointConfig.model_validate(config()).api_origin() == origin


def test_eu_data_center(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ITERABLE_API_BASE_URL", raising=False)
    c = EndpointConfig.model_validate(config(project_type="Hybrid", advanced={"data_center": "EU"}))
    assert c.api_origin() == "https://api.eu.iterable.com"


def test_plain_http_to_a_remote_host_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITERABLE_API_BASE_URL", "http://proxy.example.com")
    with pytest.raises(ValueError, match="must be an https:// origin"):
        EndpointConfig.model_validate(config()).api_origin()
