"""The organisation's export budget, shared well: against the simulator with Iterable's limits enforced."""

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flow_driver import CaptureProgress
from source_iterable_native.config import EVENT_TYPES

from .conftest import TIME_SCALE, bindings, driver, endpoint_config, small_data


def scaled(seconds: float) -> str:
    return f"PT{seconds * TIME_SCALE:.3f}S"


def backfills_done(progress: CaptureProgress) -> bool:
    states = (progress.state.get("bindingStateV1") or {}).values()
    return bool(states) and all(not (s or {}).get("backfill") for s in states)


def self_caused_429s(sim: Any) -> list[tuple[float, str, str]]:
    return [
        (e["t"], e["method"], e["path"]) for e in sim.request_log if e["status"] == 429 and not e.get("fault")
    ]


async def live_traffic(sim: Any, data_types: list[str], every_s: float) -> None:
    """Records keep arriving in every type, so every real-time read finds work."""
    n = 0
    while True:
        await asyncio.sleep(every_s * TIME_SCALE)
        n += 1
        for data_type in data_types:
            sim.add_event(data_type, {"email": f"live-{n}@example.com", "campaignId": 1})


@pytest.mark.slow
@pytest.mark.asyncio
async def test_the_backfill_progresses_while_real_time_passes_could_take_the_whole_budget(
    simulator_factory,
) -> None:
    """Ten busy types polled every second with a two-minute late-data lag ask far more of the
    export budget than it holds; real-time and late-data passes outrank the backfill, yet the
    backfill keeps its share and finishes, and the connector says once which interval it holds."""
    types = list(EVENT_TYPES[:10])
    data = small_data(history_days=1, users=50, events={t: 8 for t in types})
    sim = await simulator_factory(data=data, export_reading="shared")
    start = datetime.now(tz=UTC) - timedelta(days=1)
    config = endpoint_config(
        sim,
        start_date=start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        advanced={"event_types": types, "late_data_lag": scaled(120), "window_size": "P2D"},
    )
    d = driver(sim, config)
    binds = await bindings(d, ["events", "users"], interval=scaled(1))
    traffic = asyncio.create_task(live_traffic(sim, types, every_s=2))
    began = time.monotonic()
    try:
        result = await d.capture(binds, stop_when=backfills_done, deadline=60)
    finally:
        traffic.cancel()
    result.raise_for_error()
    simulated_minutes = (time.monotonic() - began) / TIME_SCALE / 60
    assert (
        result.stopped_by == "stop_when"
    ), f"the backfill had not finished after {simulated_minutes:.0f} simulated minutes"
    assert not self_caused_429s(sim)
    said = [log for log in result.logs if "cannot serve every data type" in str(log.get("msg", ""))]
    assert len(said) == 1, "the connector did not say once which interval it can hold"


@pytest.mark.asyncio
async def test_another_tools_429s_slow_the_connector_and_it_recovers(simulator_factory) -> None:
    """Another tool spends most of each export budget, then stops: its 429s back the connector off,
    which captures everything without help and never causes a 429 itself."""
    types = {"emailSend": 40, "emailOpen": 25, "customEvent": 12}
    sim = await simulator_factory(
        data=small_data(events=types, users=30), export_reading="separate", other_tool_export_rps=0.9
    )
    d = driver(sim, endpoint_config(sim, advanced={"event_types": list(types), "window_size": "P40D"}))
    binds = await bindings(d, ["events", "users"])
    total = sum(types.values()) + len(sim.visible_records("users"))

    async def other_tool_stops() -> None:
        while sum(1 for f in sim.injected_faults if f["fault"] == "other_tool") < 5:
            await asyncio.sleep(0.05)
        sim.other_tool_exports(0)

    stopping = asyncio.create_task(other_tool_stops())
    result = await d.capture(binds, stop_when=lambda p: p.documents >= total, deadline=60)
    await stopping
    result.raise_for_error()
    assert result.stopped_by == "stop_when"
    others = [e for e in sim.request_log if e["status"] == 429 and e.get("fault") == "other_tool"]
    assert others, "the other tool never got in the connector's way"
    assert not self_caused_429s(sim)
    assert any("429" in str(log.get("msg", "")) for log in result.logs)
