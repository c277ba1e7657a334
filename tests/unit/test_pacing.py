import asyncio
import logging
from datetime import timedelta
from unittest.mock import MagicMock

import pytest
from estuary_cdk.http import HTTPMixin

from source_iterable_native.budgets import Bucket, Priority, RateLimit
from source_iterable_native.export.jobs import JobSlots
from source_iterable_native.sessions import (
    JITTER_MARGIN_S,
    SAFETY_MARGIN,
    IterableHTTP,
    RollingWindowPacer,
    SerialSession,
)

from .fakes import log, monotonic_clock


def test_rolling_window_allows_a_burst_then_waits_exactly_for_the_window() -> None:
    clock = monotonic_clock()
    pacer = RollingWindowPacer(RateLimit(5, timedelta(minutes=1)), clock)
    assert [pacer.delay for _ in range(5)] == [0, 0, 0, 0, 0]
    assert pacer.delay == pytest.approx(60 * (1 + SAFETY_MARGIN) + JITTER_MARGIN_S)
    clock.now += 30
    # The 7th waits for the 2nd slot to leave the window, not a full minute from now.
    assert pacer.delay == pytest.approx(60 * (1 + SAFETY_MARGIN) + JITTER_MARGIN_S - 30)


def test_one_per_second_spaces_concurrent_reservations() -> None:
    clock = monotonic_clock()
    pacer = RollingWindowPacer(RateLimit(1, timedelta(seconds=1)), clock)
    delays = [pacer.delay for _ in range(4)]
    step = 1 + SAFETY_MARGIN + JITTER_MARGIN_S
    assert delays == pytest.approx([0, step, 2 * step, 3 * step])


def test_429_backs_off_exponentially_and_success_resets() -> None:
    clock = monotonic_clock()
    pacer = RollingWindowPacer(None, clock)
    assert pacer.delay == 0
    pacer.update(log, 0, failed=True)
    assert pacer.delay == pytest.approx(2)
    pacer.update(log, 0, failed=True)
    assert pacer.delay == pytest.approx(4)
    clock.now += 10
    pacer.update(log, 0, failed=False)
    assert pacer.delay == 0
    pacer.update(log, 0, failed=True)
    assert pacer.delay == pytest.approx(2)
    assert (pacer.failed, pacer.total) == (3, 4)


@pytest.mark.asyncio
async def test_requests_that_leave_late_still_leave_a_window_apart() -> None:
    clock = monotonic_clock()
    pacer = RollingWindowPacer(RateLimit(1, timedelta(seconds=1)), clock)
    step = 1 + SAFETY_MARGIN + JITTER_MARGIN_S
    slots = [pacer.delay for _ in range(3)]
    assert slots == pytest.approx([0, step, 2 * step])
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.now += seconds

    # The event loop stalled: all three reserved slots have passed when the requests are sent.
    clock.now += 3 * step
    for _ in range(3):
        await pacer.depart(sleep)
    assert waits == pytest.approx([step, step])


def test_server_errors_back_off_by_attempt() -> None:
    clock = monotonic_clock()
    pacer = RollingWindowPacer(None, clock)
    assert pacer.server_error(log, 503, attempt=1) is True
    assert pacer.delay == pytest.approx(2)
    assert pacer.server_error(log, 500, attempt=3) is True
    assert pacer.delay == pytest.approx(8)
    assert pacer.server_error(log, 502, attempt=20) is True
    assert pacer.delay == pytest.approx(120)  # capped at two minutes


@pytest.mark.asyncio
async def test_job_slots_wake_waiters_by_priority() -> None:
    slots = JobSlots(1)
    order: list[str] = []
    release = asyncio.Event()

    async def job(name: str, priority: Priority) -> None:
        async with slots.hold(priority):
            order.append(name)
            if name == "first":
                await release.wait()

    first = asyncio.create_task(job("first", Priority.BACKFILL))
    await asyncio.sleep(0)
    waiters = [
        asyncio.create_task(job("backfill", Priority.BACKFILL)),
        asyncio.create_task(job("lookback", Priority.LOOKBACK)),
        asyncio.create_task(job("realtime", Priority.REALTIME)),
    ]
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, *waiters)
    assert order == ["first", "realtime", "lookback", "backfill"]
    assert slots.free == 1


@pytest.mark.asyncio
async def test_cancelled_waiter_does_not_leak_a_slot() -> None:
    slots = JobSlots(1)
    hold = asyncio.Event()

    async def holder() -> None:
        async with slots.hold(Priority.REALTIME):
            await hold.wait()

    h = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.sleep(0)
    hold.set()
    await h
    assert slots.free == 1 and not slots.waiters


def test_a_slot_counts_from_the_response_when_answered() -> None:
    clock = monotonic_clock()
    pacer = RollingWindowPacer(RateLimit(1, timedelta(seconds=1)), clock)
    step = 1 + SAFETY_MARGIN + JITTER_MARGIN_S
    assert pacer.delay == 0
    clock.now += 5  # held up in our event loop, then answered
    pacer.answered()
    assert pacer.delay == pytest.approx(step)


@pytest.mark.asyncio
async def test_organisation_budget_sends_one_request_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    in_flight: list[str] = []
    clock = monotonic_clock()

    async def request(self: HTTPMixin, log: logging.Logger, url: str, **kwargs: object) -> bytes:
        self.rate_limiter.delay  # the CDK reserves a slot before each attempt
        in_flight.append(url)
        await asyncio.sleep(0.01)
        clock.now += 1
        assert in_flight == [url], "two export requests were in flight at once"
        in_flight.remove(url)
        return b"{}"

    monkeypatch.setattr(HTTPMixin, "request", request)
    http = IterableHTTP(MagicMock(), MagicMock(), clock)
    assert isinstance(http[Bucket.EXPORT], SerialSession)
    assert not isinstance(http[Bucket.DEFAULT], SerialSession)
    await asyncio.gather(*(http[Bucket.EXPORT].request(log, f"u{i}") for i in range(3)))
