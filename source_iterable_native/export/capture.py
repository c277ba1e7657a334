"""Fetch functions of the users and events bindings, over export jobs.

Each export data type runs three CDK subtasks:
- `backfill` walks [start date, cutoff) in adaptive windows, checkpointing after each window;
- `realtime.<type>` reads [cursor, now) every interval while the type is busy, and less often the
  longer it has been quiet; an empty read leaves the cursor where it was;
- `lookback.<type>` re-reads, in one job per lag-sized step, what realtime read at least `lag` ago,
  so records Iterable makes visible late are captured. Records both passes see are emitted once
  (`dedupe.EmittedLines`).

Windows adapt to the data: a window that holds few records makes the next one larger, a large or
truncated one makes it smaller. Export results are unordered, so a window's end is checkpointed
only after every record of its job has been emitted.

Files are read as Iterable lists them, before their job completes. A job that fails afterwards is
resubmitted (or, truncated, split): records of files read early are then listed again, and are
emitted only once (`EarlyLines`).
"""

import itertools
import zlib
from abc import ABC, abstractmethod
from array import array
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from logging import Logger
from typing import Any, AsyncGenerator, Callable, Iterable, Iterator, NamedTuple, assert_never

from estuary_cdk.capture.common import LogCursor, PageCursor, make_cursor_dict
from pydantic import BaseModel

from ..budgets import ExportPlan, time_scale
from .streams import ExportedStream, MalformedRecord
from .dedupe import EmittedLines, line_digest
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
REALTIME_SETTLE = timedelta(minutes=5)
"""Real time stops this far short of `now`, less `late_data_lag`: without a late-data pass
(PT0S) it never reads right up to `now`, where records may still be becoming visible."""
BACKFILL_DOCS_PER_CHECKPOINT = 20_000
"""A large backfill window is committed in parts of this many documents, each checkpointing the
window's unchanged start: the documents reach Flow while the window streams, and a restart reads
the window again."""


def now_seconds() -> datetime:
    return datetime.now(tz=UTC).replace(microsecond=0)


class BackfillPage(BaseModel):
    """A data type's backfill position, as checkpointed: where the next window starts, and the
    adaptive window size, so a restart goes on at the size it had learned. `job` and `end` name
    an export job started for [start, end). Older checkpoints hold an int (`start` only); the
    Flow runtime merge-patches dict pages, so every key is always written, null for none."""

    start: int
    window: int | None = None
    job: int | None = None
    end: int | None = None

    @classmethod
    def read(cls, page: PageCursor) -> "BackfillPage | None":
        if page is None:
            return None
        if isinstance(page, bool) or not isinstance(page, (int, dict)):
            raise ValueError(f"not a backfill page: {page!r}")
        return cls(start=page) if isinstance(page, int) else cls.model_validate(page)

    def cursor(self) -> dict[str, Any]:
        """The page to yield: the CDK takes a dict for a page only with its marker."""
        return make_cursor_dict(self.model_dump())


def page_window(page: PageCursor) -> timedelta | None:
    read = BackfillPage.read(page)
    return None if read is None or not read.window else timedelta(seconds=read.window)


def datetime_to_page(dt: datetime) -> int:
    return int(dt.timestamp())


@dataclass
class EarlyLines:
    """Digests of the lines emitted from files listed before their job completed, kept until the
    window they belong to is done: a resubmitted job, or the smaller windows of a truncated one,
    list those records again. 8 bytes per record; a set for lookups only once a job was replaced.
    Digests of whole lines, so a record that changed between the two jobs is emitted again."""

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
    emitted: EmittedLines = field(default_factory=EmittedLines)
    settled: tuple[datetime, datetime] | None = None
    """The latest stretch real time read when it was already `lag` old (catching up): what would
    become visible late was visible then, so the late-data pass steps over it without a job."""
    skipped: int = 0
    """Malformed records skipped by this process (advanced.skip_malformed_records)."""
    refused: str | None = None
    """Iterable's message when it refused to export the type: skipped until the next restart."""
    early: dict[Priority, EarlyLines] = field(default_factory=dict)
    """Per pass (backfill, real time, late data), the lines read early in its current window."""

    def quiet_since(self) -> datetime:
        """Since when, as far as this process knows, the type has had no new records. An empty
        real-time read leaves the cursor in place, so after a restart the cursor still tells."""
        if self.newest_record is None:
            return self.realtime_cursor
        return min(self.newest_record, self.realtime_cursor)

    def settle(self, start: datetime, end: datetime) -> None:
        if self.settled is not None and self.settled[1] == start:
            start = self.settled[0]
        self.settled = (start, end)

    def saw(self, newest: datetime | None) -> None:
        if newest is not None and (self.newest_record is None or newest > self.newest_record):
            self.newest_record = newest


def idle_phase(data_type: str, period: timedelta) -> timedelta:
    """A stable offset within `period`, so that idle types poll at different moments."""
    return timedelta(seconds=zlib.crc32(data_type.encode()) % max(1, int(period.total_seconds())))


def next_realtime_poll(
    now: datetime,
    *,
    quiet_since: datetime,
    last_poll: datetime | None,
    interval: timedelta,
    idle_max: timedelta,
    phase: timedelta,
) -> datetime:
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
    return end - cursor >= lookback_step(lag) or (end == realtime_cursor and end > cursor)


def lookback_step(lag: timedelta) -> timedelta:
    return max(lag, LOOKBACK_MIN_STEP * time_scale())


def next_slot(after: datetime, period: timedelta, phase: timedelta) -> datetime:
    """The first instant at or after `after` of the grid epoch + phase + k * period."""
    origin = datetime.fromtimestamp(0, tz=UTC) + phase
    periods = -((origin - after) // period)  # ceiling division of timedeltas
    return origin + periods * period


class Documents(NamedTuple):
    """The documents of one network read of an export file."""

    docs: list[Any]


class WindowEnd(NamedTuple):
    """Every document of the window [start, end) has been read."""

    end: datetime


WindowRead = Documents | JobAccepted | WindowEnd
"""What `ExportCapture._read` yields: `JobAccepted` before each job's documents, `Documents` as
its files are read, and `WindowEnd` last."""


class PassOutput(ABC):
    """What one call of a pass gives the CDK for each `WindowRead`: the documents, and the
    checkpoints of that pass. Documents come as the list `_read` built, so each one crosses a
    single async generator."""

    def emit(self, item: WindowRead) -> Iterable[Any]:
        match item:
            case Documents(docs):
                return self.documents(docs)
            case JobAccepted():
                return self.job_accepted(item)
            case WindowEnd(end):
                return self.window_end(end)
            case _:
                assert_never(item)

    def documents(self, docs: list[Any]) -> Iterable[Any]:
        return docs

    def job_accepted(self, job: JobAccepted) -> Iterable[Any]:
        return ()

    @abstractmethod
    def window_end(self, end: datetime) -> Iterable[Any]: ...


@dataclass
class BackfillOutput(PassOutput):
    """A backfill window's documents, committed in parts at the window's unchanged start."""

    page: Callable[[JobAccepted | None], dict[str, Any]]
    """The page of the window's start, naming the job that serves it."""
    job: JobAccepted | None = None
    pending: int = 0
    """Documents emitted since the last page."""
    end: datetime | None = None

    def job_accepted(self, job: JobAccepted) -> Iterable[Any]:
        # Persisted before reading, so a restart adopts this job rather than start another.
        self.job, self.pending = job, 0
        return (self.page(job),)

    def documents(self, docs: list[Any]) -> Iterable[Any]:
        self.pending += len(docs)
        if self.pending < BACKFILL_DOCS_PER_CHECKPOINT:
            return docs
        self.pending = 0
        return itertools.chain(docs, (self.page(self.job),))

    def window_end(self, end: datetime) -> Iterable[Any]:
        self.end = end
        return ()


@dataclass
class RealtimeOutput(PassOutput):
    """A real-time read of [cursor, limit): its documents, then the window's end as the cursor,
    unless nothing was read up to `limit`."""

    progress: TypeProgress
    cursor: datetime
    limit: datetime
    settled_before: datetime | None
    """`now - lag` with a late-data pass: what real time reads before it is settled."""
    empty: bool = True

    def documents(self, docs: list[Any]) -> Iterable[Any]:
        self.empty = self.empty and not docs
        return docs

    def window_end(self, end: datetime) -> Iterator[Any]:
        if self.empty and end == self.limit:
            return  # nothing new up to the end: read the same stretch again next time
        if self.settled_before is not None and self.cursor < self.settled_before:
            self.progress.settle(self.cursor, min(end, self.settled_before))
        yield end
        # Once the CDK has taken the cursor.
        self.progress.realtime_cursor = end
        self.progress.behind = end < self.limit


@dataclass
class LookbackOutput(PassOutput):
    """A late-data read: its documents, then the window's end as the cursor, releasing the memory
    of what other passes emitted before it."""

    progress: TypeProgress

    def window_end(self, end: datetime) -> Iterable[Any]:
        self.progress.emitted.release(end)
        return (end,)


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
    skip_malformed: bool = False
    plan: ExportPlan | None = None

    def track(self, data_type: str, realtime_cursor: datetime, page: PageCursor = None) -> None:
        """Start pacing a data type; its backfill page, if any, has the window size it learned."""
        self.progress[data_type] = TypeProgress(page_window(page) or self.initial_window, realtime_cursor)
        if self.plan is not None:
            step = lookback_step(self.lag) if self.lag else None
            self.plan.add(f"{self.binding}.{data_type}", self.interval, step)

    def _page(
        self, start: datetime, progress: TypeProgress, job: JobAccepted | None = None
    ) -> dict[str, Any]:
        return BackfillPage(
            start=datetime_to_page(start),
            window=int(progress.window.total_seconds()),
            job=job.job_id if job else None,
            end=datetime_to_page(job.window.end) if job else None,
        ).cursor()

    def _remember_from(self, cursor: datetime) -> datetime | None:
        """Where the late-data pass will read again: records from there on are remembered."""
        return cursor if self.lag else None

    def _realtime_end(self, now: datetime) -> datetime:
        return now - max(timedelta(0), REALTIME_SETTLE * time_scale() - self.lag)

    async def backfill(
        self, stream: ExportedStream, start: datetime, log: Logger, page: PageCursor, cutoff: LogCursor
    ) -> AsyncGenerator[Any, None]:
        assert isinstance(cutoff, datetime)
        progress = self.progress[stream.data_type]
        at = BackfillPage.read(page) or BackfillPage(start=datetime_to_page(start))
        window_start = datetime.fromtimestamp(at.start, tz=UTC)
        if window_start >= cutoff:
            return
        adopt = None
        if at.job is not None and at.end is not None:
            job_end = datetime.fromtimestamp(at.end, tz=UTC)
            if window_start < job_end <= cutoff:
                adopt = (at.job, job_end)
        if progress.refused is not None:
            yield await self._wait_for_restart(self._page(window_start, progress))
            return
        output = BackfillOutput(page=lambda job: self._page(window_start, progress, job))
        reading = self._read(
            log=log,
            stream=stream,
            start=window_start,
            limit=cutoff,
            priority=Priority.BACKFILL,
            remember_from=self._remember_from(cutoff - self.lag),
            adopt=adopt,
        )
        try:
            async for item in reading:
                for out in output.emit(item):
                    yield out
        except ExportStopped:
            yield self._page(window_start, progress)
            return
        except ExportRefused as refused:
            self._refuse(log, refused)
            yield await self._wait_for_restart(self._page(window_start, progress))
            return
        end = output.end
        assert end is not None
        if end >= cutoff:
            progress.saw(progress.backfill_newest or start)
        # The CDK ends a backfill when its last item is a document, and calls again otherwise.
        if end < cutoff or not output.pending:
            yield self._page(end, progress)

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
        if self.plan is not None:
            self.plan.check(log)
        progress = self.progress[stream.data_type]
        if progress.refused is not None:
            return
        now = self.clock()
        idle_max = IDLE_POLL_MAX * time_scale()
        due = next_realtime_poll(
            now,
            quiet_since=progress.quiet_since(),
            last_poll=progress.last_poll,
            interval=self.interval,
            idle_max=idle_max,
            phase=idle_phase(stream.data_type, idle_max),
        )
        end = self._realtime_end(now)
        # The CDK calls again one interval after an empty poll: round to the nearest call.
        if end - cursor < timedelta(seconds=1) or (not progress.behind and now < due - self.interval / 2):
            return
        progress.last_poll = now
        # What real time reads when already `lag` old is settled: the late-data pass skips it.
        old = now - self.lag
        output = RealtimeOutput(
            progress=progress, cursor=cursor, limit=end, settled_before=old if self.lag else None
        )
        reading = self._read(
            log=log,
            stream=stream,
            start=cursor,
            limit=end,
            priority=Priority.REALTIME,
            remember_from=self._remember_from(max(cursor, old)),
        )
        try:
            async for item in reading:
                for out in output.emit(item):
                    yield out
        except ExportStopped:
            return
        except ExportRefused as refused:
            self._refuse(log, refused)

    async def lookback(
        self, stream: ExportedStream, log: Logger, cursor: LogCursor
    ) -> AsyncGenerator[Any, None]:
        assert isinstance(cursor, datetime)
        progress = self.progress[stream.data_type]
        if progress.refused is not None:
            return
        now = self.clock()
        settled = progress.settled
        if settled and settled[0] <= cursor < settled[1]:
            progress.emitted.release(settled[1])
            yield settled[1]
            return
        # Up to a settled stretch ahead, which the next call steps over.
        reach = (
            min(progress.realtime_cursor, settled[0])
            if settled and cursor < settled[0]
            else progress.realtime_cursor
        )
        if not lookback_due(now, cursor, reach, self.lag):
            return
        output = LookbackOutput(progress)
        reading = self._read(
            log=log,
            stream=stream,
            start=cursor,
            limit=min(now - self.lag, reach),
            priority=Priority.LOOKBACK,
            remember_from=None,
            check=True,
        )
        try:
            async for item in reading:
                for out in output.emit(item):
                    yield out
        except ExportStopped:
            return
        except ExportRefused as refused:
            self._refuse(log, refused)

    async def _read(
        self,
        *,
        log: Logger,
        stream: ExportedStream,
        start: datetime,
        limit: datetime,
        priority: Priority,
        remember_from: datetime | None,
        check: bool = False,
        adopt: tuple[int, datetime] | None = None,
    ) -> AsyncGenerator[WindowRead, None]:
        """The documents of one window starting at `start` and ending at most at `limit`, then its
        `WindowEnd`; a `JobAccepted` before each job's documents. Lines of records at or after
        `remember_from` are remembered for the late-data pass; with `check`, lines emitted before
        are skipped. `adopt` is a job of ours already serving [start, its end).
        Lists of documents, not documents, so that each document crosses one async generator, not two."""
        progress = self.progress[stream.data_type]
        while True:
            end = adopt[1] if adopt else min(limit, start + progress.window)
            window = ExportWindow(stream.data_type, start, end)
            early = progress.early.get(priority)
            if early is None or not early.start <= window.start < window.end <= early.end:
                # A window inside the current one is one of its halves after a truncation.
                early = progress.early[priority] = EarlyLines(window.start, window.end)
            count = skipped = 0
            newest: datetime | None = None
            digests = array("Q")
            try:
                adopted, adopt = adopt[0] if adopt else None, None
                async with aclosing(self.jobs.export(log, window, priority, adopt=adopted)) as batches:
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
                            try:
                                doc, _, cursor = stream.record(line, position)
                            except MalformedRecord as err:
                                if not self.skip_malformed:
                                    raise
                                skipped += 1
                                progress.skipped += 1
                                log.warning(
                                    "skipped a malformed record (advanced.skip_malformed_records)",
                                    {"error": str(err), "skipped_by_this_process": progress.skipped},
                                )
                                continue
                            count += 1
                            if newest is None or cursor > newest:
                                newest = cursor
                            remember = remember_from is not None and cursor >= remember_from
                            if check or remember or early.replayed is not None or not batch.settled:
                                digest = line_digest(line)
                                if early.replayed is not None and digest in early.replayed:
                                    continue
                                if check and progress.emitted.emitted(cursor, digest):
                                    continue
                                if not batch.settled:
                                    early.digests.append(digest)
                                if remember:
                                    digests.append(digest)
                            docs.append(doc)
                        yield Documents(docs)
            except ExportTruncated:
                self._shrink(window, progress)
                continue
            if window.end >= early.end:
                del progress.early[priority]
            if remember_from is not None:
                progress.emitted.add(max(window.start, remember_from), window.end, digests)
            self._adapt(window, progress, count)
            if priority is Priority.BACKFILL:
                if newest is not None and (
                    progress.backfill_newest is None or newest > progress.backfill_newest
                ):
                    progress.backfill_newest = newest
            else:
                progress.saw(newest)
            exported = {
                "window": str(window),
                "records": count,
                "next_window_s": progress.window.total_seconds(),
            }
            if skipped:
                exported |= {"skipped_malformed": skipped, "skipped_malformed_total": progress.skipped}
            log.info("exported window", exported)
            yield WindowEnd(window.end)
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
