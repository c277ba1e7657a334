"""Fetch functions of the users and events bindings, over export jobs.

Each export data type runs three CDK subtasks:
- `backfill` walks [start date, cutoff) in adaptive windows, checkpointing after each window;
- `realtime.<type>` reads [cursor, now) every interval, less often while the type stays empty;
- `lookback.<type>` re-reads, in one job per lag-sized step, what realtime read at least `lag` ago,
  so records Iterable makes visible late are captured. Records both passes see are emitted once.

Windows adapt to the data: a window that holds few records makes the next one larger, a large or
truncated one makes it smaller. Export results are unordered, so a window is checkpointed only
after every record of its job has been emitted.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from logging import Logger
from typing import Any, AsyncGenerator

from estuary_cdk import emitted_changes_cache as cache
from estuary_cdk.capture.common import LogCursor, PageCursor

from ..rate_limits import time_scale
from ..records import ExportedStream
from .jobs import ExportFailed, ExportJobs, ExportStopped, ExportTruncated, ExportWindow, Priority

WINDOW_TARGET_RECORDS = 250_000
WINDOW_MAX_GROWTH = 8.0
WINDOW_FLOOR = timedelta(minutes=1)
IDLE_POLL_MAX = timedelta(hours=1)
LOOKBACK_MIN_STEP = timedelta(minutes=5)


def now_seconds() -> datetime:
    return datetime.now(tz=UTC).replace(microsecond=0)


def page_to_datetime(page: PageCursor) -> datetime | None:
    return datetime.fromtimestamp(page, tz=UTC) if isinstance(page, int) else None


def datetime_to_page(dt: datetime) -> int:
    return int(dt.timestamp())


@dataclass
class TypeProgress:
    window: timedelta
    realtime_cursor: datetime
    empty_polls: int = 0


@dataclass
class ExportCapture:
    """The fetch functions of one binding (users or events) and their shared, in-memory pacing."""

    jobs: ExportJobs
    binding: str
    initial_window: timedelta
    lag: timedelta
    interval: timedelta
    progress: dict[str, TypeProgress] = field(default_factory=dict)

    def track(self, data_type: str, realtime_cursor: datetime) -> None:
        self.progress[data_type] = TypeProgress(self.initial_window, realtime_cursor)

    def _cache_name(self, stream: ExportedStream) -> str:
        return f"{self.binding}.{stream.data_type}"

    async def backfill(
        self, stream: ExportedStream, start: datetime, log: Logger, page: PageCursor, cutoff: LogCursor
    ) -> AsyncGenerator[Any, None]:
        assert isinstance(cutoff, datetime)
        window_start = page_to_datetime(page) or start
        if window_start >= cutoff:
            return
        try:
            end = None
            async for item in self._read(log, stream, window_start, cutoff, Priority.BACKFILL, cutoff - self.lag):
                if isinstance(item, datetime):
                    end = item
                else:
                    yield item
        except ExportStopped:
            yield datetime_to_page(window_start)
            return
        assert end is not None
        if end < cutoff:
            yield datetime_to_page(end)

    async def realtime(
        self, stream: ExportedStream, log: Logger, cursor: LogCursor
    ) -> AsyncGenerator[Any, None]:
        assert isinstance(cursor, datetime)
        progress = self.progress[stream.data_type]
        now = now_seconds()
        idle_wait = min(self.interval * 2**progress.empty_polls, IDLE_POLL_MAX * time_scale())
        if now - cursor < max(idle_wait, timedelta(seconds=1)):
            return
        count = 0
        try:
            async for item in self._read(log, stream, cursor, now, Priority.REALTIME, cursor):
                if isinstance(item, datetime):
                    progress.empty_polls = 0 if count else progress.empty_polls + 1
                    yield item
                    progress.realtime_cursor = item
                else:
                    count += 1
                    yield item
        except ExportStopped:
            return

    async def lookback(
        self, stream: ExportedStream, log: Logger, cursor: LogCursor
    ) -> AsyncGenerator[Any, None]:
        assert isinstance(cursor, datetime)
        progress = self.progress[stream.data_type]
        end = min(now_seconds() - self.lag, progress.realtime_cursor)
        if end - cursor < max(self.lag, LOOKBACK_MIN_STEP * time_scale()):
            return
        try:
            async for item in self._read(log, stream, cursor, end, Priority.LOOKBACK, cursor):
                if isinstance(item, datetime):
                    cache.cleanup(self._cache_name(stream), item - timedelta(microseconds=1))
                yield item
        except ExportStopped:
            return

    async def _read(
        self,
        log: Logger,
        stream: ExportedStream,
        start: datetime,
        limit: datetime,
        priority: Priority,
        dedupe_from: datetime,
    ) -> AsyncGenerator[Any, None]:
        """Documents of one window starting at `start` and ending at most at `limit`, then the
        window's end. Records at or after `dedupe_from` are emitted only if not emitted before."""
        progress = self.progress[stream.data_type]
        name = self._cache_name(stream)
        while True:
            window = ExportWindow(stream.data_type, start, min(limit, start + progress.window))
            count = 0
            try:
                async for line in self.jobs.export(log, window, priority):
                    record = stream.record(line.content, line.location())
                    count += 1
                    if record.cursor >= dedupe_from and not cache.should_yield(name, record.key, record.cursor):
                        continue
                    yield record.doc
            except ExportTruncated:
                self._shrink(window, progress)
                continue
            self._adapt(window, progress, count)
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
