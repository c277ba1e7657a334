"""Iterable's asynchronous export jobs: start (or adopt), poll, and stream files as they appear.

One `ExportJobs` instance serves every stream of the connector, so the organisation-wide limits
hold across all of them: export/start and export/{jobId}/files are each paced by the connector's
share of their budget, and at most its share of the organisation's processing slots is used.
"""

import asyncio
import time
from collections import deque
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from logging import Logger
from typing import Any, AsyncGenerator, AsyncIterator

import aiohttp
import orjson
from estuary_cdk.http import HTTPError
from pydantic import BaseModel

from ..budgets import Bucket, Priority, PriorityGate, export_jobs_processing, sleep_unless, time_scale
from ..sessions import IterableHTTP

MAX_JOB_ATTEMPTS = 4
MAX_START_ATTEMPTS = 4
"""Lost export/start answers, each next to other new jobs of the type, before the window fails."""
MAX_FILE_ATTEMPTS = 5
READ_AHEAD_CHUNKS = 32
"""Network reads of a job's files buffered ahead of parsing (a few MB at most), so that Iterable's
storage sends the next file while the connector parses the current one."""
POLL_FIRST_DELAY_S = 2.0
POLL_MAX_DELAY_S = 30.0
JOB_DEADLINE = timedelta(hours=12)
"""A job of ours not completed this long after it was started or adopted is cancelled, and its
window fails: far beyond what a window of about 250,000 records takes, queueing included."""
OURS_REMEMBERED = 1000
"""Far more jobs than we can start (1 per second) between the two listings around a lost start."""
ADOPT_CLOCK_SKEW = timedelta(minutes=5)
"""Tolerance between our clock and Iterable's when dating the job of a lost export/start."""


class JobState(StrEnum):
    ENQUEUED = "enqueued"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"

    @classmethod
    def parse(cls, value: str) -> "JobState":
        # Wire values are lowercase, Iterable's spec capitalises them: accept both.
        try:
            return cls(value.lower())
        except ValueError:
            raise RuntimeError(f"Iterable reported an unknown export job state {value!r}") from None


@dataclass(frozen=True)
class ExportWindow:
    data_type: str
    start: datetime
    end: datetime

    def __str__(self) -> str:
        return f"{self.data_type} [{_iso(self.start)}, {_iso(self.end)})"


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


class ExportFailed(RuntimeError):
    pass


class ExportTruncated(Exception):
    """Iterable completed the job but cut its output short: the window must be split."""


class ExportStopped(Exception):
    """The connector is stopping; the job was abandoned, perhaps after some of its files were read."""


class ExportRefused(Exception):
    """Iterable answered export/start with 400 for this data type."""

    def __init__(self, data_type: str, message: str):
        super().__init__(f"Iterable refuses to export data type {data_type}: {message}")
        self.data_type = data_type
        self.message = message


class _JobFailed(Exception):
    """Iterable reports the job failed or cancelled: it is resubmitted."""


class _AnswerLost(Exception):
    """export/start was sent but its answer never arrived: a job may exist."""


class _OneAttempt(dict[str, Any]):
    """Request headers that refuse a second attempt. The CDK replays a request whose connection
    dropped (and one answered 429); a replayed export/start could start a second job, so a replay
    is reported as a lost answer instead, and the job listing tells whether a job exists."""

    def __setitem__(self, key: str, value: Any) -> None:
        if key in self:
            raise _AnswerLost("the request would have been sent again")
        super().__setitem__(key, value)


_ENDED_BADLY = (JobState.FAILED, JobState.CANCELLED, JobState.CANCELLING)


@dataclass
class JobAccepted:
    """A job of ours now serves the window: just started, or adopted."""

    job_id: int
    window: ExportWindow


@dataclass
class ExportLines:
    """Consecutive lines of one export file, as one network read delivered them; blank lines included."""

    window: ExportWindow
    file: str
    first: int
    """Line number of `lines[0]`, counting from 1."""
    lines: list[bytes]
    settled: bool = True
    """The job had completed when its file was listed. Lines of a file listed earlier may come
    again from a resubmitted job, or from the smaller windows of a truncated one."""


@dataclass
class LinePosition:
    """Where a line comes from, formatted only when an error names it."""

    window: ExportWindow
    file: str
    number: int

    def __str__(self) -> str:
        return f"export of {self.window}, file {self.file}, line {self.number}"


class _StartResponse(BaseModel, extra="allow"):
    jobId: int


class _ExportFile(BaseModel, extra="allow"):
    file: str
    url: str


class _ListedJob(BaseModel, extra="allow"):
    id: int
    dataTypeName: str = ""
    jobState: str = ""
    scheduledStartTime: str | None = None


class _JobsResponse(BaseModel, extra="allow"):
    jobs: list[_ListedJob] = []


class _FilesResponse(BaseModel, extra="allow"):
    jobId: int
    jobState: str
    exportTruncated: bool = False
    files: list[_ExportFile] = []


class JobSlots(PriorityGate):
    """The connector's export processing slots, granted in priority order with the backfill's
    guaranteed share."""


class ExportJobs:
    def __init__(self, http: IterableHTTP, origin: str):
        self.http = http
        self.origin = origin
        self.slots = JobSlots(export_jobs_processing(http.export_share))
        self.stopping: asyncio.Event | None = None
        self.ours: deque[int] = deque(maxlen=OURS_REMEMBERED)
        """Ids of the latest jobs this process started or adopted: never taken for a lost start's job."""

    async def export(
        self, log: Logger, window: ExportWindow, priority: Priority, adopt: int | None = None
    ) -> AsyncGenerator[JobAccepted | ExportLines, None]:
        """A `JobAccepted` for each job that serves `window`, then the lines of its files, as
        Iterable lists them while the job runs.

        `adopt` is a job of ours started for exactly this window by an earlier process: it is read
        if Iterable still has it, instead of starting another. Raises ExportRefused when Iterable
        refuses the data type, ExportTruncated once a truncated job completed, ExportStopped when
        the connector stops while the job runs, and ExportFailed when the job keeps failing or
        outlives JOB_DEADLINE. Lines of files listed before the job completed are flagged
        `settled=False`: a job that fails afterwards is resubmitted and may list them again.
        """
        attempt = 0
        while attempt < MAX_JOB_ATTEMPTS:
            async with AsyncExitStack() as slot:
                await slot.enter_async_context(self.slots.hold(priority))
                first = (
                    await self._adopt(log, job_id=adopt, window=window, priority=priority)
                    if adopt is not None
                    else None
                )
                if first is None:
                    attempt += 1
                    job_id = await self._start(log, window, priority)
                else:
                    job_id = first.jobId
                adopt = None
                yield JobAccepted(job_id, window)
                reading = self._read_job(
                    log, job_id=job_id, window=window, priority=priority, slot=slot, first=first
                )
                try:
                    async for lines in reading:
                        yield lines
                    return
                except _JobFailed:
                    log.warning(
                        "export job failed; resubmitting",
                        {"job_id": job_id, "window": str(window), "attempt": attempt},
                    )
        raise ExportFailed(
            f"Iterable's export job for {window} failed {MAX_JOB_ATTEMPTS} times in a row. "
            "Iterable may be having trouble; the capture will retry this window when it restarts."
        )

    async def _request(
        self, log: Logger, url: str, *, bucket: Bucket, priority: Priority, **kwargs: Any
    ) -> bytes:
        """Every request of the organisation's export budgets (start, files pages) passes here, with
        the priority of the subtask that needs it."""
        return await self.http.organisation(bucket).request(log, url, priority=priority, **kwargs)

    async def _adopt(
        self, log: Logger, *, job_id: int, window: ExportWindow, priority: Priority
    ) -> _FilesResponse | None:
        """The first files page of our job `job_id` if it still serves, None if it is gone."""
        try:
            response = await self._files(log, job_id, priority)
        except HTTPError as err:
            if err.code not in (400, 404):
                raise
            response = None
        if response is None or JobState.parse(response.jobState) in _ENDED_BADLY:
            log.info(
                "our export job of an earlier run is gone; starting anew",
                {"job_id": job_id, "window": str(window)},
            )
            return None
        self.ours.append(job_id)
        log.info("adopted our export job of an earlier run", {"job_id": job_id, "window": str(window)})
        return response

    async def _start(self, log: Logger, window: ExportWindow, priority: Priority) -> int:
        """Start a job for `window`. When the answer to export/start is lost (a 5xx, a dropped
        connection), Iterable may have created the job anyway: the one new job of the data type
        that appeared meanwhile is adopted; if there is none, or more than one, a job is started
        anew (the other tools of the project start jobs too, and theirs are never taken)."""
        unmatched = 0
        while True:
            before = {job.id for job in await self._list_jobs(log)}
            sent = time.time()
            try:
                job_id = await self._post_start(log, window, priority)
            except _AnswerLost as lost:
                candidates = await self._lost_job_candidates(log, window=window, before=before, sent=sent)
                if len(candidates) != 1:
                    # None: no job was created, so sending again is safe (a 429 ends here too).
                    unmatched += len(candidates) > 1
                    log.info(
                        "the answer to export/start was lost and no single new job matches it; starting anew",
                        {"window": str(window), "error": str(lost), "new_jobs_of_the_type": candidates},
                    )
                    if unmatched >= MAX_START_ATTEMPTS:
                        raise ExportFailed(
                            f"Iterable's answers to export/start for {window} were lost {unmatched} times "
                            "while other jobs of the data type were starting; the capture will retry this "
                            "window when it restarts."
                        ) from lost
                    continue
                job_id = candidates[0]
                log.info(
                    "adopted the export job whose start answer was lost",
                    {"job_id": job_id, "window": str(window)},
                )
            self.ours.append(job_id)
            log.debug("started export job", {"job_id": job_id, "window": str(window)})
            return job_id

    async def _post_start(self, log: Logger, window: ExportWindow, priority: Priority) -> int:
        session = self.http.organisation(Bucket.EXPORT)

        def lost_on_server_error(status: int, headers: Any, body: bytes, attempt: int) -> bool:
            session.rate_limiter.server_error(log, status, attempt)
            return False

        try:
            body = await self._request(
                log,
                f"{self.origin}/api/export/start",
                bucket=Bucket.EXPORT,
                priority=priority,
                method="POST",
                json={
                    "dataTypeName": window.data_type,
                    "outputFormat": "application/x-json-stream",
                    "startDateTime": _iso(window.start),
                    "endDateTime": _iso(window.end),
                },
                headers=_OneAttempt(),
                should_retry=lost_on_server_error,
            )
        except HTTPError as err:
            if err.code >= 500:
                raise _AnswerLost(f"HTTP {err.code}") from err
            if err.code == 400:
                raise ExportRefused(window.data_type, _iterable_message(err)) from err
            raise
        except (aiohttp.ClientError, asyncio.TimeoutError) as err:
            raise _AnswerLost(f"{type(err).__name__}: {err}") from err
        return _StartResponse.model_validate_json(body).jobId

    async def _list_jobs(self, log: Logger) -> list[_ListedJob]:
        # Outside the organisation's export budget: Iterable states no limit for the listing.
        body = await self.http[Bucket.DEFAULT].request(log, f"{self.origin}/api/export/jobs")
        return _JobsResponse.model_validate_json(body).jobs

    async def _lost_job_candidates(
        self, log: Logger, *, window: ExportWindow, before: set[int], sent: float
    ) -> list[int]:
        """Jobs of `window`'s data type that appeared since `before` was listed, are not known to
        be ours already, and were scheduled around when the lost start was sent."""
        answered = time.time()
        skew = ADOPT_CLOCK_SKEW.total_seconds()
        candidates = [
            job.id
            for job in await self._list_jobs(log)
            if job.id not in before
            and job.id not in self.ours
            and job.dataTypeName.lower() == window.data_type.lower()
            and job.jobState.lower() not in _ENDED_BADLY
            and _scheduled_within(job.scheduledStartTime, sent - skew, answered + skew)
        ]
        return candidates

    async def _files(
        self, log: Logger, job_id: int, priority: Priority, start_after: str | None = None
    ) -> _FilesResponse:
        params = {"startAfter": start_after} if start_after else None
        body = await self._request(
            log,
            f"{self.origin}/api/export/{job_id}/files",
            bucket=Bucket.EXPORT_FILE_LIST,
            priority=priority,
            params=params,
        )
        return _FilesResponse.model_validate_json(body)

    async def _read_job(
        self,
        log: Logger,
        *,
        job_id: int,
        window: ExportWindow,
        priority: Priority,
        slot: AsyncExitStack,
        first: _FilesResponse | None,
    ) -> AsyncGenerator[ExportLines, None]:
        """Every line of the job's files, each file read as soon as Iterable lists it. The files
        page after the current one is requested while the current one's files download. The
        processing slot is given back once the job has completed."""
        deadline = time.monotonic() + JOB_DEADLINE.total_seconds() * time_scale()
        delay = POLL_FIRST_DELAY_S
        last: str | None = None
        settled = False
        ahead: asyncio.Task[_FilesResponse] | None = None
        try:
            while True:
                if first is not None:
                    response, first = first, None
                elif ahead is not None:
                    response, ahead = await ahead, None
                else:
                    if await sleep_unless(self.stopping, delay):
                        if not settled:
                            await self._cancel(log, job_id)
                        raise ExportStopped(str(window))
                    response = await self._files(log, job_id, priority, start_after=last)
                match JobState.parse(response.jobState):
                    case JobState.FAILED | JobState.CANCELLED | JobState.CANCELLING:
                        raise _JobFailed()
                    case JobState.COMPLETED if not settled:
                        settled = True
                        await slot.aclose()
                        if response.exportTruncated:
                            raise ExportTruncated(str(window))
                if not settled and time.monotonic() >= deadline:
                    await self._cancel(log, job_id)
                    raise ExportFailed(
                        f"Iterable's export job {job_id} for {window} did not complete within "
                        f"{JOB_DEADLINE}; it was cancelled and the window is exported again when the "
                        "capture restarts."
                    )
                if response.files:
                    last = response.files[-1].file
                    # The page size is undocumented, so only an empty page proves the list complete.
                    # A download in progress: its next page goes ahead of other types' starts and polls.
                    ahead = asyncio.create_task(self._files(log, job_id, Priority.DOWNLOAD, start_after=last))
                    reading = self._read_ahead(
                        log, job_id=job_id, window=window, files=response.files, settled=settled
                    )
                    async for lines in reading:
                        yield lines
                    delay = POLL_FIRST_DELAY_S
                elif settled:
                    return
                else:
                    delay = min(delay * 2, POLL_MAX_DELAY_S)
        finally:
            if ahead is not None:
                ahead.cancel()
                if ahead.done() and not ahead.cancelled():
                    ahead.exception()  # retrieved: the error that matters is already propagating

    async def _cancel(self, log: Logger, job_id: int) -> None:
        """Best effort: free the organisation's processing slot held by a job we started."""
        try:
            await self.http.organisation(Bucket.EXPORT).request(
                log, f"{self.origin}/api/export/{job_id}", method="DELETE", priority=Priority.DOWNLOAD
            )
        except Exception as err:
            log.info("could not cancel our export job", {"job_id": job_id, "error": str(err)})

    async def _read_ahead(
        self,
        log: Logger,
        *,
        job_id: int,
        window: ExportWindow,
        files: list[_ExportFile],
        settled: bool,
    ) -> AsyncGenerator[ExportLines, None]:
        """The lines of `files`, one after the other, downloaded up to READ_AHEAD_CHUNKS network
        reads ahead of the caller: the next file transfers while the current one is parsed."""
        ahead: asyncio.Queue[ExportLines | BaseException | None] = asyncio.Queue(maxsize=READ_AHEAD_CHUNKS)

        async def download() -> None:
            try:
                for file in files:
                    async for lines in self._stream_file(
                        log, job_id=job_id, window=window, file=file, settled=settled
                    ):
                        await ahead.put(lines)
            except Exception as err:
                await ahead.put(err)
            else:
                await ahead.put(None)

        downloading = asyncio.create_task(download())
        try:
            while (item := await ahead.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            downloading.cancel()
            await asyncio.gather(downloading, return_exceptions=True)

    async def _stream_file(
        self,
        log: Logger,
        *,
        job_id: int,
        window: ExportWindow,
        file: _ExportFile,
        settled: bool,
    ) -> AsyncGenerator[ExportLines, None]:
        emitted = 0
        url = file.url
        for attempt in range(1, MAX_FILE_ATTEMPTS + 1):
            try:
                _, body = await self.http[Bucket.FILES].request_stream(log, url, with_token=False)
                async for first, lines in _split_lines(body()):
                    # After a broken transfer the file is read again from its start.
                    skip = max(0, emitted - first + 1)
                    if skip < len(lines):
                        yield ExportLines(
                            window=window,
                            file=file.file,
                            first=first + skip,
                            lines=lines[skip:] if skip else lines,
                            settled=settled,
                        )
                    emitted = max(emitted, first + len(lines) - 1)
                return
            except HTTPError as err:
                if err.code != 403 or "expired" not in err.message.lower():
                    raise
                log.info("export file URL expired; refreshing it", {"file": file.file, "job_id": job_id})
                url = await self._fresh_url(log, job_id, file.file)
            except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, asyncio.TimeoutError) as err:
                log.warning(
                    "export file transfer broke; resuming it",
                    {"file": file.file, "line": emitted, "attempt": attempt, "error": str(err)},
                )
        raise ExportFailed(
            f"Could not read {file.file} of the export of {window} after {MAX_FILE_ATTEMPTS} attempts."
        )

    async def _fresh_url(self, log: Logger, job_id: int, file_name: str) -> str:
        """The current URL of an expired file: asked for at a download's priority."""
        start_after = None
        while True:
            page = (await self._files(log, job_id, Priority.DOWNLOAD, start_after=start_after)).files
            for file in page:
                if file.file == file_name:
                    return file.url
            if not page:
                raise ExportFailed(f"Export file {file_name} of job {job_id} is no longer listed.")
            start_after = page[-1].file


def _iterable_message(err: HTTPError) -> str:
    """Iterable's own `msg`, from the body the CDK put at the end of the error's message."""
    _, _, body = err.message.partition("Response:\n")
    try:
        message = orjson.loads(body).get("msg")
    except (orjson.JSONDecodeError, AttributeError):
        message = None
    return str(message) if message else (body.strip() or err.message)


def _scheduled_within(scheduled: str | None, earliest: float, latest: float) -> bool:
    """Whether a listed job's scheduledStartTime lies in [earliest, latest]; one Iterable did not
    date (or dated unreadably) is not excluded."""
    if not scheduled:
        return True
    try:
        at = datetime.fromisoformat(scheduled).timestamp()
    except ValueError:
        return True
    return earliest <= at <= latest


async def _split_lines(chunks: AsyncIterator[bytes]) -> AsyncGenerator[tuple[int, list[bytes]], None]:
    """(number of the first line, lines) for each chunk of a body; a final unterminated line too.

    The CDK's `request_lines` copies the rest of its buffer once per line, which is quadratic in
    the chunk size; splitting a whole chunk at once keeps a large file linear."""
    rest = b""
    number = 1
    async for chunk in chunks:
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        if lines:
            yield number, lines
            number += len(lines)
    if rest:
        yield number, [rest]
