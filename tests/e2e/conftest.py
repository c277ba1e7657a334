"""End-to-end fixtures: the Iterable simulator and the protocol driver running the real connector."""

from pathlib import Path
from typing import Any, AsyncIterator, Callable

import pytest_asyncio

from flow_driver import ConnectorDriver, bindings_from_discovered
from iterable_simulator import DataSpec, Simulator, SimulatorConfig

ROOT = Path(__file__).resolve().parents[2]
TIME_SCALE = 0.01


def small_data(**overrides: Any) -> DataSpec:
    return DataSpec(**{"late_fraction": 0.0, **overrides})


@pytest_asyncio.fixture
async def simulator_factory() -> AsyncIterator[Callable[..., Any]]:
    started: list[Simulator] = []

    async def start(**overrides: Any) -> Simulator:
        config = SimulatorConfig(**{"time_scale": TIME_SCALE, "data": small_data(), **overrides})
        sim = Simulator(config)
        await sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        await sim.stop()
    for sim in started:
        assert_key_kept_safe(sim)


def assert_key_kept_safe(sim: Simulator) -> None:
    """File URLs are fetched without the API key, and the key never travels in a URL.

    (Every connector run of a test is also scanned for the key by the driver itself.)"""
    for entry in sim.request_log:
        where = f"{entry['method']} {entry['path']}"
        assert not (
            entry["path"].startswith("/_files/") and entry["api_key_present"]
        ), f"{where} sent the Api-Key"
        assert sim.api_key not in str(entry["query"]), f"{where} carried the API key in its query"


def endpoint_config(sim: Simulator, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "credentials": {"credentials_title": "Private App Credentials", "access_token": sim.api_key},
        "project_type": sim.config.project_type,
    }
    config.update(overrides)
    return config


def driver(
    sim: Simulator, config: dict[str, Any] | None = None, base_url: str | None = None
) -> ConnectorDriver:
    return ConnectorDriver(
        config or endpoint_config(sim),
        cwd=str(ROOT),
        env={
            "ITERABLE_API_BASE_URL": base_url or sim.base_url,
            "SOURCE_ITERABLE_TIME_SCALE": str(TIME_SCALE),
        },
        secrets=[sim.api_key],
    )


async def bindings(
    d: ConnectorDriver, only: list[str] | None, interval: str = "PT1S"
) -> list[dict[str, Any]]:
    """The named bindings, or every binding discover returns (disabled-by-default ones too)."""
    discovered = (await d.discover()).raise_for_error("discover")
    result = bindings_from_discovered(discovered, only=only, include_disabled=True)
    for binding in result:
        binding["resourceConfig"]["interval"] = interval
    return result
