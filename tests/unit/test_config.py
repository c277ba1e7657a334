from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from source_iterable_native.models import EVENT_TYPES, DataCenter, EndpointConfig, ProjectType


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
        ({"advanced": {"event_types": ["emailSend", "emailSent"]}}, "Unknown event type\\(s\\) emailSent. Valid event types are: emailSend, "),
        ({"advanced": {"data_center": "APAC"}}, "Input should be 'US' or 'EU'"),
        ({"credentials": {"credentials_title": "Private App Credentials", "access_token": ""}}, "at least 1 character"),
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
