"""Bursts of every HTTP fault: the connector backs the endpoint family off, retries, loses nothing."""

from collections import Counter

import pytest

from iterable_simulator import Fault

from . import reliability as rel
from .conftest import bindings, driver, endpoint_config, small_data
from .test_exports import expected_event_id

ERROR_BURST = [
    Fault.RATE_LIMIT, Fault.RATE_LIMIT_RETRY_AFTER, Fault.GENERIC_500,
    Fault.HTTP_500, Fault.HTTP_502, Fault.HTTP_503, Fault.HTTP_504,
]  # fmt: skip
FIRST_BACKOFF_S = 2.0 * 0.01  # BACKOFF_FIRST at the tests' time scale


@pytest.mark.asyncio
async def test_error_burst_backs_off_each_retry_and_recovers(simulator_factory) -> None:
    sim = await simulator_factory()
    for fault in [*ERROR_BURST, Fault.DROP, Fault.SLOW]:
        sim.faults.schedule(fault, "/api/templates")
    d = driver(sim)
    result = await d.capture(
        await bindings(d, ["templates"]), stop_when=lambda p: p.checkpoints >= 2, deadline=30
    )
    result.raise_for_error()
    assert rel.reduced_snapshot(result.docs("acmeCo/templates")) == rel.canonical_records(
        sim.records("templates")
    )

    requests = [e for e in sim.request_log if e["path"] == "/api/templates"]
    for i, entry in enumerate(requests[: len(ERROR_BURST)]):
        assert entry.get("fault") == ERROR_BURST[i].value
        gap = requests[i + 1]["t"] - entry["t"]
        assert gap >= FIRST_BACKOFF_S * 2**i * 0.9, f"retried {gap:.3f}s after {entry['fault']}: no back-off"


@pytest.mark.asyncio
async def test_export_faults_in_bursts_lose_nothing(simulator_factory) -> None:
    sim = await simulator_factory(data=small_data(events={"emailSend": 40}), export_records_per_file=10)
    for fault in (Fault.RATE_LIMIT, Fault.HTTP_503, Fault.DROP, Fault.RATE_LIMIT_RETRY_AFTER, Fault.HTTP_502):
        sim.faults.schedule(fault, "/api/export/", count=2)
    for fault in (Fault.DROP, Fault.EXPIRED_URL, Fault.DROP):
        sim.faults.schedule(fault, "/_files/")
    sim.faults.fail_next_jobs = 1
    sim.faults.requeue_next_jobs = 2
    config = endpoint_config(
        sim, start_date=rel.start_date(sim), advanced={"event_types": ["emailSend"], "window_size": "P40D"}
    )
    d = driver(sim, config)
    result = await d.capture(
        await bindings(d, ["events"]), stop_when=lambda p: p.documents >= 40, deadline=60
    )
    result.raise_for_error()
    assert Counter(doc["_estuary_id"] for doc in result.docs("acmeCo/events")) == Counter(
        expected_event_id(r, "emailSend") for r in sim.visible_records("events:emailSend")
    )
    injected = Counter(f["fault"] for f in sim.injected_faults)
    assert {"429", "503", "drop", "expired_url", "job_failed", "job_requeued"} <= set(injected), injected
    limited = [e for e in sim.request_log if e["status"] == 429 and not e.get("fault")]
    assert not limited, "the connector caused a 429 of its own"


@pytest.mark.parametrize("binding", ["campaign_metrics", "experiment_metrics"])
@pytest.mark.asyncio
async def test_metrics_response_dropped_mid_body_is_read_again(simulator_factory, binding: str) -> None:
    sim = await simulator_factory(data=small_data(users=20, events={}))
    path = "/api/campaigns/metrics" if binding == "campaign_metrics" else "/api/experiments/metrics"
    sim.faults.schedule(Fault.DROP, path)
    d = driver(sim)
    result = await d.capture(
        await bindings(d, [binding], interval="PT1H"), stop_when=lambda p: p.documents > 0, deadline=30
    )
    result.raise_for_error()
    assert result.stopped_by == "stop_when" and [f["fault"] for f in sim.injected_faults] == ["drop"]
