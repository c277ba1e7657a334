"""Scenario 4: what the late-data de-duplication remembers, and what a restart re-emits.

In-process, on the connector's own `ExportCapture` against a fake export API (no HTTP, no
simulator): memory is measured with tracemalloc, duplicates by counting emitted lines.

- `memory(...)`: bytes per remembered record, for a type at `per_day` records read by real time
  every `interval` and held for `held` (late_data_lag plus one late-data step), next to what the
  CDK's `emitted_changes_cache` (the former design) costs for the same records.
- `restart(...)`: a busy type read by real time and the late-data pass, stopped and restarted
  (the in-memory de-duplication is lost, the checkpointed cursors and windows are kept); every
  line emitted twice is a duplicate, reported next to the records of one late_data_lag.
"""

import bisect
import logging
import tracemalloc
from array import array
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, AsyncIterator

import orjson
from estuary_cdk import emitted_changes_cache

from source_iterable_native.export.capture import ExportCapture
from source_iterable_native.export.dedupe import EmittedLines, line_digest
from source_iterable_native.export.jobs import ExportLines, ExportWindow, Priority
from source_iterable_native.export.streams import ExportedStream

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DATA_TYPE = "emailOpen"
STREAM = ExportedStream(DATA_TYPE, "createdAt", None)
log = logging.getLogger("benchmarks.dedupe")


HELD_DEFAULT = timedelta(hours=2)
"""What the memory holds at the default late_data_lag: one lag and up to one late-data step."""
HELD_P1D = timedelta(days=2)


@dataclass
class Memory:
    records: int
    bytes_per_record: float
    cdk_cache_bytes_per_record: float


@dataclass
class Restart:
    per_day: int
    lag: timedelta
    records_per_lag: int
    duplicates: list[int]
    """Lines emitted twice, for each restart point."""
    peak_remembered: int
    """The most records the de-duplication memory held at once, before the restarts."""


def _line(i: int, at: datetime) -> bytes:
    return orjson.dumps(
        {"createdAt": at.strftime("%Y-%m-%d %H:%M:%S +00:00"), "email": f"u{i}@x.test", "n": i}
    )


def memory(
    per_day: int = 5_000_000,
    held: timedelta = HELD_DEFAULT,
    interval: timedelta = timedelta(minutes=5),
    compare: bool = True,
) -> Memory:
    """Bytes per record of the memory holding `held` of a type's real-time windows; with
    `compare`, also of the CDK's cache holding the same records."""
    per_window = int(per_day * interval / timedelta(days=1))
    windows = int(held / interval)
    records = per_window * windows
    lines = [
        b'{"createdAt":"2026-01-01 00:00:00 +00:00","email":"u%d@x.test"}' % i for i in range(per_window)
    ]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    emitted = EmittedLines()
    for w in range(windows):
        digests = array("Q", (line_digest(line + b"%d" % w) for line in lines))
        emitted.add(T0 + w * interval, T0 + (w + 1) * interval, digests)
        del digests
    ours = tracemalloc.get_traced_memory()[0] - before
    del emitted
    if not compare:
        tracemalloc.stop()
        return Memory(records, ours / records, float("nan"))

    emitted_changes_cache.emitted_cache.clear()
    before = tracemalloc.get_traced_memory()[0]
    for w in range(windows):
        at = T0 + w * interval
        for i in range(per_window):
            # Event keys are 32-hex-digit strings; user keys (emails) are about as long.
            emitted_changes_cache.add_recent("bench", f"{w:08x}{i:024x}", at + timedelta(seconds=i % 300))
    theirs = tracemalloc.get_traced_memory()[0] - before
    emitted_changes_cache.emitted_cache.clear()
    tracemalloc.stop()
    return Memory(records, ours / records, theirs / records)


class _Jobs:
    """Every window answered with the lines whose createdAt lies in it."""

    def __init__(self, times: list[datetime], lines: list[bytes]) -> None:
        self.times, self.lines = times, lines

    async def export(
        self, log: Any, window: ExportWindow, priority: Priority, adopt: int | None = None
    ) -> AsyncIterator[ExportLines]:
        lo = bisect.bisect_left(self.times, window.start)
        hi = bisect.bisect_left(self.times, window.end)
        for i in range(lo, hi, 5000):
            yield ExportLines(window, "f", first=i - lo + 1, lines=self.lines[i : min(i + 5000, hi)])


class _Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _capture(jobs: _Jobs, *, lag: timedelta, interval: timedelta, clock: _Clock) -> ExportCapture:
    """A process's events capture over the stand-in jobs, with nothing in memory yet."""
    return ExportCapture(
        jobs,  # type: ignore[arg-type]  # a stand-in for ExportJobs
        "events",
        initial_window=timedelta(hours=12),
        lag=lag,
        interval=interval,
        clock=clock,
    )


async def _run(
    capture: ExportCapture,
    clock: _Clock,
    cursors: dict[str, datetime],
    until: datetime,
    tick: timedelta,
    emitted: Counter[str],
    peak: list[int],
) -> None:
    """Call real time and the late-data pass each tick, as the CDK does, keeping their cursors."""
    while clock.now < until:
        clock.now += tick
        for name, fetch in (("realtime", capture.realtime), ("lookback", capture.lookback)):
            async for item in fetch(STREAM, log, cursors[name]):
                if isinstance(item, datetime):
                    cursors[name] = item
                else:
                    emitted[item["_estuary_id"]] += 1
        peak[0] = max(peak[0], len(capture.progress[DATA_TYPE].emitted))


async def restart(
    per_day: int = 500_000,
    lag: timedelta = timedelta(hours=1),
    interval: timedelta = timedelta(minutes=5),
    restarts_after: tuple[timedelta, ...] = (
        timedelta(hours=3),
        timedelta(hours=3, minutes=20),
        timedelta(hours=3, minutes=40),
    ),
) -> Restart:
    """Duplicates a restart causes for a type at `per_day` records (each run restarts once)."""
    spacing = timedelta(days=1) / per_day
    span = max(restarts_after) + 3 * lag
    count = int(span / spacing)
    times = [T0 + i * spacing for i in range(count)]
    jobs = _Jobs(times, [_line(i, at) for i, at in enumerate(times)])
    duplicates = []
    peak = [0]
    for stop_at in restarts_after:
        clock = _Clock(T0)
        cursors = {"realtime": T0, "lookback": T0 - lag}
        emitted: Counter[str] = Counter()
        first = _capture(jobs, lag=lag, interval=interval, clock=clock)
        first.track(DATA_TYPE, T0)
        await _run(
            first, clock, cursors=cursors, until=T0 + stop_at, tick=interval, emitted=emitted, peak=peak
        )
        # The restart: a new process from the checkpointed cursors, with nothing in memory.
        second = _capture(jobs, lag=lag, interval=interval, clock=clock)
        second.track(DATA_TYPE, cursors["realtime"])
        await _run(
            second,
            clock,
            cursors=cursors,
            until=T0 + stop_at + 2 * lag + interval,
            tick=interval,
            emitted=emitted,
            peak=[0],
        )
        duplicates.append(sum(n - 1 for n in emitted.values()))
    return Restart(
        per_day, lag, records_per_lag=int(lag / spacing), duplicates=duplicates, peak_remembered=peak[0]
    )
