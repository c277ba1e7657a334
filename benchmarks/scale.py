"""Scenario 4: a large organisation (iterable_simulator/large.py), measured from the outside.

The connector runs as a subprocess under a lean protocol session (stdout read in chunks, documents
counted, checkpoints folded into the state as Flow does), so the same bench measures whatever the
connector's internals are. Four runs, each against a fresh simulator:
- state: every binding but list_users until each has finished its first full pass; the merged
  state's size, whole and per binding, per tracked item;
- catalog items: one full pass over every item at Iterable's own 100 requests per second (time
  scale 1), then the same organisation without the catalog_items binding, for memory per item;
- memory: the busy event type backfilled over exactly one late_data_lag (so every record stays in
  the late-data de-duplication memory) at two lags; the RSS slope between them is bytes per record;
- restart: the busy type killed mid-stream, resumed from its last checkpoint, run for two lags; the
  documents the second session emits that the first had committed are the restart's duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import math
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from flow_driver import ConnectorDriver, bindings_from_discovered, fold_checkpoint
from iterable_simulator import DataSpec, Simulator
from iterable_simulator.large import BusyTypeEvents, LargeOrg, forget_downloaded_exports, install

from source_iterable_native.cursors import CampaignsCursor

from .output import peak_rss_mb
from .harness import Scale, backfills_done, bindings, connector, iso_seconds, iterable_like, table

CAPTURED = re.compile(rb'^\{"captured":\{"binding":(\d+)')
ACK = orjson.dumps({"acknowledge": {"checkpoints": 1}}) + b"\n"
CHUNK = 1 << 20
DEFAULT_LAG = timedelta(hours=1)
STATE_BUDGET = 512 * 1024
STATE_TIME_SCALE = 0.05
BUSY_WALL_RATE = 1000
CATALOG_ITEMS_PATH = re.compile(r"^/api/catalogs/[^/]+/items$")
PARTS = ("state", "catalog", "memory", "restart")
TRACKED = ("campaigns", "journeys", "user_fields", "catalogs", "catalog_items")


# -- a lean protocol session ----------------------------------------------------------------------
@dataclass
class Session:
    """What one connector process emitted, as the Flow runtime would fold it."""

    state: dict[str, Any]
    names: list[str]
    docs: Counter[str] = field(default_factory=Counter)
    committed_keys: list[bytes] = field(default_factory=list)
    pending_keys: list[bytes] = field(default_factory=list)
    checkpoints: int = 0
    peak_rss_mb: float = 0.0
    elapsed: float = 0.0
    last_checkpoint_at: float = 0.0
    since_checkpoint: int = 0


Until = Callable[[Session], bool]


async def run_session(
    d: ConnectorDriver,
    binds: list[dict[str, Any]],
    state: dict[str, Any],
    until: Until,
    *,
    keys_of: str | None = None,
    kill: bool = False,
    timeout: float = 3600.0,
    sim: Simulator | None = None,
    progress: Callable[[Session], str] | None = None,
) -> Session:
    """Run the connector until `until(session)` holds, then stop it (SIGKILL if `kill`, else SIGTERM).
    With `keys_of`, the documents of that binding keep their `_estuary_id` (committed and not)."""
    names = [b["resourceConfig"]["name"] for b in binds]
    session = Session(dict(state), names)
    proc = await d.start_process()
    assert proc.stdin is not None and proc.stdout is not None
    started = time.monotonic()
    proc.stdin.write(orjson.dumps(d.open_request(binds, state, 300)) + b"\n")
    await proc.stdin.drain()
    stderr = asyncio.create_task(_drain(proc.stderr))
    releaser = asyncio.create_task(_release_exports(sim)) if sim is not None else None
    keyed = names.index(keys_of) if keys_of is not None else -1
    acks, rest = False, b""
    reported = started
    try:
        while not until(session):
            if progress is not None and time.monotonic() - reported > 30:
                reported = time.monotonic()
                print(f"  [{session.elapsed:.0f} s] {progress(session)}", file=sys.stderr, flush=True)
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"the scale bench gave up after {timeout:.0f} s")
            chunk = await asyncio.wait_for(proc.stdout.read(CHUNK), timeout)
            if not chunk:
                raise RuntimeError(f"the connector exited: {await _tail(stderr)}")
            data = rest + chunk
            cut = data.rfind(b"\n") + 1
            lines, rest = data[:cut].splitlines(), data[cut:]
            session.elapsed = time.monotonic() - started
            for line in lines:  # the condition is checked line by line: a kill lands mid-window
                acks = _on_line(session, line, keyed=keyed, acks=acks) or acks
                if line.startswith(b'{"checkpoint"') and acks:
                    proc.stdin.write(ACK)
                if until(session):
                    break
        session.peak_rss_mb = peak_rss_mb(proc.pid)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        await proc.wait()
        stderr.cancel()
        if releaser is not None:
            releaser.cancel()
    return session


def _on_line(session: Session, line: bytes, keyed: int, acks: bool) -> bool:
    match = CAPTURED.match(line)
    if match:
        index = int(match.group(1))
        session.docs[session.names[index]] += 1
        session.since_checkpoint += 1
        if index == keyed:
            session.pending_keys.append(orjson.loads(line)["captured"]["doc"]["_estuary_id"].encode())
        return acks
    if line.startswith(b'{"checkpoint"'):
        session.state = fold_checkpoint(session.state, orjson.loads(line)["checkpoint"])
        session.checkpoints += 1
        session.last_checkpoint_at = time.monotonic()
        session.since_checkpoint = 0
        session.committed_keys += session.pending_keys
        session.pending_keys = []
        return acks
    if line.startswith(b'{"opened"'):
        return bool(orjson.loads(line)["opened"].get("explicitAcknowledgements"))
    return acks


async def _release_exports(sim: Simulator) -> None:
    downloaded: set[tuple[str, str]] = set()
    position = 0
    while True:
        await asyncio.sleep(1.0)
        position = forget_downloaded_exports(sim, downloaded, position)


async def _drain(stream: asyncio.StreamReader | None) -> list[bytes]:
    """The connector's last log lines; all of them go to $BENCH_CONNECTOR_LOG if set."""
    tail: list[bytes] = []
    path = os.environ.get("BENCH_CONNECTOR_LOG")
    with open(path, "ab") if path else contextlib.nullcontext() as log:
        while stream is not None and (line := await stream.readline()):
            tail = [*tail[-4:], line]
            if log is not None:
                log.write(line)
    return tail


async def _tail(task: asyncio.Task[list[bytes]]) -> str:
    await asyncio.sleep(0.5)
    return b"".join(task.result()).decode(errors="replace")[-2000:] if task.done() else "(stderr still open)"


# -- simulator and connector set-up ---------------------------------------------------------------
def large_simulator(scale: Scale, org: LargeOrg, history: timedelta) -> tuple[Simulator, BusyTypeEvents]:
    data = DataSpec(
        events={},
        users=50,
        history_days=max(1, math.ceil(history / timedelta(days=1))),
        campaigns=5,
        late_fraction=0.0,
        catalogs=1,
        journeys=1,
    )
    sim = Simulator(iterable_like(scale, data))
    return sim, install(sim, org)


def start_date(scale: Scale, behind: timedelta) -> str:
    """A start date `behind` (simulated) before now, on the wall clock both sides share."""
    at = datetime.now(tz=UTC) - timedelta(seconds=scale.wall(behind.total_seconds()))
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def state_bytes(value: Any) -> int:
    return len(orjson.dumps(value))


def binding_state(state: dict[str, Any], name: str) -> Any:
    return (state.get("bindingStateV1") or {}).get(name)


# -- 1. state after the first full pass of every binding ------------------------------------------
@dataclass
class StateResult:
    total: int
    per_binding: dict[str, int]
    items: dict[str, int]
    id_bytes: dict[str, int]
    watching: int
    elapsed: float
    peak_rss_mb: float


async def measure_state(scale: Scale, org: LargeOrg) -> StateResult:
    sim, _ = large_simulator(scale, org, DEFAULT_LAG)
    await sim.start()
    try:
        d = connector(
            sim,
            scale,
            {"late_data_lag": scale.duration(DEFAULT_LAG)},
            start_date=start_date(scale, DEFAULT_LAG),
        )
        binds = bindings_from_discovered(
            (await d.discover()).raise_for_error("discover")
        )  # list_users is off
        for binding in binds:  # each binding's own default interval, scaled
            binding["resourceConfig"]["interval"] = scale.duration(
                _duration(binding["resourceConfig"]["interval"])
            )
        grace = max(5.0, scale.wall(600))
        done_at: list[float] = []
        listings = LastPages(sim)

        def until(s: Session) -> bool:
            if not done_at and backfills_done(s.state) and _all_present(s, binds) and listings.all_read():
                done_at.append(time.monotonic())
            return bool(done_at) and time.monotonic() - done_at[0] > grace

        def progress(s: Session) -> str:
            pending = [
                n for n, v in (s.state.get("bindingStateV1") or {}).items() if (v or {}).get("backfill")
            ]
            return (
                f"backfills pending {pending}, listings read {listings.all_read()}, "
                f"bindings with state {len(s.state.get('bindingStateV1') or {})}/{len(binds)}, docs {dict(s.docs)}"
            )

        session = await run_session(d, binds, state={}, until=until, timeout=3600, sim=sim, progress=progress)
    finally:
        await sim.stop()
    names = [b["resourceConfig"]["name"] for b in binds]
    per = {n: state_bytes(binding_state(session.state, n)) for n in names}
    ds = sim.data
    items = {
        "campaigns": org.campaigns_not_ended,
        "journeys": len(ds.journeys),
        "user_fields": len(ds.user_fields),
        "catalogs": len(ds.catalogs),
        "catalog_items": sum(len(v) for v in ds.catalogs.values()),
    }
    id_bytes = {
        "campaigns": org.campaigns_not_ended * 7,
        "journeys": sum(len(str(j["id"])) for j in ds.journeys),
        "user_fields": sum(len(n) for n in ds.user_fields),
        "catalogs": sum(len(n) for n in ds.catalogs),
        "catalog_items": sum(len(v) for v in ds.catalogs.values()) * len("catalog_000-0000000"),
    }
    return StateResult(
        state_bytes(session.state),
        per,
        items=items,
        id_bytes=id_bytes,
        watching=_watching(session.state),
        elapsed=session.elapsed,
        peak_rss_mb=session.peak_rss_mb,
    )


def _duration(iso: str) -> timedelta:
    """An ISO 8601 duration of hours, minutes and seconds (`PT1H`, `PT5M`)."""
    match = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?", iso)
    if match is None:
        raise ValueError(f"unexpected interval {iso!r}")
    hours, minutes, seconds = (float(g or 0) for g in match.groups())
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


def _all_present(session: Session, binds: list[dict[str, Any]]) -> bool:
    return all(binding_state(session.state, b["resourceConfig"]["name"]) for b in binds)


class LastPages:
    """Which listings (campaigns, each catalog's items) the connector has read to their last page,
    from the simulator's request log, read incrementally."""

    def __init__(self, sim: Simulator) -> None:
        self.sim, self.position, self.read = sim, 0, set[str]()

    def all_read(self) -> bool:
        log = self.sim.request_log
        for entry in log[self.position :]:
            if entry["status"] == 200 and _is_last_page(self.sim, entry):
                self.read.add(entry["path"])
        self.position = len(log)
        return len(self.read) >= len(self.sim.data.catalogs) + 1


def _is_last_page(sim: Simulator, entry: dict[str, Any]) -> bool:
    query = dict(entry["query"])
    if "page" not in query:
        return False
    page, size = int(query["page"]), int(query.get("pageSize", 10))
    path = entry["path"]
    if path == "/api/campaigns":
        total = len(sim.data.campaigns)
    elif CATALOG_ITEMS_PATH.match(path):
        total = len(sim.data.catalogs.get(path.split("/")[3], ()))
    else:
        return False
    return page * size >= total


def _watching(state: dict[str, Any]) -> int:
    """How many campaigns the campaigns cursor fingerprints, read with the connector's own decoder."""
    cursor = (binding_state(state, "campaigns").get("inc") or {}).get("cursor")
    if not isinstance(cursor, list) or len(cursor) != 1:
        return -1
    return len(CampaignsCursor.decode((cursor[0],)).watching)


# -- 2. catalog items: one full pass at 100 requests per second ------------------------------------
@dataclass
class CatalogResult:
    items: int
    requests: int
    page_sizes: list[int]
    rate_limited: int
    pass_s: float
    peak_rss_mb: float
    peak_rss_without_mb: float


async def measure_catalog_items(org: LargeOrg) -> CatalogResult:
    scale = Scale(1.0)  # Iterable's own clock: 100 catalog requests per second
    total = org.catalog_items
    with_items = await _catalog_run(scale, org, only=["catalogs", "catalog_items"], items=total)
    without = await _catalog_run(scale, org, only=["catalogs"], items=0)
    sim, session = with_items
    log = [e for e in sim.request_log if CATALOG_ITEMS_PATH.match(e["path"])]
    sizes = sorted({int(dict(e["query"]).get("pageSize", 0)) for e in log})
    pass_s = log[-1]["t"] - log[0]["t"] if log else 0.0
    return CatalogResult(
        session.docs["catalog_items"],
        len(log),
        page_sizes=sizes,
        rate_limited=sum(e["status"] == 429 for e in log),
        pass_s=pass_s,
        peak_rss_mb=session.peak_rss_mb,
        peak_rss_without_mb=without[1].peak_rss_mb,
    )


async def _catalog_run(scale: Scale, org: LargeOrg, only: list[str], items: int) -> tuple[Simulator, Session]:
    sim, _ = large_simulator(scale, org, timedelta(days=1))
    await sim.start()
    try:
        d = connector(sim, scale, {}, start_date=start_date(scale, DEFAULT_LAG))
        binds = await bindings(d, only, "PT1H")
        session = await run_session(
            d,
            binds,
            state={},
            until=lambda s: s.docs[only[-1]] >= max(items, 1) and s.since_checkpoint == 0,
            timeout=3600,
        )
    finally:
        await sim.stop()
    return sim, session


# -- 3. de-duplication memory of the busy type ----------------------------------------------------
@dataclass
class MemoryResult:
    lag: timedelta
    records: int
    peak_rss_mb: float
    elapsed: float


async def measure_memory(scale: Scale, org: LargeOrg, lag: timedelta) -> MemoryResult:
    """Backfill exactly one lag of the busy type, so every record of it is remembered for de-duplication."""
    sim, stream = large_simulator(scale, org, lag * 2)
    await sim.start()
    try:
        expected = round(org.events_per_day * lag / timedelta(days=1))
        window = lag * min(1.0, 200_000 / max(1, expected))  # export jobs of at most ~200,000 records
        d = connector(
            sim,
            scale,
            {
                "event_types": [org.busy_event_type],
                "late_data_lag": scale.duration(lag),
                "window_size": iso_seconds(max(1.0, scale.wall(window.total_seconds()))),
            },
            start_date=start_date(scale, lag),
        )
        binds = await bindings(d, ["events"], scale.duration(timedelta(minutes=5)))

        def until(s: Session) -> bool:
            return backfills_done(s.state) and s.docs["events"] >= expected and s.since_checkpoint == 0

        session = await run_session(d, binds, state={}, until=until, timeout=3600, sim=sim)
    finally:
        await sim.stop()
    return MemoryResult(lag, session.docs["events"], peak_rss_mb=session.peak_rss_mb, elapsed=session.elapsed)


# -- 4. duplicates of a restart ---------------------------------------------------------------------
@dataclass
class RestartResult:
    lag_records: int
    first_committed: int
    first_uncommitted: int
    second_docs: int
    duplicates_committed: int
    duplicates_uncommitted: int


async def measure_restart(scale: Scale, org: LargeOrg) -> RestartResult:
    lag = DEFAULT_LAG
    sim, stream = large_simulator(scale, org, lag * 2)
    await sim.start()
    try:
        d = connector(
            sim,
            scale,
            {"event_types": [org.busy_event_type], "late_data_lag": scale.duration(lag)},
            start_date=start_date(scale, lag),
        )
        binds = await bindings(d, ["events"], scale.duration(timedelta(minutes=5)))
        run_for = scale.wall(lag.total_seconds())
        half_window = max(1, round(org.events_per_day * timedelta(minutes=5) / timedelta(days=1) / 2))

        def mid_stream(s: Session) -> bool:
            # Killed halfway through a real-time window, once the type has been read in real time a while.
            return (
                backfills_done(s.state) and s.elapsed > run_for * 0.75 and s.since_checkpoint >= half_window
            )

        first = await run_session(
            d, binds, state={}, until=mid_stream, keys_of="events", kill=True, timeout=3600, sim=sim
        )
        resumed_at = time.monotonic()
        second = await run_session(
            d,
            binds,
            state=first.state,
            until=lambda s: time.monotonic() - resumed_at > 2.2 * run_for,
            keys_of="events",
            timeout=3600,
            sim=sim,
        )
    finally:
        await sim.stop()
    committed, uncommitted = set(first.committed_keys), set(first.pending_keys) - set(first.committed_keys)
    again = Counter(second.committed_keys + second.pending_keys)
    now = time.time()
    return RestartResult(
        lag_records=stream.between(now - scale.wall(lag.total_seconds()), now),
        first_committed=len(first.committed_keys),
        first_uncommitted=len(first.pending_keys),
        second_docs=sum(again.values()),
        duplicates_committed=sum(n for k, n in again.items() if k in committed),
        duplicates_uncommitted=sum(n for k, n in again.items() if k in uncommitted),
    )


# -- the report ------------------------------------------------------------------------------------
async def run(scale: Scale, size: float, parts: set[str]) -> None:
    """Print each part's table as soon as it is measured."""
    full = LargeOrg()
    org = full.scaled(size)
    print(
        f"\n4. Large organisation at {size:g} of full size: {org.campaigns:,} campaigns "
        f"({org.campaigns_not_ended:,} not ended), {org.journeys:,} journeys, {org.user_fields:,} user fields, "
        f"{org.catalogs:,} catalogs of {org.catalog_items:,} items, {org.busy_event_type} at "
        f"{org.events_per_day:,} a simulated day",
        flush=True,
    )
    if "state" in parts:
        # Every binding at once (52 event types, 2 metrics bindings) needs a slower clock than one type.
        print(
            _state_table(await measure_state(Scale(max(scale.factor, STATE_TIME_SCALE)), org), org),
            flush=True,
        )
    if "catalog" in parts:
        print(_catalog_table(await measure_catalog_items(org), org, full), flush=True)
    busy = busy_type_scale(scale, org)
    if "memory" in parts:
        low = await measure_memory(busy, org, DEFAULT_LAG)
        high = await measure_memory(busy, org, timedelta(days=1))
        print(_memory_table(low, high, org=org, full=full), flush=True)
    if "restart" in parts:
        print(_restart_table(await measure_restart(busy, org)), flush=True)


def busy_type_scale(scale: Scale, org: LargeOrg) -> Scale:
    """A clock slow enough that the busy type arrives at most BUSY_WALL_RATE records per wall second:
    the connector must keep up in real time on a shared machine, or its windows (and memory) grow."""
    return Scale(max(scale.factor, org.events_per_day / (86_400 * BUSY_WALL_RATE)))


def _state_table(r: StateResult, org: LargeOrg) -> str:
    rows: list[list[Any]] = [
        ["whole state (all bindings)", f"{r.total:,} B", f"≤ {STATE_BUDGET:,} B", "", ""]
    ]
    for name in TRACKED:
        n = r.items[name]
        size = r.per_binding.get(name, 0)
        label = (
            f"campaigns ({n:,} not ended of {org.campaigns:,})" if name == "campaigns" else f"{name} ({n:,})"
        )
        rows.append([label, f"{size:,} B", "", size / n, max(0.0, size - r.id_bytes[name]) / n])
    other = r.total - sum(r.per_binding.get(n, 0) for n in TRACKED)
    rows.append(["every other binding and the rest", f"{other:,} B", "", "", ""])
    rows.append(
        [
            "campaigns fingerprinted in the cursor",
            r.watching,
            f"{org.campaigns_not_ended:,} not ended",
            "",
            "",
        ]
    )
    return table(
        f"4a. State after the first full pass of every binding ({r.elapsed:.0f} s wall, connector peak RSS "
        f"{r.peak_rss_mb:.0f} MB). Per item: state bytes / items; beyond id: minus the ids' own characters; "
        "target ≤ 16 B beyond id",
        ["state", "bytes", "budget", "B / item", "B / item beyond id"],
        rows,
    )


def _catalog_table(r: CatalogResult, org: LargeOrg, full: LargeOrg) -> str:
    per_item = (r.peak_rss_mb - r.peak_rss_without_mb) * 1024 * 1024 / max(1, r.items)
    factor = full.catalog_items / org.catalog_items
    rows: list[list[Any]] = [
        ["items emitted", f"{r.items:,}", f"{org.catalog_items:,}"],
        ["catalog items requests / page size", f"{r.requests:,} / {r.page_sizes}", "page size 1000"],
        ["429s", r.rate_limited, 0],
        ["one full pass (wall s, 100 req/s enforced)", f"{r.pass_s:.1f}", ""],
        [
            "  at 2,000,000 items: requests / their floor at 100 req/s (s)",
            f"{r.requests * factor:,.0f} / {r.requests * factor / 100:.0f}",
            "",
        ],
        ["  at 2,000,000 items: this pass's time × size (s)", f"{r.pass_s * factor:.0f}", ""],
        [
            "peak RSS with / without catalog_items (MB)",
            f"{r.peak_rss_mb:.1f} / {r.peak_rss_without_mb:.1f}",
            "",
        ],
        ["catalog_items memory per item (B)", f"{per_item:.0f}", "≤ 64"],
        ["  at 2,000,000 items (MB)", f"{per_item * full.catalog_items / 2**20:.0f}", ""],
    ]
    return table("4b. Catalog items: one full pass at time scale 1", ["measure", "result", "target"], rows)


def _memory_table(low: MemoryResult, high: MemoryResult, org: LargeOrg, full: LargeOrg) -> str:
    slope = (high.peak_rss_mb - low.peak_rss_mb) * 1024 * 1024 / max(1, high.records - low.records)
    base = low.peak_rss_mb - slope * low.records / 2**20

    def at(records: float) -> float:
        return base + slope * records / 2**20

    full_day = full.events_per_day
    rows: list[list[Any]] = [
        [
            f"late_data_lag {_iso(low.lag)}: records remembered",
            f"{low.records:,}",
            "",
            f"{low.peak_rss_mb:.1f}",
        ],
        [
            f"late_data_lag {_iso(high.lag)}: records remembered",
            f"{high.records:,}",
            "",
            f"{high.peak_rss_mb:.1f}",
        ],
        ["bytes per remembered record (RSS slope)", f"{slope:.0f}", "≤ 32", ""],
        [
            f"PT1H at {full_day:,}/day: {full_day // 24:,} records (extrapolated)",
            "",
            "≤ 150 MB",
            f"{at(full_day / 24):.0f}",
        ],
        [
            f"P1D at {full_day:,}/day: {full_day:,} records (extrapolated)",
            "",
            "≤ 300 MB",
            f"{at(full_day):.0f}",
        ],
    ]
    return table(
        f"4c. Memory of the busy type ({org.events_per_day:,}/day), backfilling exactly one lag so every "
        "record is remembered",
        ["measure", "value", "target", "peak RSS (MB)"],
        rows,
    )


def _restart_table(r: RestartResult) -> str:
    rows: list[list[Any]] = [
        [
            "first session: committed / not yet committed at the kill",
            f"{r.first_committed:,} / {r.first_uncommitted:,}",
            "",
        ],
        ["second session: documents (2.2 lags)", f"{r.second_docs:,}", ""],
        ["re-emitted that were not yet committed (at-least-once)", f"{r.duplicates_uncommitted:,}", ""],
        [
            "re-emitted that were already committed (the restart's cost)",
            f"{r.duplicates_committed:,}",
            f"≤ one lag: {r.lag_records:,}",
        ],
    ]
    return table(
        "4d. Restart of the busy type: SIGKILL mid-stream, resumed from the last checkpoint",
        ["measure", "documents", "target"],
        rows,
    )


def _iso(lag: timedelta) -> str:
    return "P1D" if lag == timedelta(days=1) else f"PT{lag.total_seconds() / 3600:g}H"
