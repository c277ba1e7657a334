"""Scenario 4: the users backfill from 2013 (capture_all_users, the default) in projects whose users
were last updated over the past three years, against the same backfill from a 30-day start date.

Users are the simulator's light users (their update instants only, each record rendered when
exported), so millions fit in little memory. The connector's stdout is only counted, by the
reader thread of `output.py`; checkpoints are parsed to see the users backfill
finish."""

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from iterable_simulator import DataSpec, Simulator
from iterable_simulator.data import LightUsers

from .harness import Scale, Traffic, bindings, connector, iterable_like
from .output import Counts, checkpoints, read_until

HISTORY_DAYS = 3 * 365


@dataclass
class UsersBackfill:
    users: int
    capture_all_users: bool
    in_range: int
    """Users the backfill should capture: all of them, or those updated since the start date."""
    documents: int
    jobs: int
    export_requests: int
    rate_limited: int
    simulated_minutes: float
    peak_rss_mb: float
    cpu_s: float


def project(users: int) -> DataSpec:
    return DataSpec(
        users=users,
        light_users=True,
        history_days=HISTORY_DAYS,
        events={},
        lists=0,
        campaigns=5,
        journeys=0,
        catalogs=0,
        experiments=0,
        late_fraction=0.0,
    )


async def run(scale: Scale, users: int, capture_all_users: bool) -> UsersBackfill:
    sim = Simulator(iterable_like(scale, project(users)))
    await sim.start()
    try:
        d = connector(sim, scale, {"capture_all_users": capture_all_users})
        binds = await bindings(d, ["users"], scale.duration(timedelta(minutes=5)))
        opened_at = sim.now()
        documents, cutoff, peak, cpu = await _until_backfilled(d, binds)
        done_at = sim.now()
        start = sim.now() - 30 * 86_400 if not capture_all_users else float("-inf")
        assert isinstance(sim.data.users, LightUsers)
        in_range = sum(1 for c in sim.data.users.cursors if start <= c < cutoff)
        traffic = Traffic.between(sim, opened_at, done_at, ending_by=cutoff)
        return UsersBackfill(
            users,
            capture_all_users,
            in_range=in_range,
            documents=documents,
            jobs=traffic.jobs,
            export_requests=traffic.export_requests,
            rate_limited=traffic.rate_limited,
            simulated_minutes=scale.simulated(done_at - opened_at) / 60,
            peak_rss_mb=peak,
            cpu_s=cpu,
        )
    finally:
        await sim.stop()


async def _until_backfilled(d: Any, binds: list[dict[str, Any]]) -> tuple[int, float, float, float]:
    """Documents emitted until the users backfill finished, its cutoff, and the connector's peak
    RSS and CPU seconds."""
    cutoff: str | None = None

    def backfilled(_: Counts, block: bytes) -> bool:
        nonlocal cutoff
        done = False
        for message in checkpoints(block):
            backfill = _users_backfill(message)
            if backfill is not None and backfill is not False:
                cutoff = cutoff or backfill["cutoff"]
            done = done or (backfill is None and cutoff is not None)
        return done

    run = await read_until(d, d.open_request(binds, {}, 300), done=backfilled)
    assert cutoff is not None
    return run.counts.documents, datetime.fromisoformat(cutoff).timestamp(), run.peak_rss_mb, run.cpu_s


def _users_backfill(message: dict[str, Any]) -> Any:
    """The users backfill subtask a checkpoint writes: its state, None when finished, or False
    when the checkpoint does not touch it."""
    state = message["checkpoint"].get("state", {}).get("updated", {})
    users = (state.get("bindingStateV1") or {}).get("users")
    if not users or "backfill" not in users:
        return False
    backfill = users["backfill"]
    if backfill is None:
        return None
    return backfill.get("user", False)


def rows(results: list[UsersBackfill]) -> list[list[Any]]:
    return [
        [
            f"{r.users:,}",
            "2013 (capture_all_users)" if r.capture_all_users else "start_date, 30 days",
            r.in_range,
            r.documents,
            r.jobs,
            r.export_requests,
            r.rate_limited,
            r.simulated_minutes,
            r.peak_rss_mb,
            r.cpu_s,
        ]
        for r in results
    ]


HEADER = [
    "users",
    "backfill from",
    "users in range",
    "documents",
    "export jobs",
    "export requests",
    "429s",
    "sim. minutes",
    "peak RSS (MB)",
    "connector CPU (s)",
]


async def main(scale: Scale, sizes: list[int]) -> list[UsersBackfill]:
    results = []
    for users in sizes:
        for capture_all_users in (True, False):
            started = time.monotonic()
            results.append(await run(scale, users, capture_all_users))
            print(
                f"  users backfill of {users:,} (all={capture_all_users}): {time.monotonic() - started:.0f} s wall",
                flush=True,
            )
    return results
