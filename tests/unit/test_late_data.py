"""The late-data pass, its de-duplication memory, real time at PT0S, persisted windows and
malformed records skipped on request."""

import logging
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
from estuary_cdk.capture.common import is_cursor_dict

from source_iterable_native.export.capture import REALTIME_SETTLE, BackfillPage, ExportCapture, page_window
from source_iterable_native.export.jobs import ExportWindow
from source_iterable_native.export.streams import ExportedStream, MalformedRecord

from .fakes import (
    HOUR,
    INTERVAL,
    T0,
    Clock,
    FakeExports,
    collect,
    docs,
    export_capture,
    log,
    page_to_datetime,
)

USERS = ExportedStream("user", "profileUpdatedAt", "email")


def users_capture(
    jobs: FakeExports, clock: Clock[datetime], lag: timedelta = HOUR, **kwargs: Any
) -> ExportCapture:
    return export_capture(jobs, "user", clock.now, lag=lag, clock=clock, **kwargs)


@pytest.mark.asyncio
async def test_a_second_update_in_the_same_second_visible_late_is_emitted() -> None:
    clock = Clock(T0)
    jobs = FakeExports()
    c = users_capture(jobs, clock)
    updated = T0 + timedelta(minutes=2, seconds=7)
    first = jobs.user(updated, "ann@x.test", plan="free")
    jobs.user(T0 + timedelta(minutes=3), "bob@x.test", plan="free")
    clock.now = T0 + INTERVAL
    realtime = await collect(c.realtime(USERS, log, T0))
    assert [d["plan"] for d in docs(realtime)] == ["free", "free"]

    # Ann changed again within the same second; Iterable shows the new version only later.
    jobs.replace(first, orjson.dumps({**orjson.loads(first), "plan": "pro"}))
    clock.now = T0 + INTERVAL + HOUR
    lookback = await collect(c.lookback(USERS, log, T0 - HOUR))
    assert [(d["email"], d["plan"]) for d in docs(lookback)] == [
        ("ann@x.test", "pro")
    ], "the late second version was dropped, or bob's unchanged record was emitted twice"


@pytest.mark.asyncio
async def test_the_memory_is_released_once_the_late_data_pass_has_passed() -> None:
    clock = Clock(T0)
    jobs = FakeExports()
    c = users_capture(jobs, clock)
    cursor = T0
    for i in range(24):  # two hours of real-time reads, one record each
        jobs.user(cursor + timedelta(seconds=30), f"u{i}@x.test")
        clock.now = cursor + INTERVAL
        cursor = (await collect(c.realtime(USERS, log, cursor)))[-1]
    emitted = c.progress["user"].emitted
    assert len(emitted) == 24
    lookback = await collect(c.lookback(USERS, log, T0))
    assert docs(lookback) == [] and lookback[-1] == T0 + HOUR
    assert len(emitted) == 12, "what the late-data pass has passed is still remembered"


@pytest.mark.asyncio
async def test_without_late_data_pass_real_time_keeps_a_margin_and_remembers_nothing() -> None:
    clock = Clock(T0)
    jobs = FakeExports()
    c = users_capture(jobs, clock, lag=timedelta(0))
    cursor = T0
    for i in range(12):
        jobs.user(cursor + timedelta(seconds=1), f"u{i}@x.test")
        clock.now = cursor + INTERVAL + REALTIME_SETTLE
        items = await collect(c.realtime(USERS, log, cursor))
        assert items[-1] == clock.now - REALTIME_SETTLE, "real time read right up to now without a lookback"
        cursor = items[-1]
    assert all(window.end <= clock.now - REALTIME_SETTLE for window in jobs.windows)
    assert len(c.progress["user"].emitted) == 0, "PT0S remembers what no pass reads again"


@pytest.mark.asyncio
async def test_the_adaptive_window_survives_a_restart_in_the_backfill_page() -> None:
    cutoff = T0 + timedelta(days=2)
    clock = Clock(cutoff)
    jobs = FakeExports()
    for i in range(600):
        jobs.user(T0 + timedelta(minutes=i), f"u{i}@x.test")
    c = users_capture(jobs, clock)
    items = await collect(c.backfill(USERS, T0, log, page=None, cutoff=cutoff))
    page = items[-1]
    assert is_cursor_dict(page) and set(page) >= {"start", "window", "job", "end"}
    learned = c.progress["user"].window
    assert learned != timedelta(hours=12) and page["window"] == learned.total_seconds()

    restarted = users_capture(jobs, clock)
    restarted.track("user", cutoff, {k: v for k, v in page.items() if not k.startswith("__")})
    assert restarted.progress["user"].window == learned


def test_every_form_of_backfill_page_reads() -> None:
    start = int(T0.timestamp())
    assert page_to_datetime(None) is None and page_window(None) is None
    assert page_to_datetime(start) == T0 and page_window(start) is None
    # The runtime's merge patch drops null keys, so a stored page may lack them.
    assert page_to_datetime({"start": start}) == T0
    assert page_window({"start": start, "window": 600, "job": 5, "end": start + 600}) == timedelta(minutes=10)
    assert BackfillPage(start=start).model_dump() == {
        "start": start,
        "window": None,
        "job": None,
        "end": None,
    }


@pytest.mark.asyncio
async def test_malformed_records_fail_unless_skipping_is_turned_on(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock(T0)
    jobs = FakeExports()
    jobs.user(T0 + timedelta(seconds=1), "ann@x.test")
    jobs.lines.append((T0 + timedelta(seconds=2), b'{"profileUpdatedAt": "2026-01-01 00:00:02 +00:00"}'))
    jobs.user(T0 + timedelta(seconds=3), "bob@x.test")
    clock.now = T0 + INTERVAL
    with pytest.raises(MalformedRecord, match=r"file f, line 2: record has no email"):
        await collect(users_capture(jobs, clock).realtime(USERS, log, T0))

    c = users_capture(jobs, clock, skip_malformed=True)
    with caplog.at_level(logging.WARNING):
        items = await collect(c.realtime(USERS, log, T0))
    assert [d["email"] for d in docs(items)] == ["ann@x.test", "bob@x.test"] and items[-1] == clock.now
    assert c.progress["user"].skipped == 1
    assert [r.args for r in caplog.records if r.levelno == logging.WARNING] == [
        {
            "error": f"export of {jobs.windows[-1]}, file f, line 2: record has no email, the collection key",
            "skipped_by_this_process": 1,
        }
    ]


def test_the_memory_costs_at_most_32_bytes_a_record() -> None:
    from benchmarks import dedupe

    m = dedupe.memory(per_day=200_000)
    assert m.bytes_per_record <= 32 < m.cdk_cache_bytes_per_record


@pytest.mark.asyncio
async def test_a_restart_re_emits_at_most_what_the_late_data_pass_had_not_passed() -> None:
    from benchmarks import dedupe

    r = await dedupe.restart(per_day=20_000)
    # The late-data pass trails real time by one lag plus at most one lag-sized step.
    assert all(r.records_per_lag * 0.9 <= d <= 2 * r.records_per_lag for d in r.duplicates), r
    assert r.peak_remembered <= 2 * r.records_per_lag + 100


@pytest.mark.asyncio
async def test_a_catch_up_remembers_nothing_and_the_late_data_pass_steps_over_it() -> None:
    clock = Clock(T0 + timedelta(hours=20))
    jobs = FakeExports()
    for i in range(20 * 12):  # a record every 5 minutes through 20 hours of downtime
        jobs.user(T0 + i * INTERVAL, f"u{i}@x.test")
    c = export_capture(jobs, "user", T0, window=timedelta(hours=6), clock=clock)
    cursor, emitted = T0, 0
    while items := await collect(c.realtime(USERS, log, cursor)):
        cursor, emitted = items[-1], emitted + len(docs(items))
    assert cursor == clock.now and emitted == 20 * 12
    progress = c.progress["user"]
    assert len(progress.emitted) < 12 + 1, "a catch-up of old windows is remembered"

    # The late-data pass reads what real time read before the downtime, then steps over the rest.
    jobs.windows.clear()
    clock.now += HOUR
    lookback = [i async for i in c.lookback(USERS, log, T0 - HOUR)]
    assert lookback == [T0] and jobs.windows == [ExportWindow("user", T0 - HOUR, T0)]
    assert progress.settled is not None
    assert [i async for i in c.lookback(USERS, log, T0)] == [progress.settled[1]] and len(jobs.windows) == 1


def test_an_int_page_opens_as_the_dict_page_it_stands_for() -> None:
    from source_iterable_native.export.resource import _dict_page

    start = int(T0.timestamp())
    assert _dict_page(start) == {"start": start, "window": None, "job": None, "end": None}
    assert _dict_page(None) is None
    page = {"start": start, "window": 60, "job": None, "end": None}
    assert _dict_page(page) is page
