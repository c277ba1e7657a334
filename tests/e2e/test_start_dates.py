"""Where the users and events backfills start: start_date with an offset, an empty start_date that
resolves once, and capture_all_users."""

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from iterable_simulator import Simulator

from .conftest import bindings, driver, endpoint_config, small_data, until

DAY = 86400.0
USERS_HISTORY_START = datetime(2013, 1, 1, tzinfo=UTC).timestamp()


def config(sim: Simulator, start_date: str | None = None, **advanced: Any) -> dict[str, Any]:
    overrides: dict[str, Any] = {
        "advanced": {"event_types": ["emailSend"], "late_data_lag": "PT3S", "window_size": "P2D", **advanced}
    }
    if start_date is not None:
        overrides["start_date"] = start_date
    return endpoint_config(sim, **overrides)


def backfill_starts(sim: Simulator, data_type: str) -> list[float]:
    """The start of every export job the connector ran for `data_type`, in order. Their earliest is
    where the backfill starts: real-time jobs start near now, and on a busy machine one of them
    may be submitted before the backfill's first."""
    jobs = sorted(
        (j for j in sim.jobs.values() if j.created_by_connector and j.data_type == data_type),
        key=lambda j: j.id,
    )
    return [j.start for j in jobs if j.start is not None]


def backfill_done(state: dict[str, Any], binding: str, data_type: str) -> bool:
    """Whether the binding was initialised and its backfill of `data_type` has finished (the CDK
    checkpoints a finished subtask as null, which the merge patch removes)."""
    binding_state: dict[str, Any] = (state.get("bindingStateV1") or {}).get(binding) or {}
    return bool(binding_state) and not (binding_state.get("backfill") or {}).get(data_type)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.asyncio
async def test_start_date_with_an_offset_exports_from_that_instant(simulator_factory) -> None:
    sim = await simulator_factory(data=small_data(events={"emailSend": 30}, users=10))
    # Midnight at -08:00, ten days back: 08:00 UTC. Read as wall-clock UTC it would start 8 h early
    # and the first windows would end 8 h early, leaving that stretch of every window unexported.
    day = datetime.fromtimestamp(sim.now() - 10 * DAY, tz=UTC).date()
    start_date = f"{day.isoformat()}T00:00:00-08:00"
    expected_start = datetime(day.year, day.month, day.day, 8, tzinfo=UTC).timestamp()
    d = driver(sim, config(sim, start_date, capture_all_users=False))
    binds = await bindings(d, ["events", "users"])
    result = await d.capture(
        binds,
        stop_when=lambda p: backfill_done(p.state, "events", "emailSend")
        and backfill_done(p.state, "users", "user"),
        deadline=60,
    )
    result.raise_for_error()
    assert min(backfill_starts(sim, "emailSend")) == expected_start
    assert min(backfill_starts(sim, "user")) == expected_start
    expected = sorted(
        e["createdAt"]
        for e, s in zip(sim.visible_records("events:emailSend"), sim.data.events["emailSend"])
        if s.cursor >= expected_start
    )
    assert len({doc["_estuary_id"] for doc in result.docs("acmeCo/events")}) == len(expected)


@pytest.mark.asyncio
async def test_an_empty_start_date_resolves_once_at_the_first_open(simulator_factory) -> None:
    sim = await simulator_factory(data=small_data(events={"emailSend": 5}, users=5))
    d = driver(sim, config(sim, capture_all_users=False))
    binds = await bindings(d, ["events"])
    first = await d.capture(binds, stop_when=lambda p: bool(backfill_starts(sim, "emailSend")), deadline=30)
    first.raise_for_error()
    started = min(backfill_starts(sim, "emailSend"))
    # The first checkpoint initialises the binding, before any window was read: it already holds
    # the start the empty start_date resolved to.
    initialised = next(
        p["updated"]
        for p in first.checkpoint_patches
        if p and "events" in (p["updated"].get("bindingStateV1") or {})
    )
    backfill = initialised["bindingStateV1"]["events"]["backfill"]["emailSend"]
    assert backfill["next_page"] == started
    assert started == (datetime.fromisoformat(backfill["cutoff"]) - timedelta(days=30)).timestamp()

    # A restart from that checkpoint alone (as after a crash before the first window was
    # checkpointed), in a later second: a start resolved again would differ.
    resolved_in = datetime.fromisoformat(backfill["cutoff"]).timestamp()
    await until(lambda: time.time() >= int(resolved_in) + 1, timeout=5, what="a later wall-clock second")
    jobs_before = len(backfill_starts(sim, "emailSend"))
    second = await d.capture(
        binds,
        state=initialised,
        stop_when=lambda p: len(backfill_starts(sim, "emailSend")) > jobs_before,
        deadline=30,
    )
    second.raise_for_error()
    assert min(backfill_starts(sim, "emailSend")[jobs_before:]) == started


@pytest.mark.asyncio
async def test_a_backfill_started_before_the_initial_page_resumes_from_its_own_cutoff(
    simulator_factory,
) -> None:
    """A state written before the initial page carried the start (page None): its empty start date
    resolves from the backfill's cutoff, the same on every restart, and capture_all_users (on by
    default) does not move its users backfill to 2013."""
    sim = await simulator_factory(data=small_data(events={"emailSend": 5}, users=5))
    d = driver(sim, config(sim))
    binds = await bindings(d, ["users"])
    cutoff = datetime.fromtimestamp(int(sim.now() - 2 * DAY), tz=UTC)
    state = {
        "bindingStateV1": {
            "users": {
                "inc": {
                    "realtime.user": {"cursor": cutoff.isoformat()},
                    "lookback.user": {"cursor": (cutoff - timedelta(seconds=3)).isoformat()},
                },
                "backfill": {"user": {"cutoff": cutoff.isoformat(), "next_page": None}},
                "last_initialized": cutoff.isoformat(),
            }
        }
    }
    result = await d.capture(
        binds, state=state, stop_when=lambda p: bool(backfill_starts(sim, "user")), deadline=30
    )
    result.raise_for_error()
    assert min(backfill_starts(sim, "user")) == (cutoff - timedelta(days=30)).timestamp()


@pytest.mark.parametrize("capture_all_users", [None, True, False])
@pytest.mark.asyncio
async def test_users_updated_before_start_date_are_captured_unless_turned_off(
    simulator_factory, capture_all_users: bool | None
) -> None:
    sim = await simulator_factory(data=small_data(events={"emailSend": 5}, users=60))
    start = int(sim.now() - 10 * DAY)
    advanced = {} if capture_all_users is None else {"capture_all_users": capture_all_users}
    d = driver(sim, config(sim, iso(start), **advanced))
    binds = await bindings(d, ["users", "events"])
    result = await d.capture(
        binds,
        stop_when=lambda p: backfill_done(p.state, "users", "user")
        and backfill_done(p.state, "events", "emailSend"),
        deadline=60,
    )
    result.raise_for_error()
    all_users = capture_all_users is not False
    captured = {doc["email"] for doc in result.docs("acmeCo/users")}
    expected = {s.data["email"] for s in sim.data.users if all_users or s.cursor >= start}
    assert captured == expected
    assert any(s.cursor < start for s in sim.data.users), "the data set has no user updated before start_date"
    assert min(backfill_starts(sim, "user")) == (USERS_HISTORY_START if all_users else start)
    # start_date still bounds events.
    assert min(backfill_starts(sim, "emailSend")) == start


@pytest.mark.asyncio
async def test_a_finished_users_backfill_is_not_redone_after_the_upgrade(simulator_factory) -> None:
    """A capture whose users backfill finished under start_date (before capture_all_users existed)
    resumes where it was: the new default does not start a users backfill from 2013."""
    sim = await simulator_factory(data=small_data(events={"emailSend": 5}, users=30))
    d = driver(sim, config(sim))
    binds = await bindings(d, ["users"])
    cursor = datetime.fromtimestamp(int(sim.now() - 60), tz=UTC)
    state = {
        "bindingStateV1": {
            "users": {
                "inc": {
                    "realtime.user": {"cursor": cursor.isoformat()},
                    "lookback.user": {"cursor": (cursor - timedelta(seconds=3)).isoformat()},
                },
                "backfill": {"user": None},
                "last_initialized": cursor.isoformat(),
            }
        }
    }
    result = await d.capture(
        binds, state=state, stop_when=lambda p: bool(backfill_starts(sim, "user")), deadline=30
    )
    result.raise_for_error()
    assert min(backfill_starts(sim, "user")) >= cursor.timestamp() - 3
    assert "backfill" not in (result.state["bindingStateV1"]["users"] or {}) or not result.state[
        "bindingStateV1"
    ]["users"]["backfill"].get("user")
