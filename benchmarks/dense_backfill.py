"""Scenario 4: a dense backfill, 200,000 events over 2 days in 6 busy types."""

import math
from datetime import UTC, datetime
from typing import Any

from flow_driver.state import fold_checkpoint
from iterable_simulator import DataSpec, Simulator

from .catchup import DAY, INTERVAL, LATE_DATA_LAG, Backfill
from .harness import Scale, Traffic, backfills_done, bindings, connector, iterable_like
from .output import Counts, checkpoints, read_until

BUSY = ["emailSend", "emailOpen", "emailClick", "pushSend", "customEvent", "inAppOpen"]
EVENTS = 200_000
DAYS = 2


async def run(scale: Scale, share: float | None) -> Backfill:
    data = DataSpec(
        events={t: EVENTS // len(BUSY) for t in BUSY},
        users=200,
        history_days=DAYS,
        late_fraction=0.0,
        campaigns=10,
    )
    sim = Simulator(iterable_like(scale, data))
    await sim.start()
    try:
        return await _run(scale, sim, share)
    finally:
        await sim.stop()


async def _run(scale: Scale, sim: Simulator, share: float | None) -> Backfill:
    start = datetime.fromtimestamp(math.floor(sim.now() - DAYS * DAY), tz=UTC)
    advanced = {"event_types": BUSY, "late_data_lag": scale.duration(LATE_DATA_LAG)}
    d = connector(sim, scale, advanced=advanced, share=share, start_date=start.strftime("%Y-%m-%dT%H:%M:%SZ"))
    binds = await bindings(d, ["events"], scale.duration(INTERVAL))
    seen: dict[str, float] = {}
    state: dict[str, Any] = {}

    # Read as the dense window is (output.py): 200,000 documents parsed one by one on the
    # simulator's event loop would make this scenario measure the benchmark.
    def caught_up(counts: Counts, block: bytes) -> bool:
        nonlocal state
        if counts.documents:
            seen.setdefault("first_doc", sim.now())
        for message in checkpoints(block):
            state = fold_checkpoint(state, message["checkpoint"])
            subtasks = ((state.get("bindingStateV1") or {}).get("events") or {}).get("backfill") or {}
            for subtask in subtasks.values():
                if cutoff := subtask.get("cutoff"):
                    seen.setdefault("cutoff", datetime.fromisoformat(cutoff).timestamp())
        if backfills_done(state):
            seen["done"] = sim.now()
            return True
        return False

    opened = sim.now()
    run = await read_until(d, d.open_request(binds, {}, 300), done=caught_up)
    # Records within a second of the binding's creation lie past the backfill's cutoff.
    if (docs := run.counts.documents) < 0.999 * EVENTS:
        raise RuntimeError(f"the backfill emitted {docs:,} of {EVENTS:,} events")
    until_caught_up = Traffic.between(sim, opened, seen["done"])
    return Backfill(
        share,
        Traffic.between(sim, opened, seen["done"], ending_by=seen.get("cutoff", seen["done"])),
        until_caught_up=until_caught_up,
        minutes=scale.simulated(seen["done"] - opened) / 60,
        first_doc_minutes=scale.simulated(seen.get("first_doc", seen["done"]) - opened) / 60,
        floor_minutes=until_caught_up.processing_floor_minutes(sim, scale),
    )
