"""End-to-end fixtures: the Iterable simulator and the protocol driver running the real connector."""

import asyncio
import copy
from datetime import datetime
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import orjson
import pytest_asyncio

from flow_driver import CaptureProgress, ConnectorDriver, bindings_from_discovered
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


async def until(condition: Callable[[], bool], timeout: float, what: str = "the condition") -> None:
    """Wait, without blocking the simulator's event loop, until `condition()` holds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition():
        assert loop.time() < end, f"{what} did not hold within {timeout} s"
        await asyncio.sleep(0.02)


def late_data_read_past(binding: str, data_type: str, instant: float) -> Callable[[CaptureProgress], bool]:
    """A `stop_when` that holds once the late-data pass of `data_type` has checkpointed its cursor
    past `instant` (epoch seconds): no pass reads that instant again."""

    def read_past(progress: CaptureProgress) -> bool:
        inc = ((progress.state.get("bindingStateV1") or {}).get(binding) or {}).get("inc") or {}
        cursor = (inc.get(f"lookback.{data_type}") or {}).get("cursor")
        return cursor is not None and datetime.fromisoformat(cursor).timestamp() > instant

    return read_past


def listing_passes(sim: Simulator, path: str, since: int = 0) -> int:
    """How many passes over a listing began after request `since`: requests for its first page.
    Once a stream's next pass has begun, its previous pass is over and all it emitted was written."""
    return sum(
        1
        for entry in sim.request_log[since:]
        if entry["path"] == path and dict(entry["query"]).get("page", "1") == "1"
    )


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


_DISCOVERED: dict[bytes, dict[str, Any]] = {}
"""discover's response per endpoint config: discover makes no API call (test_spec_discover checks it),
so one answer per config serves every test that only needs bindings, and saves a connector start."""


async def discovered(d: ConnectorDriver) -> dict[str, Any]:
    key = orjson.dumps(d.config, option=orjson.OPT_SORT_KEYS)
    if key not in _DISCOVERED:
        _DISCOVERED[key] = (await d.discover()).raise_for_error("discover")
    return copy.deepcopy(_DISCOVERED[key])


async def bindings(
    d: ConnectorDriver, only: list[str] | None, interval: str = "PT1S"
) -> list[dict[str, Any]]:
    """The named bindings, or every binding discover returns (disabled-by-default ones too)."""
    discovered_ = await discovered(d)
    result = bindings_from_discovered(discovered_, only=only, include_disabled=True)
    for binding in result:
        binding["resourceConfig"]["interval"] = interval
    return result
