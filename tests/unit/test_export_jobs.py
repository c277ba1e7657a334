"""ExportJobs and ExportCapture against scripted answers: files paged ahead, records of a replaced
job emitted once, a persisted job adopted."""

import asyncio
from datetime import datetime, timedelta
from typing import Any, AsyncIterator

import orjson
import pytest
from estuary_cdk.capture.common import is_cursor_dict

from source_iterable_native.export.capture import BackfillPage, ExportCapture, datetime_to_page
from source_iterable_native.export.jobs import (
    ExportJobs,
    ExportLines,
    ExportTruncated,
    ExportWindow,
    JobAccepted,
    Priority,
)
from source_iterable_native.budgets import TIME_SCALE_ENV, Bucket
from source_iterable_native.export.streams import ExportedStream

from .fakes import T0, event_line, export_capture, log

STREAM = ExportedStream("emailOpen", "createdAt", None)


def line(i: int) -> bytes:
    return event_line(T0 + timedelta(seconds=i), f"{i}@x.test")


class ScriptedExportAPI:
    """export/{jobId}/files answers from `pages` (keyed by startAfter); each file download waits
    until the files page after the one listing it has been asked for."""

    def __init__(self, pages: dict[str | None, list[str]]) -> None:
        self.pages = pages
        self.asked: dict[str | None, asyncio.Event] = {after: asyncio.Event() for after in pages}
        self.page_of = {name: names[-1] for names in pages.values() for name in names}
        self.downloaded: list[str] = []

    export_share = 1.0

    def __getitem__(self, bucket: Bucket) -> "ScriptedExportAPI":
        return self

    def organisation(self, bucket: Bucket) -> "ScriptedExportAPI":
        return self

    async def request(self, log: Any, url: str, params: dict[str, str] | None = None, **kwargs: Any) -> bytes:
        after = (params or {}).get("startAfter")
        self.asked[after].set()
        files = [{"file": name, "url": f"https://files.test/{name}"} for name in self.pages[after]]
        return orjson.dumps({"jobId": 7, "jobState": "completed", "files": files})

    async def request_stream(self, log: Any, url: str, with_token: bool = True) -> tuple[Any, Any]:
        name = url.rsplit("/", 1)[1]
        await self.asked[self.page_of[name]].wait()
        self.downloaded.append(name)

        async def body() -> AsyncIterator[bytes]:
            yield line(len(self.downloaded)) + b"\n"

        return {}, body


@pytest.mark.asyncio
async def test_the_next_files_page_is_asked_for_while_the_current_pages_files_download(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TIME_SCALE_ENV, "0.001")
    api = ScriptedExportAPI({None: ["f1", "f2"], "f2": ["f3"], "f3": []})
    jobs = ExportJobs(api, "https://api.test")  # type: ignore[arg-type]
    window = ExportWindow("emailOpen", T0, T0 + timedelta(days=1))

    async def read() -> list[Any]:
        return [item async for item in jobs.export(log, window, Priority.BACKFILL, adopt=7)]

    items = await asyncio.wait_for(read(), timeout=5)
    assert [i.job_id for i in items if isinstance(i, JobAccepted)] == [7]
    assert [i.file for i in items if isinstance(i, ExportLines)] == ["f1", "f2", "f3"]
    assert api.downloaded == ["f1", "f2", "f3"]


class ReplacedJob:
    """A first job that lists two files early and then fails; its replacement lists them again."""

    def __init__(self) -> None:
        self.calls: list[tuple[ExportWindow, int | None]] = []

    async def export(
        self, log: Any, window: ExportWindow, priority: Priority, adopt: int | None = None
    ) -> AsyncIterator[Any]:
        self.calls.append((window, adopt))
        yield JobAccepted(adopt or 1, window)
        yield ExportLines(window=window, file="a", first=1, lines=[line(1), line(2)], settled=False)
        yield JobAccepted(2, window)
        yield ExportLines(window=window, file="a", first=1, lines=[line(2), line(1)], settled=True)
        yield ExportLines(window=window, file="b", first=1, lines=[line(3)], settled=True)


def capture(jobs: Any, cutoff: datetime) -> ExportCapture:
    return export_capture(jobs, "emailOpen", cutoff, window=timedelta(days=2), clock=lambda: cutoff)


@pytest.mark.asyncio
async def test_records_read_before_a_job_failed_are_emitted_once_and_each_job_is_persisted() -> None:
    cutoff = T0 + timedelta(days=1)
    items = [
        item
        async for item in capture(ReplacedJob(), cutoff).backfill(STREAM, T0, log, page=None, cutoff=cutoff)
    ]
    docs = [item["email"] for item in items if not is_cursor_dict(item)]
    assert sorted(docs) == ["1@x.test", "2@x.test", "3@x.test"]
    pages = [item for item in items if is_cursor_dict(item)]
    assert [(p["start"], p["job"]) for p in pages] == [(datetime_to_page(T0), 1), (datetime_to_page(T0), 2)]
    assert pages[0]["end"] == datetime_to_page(cutoff)


@pytest.mark.asyncio
async def test_a_persisted_job_is_adopted_for_exactly_its_window() -> None:
    cutoff = T0 + timedelta(days=1)
    jobs = ReplacedJob()
    end = T0 + timedelta(hours=3)
    page = BackfillPage(
        start=datetime_to_page(T0), window=3600, job=41, end=datetime_to_page(end)
    ).model_dump()
    [item async for item in capture(jobs, cutoff).backfill(STREAM, T0, log, page=page, cutoff=cutoff)]
    assert jobs.calls[0] == (ExportWindow("emailOpen", T0, end), 41)
    assert all(adopt is None for _, adopt in jobs.calls[1:])


class TruncatedAfterFilesWereRead:
    """The first job over the whole window lists a file early, then completes truncated; the jobs
    of its halves list those records again."""

    def __init__(self, records: list[int]) -> None:
        self.records = records
        self.first = True

    async def export(
        self, log: Any, window: ExportWindow, priority: Priority, adopt: int | None = None
    ) -> AsyncIterator[Any]:
        inside = [i for i in self.records if window.start <= T0 + timedelta(seconds=i) < window.end]
        yield JobAccepted(1, window)
        if self.first:
            self.first = False
            yield ExportLines(
                window=window, file="a", first=1, lines=[line(i) for i in inside[:3]], settled=False
            )
            raise ExportTruncated(str(window))
        yield ExportLines(window=window, file="b", first=1, lines=[line(i) for i in inside], settled=True)


@pytest.mark.asyncio
async def test_records_read_before_a_truncated_job_completed_are_emitted_once_across_its_halves() -> None:
    cutoff = T0 + timedelta(days=1)
    hour = 3600
    c = capture(TruncatedAfterFilesWereRead([10, 5 * hour, 14 * hour, 20 * hour]), cutoff)
    docs: list[str] = []
    page: Any = None
    done = False
    while not done:  # as the CDK does: call again until a call ends on a document
        items = [item async for item in c.backfill(STREAM, T0, log, page=page, cutoff=cutoff)]
        done = not items or not is_cursor_dict(items[-1])
        for item in items:
            if is_cursor_dict(item):
                page = {k: v for k, v in item.items() if k != "__flow_cursor__"}
            else:
                docs.append(item["email"])
    assert sorted(docs) == sorted(f"{i}@x.test" for i in (10, 5 * hour, 14 * hour, 20 * hour))
