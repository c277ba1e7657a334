"""The export job lifecycle against the simulator: refused data types, lost start answers, jobs
that never end, adoption after a crash, and files read while their job runs."""

import time
from collections import Counter
from typing import Any

import pytest

from flow_driver import ConnectorDriver
from iterable_simulator.faults import Fault

from .conftest import ROOT, bindings, driver, small_data
from .test_exports import assert_within_export_limits, expected_event_id, export_config


def expected(sim: Any, *event_types: str) -> Counter[str]:
    return Counter(expected_event_id(r, t) for t in event_types for r in sim.visible_records(f"events:{t}"))


def captured(result: Any) -> Counter[str]:
    return Counter(doc["_estuary_id"] for doc in result.docs("acmeCo/events"))


def read_jobs(sim: Any) -> set[int]:
    """Jobs whose files the connector asked for."""
    return {
        int(e["path"].split("/")[3])
        for e in sim.request_log
        if e["path"].endswith("/files") and e["status"] == 200
    }


def backfill(state: dict[str, Any], data_type: str) -> Any:
    return state.get("bindingStateV1", {}).get("events", {}).get("backfill", {}).get(data_type)


def backfill_page(state: dict[str, Any], data_type: str) -> Any:
    return (backfill(state, data_type) or {}).get("next_page")


@pytest.mark.asyncio
async def test_a_refused_data_type_is_skipped_and_tried_again_after_a_restart(simulator_factory) -> None:
    events = {"emailSend": 20, "customEvent": 10, "unknownSession": 6}
    sim = await simulator_factory(
        data=small_data(events=events, users=5), export_refused_data_types=("unknownSession",)
    )
    d = driver(sim, export_config(sim, event_types=list(events), window_size="P30D"))
    binds = await bindings(d, ["events"])

    first = await d.capture(binds, stop_when=lambda p: p.documents >= 30, deadline=60)
    first.raise_for_error()
    assert captured(first) == expected(sim, "emailSend", "customEvent")
    warnings = [
        entry
        for entry in first.logs
        if "unknownSession" in str(entry) and "Invalid dataTypeName" in str(entry)
    ]
    assert warnings and all(entry.get("level") == "WARNING" for entry in warnings), first.logs[-5:]
    assert (
        backfill(first.state, "unknownSession") is not None
    ), "the refused type's backfill must stay pending"

    sim.config.export_refused_data_types = ()
    second = await d.capture(binds, state=first.state, stop_when=lambda p: p.documents >= 6, deadline=60)
    second.raise_for_error()
    assert captured(second) == expected(sim, "unknownSession")


@pytest.mark.parametrize("fault", [Fault.LOST_500, Fault.DROP])
@pytest.mark.asyncio
async def test_a_lost_start_answer_adopts_the_job_it_created(simulator_factory, fault: Fault) -> None:
    sim = await simulator_factory(data=small_data(events={"emailSend": 30}, users=5))
    sim.faults.schedule(fault, path_prefix="/api/export/start", method="POST")
    d = driver(sim, export_config(sim, event_types=["emailSend"], window_size="P30D"))
    result = await d.capture(
        await bindings(d, ["events"]), stop_when=lambda p: p.documents >= 30, deadline=60
    )
    result.raise_for_error()
    assert captured(result) == expected(sim, "emailSend")
    assert [f for f in sim.injected_faults if fault.value in str(f)], "the fault was not injected"
    ours = {job.id for job in sim.jobs.values() if job.created_by_connector}
    assert ours <= read_jobs(sim) | set(
        sim.cancelled_jobs
    ), f"a job of ours was left unread: {ours - read_jobs(sim)}"
    assert_within_export_limits(sim)


@pytest.mark.asyncio
async def test_a_lost_start_answer_next_to_another_tools_job_starts_anew_and_leaves_theirs(
    simulator_factory,
) -> None:
    sim = await simulator_factory(data=small_data(events={"emailSend": 30}, users=5))
    sim.faults.schedule(Fault.LOST_500, path_prefix="/api/export/start", method="POST")
    sim.faults.foreign_start_next_jobs = 1
    d = driver(sim, export_config(sim, event_types=["emailSend"], window_size="P30D"))
    result = await d.capture(
        await bindings(d, ["events"]), stop_when=lambda p: p.documents >= 30, deadline=60
    )
    result.raise_for_error()
    assert captured(result) == expected(sim, "emailSend")
    [foreign] = [job.id for job in sim.jobs.values() if not job.created_by_connector]
    assert foreign not in read_jobs(sim) | set(sim.cancelled_jobs), "another tool's job was touched"
    lost = min(job.id for job in sim.jobs.values() if job.created_by_connector)
    assert lost not in read_jobs(sim), "an ambiguous lost job was adopted"
    listings = [e for e in sim.request_log if e["path"] == "/api/export/jobs"]
    assert listings, "the lost start was not looked up in the job listing"


@pytest.mark.slow
@pytest.mark.asyncio
async def test_a_job_that_never_ends_fails_its_window_after_the_deadline(simulator_factory) -> None:
    # 12 hours at this scale are 8.6 wall seconds.
    scale = 0.0002
    sim = await simulator_factory(data=small_data(events={"emailSend": 10}, users=5), time_scale=scale)
    sim.faults.never_end_next_jobs = 1
    config = export_config(sim, event_types=["emailSend"], window_size="P30D", late_data_lag="PT0S")
    d = ConnectorDriver(
        config,
        cwd=str(ROOT),
        secrets=[sim.api_key],
        env={"ITERABLE_API_BASE_URL": sim.base_url, "SOURCE_ITERABLE_TIME_SCALE": str(scale)},
    )
    started = time.monotonic()
    result = await d.capture(await bindings(d, ["events"]), deadline=60)
    assert result.rc != 0 and result.error is not None
    assert "did not complete within 12:00:00" in result.error and "emailSend [" in result.error, result.error
    assert 8 < time.monotonic() - started < 50
    [stuck] = [job.id for job in sim.jobs.values() if job.fixed_duration == float("inf")]
    assert stuck in sim.cancelled_jobs


@pytest.mark.asyncio
async def test_after_a_crash_our_running_job_of_the_resumed_window_is_adopted(simulator_factory) -> None:
    # Jobs take 2 s + 50 s per 1,000 records: 4 wall seconds for the backfill's one window.
    sim = await simulator_factory(
        data=small_data(events={"emailSend": 40}, users=5), export_job_latency_per_1k_records_s=5000
    )
    d = driver(sim, export_config(sim, event_types=["emailSend"], window_size="P30D", late_data_lag="PT0S"))
    binds = await bindings(d, ["events"])

    def job_persisted(p: Any) -> bool:
        page = backfill_page(p.state, "emailSend")
        return isinstance(page, dict) and page.get("job") is not None

    crashed = await d.capture(binds, stop_when=job_persisted, kill=True, deadline=30)
    page = backfill_page(crashed.state, "emailSend")
    assert crashed.killed and job_persisted(crashed), "the backfill never persisted its job"
    assert sim.jobs[page["job"]].state.value == "running"

    resumed = await d.capture(binds, state=crashed.state, stop_when=lambda p: p.documents >= 40, deadline=60)
    resumed.raise_for_error()
    assert captured(resumed) == expected(sim, "emailSend")
    window = (sim.jobs[page["job"]].start, sim.jobs[page["job"]].end)
    same_window = [job.id for job in sim.jobs.values() if job.created_by_connector and job.window == window]
    assert same_window == [page["job"]], "the resumed window started a second job"
    assert page["job"] in read_jobs(sim)


@pytest.mark.slow
@pytest.mark.asyncio
async def test_a_dense_windows_first_documents_arrive_while_its_job_runs(simulator_factory) -> None:
    # 30,000 records in files of 1,000; the job runs 2 s + 900 s (9 wall seconds), listing files as
    # it goes. The first 20,000 documents are committed as one part of the window.
    sim = await simulator_factory(
        data=small_data(events={"emailSend": 30_000}, users=5),
        export_records_per_file=1000,
        export_job_latency_per_1k_records_s=30,
    )
    d = driver(sim, export_config(sim, event_types=["emailSend"], window_size="P30D", late_data_lag="PT0S"))
    first_seen: list[float] = []

    def on_progress(p: Any) -> None:
        if not first_seen and p.documents + p.uncommitted > 0:
            first_seen.append(sim.now())

    result = await d.capture(
        await bindings(d, ["events"]),
        on_progress=on_progress,
        stop_when=lambda p: p.documents >= 30_000,
        deadline=90,
    )
    result.raise_for_error()
    assert captured(result) == expected(sim, "emailSend")
    [backfill_job] = [j for j in sim.jobs.values() if j.created_by_connector and j.record_count == 30_000]
    assert (
        backfill_job.ended_at is not None and first_seen[0] < backfill_job.ended_at
    ), f"first document {backfill_job.ended_at - first_seen[0]:.2f} s after the job completed"
    assert_within_export_limits(sim)


@pytest.mark.asyncio
async def test_records_read_before_their_job_failed_are_not_committed_twice(simulator_factory) -> None:
    # The first job lists files for 1.5 wall seconds, then fails half way; its resubmission lists
    # every record again.
    sim = await simulator_factory(
        data=small_data(events={"emailSend": 3000}, users=5),
        export_records_per_file=100,
        export_job_latency_per_1k_records_s=100,
    )
    sim.faults.fail_next_jobs = 1
    d = driver(sim, export_config(sim, event_types=["emailSend"], window_size="P30D", late_data_lag="PT0S"))
    result = await d.capture(
        await bindings(d, ["events"]), stop_when=lambda p: p.documents >= 3000, deadline=60
    )
    result.raise_for_error()
    failed = [job for job in sim.jobs.values() if job.state.value == "failed"]
    assert failed and failed[0].id in read_jobs(sim)
    early = [e for e in sim.request_log if e["path"].startswith(f"/_files/{failed[0].id}/")]
    assert early, "no file of the failed job was read while it ran"
    got, want = captured(result), expected(sim, "emailSend")
    assert set(got) == set(want)
    assert not [
        key for key, n in got.items() if n > want[key]
    ], "records of the failed job were committed twice"
