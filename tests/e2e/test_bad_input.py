"""Bad input ends the RPC with exit code 1 and one exact, actionable message: no traceback, no key."""

from typing import Any

import pytest

from flow_driver import ConnectorDriver, validate_binding
from source_iterable_native.config import EVENT_TYPES

from .conftest import ROOT, bindings, driver, endpoint_config

EVENT_LIST = ", ".join(EVENT_TYPES)
DURATION_HINT = "must be an ISO 8601 duration such as PT12H or P1D"

CONFIG_ERRORS: list[tuple[str, dict[str, Any], str]] = [
    ("missing project_type", {"project_type": None}, "Invalid endpoint config: /project_type is required"),
    ("unknown project_type", {"project_type": "Email"},
     "Invalid endpoint config: /project_type should be 'Email-based', 'UserID-based' or 'Hybrid' (got 'Email')"),
    ("start_date not a date", {"start_date": "last month"},
     "Invalid endpoint config: /start_date must be a date and time like 2026-01-01T00:00:00Z (UTC) or with an "
     "offset like 2026-01-01T00:00:00-08:00 (converted to UTC) (got 'last month')"),
    ("start_date without zone", {"start_date": "2026-01-01T00:00:00"},
     "Invalid endpoint config: /start_date needs a time zone: write it like 2026-01-01T00:00:00Z (UTC) or "
     "2026-01-01T00:00:00-08:00 (got '2026-01-01T00:00:00')"),
    ("start_date in the future", {"start_date": "2099-01-01T00:00:00Z"},
     "Invalid endpoint config: /start_date: Start date 2099-01-01T00:00:00+00:00 is in the future"),
    ("capture_all_users not a boolean", {"advanced": {"capture_all_users": "sometimes"}},
     "Invalid endpoint config: /advanced/capture_all_users should be a valid boolean, unable to interpret input "
     "(got 'sometimes')"),
    ("window_size too large", {"advanced": {"window_size": "P400D"}},
     "Invalid endpoint config: /advanced/window_size: Window size must be between PT1S and P365D, got P400D"),
    ("window_size not ISO 8601", {"advanced": {"window_size": "12 hours"}},
     f"Invalid endpoint config: /advanced/window_size {DURATION_HINT} (got '12 hours')"),
    ("lookback too long", {"advanced": {"late_data_lag": "P2D"}},
     "Invalid endpoint config: /advanced/late_data_lag: Late data lag must be between PT0S and P1D, got P2D"),
    ("lookback not ISO 8601", {"advanced": {"late_data_lag": "1h"}},
     f"Invalid endpoint config: /advanced/late_data_lag {DURATION_HINT} (got '1h')"),
    ("timeout too short", {"advanced": {"list_users_timeout": "PT1M"}},
     "Invalid endpoint config: /advanced/list_users_timeout: List users timeout must be between PT5M and "
     "PT6H, got PT1M"),
    ("metrics lookback not ISO 8601", {"advanced": {"campaign_metrics_lookback": "two weeks"}},
     f"Invalid endpoint config: /advanced/campaign_metrics_lookback {DURATION_HINT} (got 'two weeks')"),
    ("unknown event type", {"advanced": {"event_types": ["emailSend", "emailSnd"]}},
     f"Invalid endpoint config: /advanced/event_types: Unknown event type(s) emailSnd. Valid event types "
     f"are: {EVENT_LIST}"),
    ("unknown data center", {"advanced": {"data_center": "APAC"}},
     "Invalid endpoint config: /advanced/data_center should be 'US' or 'EU' (got 'APAC')"),
    ("email-based project in the EU", {"project_type": "Email-based", "advanced": {"data_center": "EU"}},
     "Invalid endpoint config: Iterable's EU data center has no Email-based projects: choose your project's "
     "type (Iterable: Settings > Project Settings) or the US data center (Advanced > Data Center)"),
]  # fmt: skip


def _config(sim: Any, overrides: dict[str, Any]) -> dict[str, Any]:
    config = endpoint_config(sim, **overrides)
    return {k: v for k, v in config.items() if v is not None}


@pytest.mark.parametrize(("case", "overrides", "message"), CONFIG_ERRORS, ids=[c[0] for c in CONFIG_ERRORS])
@pytest.mark.asyncio
async def test_invalid_config_is_named_and_explained(
    simulator_factory, case: str, overrides: dict[str, Any], message: str
) -> None:
    sim = await simulator_factory()
    result = await driver(sim, _config(sim, overrides)).discover()
    assert (result.rc, result.error) == (1, message), case
    assert not any("Traceback" in str(log) for log in result.logs), f"{case} logged a traceback"
    assert not sim.request_log, "an invalid config must not reach Iterable"


@pytest.mark.asyncio
async def test_several_config_errors_are_listed_together(simulator_factory) -> None:
    sim = await simulator_factory()
    d = driver(sim, _config(sim, {"project_type": "Email", "advanced": {"window_size": "P0D"}}))
    for result in (await d.validate([]), await d.discover()):
        assert (result.rc, result.error) == (
            1,
            (
                "Multiple validation errors:\n"
                " - Invalid endpoint config: /project_type should be 'Email-based', 'UserID-based' or 'Hybrid' (got 'Email')\n"
                " - Invalid endpoint config: /advanced/window_size: Window size must be between PT1S and P365D, got PT0S"
            ),
        )


@pytest.mark.asyncio
async def test_wrong_key_is_rejected_without_leaking_it(simulator_factory) -> None:
    sim = await simulator_factory()
    wrong = "wrong-key-that-must-not-leak-42"
    config = endpoint_config(sim)
    config["credentials"]["access_token"] = wrong
    d = ConnectorDriver(config, cwd=str(ROOT), env={"ITERABLE_API_BASE_URL": sim.base_url}, secrets=[wrong])
    result = await d.validate([])
    assert (result.rc, result.error) == (
        1,
        (
            'Invalid credentials: Iterable rejected the API key ({"msg":"Invalid API key","code":"BadApiKey",'
            '"params":null}). Check that it is a server-side key of this project, and that the project lives '
            "in the US data center: a key only works in the data center it was created in (Advanced > Data Center)."
        ),
    )
    assert [(e["path"], e["status"]) for e in sim.request_log] == [("/api/channels", 401)]


@pytest.mark.asyncio
async def test_key_of_the_other_data_center_points_at_the_setting(simulator_factory) -> None:
    us = await simulator_factory(data_center="US", api_key="us-project-key-1111")
    eu = await simulator_factory(data_center="EU", project_type="Hybrid", api_key="eu-project-key-2222")
    config = endpoint_config(eu)  # the EU project's key, but the US data center (the default)
    d = ConnectorDriver(
        config, cwd=str(ROOT), env={"ITERABLE_API_BASE_URL": us.base_url}, secrets=[eu.api_key]
    )
    result = await d.validate([])
    assert result.rc == 1
    assert result.error is not None and result.error.endswith(
        "and that the project lives in the US data center: a key only works in the data center it was created "
        "in (Advanced > Data Center)."
    )


@pytest.mark.asyncio
async def test_unknown_binding_lists_the_real_ones(simulator_factory) -> None:
    sim = await simulator_factory()
    d = driver(sim)
    binding = {
        "collection": {"name": "acmeCo/x", "key": ["/id"], "writeSchema": {}},
        "resourceConfig": {"name": "campaign_spam", "interval": "PT5M"},
    }
    discovered = (await d.discover()).raise_for_error("discover")["discovered"]["bindings"]
    names = ", ".join(b["resourceConfig"]["name"] for b in discovered)
    result = await d.validate([validate_binding(binding)])
    assert (result.rc, result.error) == (
        1,
        f"Resource 'campaign_spam' was not found. This connector's bindings are: {names}.",
    )
    assert "events" in names and "users" in names


@pytest.mark.asyncio
async def test_resource_config_with_an_extra_field(simulator_factory) -> None:
    sim = await simulator_factory()
    d = driver(sim)
    [binding] = await bindings(d, ["events"])
    binding["resourceConfig"]["cursor_field"] = "createdAt"
    for result in (await d.validate([binding]), await d.capture([binding], deadline=10)):
        assert (result.rc, result.error) == (
            1,
            (
                "Invalid resource config of binding 0: /cursor_field is not a setting of a binding; remove it "
                "(valid settings: name, interval, schedule)"
            ),
        )


@pytest.mark.parametrize("origin", ["http://api.iterable.com", "http://10.0.0.7:8080", "ftp://127.0.0.1"])
@pytest.mark.asyncio
async def test_plain_http_base_url_is_refused_unless_loopback(simulator_factory, origin: str) -> None:
    sim = await simulator_factory()
    d = driver(sim, base_url=origin)
    expected = (
        "ITERABLE_API_BASE_URL must be an https:// origin (plain http is allowed only for 127.0.0.1, ::1 or "
        f"localhost) so that the API key is never sent in clear text; got '{origin}'"
    )
    for result in (await d.discover(), await d.validate([])):
        assert (result.rc, result.error) == (1, expected)
    assert not sim.request_log
