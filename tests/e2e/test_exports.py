"""users and events through export jobs, against the simulator's ground truth."""

import time
from collections import Counter
from typing import Any

import pytest
import xxhash

from iterable_simulator import timefmt
from iterable_simulator.faults import Fault, FaultConfig

from .conftest import bindings, driver, endpoint_config, late_data_read_past, small_data

EVENT_TYPES_WITH_DATA = {"emailSend": 40, "emailOpen": 25, "customEvent": 12, "purchase": 3}
ENABLED = [*EVENT_TYPES_WITH_DATA, "smsSend", "emailUnsubscribe"]  # two of them stay empty


def expected_event_id(record: dict[str, Any], event_type: str) -> str:
    parts = [record.get(f) for f in ("createdAt", "email", "itblUserId", "campaignId", "eventName")]
    joined = "|".join("" if p is None else str(p) for p in parts) + "|" + event_type
    return xxhash.xxh128_hexdigest(joined.encode())


def expected_events(sim: Any) -> Counter[str]:
    return Counter(
        expected_event_id(r, t) for t in EVENT_TYPES_WITH_DATA for r in sim.visible_records(f"events:{t}")
    )


def user_key(project_type: str) -> str:
    return "email" if project_type == "Email-based" else "itblUserId"


def export_config(sim: Any, **advanced: Any) -> dict[str, Any]:
    return endpoint_config(
        sim, advanced={"event_types": ENABLED, "late_data_lag": "PT3S", "window_size": "P2D", **advanced}
    )


def assert_within_export_limits(sim: Any) -> None:
    export_requests = [e for e in sim.request_log if e["path"].startswith("/api/export/")]
    assert export_requests, "no export request was made"
    limited = [(e["t"], e["method"], e["path"]) for e in sim.request_log if e["status"] == 429]
    assert not limited, f"the connector caused a 429: {limited[:5]}"
    assert sim.peak_request_rate().get("export", 0) <= 1
    assert sim.max_concurrent_running_jobs_seen <= 4
    files = [e for e in sim.request_log if e["path"].startswith("/_files/")]
    assert files and not any(e["api_key_present"] for e in files), "a file URL was requested with the Api-Key"


@pytest.mark.parametrize("project_type", ["Email-based", "UserID-based", "Hybrid"])
@pytest.mark.asyncio
async def test_backfill_then_incremental_equals_ground_truth(simulator_factory, project_type: str) -> None:
    sim = await simulator_factory(
        project_type=project_type, data=small_data(events=EVENT_TYPES_WITH_DATA, users=60)
    )
    d = driver(sim, export_config(sim))
    binds = await bindings(d, ["events", "users"])

    users_total = len(sim.visible_records("users"))
    events_total = sum(expected_events(sim).values())
    first = await d.capture(
        binds,
        stop_when=lambda p: p.per_collection.get("acmeCo/events", 0) >= events_total
        and p.per_collection.get("acmeCo/users", 0) >= users_total,
        deadline=60,
    )
    first.raise_for_error()
    assert Counter(doc["_estuary_id"] for doc in first.docs("acmeCo/events")) == expected_events(sim)
    key = user_key(project_type)
    assert sorted(doc[key] for doc in first.docs("acmeCo/users")) == sorted(
        r[key] for r in sim.visible_records("users")
    )
    assert all(doc["createdAt"][10] == "T" for doc in first.docs("acmeCo/events"))

    # New records after the backfill arrive through the real-time pass of the next session.
    sim.add_event("emailOpen", {"email": "new@example.com", "campaignId": 7})
    sim.add_event("smsSend", {"email": "sms@example.com", "campaignId": 8})
    new_user = {"email": "fresh@example.com", "userId": "fresh-1", "itblUserId": "itbl-fresh-1"}
    sim.add_user(new_user)
    second = await d.capture(
        binds,
        state=first.state,
        stop_when=lambda p: p.per_collection.get("acmeCo/events", 0) >= 2
        and p.per_collection.get("acmeCo/users", 0) >= 1,
        deadline=30,
    )
    second.raise_for_error()
    assert sorted(doc["eventType"] for doc in second.docs("acmeCo/events")) == ["emailOpen", "smsSend"]
    assert [doc[key] for doc in second.docs("acmeCo/users")] == [new_user[key]]
    assert_within_export_limits(sim)


@pytest.mark.slow
@pytest.mark.asyncio
async def test_late_records_are_captured_once(simulator_factory) -> None:
    sim = await simulator_factory(data=small_data(events={"emailOpen": 5}, users=5))
    d = driver(sim, export_config(sim))
    binds = await bindings(d, ["events"])
    first = await d.capture(binds, stop_when=lambda p: p.documents >= 5, deadline=30)
    first.raise_for_error()

    # Occurred now, but visible only 2 s (200 simulated) later: after real time has read past it.
    created = time.time()
    late = sim.add_event(
        "emailOpen",
        {"email": "late@example.com", "createdAt": timefmt.iterable_str(created)},
        visible_after_s=200,
    )
    on_time = sim.add_event("emailOpen", {"email": "ontime@example.com"})
    result = await d.capture(
        binds, state=first.state, stop_when=late_data_read_past("events", "emailOpen", created), deadline=60
    )
    result.raise_for_error()
    assert result.stopped_by == "stop_when"
    emails = Counter(doc["email"] for doc in result.docs("acmeCo/events"))
    assert emails == Counter({late["email"]: 1, on_time["email"]: 1})


@pytest.mark.slow
@pytest.mark.asyncio
async def test_a_same_second_update_visible_late_is_captured(simulator_factory) -> None:
    faults = FaultConfig(same_second_update_rate=1.0, same_second_update_delay_s=1000)
    sim = await simulator_factory(data=small_data(events={}, users=5), faults=faults)
    d = driver(sim, export_config(sim, late_data_lag="PT12S"))
    binds = await bindings(d, ["users"])
    first = await d.capture(binds, stop_when=lambda p: p.documents >= 5, deadline=30)
    first.raise_for_error()

    # Updated twice within one second; the second version is visible 10 s (1,000 simulated) later,
    # after real time has read the first.
    user = sim.records("users")[0]
    updated = sim.update_user(user["email"], {"plan": "gold"})
    updated_at = timefmt.parse(updated["profileUpdatedAt"])
    result = await d.capture(
        binds, state=first.state, stop_when=late_data_read_past("users", "user", updated_at), deadline=60
    )
    result.raise_for_error()
    assert result.stopped_by == "stop_when"
    versions = [
        doc.get("sameSecondRevision") for doc in result.docs("acmeCo/users") if doc["email"] == user["email"]
    ]
    assert versions == [None, 1]


@pytest.mark.asyncio
async def test_truncated_window_is_split_and_completed(simulator_factory) -> None:
    sim = await simulator_factory(
        data=small_data(events={"emailSend": 60}, users=5), export_truncate_above_records=20
    )
    d = driver(sim, export_config(sim, event_types=["emailSend"], window_size="P30D"))
    binds = await bindings(d, ["events"])
    result = await d.capture(binds, stop_when=lambda p: p.documents >= 60, deadline=60)
    result.raise_for_error()
    assert Counter(doc["_estuary_id"] for doc in result.docs("acmeCo/events")) == Counter(
        expected_event_id(r, "emailSend") for r in sim.visible_records("events:emailSend")
    )
    assert any(job.truncated for job in sim.jobs.values())


@pytest.mark.asyncio
async def test_failed_job_and_expired_url_are_recovered(simulator_factory) -> None:
    sim = await simulator_factory(
        data=small_data(events={"emailSend": 30}, users=5), export_records_per_file=10
    )
    sim.faults.fail_next_jobs = 1
    sim.faults.schedule(Fault.EXPIRED_URL, path_prefix="/_files/", count=1)
    sim.faults.schedule(Fault.DROP, path_prefix="/_files/", count=1)
    d = driver(sim, export_config(sim, event_types=["emailSend"], window_size="P30D"))
    binds = await bindings(d, ["events"])
    result = await d.capture(binds, stop_when=lambda p: p.documents >= 30, deadline=60)
    result.raise_for_error()
    assert Counter(doc["_estuary_id"] for doc in result.docs("acmeCo/events")) == Counter(
        expected_event_id(r, "emailSend") for r in sim.visible_records("events:emailSend")
    )
    injected = Counter(f["fault"] if isinstance(f, dict) else f for f in sim.injected_faults)
    assert injected, "no fault was injected"
    assert_within_export_limits(sim)


@pytest.mark.asyncio
async def test_never_cancels_other_tools_jobs(simulator_factory) -> None:
    sim = await simulator_factory(data=small_data(events={"emailSend": 10}, users=5))
    foreign = [sim.create_foreign_job("emailOpen", None, None, duration_s=500) for _ in range(3)]
    d = driver(sim, export_config(sim, event_types=["emailSend"]))
    result = await d.capture(
        await bindings(d, ["events"]), stop_when=lambda p: p.documents >= 10, deadline=60
    )
    result.raise_for_error()
    assert not set(foreign) & set(sim.cancelled_jobs)
    assert sim.max_concurrent_running_jobs_seen <= 4
