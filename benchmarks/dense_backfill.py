"""Scenario 4: a dense backfill, 200,000 events over 2 days in 6 busy types."""

import math
from datetime import UTC, datetime
from typing import Any

from flow_driver import CaptureProgress
from iterable_simulator import DataSpec, Simulator

from .catchup import DAY, INTERVAL, LATE_DATA_LAG, Backfill
from .harness import Scale, Stopwatch, Traffic, backfills_done, bindings, connector, iterable_like

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
    seen: dict[str, Any] = {}

    def committed(docs: list[tuple[str, Any]]) -> None:
        if docs:
            seen.setdefault("first_doc", sim.now())

    def watch(progress: CaptureProgress) -> bool:
        for backfill in ((progress.state.get("bindingStateV1") or {}).get("events") or {}).get(
            "backfill"
        ) or {}:
            cutoff = progress.state["bindingStateV1"]["events"]["backfill"][backfill].get("cutoff")
            if cutoff:
                seen.setdefault("cutoff", datetime.fromisoformat(cutoff).timestamp())
        if backfills_done(progress.state):
            seen["done"] = sim.now()
            return True
        return False

    clock = Stopwatch()
    opened = sim.now()
    result = await d.capture(binds, stop_when=watch, on_commit=committed, validate_documents=False)
    result.raise_for_error()
    if "done" not in seen:
        raise RuntimeError(f"the backfill did not finish ({result.stopped_by} after {clock.elapsed():.0f} s)")
    # Records within a second of the binding's creation lie past the backfill's cutoff.
    if (docs := len(result.documents)) < 0.999 * EVENTS:
        raise RuntimeError(f"the backfill emitted {docs:,} of {EVENTS:,} events")
    return Backfill(
        share,
        Traffic.between(sim, opened, seen["done"], ending_by=seen.get("cutoff", seen["done"])),
        until_caught_up=Traffic.between(sim, opened, seen["done"]),
        minutes=scale.simulated(seen["done"] - opened) / 60,
        first_doc_minutes=scale.simulated(seen.get("first_doc", seen["done"]) - opened) / 60,
    )
