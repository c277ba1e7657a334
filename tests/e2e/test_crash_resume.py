"""SIGKILL the connector at seeded points of a full capture; every record still arrives, at least once."""

import random
import time
from typing import Any

import pytest

from flow_driver import ConnectorDriver
from iterable_simulator import Simulator

from . import reliability as rel
from .conftest import driver, small_data

SEED = 20261127
EVENTS = {"emailSend": 40, "emailOpen": 25, "customEvent": 12, "purchase": 3}
EVENT_TYPES = [*EVENTS, "smsSend"]  # smsSend starts empty and gains records while incremental
MIN_BACKFILL_KILLS = 8
MIN_INCREMENTAL_KILLS = 8
MIN_KILLS = 22


def add_incremental_data(sim: Simulator, rng: random.Random, n: int) -> None:
    """New events, a new user and a changed user, as Iterable would see them between sessions."""
    for i in range(2):
        sim.add_event(rng.choice(EVENT_TYPES), {"email": f"inc{n}-{i}@example.com", "campaignId": n})
    sim.add_user({"email": f"new{n}@example.com", "userId": f"new-{n}", "itblUserId": f"itbl-new-{n}"})
    existing = rng.choice(sim.visible_records("users"))
    sim.update_user(existing["email"], {"firstName": f"Changed{n}"})


def expected_documents(sim: Simulator) -> dict[str, Any]:
    return {
        "events": rel.expected_events(sim, EVENT_TYPES),
        "users": rel.expected_users(sim, "email"),
    }


async def kill_repeatedly(
    sim: Simulator, d: ConnectorDriver, binds: list[dict[str, Any]]
) -> tuple[list[rel.Session], dict[str, Any], dict[str, int]]:
    plan = rel.KillPlan(SEED)
    data_rng = random.Random(SEED + 1)
    sessions: list[rel.Session] = []
    state: dict[str, Any] = {}
    kills = {"backfill": 0, "incremental": 0}
    while True:
        phase = "backfill" if not state or rel.backfill_pending(state) else "incremental"
        if phase == "incremental":
            if kills["incremental"] >= MIN_INCREMENTAL_KILLS and sum(kills.values()) >= MIN_KILLS:
                break
            add_incremental_data(sim, data_rng, len(sessions))
        session = await rel.run_session(d, binds, state, plan)
        sessions.append(session)
        state = session.result.state
        if session.result.killed:
            kills[phase] += 1
        assert len(sessions) < 80, f"kills so far {kills}: the backfill is not progressing"
    return sessions, state, kills


@pytest.mark.slow
@pytest.mark.asyncio
async def test_sigkill_at_seeded_points_loses_nothing(simulator_factory) -> None:
    # Slow export jobs, so that kills land while jobs run and files are read, not only between them.
    sim = await simulator_factory(
        data=small_data(events=EVENTS, users=60, failing_list_index=None, breaking_list_index=None),
        export_job_latency_base_s=10.0,
        export_records_per_file=7,
    )
    sim_start = rel.start_date(sim)
    d = driver(sim, rel.capture_config(sim, sim_start, EVENT_TYPES, "P2D"))
    binds = await rel.all_bindings(d, interval="PT5S")
    began = time.monotonic()
    sessions, state, kills = await kill_repeatedly(sim, d, binds)

    # A last session, stopped gracefully once every expected record has been committed.
    sessions.append(await rel.run_until_complete(d, binds, state, sessions, expected_documents(sim)))

    report = await rel.assert_complete(sim, d, sessions, binds, sim_start, expected_documents(sim))
    report.update(kills=kills, sessions=len(sessions), seconds=round(time.monotonic() - began, 1))
    print(f"\ncrash-and-resume: {report}")
    assert (
        kills["backfill"] >= MIN_BACKFILL_KILLS
    ), f"the backfill ended too early to be killed enough: {kills}"
