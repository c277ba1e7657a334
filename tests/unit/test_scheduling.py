"""When each pass of an export data type reads, and what it checkpoints."""

from datetime import UTC, datetime, timedelta

import pytest
from estuary_cdk.capture.common import is_cursor_dict

from source_iterable_native.export import capture as capture_module
from source_iterable_native.export.capture import (
    datetime_to_page,
    idle_phase,
    lookback_due,
    next_realtime_poll,
    next_slot,
)
from source_iterable_native.export.streams import ExportedStream

from .fakes import HOUR, INTERVAL, T0, Clock, FakeExports, collect, export_capture, log, page_start


def poll(now: datetime, quiet_since: datetime, last_poll: datetime | None) -> datetime:
    return next_realtime_poll(
        now,
        quiet_since=quiet_since,
        last_poll=last_poll,
        interval=INTERVAL,
        idle_max=HOUR,
        phase=timedelta(minutes=17),
    )


def test_a_busy_type_polls_every_interval() -> None:
    last = T0 + timedelta(minutes=30)
    assert (
        poll(last + timedelta(minutes=1), quiet_since=last - timedelta(minutes=2), last_poll=last)
        == last + INTERVAL
    )


def test_a_quiet_type_waits_half_its_quiet_stretch() -> None:
    last = T0 + timedelta(minutes=40)
    assert poll(last, quiet_since=T0, last_poll=last) == last + timedelta(minutes=20)


def test_a_long_idle_type_polls_hourly_at_its_phase() -> None:
    last = datetime(2026, 1, 2, 9, 50, tzinfo=UTC)
    due = poll(last, quiet_since=T0, last_poll=last)
    assert due == datetime(2026, 1, 2, 10, 17, tzinfo=UTC)
    assert poll(due, quiet_since=T0, last_poll=due) == due + HOUR


def test_after_a_restart_a_recent_cursor_polls_now_and_an_old_one_waits_for_its_phase() -> None:
    now = datetime(2026, 1, 2, 9, 50, tzinfo=UTC)
    assert poll(now, quiet_since=now - timedelta(minutes=20), last_poll=None) == now
    assert poll(now, quiet_since=now - timedelta(hours=3), last_poll=None) == now  # downtime, not idleness
    assert poll(now, quiet_since=now - timedelta(days=3), last_poll=None) == datetime(
        2026, 1, 2, 10, 17, tzinfo=UTC
    )


def test_slots_lie_on_the_phase_grid() -> None:
    assert next_slot(datetime(2026, 1, 2, 10, 17, tzinfo=UTC), HOUR, timedelta(minutes=17)) == datetime(
        2026, 1, 2, 10, 17, tzinfo=UTC
    )
    assert next_slot(datetime(2026, 1, 2, 10, 18, tzinfo=UTC), HOUR, timedelta(minutes=17)) == datetime(
        2026, 1, 2, 11, 17, tzinfo=UTC
    )


def test_idle_phases_are_stable_and_spread() -> None:
    phases = {idle_phase(t, HOUR) for t in ("emailSend", "emailOpen", "smsSend", "purchase", "inAppOpen")}
    assert len(phases) == 5 and all(timedelta(0) <= p < HOUR for p in phases)
    assert idle_phase("emailSend", HOUR) == idle_phase("emailSend", HOUR)


def test_lookback_waits_for_a_whole_step() -> None:
    now = T0 + timedelta(hours=3)
    assert not lookback_due(now, cursor=now - HOUR - timedelta(minutes=30), realtime_cursor=now, lag=HOUR)
    assert lookback_due(now, cursor=now - 2 * HOUR, realtime_cursor=now, lag=HOUR)


def test_lookback_reads_the_trailing_stretch_behind_a_standing_realtime_cursor() -> None:
    now = T0 + timedelta(hours=3)
    realtime = now - HOUR - timedelta(minutes=1)
    assert lookback_due(now, cursor=realtime - timedelta(minutes=3), realtime_cursor=realtime, lag=HOUR)
    assert not lookback_due(now, cursor=realtime, realtime_cursor=realtime, lag=HOUR)


STREAM = ExportedStream("emailOpen", "createdAt", None)


@pytest.mark.asyncio
async def test_a_large_backfill_window_commits_in_parts_at_its_unchanged_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(capture_module, "BACKFILL_DOCS_PER_CHECKPOINT", 2000)
    cutoff = T0 + timedelta(days=1)
    jobs = FakeExports.of_events([T0 + timedelta(seconds=i) for i in range(5000)])
    c = export_capture(jobs, "emailOpen", cutoff, window=timedelta(days=2), clock=Clock(cutoff))
    items = await collect(c.backfill(STREAM, T0, log, page=None, cutoff=cutoff))
    pages = [(n, page_start(item)) for n, item in enumerate(items) if page_start(item) is not None]
    assert pages == [(2000, datetime_to_page(T0)), (4001, datetime_to_page(T0))]
    assert sum(isinstance(item, dict) and not is_cursor_dict(item) for item in items) == 5000
    assert page_start(items[-1]) is None, "the CDK ends a backfill on a document"


@pytest.mark.asyncio
async def test_a_backfill_ending_on_a_part_boundary_still_finishes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capture_module, "BACKFILL_DOCS_PER_CHECKPOINT", 1000)
    cutoff = T0 + timedelta(days=1)
    c = export_capture(
        FakeExports.of_events([T0 + timedelta(seconds=i) for i in range(2000)]),
        "emailOpen",
        cutoff,
        window=timedelta(days=2),
        clock=Clock(cutoff),
    )
    items = await collect(c.backfill(STREAM, T0, log, page=None, cutoff=cutoff))
    assert page_start(items[-1]) == datetime_to_page(cutoff)
    assert await collect(c.backfill(STREAM, T0, log, page=datetime_to_page(cutoff), cutoff=cutoff)) == []


@pytest.mark.asyncio
async def test_an_empty_realtime_read_leaves_the_cursor() -> None:
    clock = Clock(T0 + timedelta(days=3))
    cursor = clock.now - timedelta(minutes=10)
    jobs = FakeExports()
    c = export_capture(jobs, "emailOpen", cursor, window=timedelta(days=2), clock=clock)
    assert await collect(c.realtime(STREAM, log, cursor)) == []
    assert len(jobs.windows) == 1 and c.progress["emailOpen"].realtime_cursor == cursor

    jobs.event(clock.now - timedelta(minutes=1))
    clock.now += INTERVAL
    items = await collect(c.realtime(STREAM, log, cursor))
    assert [type(i) for i in items] == [dict, datetime]
    assert c.progress["emailOpen"].realtime_cursor == items[-1] == clock.now


@pytest.mark.asyncio
async def test_a_type_its_backfill_found_empty_polls_at_its_idle_phase() -> None:
    slot = next_slot(T0 + timedelta(days=30), HOUR, idle_phase("emailOpen", HOUR))
    clock = Clock(slot - timedelta(minutes=20))
    cutoff = clock.now - timedelta(minutes=10)
    jobs = FakeExports()
    c = export_capture(jobs, "emailOpen", cutoff, window=timedelta(days=40), clock=clock)
    c.progress["emailOpen"].last_poll = cutoff
    await collect(c.backfill(STREAM, cutoff - timedelta(days=30), log, page=None, cutoff=cutoff))
    jobs.windows.clear()
    await collect(c.realtime(STREAM, log, cutoff))
    assert jobs.windows == [], "an idle type polled before its slot"
    clock.now = slot
    await collect(c.realtime(STREAM, log, cutoff))
    assert [w.end for w in jobs.windows] == [slot]


@pytest.mark.asyncio
async def test_a_realtime_pass_behind_by_more_than_a_window_reads_on_at_once() -> None:
    clock = Clock(T0 + timedelta(days=3))
    cursor = clock.now - timedelta(hours=20)
    jobs = FakeExports()
    c = export_capture(jobs, "emailOpen", cursor, window=timedelta(hours=8), clock=clock)
    while items := await collect(c.realtime(STREAM, log, cursor)):
        cursor = items[-1]
    assert [w.end - w.start for w in jobs.windows] == [timedelta(hours=8), timedelta(hours=12)]
