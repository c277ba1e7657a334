"""Fetch functions of the users and events bindings, over export jobs.

Each export data type runs three CDK subtasks:
- `backfill` walks [start date, cutoff) in adaptive windows, checkpointing after each window;
- `realtime.<type>` reads [cursor, now) every interval while the type is busy, and less often the
  longer it has been quiet; an empty read leaves the cursor where it was;
- `lookback.<type>` re-reads, in one job per lag-sized step, what realtime read at least `lag` ago,
  so records Iterable makes visible late are captured. Records both passes see are emitted once.

Windows adapt to the data: a window that holds few records makes the next one larger, a large or
truncated one makes it smaller. Export results are unordered, so a window's end is checkpointed
only after every record of its job has been emitted.

Files are read as Iterable lists them, before their job completes. A job that fails afterwards is
resubmitted (or, truncated, split): records of files read early are then listed again, and are
emitted only once (`EarlyKeys`).
"""

import zlib
from array import array
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from logging import Logger
from typing import Any, AsyncGenerator, Callable

from estuary_cdk import emitted_changes_cache as cache
from estuary_cdk.capture.common import LogCursor, PageCursor, make_cursor_dict
from pydantic import BaseModel
from xxhash import xxh3_64_intdigest

from ..rate_limits import time_scale
from ..records import ExportedStream
from .jobs import (
    ExportFailed,
    ExportJobs,
    ExportRefused,
    ExportStopped,
    ExportTruncated,
    ExportWindow,
    JobAccepted,
    LinePosition,
    Priority,
)

WINDOW_TARGET_RECORDS = 250_000
WINDOW_MAX_GROWTH = 8.0
WINDOW_FLOOR = timedelta(minutes=1)
IDLE_POLL_MAX = timedelta(hours=1)
LOOKBACK_MIN_STEP = timedelta(minutes=5)
RESTART_POLL_HORIZON = 24
BACKFILL_DOCS_PER_CHECKPOINT = 20_000
"""A large backfill window is committed in parts of this many documents, each checkpointing the
window's unchanged start: the documents reach Flow while the window streams, and a restart reads
the window again."""


def now_seconds() -> datetime:
    return datetime.now(tz=UTC).replace(microsecond=0)


def page_to_datetime(page: PageCursor) -> datetime | None:
    return datetime.fromtimestamp(page, tz=UTC) if isinstance(page, int) else None


def datetime_to_page(dt: datetime) -> int:
    return int(dt.timestamp())


class BackfillPage(BaseModel):
    """The backfill page of an export data type. Older states hold an int (`start` alone) or None."""

    start: int
    """Epoch seconds: the next window starts here."""
    window: int | None = None
    """Seconds: the adaptive window size."""
    job: int | None = None
    """An export job of ours started for [start, end): adopted after a crash instead of a new one."""
    end: int | None = None

    @classmethod
    def read(cls, page: PageCursor, default_start: datetime) -> "BackfillPage":
        if isinstance(page, dict):
            return cls.model_validate(page)
        return cls(start=page if isinstance(page, int) else datetime_to_page(default_start))

    def cursor(self) -> dict[str, Any]:
        # Every key, null included: the runtime merge-patches checkpoints.
        return make_cursor_dict(self.model_dump())


def pages_as_dicts(backfills: dict[str, Any], default_start: datetime) -> None:
    """Turn int pages of an older state into dicts in memory: the CDK refuses a dict page after an
    int one, and the first dict checkpointed replaces the int in the runtime's state."""
    for backfill in backfills.values():
        if backfill is not None and isinstance(backfill.next_page, int):
            backfill.next_page = BackfillPage.read(backfill.next_page, default_start).model_dump()


@dataclass
class EarlyKeys:
    """Digests of the keys emitted from files listed before their job completed, kept until the
    window they belong to is done: a resubmitted job, or the smaller windows of a truncated one,
    list those records again. 8 bytes per record; a set for lookups only once a job was replaced."""

    start: datetime
    end: datetime
    digests: array = field(default_factory=lambda: array("Q"))
    replayed: set[int] | None = None

    def replay(self) -> None:
        if self.digests:
            self.replayed = set(self.digests)


@dataclass
class TypeProgress:
    window: timedelta
    realtime_cursor: datetime
    newest_record: datetime | None = None
    """Cursor of the newest record read by any pass of this session, once its backfill is done."""
    backfill_newest: datetime | None = None
    last_poll: datetime | None = None
    behind: bool = False
    """The last real-time read stopped short of `now` (its window was capped): read on at once."""
    refused: str | None = None
    """Iterable's message when it refused to export the type: skipped until the next restart."""
    early: dict[Priority, "EarlyKeys"] = field(default_factory=dict)
    """Per pass (backfill, real time, late data), the records read early in its current window."""

    def quiet_since(self) -> datetime:
        """Since when, as far as this process knows, the type has had no new records. An empty
        real-time read leaves the cursor in place, so after a restart the cursor still tells."""
        if self.newest_record is None:
            return self.realtime_cursor
        return min(self.newest_record, self.realtime_cursor)

    def saw(self, newest: datetime | None) -> None:
        if newest is not None and (self.newest_record is None or newest > self.newest_record):
            self.newest_record = newest


def idle_phase(data_type: str, period: timedelta) -> timedelta:
    """A stable offset within `period`, so that idle types poll at different moments."""
    return timedelta(seconds=zlib.crc32(data_type.encode()) % max(1, int(period.total_seconds())))


def next_realtime_poll(
    now: datetime, quiet_since: datetime, last_poll: datetime | None, interval: timedelta,
    idle_max: timedelta, phase: timedelta,
) -> datetime:  # fmt: skip
    """When the real-time pass of a type should next export [cursor, now).

    A type quiet for q at its last poll waits max(interval, q / 2), so waits double while it
    stays quiet. Once that reaches `idle_max` it polls once per `idle_max`, on a grid offset by
    its own `phase`: idle types spread over the period, and a restart keeps the rhythm of those
    quiet for longer than RESTART_POLL_HORIZON periods; the others poll at once."""
    if last_poll is None:
        # A restart: a type quiet for less than a day may be one that was busy before downtime.
        return now if now - quiet_since < idle_max * RESTART_POLL_HORIZON else next_slot(now, idle_max, phase)
    wait = max(interval, (last_poll - quiet_since) / 2)
    if wait < idle_max:
        return last_poll + wait
    return next_slot(last_poll + interval, idle_max, phase)


def lookback_due(now: datetime, cursor: datetime, realtime_cursor: datetime, lag: timedelta) -> bool:
    """Whether the late-data pass should re-read [cursor, min(now - lag, realtime cursor)) now:
    once that span is a whole step long, or when it reaches a real-time cursor that has stood
    still for `lag` (the type went quiet), so the trailing stretch is not left unread."""
    end = min(now - lag, realtime_cursor)
    step = max(lag, LOOKBACK_MIN_STEP * time_scale())
    return end - cursor >= step or (end == realtime_cursor and end > cursor)


def next_slot(after: datetime, period: timedelta, phase: timedelta) -> datetime:
    """The first instant at or after `after` of the grid epoch + phase + k * period."""
    origin = datetime.fromtimestamp(0, tz=UTC) + phase
    periods = -((origin - after) // period)  # ceiling division of timedeltas
    return origin + periods * period


@dataclass
class ExportCapture:
    """The fetch functions of one binding (users or events) and their shared, in-memory pacing."""

    jobs: ExportJobs
    binding: str
    initial_window: timedelta
    lag: timedelta
    interval: timedelta
    progress: dict[str, TypeProgress] = field(default_factory=dict)
    clock: Callable[[], datetime] = now_seconds

    def track(self, data_type: str, realtime_cursor: datetime) -> None:
        self.progress[data_type] = TypeProgress(self.initial_window, realtime_cursor)

    def _cache_name(self, stream: ExportedStream) -> str:
        return f"{self.binding}.{stream.data_type}"

    async def backfill(
        self, stream: ExportedStream, start: datetime, log: Logger, page: PageCursor, cutoff: LogCursor
    ) -> AsyncGenerator[Any, None]:
        assert isinstance(cutoff, datetime)
        progress = self.progress[stream.data_type]
        at = BackfillPage.read(page, start)
        window_start = datetime.fromtimestamp(at.start, tz=UTC)
        if window_start >= cutoff:
            return

        def page_at(start: datetime, job: JobAccepted | None = None) -> dict[str, Any]:
            return BackfillPage(
                start=datetime_to_page(start), window=int(progress.window.total_seconds()),
                job=job.job_id if job else None, end=datetime_to_page(job.window.end) if job else None,
            ).cursor()  # fmt: skip

        adopt = None
        if at.job is not None and at.end is not None:
            job_end = datetime.fromtimestamp(at.end, tz=UTC)
            if window_start < job_end <= cutoff:
                adopt = (at.job, job_end)
        if progress.refused is not None:
            yield await self._wait_for_restart(page_at(window_start))
            return
        end = None
        job = None
        try:
            pending = 0
            reading = self._read(log, stream, window_start, cutoff, Priority.BACKFILL, cutoff - self.lag, adopt)
            async for item in reading:
                if isinstance(item, datetime):
                    end = item
                    continue
                if isinstance(item, JobAccepted):
                    # Persisted before reading, so a restart adopts this job rather than start another.
                    job = item
                    yield page_at(window_start, job)
                    pending = 0
                    continue
                for doc in item:
                    yield doc
                pending += len(item)
                if pending >= BACKFILL_DOCS_PER_CHECKPOINT:
                    yield page_at(window_start, job)
                    pending = 0
        except ExportStopped:
            yield page_at(window_start)
            return
        except ExportRefused as refused:
            self._refuse(log, refused)
            yield await self._wait_for_restart(page_at(window_start))
            return
        assert end is not None
        if end >= cutoff:
            progress.saw(progress.backfill_newest or start)
        # The CDK ends a backfill when its last item is a document, and calls again otherwise.
        if end < cutoff or not pending:
            yield page_at(end)

    def _refuse(self, log: Logger, refused: ExportRefused) -> None:
        progress = self.progress[refused.data_type]
        if progress.refused is None:
            progress.refused = refused.message
            log.warning(
                f"{refused}. The data type is skipped, the others are captured; it is tried again "
                "when the connector restarts.",
                {"data_type": refused.data_type, "iterable_message": refused.message},
            )

    async def _wait_for_restart(self, page: dict[str, Any]) -> dict[str, Any]:
        """The unchanged page of a refused type's backfill, once the connector stops: returning
        without it would mark the backfill complete."""
        if self.jobs.stopping is not None:
            await self.jobs.stopping.wait()
        return page

    async def realtime(
        self, stream: ExportedStream, log: Logger, cursor: LogCursor
    ) -> AsyncGenerator[Any, None]:
        assert isinstance(cursor, datetime)
        progress = self.progress[stream.data_type]
        if progress.refused is not None:
            return
        now = self.clock()
        idle_max = IDLE_POLL_MAX * time_scale()
        phase = idle_phase(stream.data_type, idle_max)
        due = next_realtime_poll(now, progress.quiet_since(), progress.last_poll, self.interval, idle_max, phase)
        # The CDK calls again one interval after an empty poll: round to the nearest call.
        if now - cursor < timedelta(seconds=1) or (not progress.behind and now < due - self.interval / 2):
            return
        progress.last_poll = now
        empty = True
        try:
            async for item in self._read(log, stream, cursor, now, Priority.REALTIME, cursor):
                if isinstance(item, JobAccepted):
                    continue
                if not isinstance(item, datetime):
                    empty = empty and not item
                    for doc in item:
                        yield doc
                elif empty and item == now:
                    return  # nothing new up to now: read the same stretch again next time
                else:
                    yield item
                    progress.realtime_cursor = item
                    progress.behind = item < now
        except ExportStopped:
            return
        except ExportRefused as refused:
            self._refuse(log, refused)

    async def lookback(
        self, stream: ExportedStream, log: Logger, cursor: LogCursor
    ) -> AsyncGenerator[Any, None]:
        assert isinstance(cursor, datetime)
        progress = self.progress[stream.data_type]
        now = self.clock()
        if progress.refused is not None or not lookback_due(now, cursor, progress.realtime_cursor, self.lag):
            return
        end = min(now - self.lag, progress.realtime_cursor)
        try:
            async for item in self._read(log, stream, cursor, end, Priority.LOOKBACK, cursor):
                if isinstance(item, JobAccepted):
                    continue
                if not isinstance(item, datetime):
                    for doc in item:
                        yield doc
                    continue
                cache.cleanup(self._cache_name(stream), item - timedelta(microseconds=1))
                yield item
        except ExportStopped:
            return
        except ExportRefused as refused:
            self._refuse(log, refused)

    async def _read(
        self,
        log: Logger,
        stream: ExportedStream,
        start: datetime,
        limit: datetime,
        priority: Priority,
        dedupe_from: datetime,
        adopt: tuple[int, datetime] | None = None,
    ) -> AsyncGenerator[Any, None]:
        """Lists of documents of one window starting at `start` and ending at most at `limit`, then
        the window's end; a `JobAccepted` before each job's documents. Records at or after
        `dedupe_from` are emitted only if not emitted before. `adopt` is a job of ours already
        serving [start, its end). Lists, not documents, so that each document crosses one async
        generator, not two."""
        progress = self.progress[stream.data_type]
        name = self._cache_name(stream)
        while True:
            end = adopt[1] if adopt else min(limit, start + progress.window)
            window = ExportWindow(stream.data_type, start, end)
            early = progress.early.get(priority)
            if early is None or not early.start <= window.start < window.end <= early.end:
                # A window inside the current one is one of its halves after a truncation.
                early = progress.early[priority] = EarlyKeys(window.start, window.end)
            count = 0
            newest: datetime | None = None
            try:
                async with aclosing(self.jobs.export(log, window, priority, adopt[0] if adopt else None)) as batches:
                    adopt = None
                    async for batch in batches:
                        if isinstance(batch, JobAccepted):
                            early.replay()
                            count = 0
                            yield batch
                            continue
                        docs: list[Any] = []
                        position = LinePosition(window, batch.file, batch.first - 1)
                        for line in batch.lines:
                            position.number += 1
                            if not line or line.isspace():
                                continue
                            doc, key, cursor = stream.record(line, position)
                            count += 1
                            if newest is None or cursor > newest:
                                newest = cursor
                            if early.replayed is not None or not batch.settled:
                                digest = xxh3_64_intdigest(key.encode())
                                if early.replayed is not None and digest in early.replayed:
                                    continue
                                if not batch.settled:
                                    early.digests.append(digest)
                            if cursor >= dedupe_from and not cache.should_yield(name, key, cursor):
                                continue
                            docs.append(doc)
                        yield docs
            except ExportTruncated:
                self._shrink(window, progress)
                continue
            if window.end >= early.end:
                del progress.early[priority]
            self._adapt(window, progress, count)
            if priority is Priority.BACKFILL:
                if newest is not None and (progress.backfill_newest is None or newest > progress.backfill_newest):
                    progress.backfill_newest = newest
            else:
                progress.saw(newest)
            log.info(
                "exported window",
                {"window": str(window), "records": count, "next_window_s": progress.window.total_seconds()},
            )
            yield window.end
            return

    def _shrink(self, window: ExportWindow, progress: TypeProgress) -> None:
        half = (window.end - window.start) / 2
        if half < WINDOW_FLOOR:
            raise ExportFailed(
                f"Iterable truncated the export of {window} even though the window is at its "
                f"smallest ({WINDOW_FLOOR}); this data type cannot be exported."
            )
        progress.window = half

    def _adapt(self, window: ExportWindow, progress: TypeProgress, records: int) -> None:
        span = window.end - window.start
        if span < progress.window:
            return
        growth = WINDOW_MAX_GROWTH if records == 0 else WINDOW_TARGET_RECORDS / records
        progress.window = span * max(0.5, min(WINDOW_MAX_GROWTH, growth))
