"""Iterable's request budgets, stated once: each endpoint family's rate limit, the organisation's
export limits and the connector's share of them, and the priority order in which the export
budgets and processing slots are handed out."""

import asyncio
import heapq
import itertools
import os
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from enum import IntEnum, StrEnum
from logging import Logger
from typing import AsyncIterator

TIME_SCALE_ENV = "SOURCE_ITERABLE_TIME_SCALE"


def time_scale() -> float:
    """Multiplier of every pacing interval and poll delay; below 1 only in tests and benchmarks."""
    return float(os.environ.get(TIME_SCALE_ENV, "1"))


class Bucket(StrEnum):
    DEFAULT = "default"
    CAMPAIGN_METRICS = "campaign_metrics"
    EXPERIMENT_METRICS = "experiment_metrics"
    CATALOGS = "catalogs"
    LIST_USERS = "list_users"
    USER_FIELDS = "user_fields"
    EXPORT = "export"
    """export/start, and cancelling a job (DELETE export/{jobId})."""
    EXPORT_FILE_LIST = "export_file_list"
    """export/{jobId}/files: a job's state and its files."""
    FILES = "files"


@dataclass(frozen=True)
class RateLimit:
    requests: int
    per: timedelta


LIMITS: dict[Bucket, RateLimit | None] = {
    Bucket.DEFAULT: RateLimit(100, timedelta(seconds=1)),
    Bucket.CAMPAIGN_METRICS: RateLimit(10, timedelta(minutes=1)),
    # Iterable states no limit for experiment metrics; they get the same caution as campaign metrics.
    Bucket.EXPERIMENT_METRICS: RateLimit(10, timedelta(minutes=1)),
    # Per API key rather than per project.
    Bucket.CATALOGS: RateLimit(100, timedelta(seconds=1)),
    Bucket.LIST_USERS: RateLimit(5, timedelta(minutes=1)),
    Bucket.USER_FIELDS: RateLimit(3, timedelta(seconds=1)),
    # Iterable's spec states "1 request/second, per organization" on export/start and, separately,
    # on export/{jobId}/files; its cancel endpoint states none, so cancelling spends the start budget.
    Bucket.EXPORT: RateLimit(1, timedelta(seconds=1)),
    Bucket.EXPORT_FILE_LIST: RateLimit(1, timedelta(seconds=1)),
    # Pre-signed export file URLs are served by object storage, outside Iterable's limits.
    Bucket.FILES: None,
}

EXPORT_JOBS_PROCESSING_PER_ORGANISATION = 4
ORGANISATION_BUCKETS = frozenset({Bucket.EXPORT, Bucket.EXPORT_FILE_LIST})
"""Budgets shared with every tool of the Iterable organisation: the connector spends its share of
each, one request at a time, in priority order."""

DEFAULT_EXPORT_SHARE = 0.5
"""Half of each export budget: room for the customer's other tools, and even if Iterable counted
export/start and export/{jobId}/files against one budget, both halves together stay within it."""

BACKFILL_SHARE_EVERY = 3
"""Of every this many contested grants of an export request or processing slot, at least one goes
to a backfill: real-time and late-data passes come first, but can never starve the backfill."""


def organisation_limit(bucket: Bucket, share: float) -> RateLimit | None:
    """The connector's share of a budget: organisation budgets are stretched in time by `share`."""
    limit = LIMITS[bucket]
    if limit is None or bucket not in ORGANISATION_BUCKETS:
        return limit
    return RateLimit(limit.requests, limit.per / share)


def export_jobs_processing(share: float) -> int:
    """Processing slots the connector may hold: its share of the organisation's, at least one."""
    return max(1, int(EXPORT_JOBS_PROCESSING_PER_ORGANISATION * share + 1e-9))


@dataclass
class ExportPlan:
    """What the real-time and late-data passes would ask of the export/start budget if every data
    type were busy, against what the connector's share leaves them beside the backfill's
    guaranteed share. Each job also costs at least one export/{jobId}/files request, from a budget
    of the same size, so export/start is the one that binds."""

    share: float
    passes: dict[str, tuple[timedelta, timedelta | None]] = field(default_factory=dict)
    """Per binding and data type: its real-time interval and its late-data step (None: no pass)."""
    warned: bool = False

    def add(self, key: str, interval: timedelta, lookback_step: timedelta | None) -> None:
        self.passes[key] = (interval, lookback_step)

    def starts_per_second(self) -> float:
        limit = organisation_limit(Bucket.EXPORT, self.share)
        assert limit is not None
        budget = limit.requests / (limit.per.total_seconds() * time_scale())
        return budget * (1 - 1 / BACKFILL_SHARE_EVERY)

    def holdable_interval(self) -> timedelta | None:
        """The shortest real-time interval every type could keep at once; None when the late-data
        passes alone would take all the budget left beside the backfill."""
        spare = self.starts_per_second() - sum(1 / s.total_seconds() for _, s in self.passes.values() if s)
        if spare <= 0:
            return None
        return timedelta(seconds=len(self.passes) / spare)

    def check(self, log: Logger) -> None:
        """Say once if the requested intervals cannot all be held within the budget."""
        if self.warned or not self.passes:
            return
        holdable = self.holdable_interval()
        shortest = min(interval for interval, _ in self.passes.values())
        if holdable is not None and shortest >= holdable:
            return
        self.warned = True
        log.warning(
            f"Iterable's export limits cannot serve every data type at the interval set: with "
            f"{len(self.passes)} data types busy, a share of {self.share:g} of the organisation's export "
            f"budget holds a real-time interval of "
            + (
                f"{_duration(holdable)}, not {_duration(shortest)}"
                if holdable
                else "none at this late data lookback"
            )
            + ". Busy types will be read less often than asked; the backfill keeps its guaranteed share. "
            "Lengthen the binding's interval or the Late Data Lookback, capture fewer event types, "
            "or raise Share of Iterable's Export Limits.",
            {"holdable_interval_s": holdable.total_seconds() if holdable else None},
        )


def _duration(value: timedelta) -> str:
    seconds = value.total_seconds()
    return f"{seconds / 60:.1f} minutes" if seconds >= 120 else f"{seconds:.1f} seconds"


class Priority(IntEnum):
    """Who goes first for an export request or a processing slot: a download under way (its next
    files page), then fresh data, then the late-data pass, then history."""

    DOWNLOAD = 0
    REALTIME = 1
    LOOKBACK = 2
    BACKFILL = 3


@dataclass(order=True)
class _Waiter:
    priority: int
    seq: int
    ready: asyncio.Future[None] = field(compare=False)


class PriorityGate:
    """A semaphore that wakes waiters in priority order, except that at least one of every
    `BACKFILL_SHARE_EVERY` grants made while a backfill waits goes to the longest-waiting backfill."""

    def __init__(self, capacity: int):
        self.free = capacity
        self.waiters: list[_Waiter] = []
        self.seq = itertools.count()
        self.passed_over = 0
        """Grants made to others in a row while a backfill was waiting."""

    @asynccontextmanager
    async def hold(self, priority: Priority) -> AsyncIterator[None]:
        if self.free > 0 and not self.waiters:
            self.free -= 1
        else:
            waiter = _Waiter(priority, next(self.seq), asyncio.get_running_loop().create_future())
            heapq.heappush(self.waiters, waiter)
            try:
                await waiter.ready
            except asyncio.CancelledError:
                if waiter.ready.done() and not waiter.ready.cancelled():
                    self._release()
                else:
                    self.waiters.remove(waiter)
                    heapq.heapify(self.waiters)
                raise
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        while self.waiters:
            waiter = self._next()
            if not waiter.ready.done():
                waiter.ready.set_result(None)
                return
        self.free += 1

    def _next(self) -> _Waiter:
        backfills = [w for w in self.waiters if w.priority == Priority.BACKFILL]
        if not backfills or self.waiters[0].priority == Priority.BACKFILL:
            self.passed_over = 0
            return heapq.heappop(self.waiters)
        if self.passed_over + 1 >= BACKFILL_SHARE_EVERY:
            chosen = min(backfills)
            self.waiters.remove(chosen)
            heapq.heapify(self.waiters)
            self.passed_over = 0
            return chosen
        self.passed_over += 1
        return heapq.heappop(self.waiters)


async def sleep_unless(stopping: asyncio.Event | None, seconds: float) -> bool:
    """Sleep `seconds` (scaled), waking early if `stopping` is set. Returns whether it was set."""
    seconds *= time_scale()
    if stopping is None:
        await asyncio.sleep(seconds)
        return False
    try:
        await asyncio.wait_for(stopping.wait(), timeout=seconds)
        return True
    except asyncio.TimeoutError:
        return False
