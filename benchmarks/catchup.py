"""Scenarios 1 and 2 in one capture session: a sparse 30-day backfill of 52 event types and users,
then 30 simulated minutes of live traffic once caught up."""

import asyncio
import math
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flow_driver import CaptureProgress
from iterable_simulator import DataSpec, Simulator, timefmt
from source_iterable_native.config import EVENT_TYPES, Advanced
from source_iterable_native.models import Event

from .harness import (
    Scale,
    Stopwatch,
    Traffic,
    backfills_done,
    bindings,
    connector,
    iterable_like,
    share_label,
    table,
)

DAY = 86_400.0
HISTORY_DAYS = 30
# The connector's defaults.
WINDOW_SIZE: timedelta = Advanced.model_fields["window_size"].default
LATE_DATA_LAG: timedelta = Advanced.model_fields["late_data_lag"].default
INTERVAL = Event.interval
STEADY = timedelta(minutes=30)
STEADY_GRACE = timedelta(minutes=45)
"""How much longer live records of idle types may take to be emitted before the run gives up."""

# One dominant type, a few mid-sized ones, several with a handful of records; 44 types stay empty.
HISTORY = {
    "emailSend": 40_000,
    "emailOpen": 9_000,
    "emailClick": 2_000,
    "customEvent": 700,
    "pushSend": 300,
    "purchase": 25,
    "emailBounce": 6,
    "smsSend": 3,
}
USERS = 3_000
# (data type, simulated days before now, records in one hour): campaign blasts.
BURSTS = [("pushSend", 12.5, 1_500), ("emailSend", 3.2, 5_000), ("emailClick", 3.1, 400)]

# Records per simulated minute while steady; users are profile updates.
LIVE_RATES = {"emailSend": 30.0, "emailOpen": 12.0, "emailClick": 3.0, "customEvent": 1.0, "user": 6.0}
# Idle types that receive one record at the start of the steady period.
LIVE_IDLE = ["purchase", "smsSend", "inAppOpen", "webPushClick"]


@dataclass
class Live:
    """Live records; those added while steady are timed: email -> (data type, when visible)."""

    added: dict[str, tuple[str, float]] = field(default_factory=dict)
    freshness: dict[str, list[float]] = field(default_factory=dict)
    seq: int = 0

    def add(self, sim: Simulator, data_type: str, timed: bool) -> None:
        self.seq += 1
        email = f"live-{self.seq}@bench.test"
        if data_type == "user":
            sim.add_user(
                {"email": email, "userId": f"live-{self.seq}", "itblUserId": f"itbl-live-{self.seq}"}
            )
        else:
            sim.add_event(data_type, {"email": email, "campaignId": 1})
        if timed:
            self.added[email] = (data_type, time.time())

    def committed(self, docs: list[tuple[str, Any]]) -> None:
        now = time.time()
        for _, doc in docs:
            entry = self.added.pop(doc["email"], None) if isinstance(doc, dict) and "email" in doc else None
            if entry is not None:
                data_type, visible = entry
                self.freshness.setdefault(data_type, []).append(now - visible)


@dataclass
class Run:
    scale: Scale
    sim: Simulator
    steady: bool = True
    live: Live = field(default_factory=Live)
    caught_up_at: float | None = None
    first_doc_at: float | None = None
    cutoff: datetime | None = None
    steady_until: float | None = None

    def committed(self, docs: list[tuple[str, Any]]) -> None:
        if self.first_doc_at is None and docs:
            self.first_doc_at = self.sim.now()
        self.live.committed(docs)

    def watch(self, progress: CaptureProgress) -> bool:
        """Stop predicate of the session: True once caught up, or with `steady` once the steady
        period and its grace are over."""
        self._note_cutoff(progress.state)
        if self.caught_up_at is None:
            if backfills_done(progress.state):
                self.caught_up_at = self.sim.now()
            return self.caught_up_at is not None and not self.steady
        now = self.sim.now()
        steady_end = self._steady_end()
        grace_end = steady_end + self.scale.wall(STEADY_GRACE.total_seconds())
        return now >= grace_end or (now >= steady_end and not self.live.added)

    def _note_cutoff(self, state: dict[str, Any]) -> None:
        if self.cutoff is not None:
            return
        for binding in (state.get("bindingStateV1") or {}).values():
            for backfill in ((binding or {}).get("backfill") or {}).values():
                if backfill and backfill.get("cutoff"):
                    self.cutoff = datetime.fromisoformat(backfill["cutoff"])
                    return

    async def traffic(self) -> None:
        """Live records at LIVE_RATES all along, as Iterable keeps receiving them during a backfill;
        one record for each of LIVE_IDLE once caught up. Only those added while steady are timed."""
        owed: defaultdict[str, float] = defaultdict(float)
        tick = self.scale.wall(1.0)
        while self.caught_up_at is None or self.sim.now() < self._steady_end():
            await asyncio.sleep(tick)
            steady = self.caught_up_at is not None
            if steady and not owed["idle"]:
                owed["idle"] = 1
                for data_type in LIVE_IDLE:
                    self.live.add(self.sim, data_type, timed=True)
            for data_type, per_minute in LIVE_RATES.items():
                owed[data_type] += per_minute / 60
                while owed[data_type] >= 1:
                    owed[data_type] -= 1
                    self.live.add(self.sim, data_type, timed=steady)

    def _steady_end(self) -> float:
        assert self.caught_up_at is not None
        return self.caught_up_at + self.scale.wall(STEADY.total_seconds())


def history() -> DataSpec:
    return DataSpec(
        events=dict(HISTORY), users=USERS, history_days=HISTORY_DAYS, event_skew=0.5, late_fraction=0.0
    )


def add_bursts(sim: Simulator) -> None:
    now = sim.now()
    for data_type, days_ago, count in BURSTS:
        start = now - days_ago * DAY
        for i in range(count):
            created = timefmt.iterable_str(start + 3600.0 * i / count)
            sim.add_event(data_type, {"email": f"burst-{data_type}-{i}@bench.test", "createdAt": created})


def fixed_window_jobs(sim: Simulator, start: float, cutoff: float, data_types: list[str]) -> tuple[int, int]:
    """Jobs of one export per data type per WINDOW_SIZE window, and how many of them hold records."""
    step = WINDOW_SIZE.total_seconds()
    windows = math.ceil((cutoff - start) / step)
    non_empty = 0
    for data_type in data_types:
        kind = "users" if data_type == "user" else f"events:{data_type}"
        cursors = {int((s - start) // step) for s in _cursors(sim, kind) if start <= s < cutoff}
        non_empty += len(cursors)
    return windows * len(data_types), non_empty


def _cursors(sim: Simulator, kind: str) -> list[float]:
    field = "profileUpdatedAt" if kind == "users" else "createdAt"
    return [timefmt.parse(record[field]) for record in sim.records(kind)]


@dataclass
class Backfill:
    """A backfill's cost and duration at one share of the export budget (simulated minutes)."""

    share: float | None
    backfill: Traffic
    until_caught_up: Traffic
    minutes: float
    first_doc_minutes: float
    floor_minutes: float
    """Iterable's processing time of the jobs until caught up, over its slots (harness.Traffic)."""
    report: str = ""

    def row(self) -> list[Any]:
        return [
            share_label(self.share),
            self.backfill.jobs,
            self.backfill.per_job,
            self.until_caught_up.jobs,
            self.until_caught_up.export_requests,
            self.until_caught_up.rate_limited,
            self.first_doc_minutes,
            self.minutes,
            self.floor_minutes,
        ]


BACKFILL_HEADER = [
    "export budget",
    "backfill jobs",
    "requests / job",
    "all jobs",
    "all requests",
    "429s",
    "first doc (sim. min)",
    "caught up (sim. min)",
    "job processing / slots (sim. min)",
]


async def run(scale: Scale, share: float | None = None, steady: bool = True) -> Backfill:
    sim = Simulator(iterable_like(scale, history()))
    await sim.start()
    try:
        return await _run(scale, sim, share=share, steady=steady)
    finally:
        await sim.stop()


async def _run(scale: Scale, sim: Simulator, share: float | None, steady: bool) -> Backfill:
    add_bursts(sim)
    start = datetime.fromtimestamp(math.floor(sim.now() - HISTORY_DAYS * DAY), tz=UTC)
    d = connector(
        sim,
        scale,
        advanced={"late_data_lag": scale.duration(LATE_DATA_LAG)},
        share=share,
        start_date=start.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    binds = await bindings(d, ["events", "users"], scale.duration(INTERVAL))
    run = Run(scale, sim, steady)
    traffic = asyncio.create_task(run.traffic())
    clock = Stopwatch()
    opened_at = sim.now()
    result = await d.capture(binds, stop_when=run.watch, on_commit=run.committed, validate_documents=False)
    traffic.cancel()
    result.raise_for_error()
    if run.caught_up_at is None or run.cutoff is None:
        raise RuntimeError(f"the backfill did not finish ({result.stopped_by} after {clock.elapsed():.0f} s)")

    data_types = [*EVENT_TYPES, "user"]
    catchup = Traffic.between(sim, opened_at, run.caught_up_at)
    backfill = Traffic.between(sim, opened_at, run.caught_up_at, ending_by=run.cutoff.timestamp())
    fixed_jobs, fixed_non_empty = fixed_window_jobs(
        sim, start.timestamp(), cutoff=run.cutoff.timestamp(), data_types=data_types
    )
    fixed_requests = 2 * fixed_jobs
    catchup_min = scale.simulated(run.caught_up_at - opened_at) / 60
    first_doc_min = scale.simulated((run.first_doc_at or run.caught_up_at) - opened_at) / 60
    outcome = Backfill(
        share,
        backfill,
        until_caught_up=catchup,
        minutes=catchup_min,
        first_doc_minutes=first_doc_min,
        floor_minutes=catchup.processing_floor_minutes(sim, scale),
    )
    if not steady:
        return outcome
    sparse = table(
        f"1. Sparse backfill: 52 event types + users over {HISTORY_DAYS} days "
        f"({sum(HISTORY.values()) + sum(c for *_, c in BURSTS):,} events in {len(HISTORY)} types, {USERS:,} users)",
        ["strategy", "export jobs", "export requests", "429s", "wall time (sim. min)"],
        [
            ["adaptive windows: backfill jobs (measured)", backfill.jobs, backfill.export_requests, "", ""],
            [
                "adaptive windows: all passes until caught up",
                catchup.jobs,
                catchup.export_requests,
                catchup.rate_limited,
                catchup_min,
            ],
            [
                f"fixed {WINDOW_SIZE.total_seconds() / 3600:.0f} h windows: backfill (computed, lower bound)",
                fixed_jobs,
                f">= {fixed_requests:,}",
                "-",
                f">= {fixed_requests / 60:,.0f}",
            ],
            [
                "adaptive backfill / fixed",
                f"{backfill.jobs / fixed_jobs:.1%}",
                f"<= {backfill.export_requests / fixed_requests:.1%}",
                "",
                "",
            ],
        ],
    )
    sparse += (
        f"\nAll passes: backfill, plus real time polling every type from the start ({', '.join(LIVE_RATES)} "
        f"receive live records all along). Fixed windows holding records: {fixed_non_empty:,} of {fixed_jobs:,}; "
        "their requests count one start and one status poll per job, their time one request per second."
    )
    outcome.report = sparse + "\n" + _steady_table(scale, sim, run)
    return outcome


def _steady_table(scale: Scale, sim: Simulator, run: Run) -> str:
    assert run.caught_up_at is not None
    end = run.caught_up_at + scale.wall(STEADY.total_seconds())
    steady = Traffic.between(sim, run.caught_up_at, end)
    minutes = STEADY.total_seconds() / 60
    rows: list[list[Any]] = [
        ["export requests / min", steady.export_requests / minutes],
        ["export jobs / min", steady.jobs / minutes],
        ["429s", steady.rate_limited],
    ]
    summary = table(
        f"2. Steady state: {minutes:.0f} simulated minutes after catch-up, 52 event types + users, "
        f"interval {INTERVAL.total_seconds() / 60:.0f} min, lag {LATE_DATA_LAG.total_seconds() / 60:.0f} min",
        ["measure", "value"],
        rows,
    )
    fresh_rows = []
    for data_type in [*LIVE_RATES, *LIVE_IDLE]:
        seen = [scale.simulated(s) / 60 for s in run.live.freshness.get(data_type, [])]
        missing = sum(1 for t, _ in run.live.added.values() if t == data_type)
        kind = "busy" if data_type in LIVE_RATES else "idle"
        median = statistics.median(seen) if seen else "-"
        fresh_rows.append([data_type, kind, len(seen), missing, median, max(seen) if seen else "-"])
    freshness = table(
        "   Freshness: visible in Iterable -> committed by the connector (simulated minutes)",
        ["data type", "kind", "records", "not emitted", "median", "max"],
        fresh_rows,
    )
    return summary + "\n" + freshness
