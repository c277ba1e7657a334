"""Iterable's asynchronous export jobs: start, wait, list files, stream their lines.

One `ExportJobs` instance serves every stream of the connector, so the organisation-wide limits
hold across all of them: export/start and export/{jobId}/files are each paced by the connector's
share of their budget, and at most its share of the organisation's processing slots is used.
"""

import asyncio
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from logging import Logger
from typing import AsyncGenerator, AsyncIterator

import aiohttp
from estuary_cdk.http import HTTPError
from pydantic import BaseModel

from ..rate_limits import (
    Bucket,
    IterableHTTP,
    Priority,
    PriorityGate,
    export_jobs_processing,
    sleep_unless,
)

MAX_JOB_ATTEMPTS = 4
MAX_FILE_ATTEMPTS = 5
POLL_FIRST_DELAY_S = 2.0
POLL_MAX_DELAY_S = 30.0


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
    """The connector is stopping; the job was abandoned before any of its records were read."""


@dataclass
class ExportLines:
    """Consecutive lines of one export file, as one network read delivered them; blank lines included."""

    window: ExportWindow
    file: str
    first: int
    """Line number of `lines[0]`, counting from 1."""
    lines: list[bytes]


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
        self.jobs_started = 0

    async def export(
        self, log: Logger, window: ExportWindow, priority: Priority
    ) -> AsyncGenerator[ExportLines, None]:
        """Every line of one export job over `window`, in batches, once the job has completed.

        Raises ExportTruncated before yielding anything when Iterable truncated the output,
        ExportStopped when the connector stops while the job runs, and ExportFailed when the job
        keeps failing.
        """
        for attempt in range(1, MAX_JOB_ATTEMPTS + 1):
            async with self.slots.hold(priority):
                job_id = await self._start(log, window, priority)
                files = await self._wait(log, job_id, window, priority)
            if files is None:
                log.warning(
                    "export job failed; resubmitting",
                    {"job_id": job_id, "window": str(window), "attempt": attempt},
                )
                continue
            if files.exportTruncated:
                raise ExportTruncated(str(window))
            async for lines in self._stream_job(log, job_id, window, files):
                yield lines
            return
        raise ExportFailed(
            f"Iterable's export job for {window} failed {MAX_JOB_ATTEMPTS} times in a row. "
            "Iterable may be having trouble; the capture will retry this window when it restarts."
        )

    async def _start(self, log: Logger, window: ExportWindow, priority: Priority) -> int:
        body = await self.http.organisation(Bucket.EXPORT).request(
            log,
            f"{self.origin}/api/export/start",
            method="POST",
            json={
                "dataTypeName": window.data_type,
                "outputFormat": "application/x-json-stream",
                "startDateTime": _iso(window.start),
                "endDateTime": _iso(window.end),
            },
            priority=priority,
        )
        self.jobs_started += 1
        job_id = _StartResponse.model_validate_json(body).jobId
        log.debug("started export job", {"job_id": job_id, "window": str(window)})
        return job_id

    async def _files(
        self, log: Logger, job_id: int, priority: Priority, start_after: str | None = None
    ) -> _FilesResponse:
        params = {"startAfter": start_after} if start_after else None
        body = await self.http.organisation(Bucket.EXPORT_FILE_LIST).request(
            log, f"{self.origin}/api/export/{job_id}/files", params=params, priority=priority
        )
        return _FilesResponse.model_validate_json(body)

    async def _wait(
        self, log: Logger, job_id: int, window: ExportWindow, priority: Priority
    ) -> _FilesResponse | None:
        """Poll until the job ends: its first files page when completed, None when it failed."""
        delay = POLL_FIRST_DELAY_S
        while True:
            if await sleep_unless(self.stopping, delay):
                await self._cancel(log, job_id)
                raise ExportStopped(str(window))
            response = await self._files(log, job_id, priority)
            match JobState.parse(response.jobState):
                case JobState.COMPLETED:
                    return response
                case JobState.FAILED | JobState.CANCELLED | JobState.CANCELLING:
                    return None
                case JobState.ENQUEUED | JobState.QUEUED | JobState.RUNNING:
                    delay = min(delay * 2, POLL_MAX_DELAY_S)

    async def _cancel(self, log: Logger, job_id: int) -> None:
        """Best effort: free the organisation's processing slot held by a job we started."""
        try:
            await self.http.organisation(Bucket.EXPORT).request(
                log, f"{self.origin}/api/export/{job_id}", method="DELETE", priority=Priority.DOWNLOAD
            )
        except Exception as err:
            log.info("could not cancel our export job", {"job_id": job_id, "error": str(err)})

    async def _stream_job(
        self, log: Logger, job_id: int, window: ExportWindow, first_page: _FilesResponse
    ) -> AsyncGenerator[ExportLines, None]:
        page = first_page.files
        while page:
            for file in page:
                async for lines in self._stream_file(log, job_id, window, file):
                    yield lines
            # The page size is undocumented, so only an empty page proves the list is complete.
            page = (await self._files(log, job_id, Priority.DOWNLOAD, start_after=page[-1].file)).files

    async def _stream_file(
        self, log: Logger, job_id: int, window: ExportWindow, file: _ExportFile
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
                        yield ExportLines(window, file.file, first + skip, lines[skip:] if skip else lines)
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
        start_after = None
        while True:
            page = (await self._files(log, job_id, Priority.DOWNLOAD, start_after=start_after)).files
            for file in page:
                if file.file == file_name:
                    return file.url
            if not page:
                raise ExportFailed(f"Export file {file_name} of job {job_id} is no longer listed.")
            start_after = page[-1].file


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
