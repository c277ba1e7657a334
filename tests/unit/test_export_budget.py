"""The organisation's export budget: two budgets at the connector's share, priorities with a
guaranteed backfill share, restarts, cancelling and Retry-After. Clocks are injected."""

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from unittest.mock import MagicMock

import aiohttp
import pytest
from estuary_cdk.http import HTTPMixin, TokenSource

import estuary_cdk.http as cdk_http
from iterable_simulator import Simulator, SimulatorConfig
from iterable_simulator.faults import Fault, FaultConfig
from source_iterable_native.budgets import Bucket, ExportPlan, Priority, export_jobs_processing
from source_iterable_native.config import Advanced, ApiKey
from source_iterable_native.export.jobs import ExportJobs, JobSlots
from source_iterable_native.sessions import JITTER_MARGIN_S, SAFETY_MARGIN, IterableHTTP, retry_after_seconds

from .fakes import log, monotonic_clock


def window(seconds: float) -> float:
    return seconds * (1 + SAFETY_MARGIN) + JITTER_MARGIN_S


def test_export_start_and_file_list_have_a_budget_each_at_the_connectors_share() -> None:
    clock = monotonic_clock()
    http = IterableHTTP(MagicMock(), MagicMock(), clock, export_share=1.0)
    start, files = http[Bucket.EXPORT].rate_limiter, http[Bucket.EXPORT_FILE_LIST].rate_limiter
    assert start is not files
    clock.now += 10
    assert (start.delay, files.delay) == (0, 0)  # one does not wait for the other
    assert start.delay == pytest.approx(window(1))
    half = IterableHTTP(MagicMock(), MagicMock(), clock, export_share=0.5)
    clock.now += 10
    assert half[Bucket.EXPORT].rate_limiter.delay == 0
    assert half[Bucket.EXPORT].rate_limiter.delay == pytest.approx(window(2))


def test_the_share_sets_the_processing_slots_and_defaults_to_half() -> None:
    assert Advanced().export_budget_share == 0.5
    assert [export_jobs_processing(s) for s in (1.0, 0.5, 0.25, 0.1)] == [4, 2, 1, 1]
    jobs = ExportJobs(IterableHTTP(MagicMock(), MagicMock(), monotonic_clock()), "http://x")
    assert jobs.slots.free == 2


@pytest.mark.asyncio
async def test_at_half_share_any_two_export_requests_leave_a_second_apart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Even if Iterable counted export/start and export/{jobId}/files as one budget."""
    clock = monotonic_clock()
    http = IterableHTTP(MagicMock(), MagicMock(), clock, export_share=0.5)

    async def sleep(seconds: float) -> None:
        clock.now += seconds

    monkeypatch.setattr(asyncio, "sleep", sleep)
    sent: list[float] = []
    for bucket in [Bucket.EXPORT, Bucket.EXPORT_FILE_LIST] * 3:
        await http[bucket]._depart()
        sent.append(clock.now)
    gaps = [b - a for a, b in zip(sent, sent[1:])]
    assert min(gaps) >= 1.0
    assert IterableHTTP(MagicMock(), MagicMock(), clock, export_share=1.0).export_combined is None


@pytest.mark.asyncio
async def test_at_half_share_an_export_request_waits_for_the_answer_of_the_other_budgets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A start held in our event loop or on the network must not reach Iterable right behind a
    files request: one export request at a time across both budgets, counted from its answer."""
    clock = monotonic_clock()
    answer = asyncio.Event()
    sent: list[tuple[str, float]] = []

    async def request(self: HTTPMixin, log: logging.Logger, url: str, **kwargs: object) -> bytes:
        await self._depart()  # type: ignore[attr-defined]
        sent.append((url, clock.now))
        if url == "start":
            await answer.wait()
            clock.now += 5.0  # the answer arrives five seconds after the request left
        return b"{}"

    async def sleep(seconds: float) -> None:
        clock.now += seconds

    yield_to_tasks = asyncio.sleep
    monkeypatch.setattr(HTTPMixin, "request", request)
    monkeypatch.setattr(asyncio, "sleep", sleep)
    http = IterableHTTP(MagicMock(), MagicMock(), clock, export_share=0.5)
    start = asyncio.create_task(http.organisation(Bucket.EXPORT).request(log, "start"))
    await yield_to_tasks(0)
    files = asyncio.create_task(http.organisation(Bucket.EXPORT_FILE_LIST).request(log, "files"))
    for _ in range(5):
        await yield_to_tasks(0)
    assert [url for url, _ in sent] == ["start"], "a files request left while the start was unanswered"
    answered_at = clock.now + 5.0
    answer.set()
    await asyncio.gather(start, files)
    assert sent[1][0] == "files" and sent[1][1] >= answered_at + 1.0


def test_a_new_process_waits_one_interval_before_its_first_export_request() -> None:
    clock = monotonic_clock()
    http = IterableHTTP(MagicMock(), MagicMock(), clock, export_share=1.0)
    assert http[Bucket.EXPORT].rate_limiter.delay == pytest.approx(window(1))
    assert http[Bucket.EXPORT_FILE_LIST].rate_limiter.delay == pytest.approx(window(1))
    assert http[Bucket.DEFAULT].rate_limiter.delay == 0


@pytest.mark.asyncio
async def test_cancelling_spends_the_export_start_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    used: list[tuple[object, str]] = []

    async def request(
        self: HTTPMixin, log: logging.Logger, url: str, method: str = "GET", **kwargs: object
    ) -> bytes:
        used.append((self, method))
        return b"{}"

    monkeypatch.setattr(HTTPMixin, "request", request)
    http = IterableHTTP(MagicMock(), MagicMock(), monotonic_clock())
    await ExportJobs(http, "http://x")._cancel(log, 7)
    assert used == [(http[Bucket.EXPORT], "DELETE")]


@pytest.mark.asyncio
async def test_a_download_in_progress_goes_before_new_starts_and_polls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    order: list[str] = []
    release = asyncio.Event()

    async def request(self: HTTPMixin, log: logging.Logger, url: str, **kwargs: object) -> bytes:
        order.append(url)
        if url == "first":
            await release.wait()
        return b"{}"

    monkeypatch.setattr(HTTPMixin, "request", request)
    session = IterableHTTP(MagicMock(), MagicMock(), monotonic_clock()).organisation(Bucket.EXPORT_FILE_LIST)
    first = asyncio.create_task(session.request(log, "first", priority=Priority.BACKFILL))
    await asyncio.sleep(0)
    waiting = [
        asyncio.create_task(session.request(log, name, priority=priority))
        for name, priority in [
            ("poll", Priority.REALTIME),
            ("lookback", Priority.LOOKBACK),
            ("page", Priority.DOWNLOAD),
        ]
    ]
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, *waiting)
    assert order == ["first", "page", "poll", "lookback"]


@pytest.mark.asyncio
async def test_the_backfill_keeps_a_share_of_slots_while_real_time_keeps_asking() -> None:
    slots = JobSlots(1)
    granted: list[str] = []
    done = asyncio.Event()

    async def job(name: str, priority: Priority) -> None:
        async with slots.hold(priority):
            granted.append(name)
            await asyncio.sleep(0)

    async def realtime_forever() -> None:
        n = 0
        while not done.is_set():
            n += 1
            await job(f"realtime{n}", Priority.REALTIME)

    holder = asyncio.create_task(job("first", Priority.REALTIME))
    streams = [asyncio.create_task(realtime_forever()) for _ in range(3)]
    backfill = asyncio.create_task(job("backfill", Priority.BACKFILL))
    await asyncio.wait_for(backfill, timeout=1)
    done.set()
    await asyncio.gather(holder, *streams)
    assert granted.index("backfill") <= 3


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    now = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("30", now) == 30
    assert retry_after_seconds("Wed, 02 Dec 2026 12:00:45 GMT", now) == 45
    assert retry_after_seconds("Wed, 02 Dec 2026 11:00:00 GMT", now) == 0
    assert retry_after_seconds("soon", now) is None


@pytest.mark.asyncio
@pytest.mark.parametrize("bucket", [Bucket.EXPORT, Bucket.DEFAULT])
async def test_retry_after_is_honoured_on_every_budget(
    monkeypatch: pytest.MonkeyPatch, bucket: Bucket
) -> None:
    """Iterable answers 429 with Retry-After: 30; the retry waits 30 s, not the 2 s back-off."""
    sim = Simulator(SimulatorConfig(faults=FaultConfig(retry_after_s=30)))
    clock = monotonic_clock()
    path = "/api/export/start" if bucket is Bucket.EXPORT else "/api/channels"
    sim.faults.schedule(Fault.RATE_LIMIT_RETRY_AFTER, path)
    await sim.start()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    monkeypatch.setattr(cdk_http.asyncio, "sleep", sleep)
    try:
        async with aiohttp.ClientSession() as inner:
            tokens = TokenSource(
                oauth_spec=None, credentials=ApiKey(access_token=sim.api_key), authorization_header="Api-Key"
            )
            http = IterableHTTP(inner, tokens, clock, export_share=1.0)
            clock.now += 10
            if bucket is Bucket.EXPORT:
                body = {"dataTypeName": "emailSend", "outputFormat": "application/x-json-stream"}
                await http.organisation(bucket).request(
                    log, f"{sim.base_url}{path}", method="POST", json=body
                )
            else:
                await http[bucket].request(log, f"{sim.base_url}{path}")
    finally:
        await sim.stop()
    assert [e["status"] for e in sim.request_log] == [429, 200]
    # Not the 2 s back-off; the CDK's "rate limit errors are elevated" log reads `delay` once
    # more, which reserves one more slot of the budget.
    assert 30 <= max(slept) <= 30 + window(1), slept


def test_the_connector_says_which_interval_it_can_hold() -> None:
    """Every type at PT30S with late data every PT5M cannot fit half of 1 request per second."""
    plan = ExportPlan(0.5)
    for n in range(53):
        plan.add(f"events.t{n}", timedelta(seconds=30), timedelta(minutes=5))
    logger = MagicMock()
    plan.check(logger)
    plan.check(logger)
    assert logger.warning.call_count == 1
    holdable = plan.holdable_interval()
    assert holdable is not None and 53 / holdable.total_seconds() + 53 / 300 == pytest.approx(0.5 * 2 / 3)
    assert "5.6 minutes, not 30.0 seconds" in logger.warning.call_args.args[0], logger.warning.call_args.args[
        0
    ]
    defaults = ExportPlan(0.5)
    for n in range(53):
        defaults.add(f"events.t{n}", timedelta(minutes=5), timedelta(hours=1))
    defaults.check(logger)
    assert logger.warning.call_count == 1
