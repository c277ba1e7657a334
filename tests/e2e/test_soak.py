"""Every fault on at a modest rate, for a bounded time: nothing lost, and what it cost."""

import random
import time

import pytest

from iterable_simulator import Fault, FaultConfig, Simulator, timefmt

from . import reliability as rel
from .conftest import driver, small_data, until

SEED = 7
EVENTS = {"emailSend": 60, "emailOpen": 30, "customEvent": 15, "purchase": 5}
EVENT_TYPES = [*EVENTS, "smsSend"]
LIVE_ROUNDS = 3


def soak_faults() -> FaultConfig:
    return FaultConfig(
        rate_429=0.03, retry_after_fraction=0.5, rate_5xx=0.03, rate_generic_500=0.02, rate_drop=0.02,
        rate_slow=0.03, slow_delay_s=5.0, rate_expired_url=0.05, job_fail_rate=0.05, job_requeue_rate=0.1,
    )  # fmt: skip


def add_live_data(sim: Simulator, rng: random.Random, n: int) -> int:
    """Records arriving between sessions, a third of them visible only 3 s after they occurred.
    Returns how many events were added."""
    for i in range(12):
        record = {"email": f"live{n}-{i}@example.com", "createdAt": timefmt.iterable_str(time.time())}
        sim.add_event(rng.choice(EVENT_TYPES), record, visible_after_s=300 if i % 3 == 0 else 0)
    sim.add_user({"email": f"live{n}@example.com", "userId": f"live-{n}", "itblUserId": f"itbl-live-{n}"})
    sim.update_user(rng.choice(sim.visible_records("users"))["email"], {"firstName": f"Live{n}"})
    return 12


def live_events(sim: Simulator, n: int) -> int:
    """How many events of round `n` the simulator shows."""
    prefix = f"live{n}-"
    return sum(
        1
        for t in EVENT_TYPES
        for r in sim.visible_records(f"events:{t}")
        if str(r.get("email", "")).startswith(prefix)
    )


@pytest.mark.slow
@pytest.mark.asyncio
async def test_soak_under_every_fault(simulator_factory) -> None:
    sim = await simulator_factory(
        seed=SEED,
        data=small_data(events=EVENTS, users=80),
        export_truncate_above_records=40,
        export_records_per_file=10,
        faults=soak_faults(),
    )
    # One of each fault for certain, whatever the rates draw on this run's requests: the run
    # covers every fault deterministically, and the rates add more at random.
    for scheduled in (
        Fault.RATE_LIMIT,
        Fault.RATE_LIMIT_RETRY_AFTER,
        Fault.GENERIC_500,
        Fault.DROP,
        Fault.SLOW,
    ):
        sim.faults.schedule(scheduled, "/api/")
    sim.faults.schedule(Fault.EXPIRED_URL, "/_files/")
    sim.faults.fail_next_jobs = 1
    sim.faults.requeue_next_jobs = 1
    start = rel.start_date(sim)
    d = driver(sim, rel.capture_config(sim, start, EVENT_TYPES, "P4D"))
    binds = await rel.all_bindings(d, interval="PT2S")
    began = time.monotonic()

    def expected() -> dict[str, set[str]]:
        return {"events": rel.expected_events(sim, EVENT_TYPES), "users": rel.expected_users(sim, "email")}

    sessions = [await rel.run_until_complete(d, binds, {}, [], expected(), deadline=90)]
    rng = random.Random(SEED)
    for n in range(LIVE_ROUNDS):
        added = add_live_data(sim, rng, n)
        # Every record, the late third too, is visible before the session: the late-data pass must find it.
        await until(lambda: live_events(sim, n) == added, timeout=30)
        state = sessions[-1].result.state
        sessions.append(await rel.run_until_complete(d, binds, state, sessions, expected(), deadline=60))

    report = await rel.assert_complete(sim, d, sessions, binds, start, expected())
    report["seconds"] = round(time.monotonic() - began, 1)
    print(f"\nsoak: {report}")
    injected = set(report["requests"]["injected"]) | {f["fault"] for f in sim.injected_faults}
    for name in (
        "429",
        "429_retry_after",
        "500_generic",
        "drop",
        "slow",
        "expired_url",
        "job_failed",
        "job_requeued",
    ):
        assert name in injected, f"the soak never injected {name}"
    assert any(job.truncated for job in sim.jobs.values()), "no export was truncated"
