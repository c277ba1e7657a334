from __future__ import annotations

import asyncio

import orjson
import pytest

from iterable_simulator import DataSpec, timefmt

from . import exporting as ex
from .conftest import NOW, FakeClock

DAY = 86400.0


def _spec(**kwargs):
    return DataSpec(now=NOW, late_fraction=0.0, **kwargs)


@pytest.mark.asyncio
async def test_export_happy_path_matches_ground_truth_for_window(make_client):
    clock = FakeClock()
    c = await make_client(
        clock=clock,
        data=_spec(events={"emailSend": 700, "emailOpen": 50}),
        export_records_per_file=40,
        export_files_page_size=3,
    )
    start, end = NOW - 20 * DAY, NOW - 5 * DAY
    at_start = c.sim.add_event(
        "emailSend", {"email": "edge@example.com", "createdAt": timefmt.iterable_str(start)}
    )
    at_end = c.sim.add_event(
        "emailSend", {"email": "edge@example.com", "createdAt": timefmt.iterable_str(end)}
    )
    job_id = await ex.start(c, "emailSend", start=start, end=end)
    body = await ex.wait_completed(c, clock, job_id)
    assert body["jobState"] == "completed" and body["exportTruncated"] is False
    assert len(body["files"]) == 3  # first page only
    names, lines = await ex.read_all(c, job_id)
    assert names == sorted(names) and len(names) == -(-len(lines) // 40)
    records = [orjson.loads(line) for line in lines]
    truth = c.sim.export_ground_truth("emailSend", start, end)
    assert ex.canon(records) == ex.canon(truth) and len(truth) > 100
    assert at_start in records and at_end not in records  # inclusive start, exclusive end
    assert records != sorted(records, key=lambda r: timefmt.parse(r["createdAt"]))  # no particular order
    assert c.sim.jobs[job_id].created_by_connector and c.sim.jobs[job_id].data_type == "emailSend"
    for entry in c.sim.request_log:
        assert entry["api_key_present"] == (entry["bucket"] != "files")


@pytest.mark.asyncio
async def test_users_exported_by_profile_updated_at(make_client):
    clock = FakeClock()
    c = await make_client(clock=clock, project_type="Hybrid", data=_spec(users=150))
    start, end = NOW - 10 * DAY, NOW
    job_id = await ex.start(c, "user", start=start, end=end)
    await ex.wait_completed(c, clock, job_id)
    _, lines = await ex.read_all(c, job_id)
    records = [orjson.loads(line) for line in lines]
    assert ex.canon(records) == ex.canon(c.sim.export_ground_truth("user", start, end))
    assert all("itblUserId" in r for r in records)
    assert all(start <= timefmt.parse(r["profileUpdatedAt"]) < end for r in records)


@pytest.mark.asyncio
async def test_export_start_validation_and_accepted_forms(make_client):
    c = await make_client(data=_spec())
    base = {"dataTypeName": "emailUnsubscribe", "outputFormat": ex.JSONL}
    for extra in (
        {"startDateTime": "2025-12-01 00:00:00 +00:00", "endDateTime": "2025-12-02 00:00:00 +0000"},
        {"startDateTime": "2025-12-01T00:00:00.000Z", "endDateTime": "2025-12-02T00:00:00+00:00"},
    ):
        status, body = await c.post("/api/export/start", {**base, **extra})
        assert status == 200 and isinstance(body["jobId"], int)
    assert {j.data_type for j in c.sim.jobs.values()} == {"emailUnSubscribe"}
    for bad in (
        {"dataTypeName": "nope"},
        {"outputFormat": "text/csv"},
        {"outputFormat": None},
        {"startDateTime": "yesterday"},
        {"startDateTime": "2025-12-02", "endDateTime": "2025-12-01"},
    ):
        status, body = await c.post("/api/export/start", {**base, **bad})
        assert status == 400 and body["code"] == "BadParams", bad


@pytest.mark.asyncio
async def test_truncated_export(make_client):
    clock = FakeClock()
    c = await make_client(
        clock=clock, data=_spec(events={"customEvent": 120}), export_truncate_above_records=25
    )
    job_id = await ex.start(c, "customEvent", start=None, end=NOW)
    body = await ex.wait_completed(c, clock, job_id)
    assert body["exportTruncated"] is True
    _, lines = await ex.read_all(c, job_id)
    assert len(lines) == 25 and c.sim.jobs[job_id].truncated


@pytest.mark.asyncio
async def test_file_urls_expire_with_403(make_client):
    clock = FakeClock()
    c = await make_client(clock=clock, data=_spec(), file_url_expiry_s=1800, time_scale=0.01)
    job_id = await ex.start(c, "emailSend", start=None, end=NOW)
    body = await ex.wait_completed(c, clock, job_id, step=0.1)
    url = body["files"][0]["url"]
    assert "X-Amz-Expires=18" in url
    clock.advance(17.9)
    async with c.session.get(url) as resp:
        assert resp.status == 200
    clock.advance(0.2)
    async with c.session.get(url) as resp:
        assert resp.status == 403 and "Request has expired" in await resp.text()
    _, fresh, _ = await c.get(f"/api/export/{job_id}/files")
    async with c.session.get(fresh["files"][0]["url"]) as resp:
        assert resp.status == 200


@pytest.mark.asyncio
async def test_export_endpoints_share_one_request_per_second(make_client):
    clock = FakeClock()
    c = await make_client(clock=clock, data=_spec(), enforce_rate_limits=True)
    job_id = await ex.start(c, "emailOpen", start=None, end=NOW)
    status, body, _ = await c.get(f"/api/export/{job_id}/files")
    assert (status, body["code"]) == (429, "RateLimitExceeded")
    clock.advance(1.0)
    status, _, _ = await c.get(f"/api/export/{job_id}/files")
    assert status == 200
    status, _ = await c.post("/api/export/start", {"dataTypeName": "emailOpen", "outputFormat": ex.JSONL})
    assert status == 429
    assert c.sim.rate_limited == {"export_async": 2}
    assert c.sim.peak_request_rate()["export_async"] == 2


@pytest.mark.asyncio
async def test_at_most_four_jobs_run_and_foreign_jobs_take_slots(make_client):
    clock = FakeClock()
    c = await make_client(clock=clock, data=_spec())
    foreign = c.sim.create_foreign_job("user", None, None, duration_s=100)
    ids = [await ex.start(c, "emailSend", start=NOW - (i + 1) * DAY, end=NOW - i * DAY) for i in range(6)]
    states = [c.sim.jobs[i].state.value for i in ids]
    assert states == ["running"] * 3 + ["enqueued"] * 3
    _, listed, _ = await c.get("/api/export/jobs")
    assert {j["id"] for j in listed["jobs"]} == {foreign, *ids}
    for job_id in ids:
        await ex.wait_completed(c, clock, job_id, step=0.5)
    assert c.sim.max_concurrent_running_jobs_seen == 4
    assert c.sim.jobs[foreign].state.value == "running" and not c.sim.jobs[foreign].created_by_connector
    assert c.sim.cancelled_jobs == []


@pytest.mark.asyncio
async def test_cancel_is_recorded(make_client):
    clock = FakeClock()
    c = await make_client(clock=clock, data=_spec())
    foreign = c.sim.create_foreign_job("emailSend", None, None, duration_s=100)
    status, _ = await c.delete(f"/api/export/{foreign}")
    assert status == 200 and c.sim.cancelled_jobs == [foreign]
    assert c.sim.jobs[foreign].state.value == "cancelled"
    assert any(e["method"] == "DELETE" for e in c.sim.request_log)


@pytest.mark.asyncio
async def test_late_records_invisible_until_their_visibility_time(make_client):
    clock = FakeClock()
    c = await make_client(clock=clock, data=_spec(events={"emailOpen": 30}))
    late = c.sim.add_event(
        "emailOpen",
        {"email": "late@example.com", "createdAt": timefmt.iterable_str(NOW - 600)},
        visible_after_s=120,
    )
    first = await ex.start(c, "emailOpen", start=NOW - DAY, end=NOW)
    await ex.wait_completed(c, clock, first)
    _, lines = await ex.read_all(c, first)
    assert late not in [orjson.loads(x) for x in lines]
    assert late not in c.sim.visible_records("events:emailOpen") and late in c.sim.records("events:emailOpen")
    clock.advance(120)
    second = await ex.start(c, "emailOpen", start=NOW - DAY, end=NOW)
    await ex.wait_completed(c, clock, second)
    _, lines = await ex.read_all(c, second)
    assert late in [orjson.loads(x) for x in lines]


@pytest.mark.asyncio
async def test_queued_job_snapshots_records_when_processing_starts(make_client):
    clock = FakeClock()
    c = await make_client(clock=clock, data=_spec(events={"emailClick": 20}), export_max_concurrent_jobs=1)
    blocker = c.sim.create_foreign_job("user", None, None, duration_s=50)
    job_id = await ex.start(c, "emailClick", start=NOW - DAY, end=NOW + DAY)
    clock.advance(10)
    mid_wait = c.sim.add_event("emailClick", {"email": "x@example.com"})  # createdAt = now, visible now
    await ex.wait_completed(c, clock, job_id, step=5)
    assert c.sim.jobs[job_id].first_started_at == pytest.approx(c.sim.jobs[blocker].ended_at)
    _, lines = await ex.read_all(c, job_id)
    assert mid_wait in [orjson.loads(x) for x in lines]


@pytest.mark.asyncio
async def test_files_appear_progressively_with_real_time_scale(make_client):
    c = await make_client(
        data=_spec(events={"emailSend": 900}),
        time_scale=0.02,
        export_records_per_file=100,
        export_job_latency_base_s=5.0,
    )
    job_id = await ex.start(c, "emailSend", start=None, end=None)
    counts = []
    while True:
        _, body, _ = await c.get(f"/api/export/{job_id}/files")
        counts.append(len(body["files"]))
        if body["jobState"] == "completed":
            break
        await asyncio.sleep(0.01)
    total = len(c.sim.jobs[job_id].files)
    assert counts[-1] == min(total, 10) and counts[0] < counts[-1] and counts == sorted(counts)


@pytest.mark.asyncio
async def test_cancelling_draws_on_the_shared_export_budget(make_client):
    clock = FakeClock()
    c = await make_client(clock=clock, data=_spec(), enforce_rate_limits=True)
    job_id = await ex.start(c, "emailOpen", start=None, end=NOW)
    status, _ = await c.delete(f"/api/export/{job_id}")
    assert status == 429
    assert c.sim.rate_limited == {"export_async": 1}


@pytest.mark.asyncio
async def test_the_separate_reading_gives_start_and_files_a_budget_each(make_client):
    clock = FakeClock()
    c = await make_client(clock=clock, data=_spec(), enforce_rate_limits=True, export_reading="separate")
    job_id = await ex.start(c, "emailOpen", start=None, end=NOW)
    status, _, _ = await c.get(f"/api/export/{job_id}/files")
    assert status == 200
    status, _ = await c.post("/api/export/start", {"dataTypeName": "emailOpen", "outputFormat": ex.JSONL})
    assert status == 429
    status, _, _ = await c.get(f"/api/export/{job_id}/files")
    assert status == 429
    status, _ = await c.delete(f"/api/export/{job_id}")
    assert status == 429  # cancelling counts against export/start
    assert c.sim.rate_limited == {"export_start": 2, "export_files": 1}


@pytest.mark.asyncio
async def test_another_tool_spends_the_export_budget_and_its_429s_are_marked(make_client):
    clock = FakeClock()
    c = await make_client(clock=clock, data=_spec(), enforce_rate_limits=True, export_reading="separate")
    c.sim.other_tool_exports(0.5)  # one request every two seconds, the first one now
    status, _ = await c.post("/api/export/start", {"dataTypeName": "emailOpen", "outputFormat": ex.JSONL})
    assert status == 429
    clock.advance(1.0)
    job_id = await ex.start(c, "emailOpen", start=None, end=NOW)
    clock.advance(1.0)  # the other tool's second request
    status, _, _ = await c.get(f"/api/export/{job_id}/files")
    assert status == 429
    assert [f["fault"] for f in c.sim.injected_faults] == ["other_tool", "other_tool"]
    c.sim.other_tool_exports(0)
    clock.advance(1.0)
    status, _, _ = await c.get(f"/api/export/{job_id}/files")
    assert status == 200


@pytest.mark.asyncio
async def test_refused_data_types_answer_400_and_others_start(make_client):
    c = await make_client(data=_spec(), export_refused_data_types=("unknownSession", "anonSession"))
    for name in ("anonSession", "UNKNOWNSESSION"):
        status, body = await c.post("/api/export/start", {"dataTypeName": name, "outputFormat": ex.JSONL})
        assert (status, body["code"]) == (400, "BadParams") and name in body["msg"]
    assert await ex.start(c, "emailSend", start=None, end=NOW) in c.sim.jobs
    assert len(c.sim.jobs) == 1


@pytest.mark.asyncio
async def test_lost_start_answer_creates_the_job(make_client):
    c = await make_client(data=_spec())
    c.sim.faults.schedule("lost_500", path_prefix="/api/export/start")
    status, body = await c.post("/api/export/start", {"dataTypeName": "emailSend", "outputFormat": ex.JSONL})
    assert (status, body["code"]) == (500, "GenericError")
    [job] = c.sim.jobs.values()
    assert job.created_by_connector and job.data_type == "emailSend"
    _, listed, _ = await c.get("/api/export/jobs")
    assert [j["id"] for j in listed["jobs"]] == [job.id]


@pytest.mark.asyncio
async def test_a_start_can_coincide_with_another_tools_job_of_the_same_type(make_client):
    c = await make_client(data=_spec())
    c.sim.faults.foreign_start_next_jobs = 1
    ours = await ex.start(c, "emailOpen", start=None, end=NOW)
    again = await ex.start(c, "emailOpen", start=None, end=NOW)
    _, listed, _ = await c.get("/api/export/jobs")
    foreign = [j["id"] for j in listed["jobs"] if j["id"] not in (ours, again)]
    assert len(foreign) == 1 and not c.sim.jobs[foreign[0]].created_by_connector
    assert [j["dataTypeName"] for j in listed["jobs"]] == ["emailOpen"] * 3


@pytest.mark.asyncio
async def test_a_never_ending_job_runs_on_without_files_until_cancelled(make_client):
    clock = FakeClock()
    c = await make_client(clock=clock, data=_spec(events={"emailSend": 50}), export_records_per_file=5)
    c.sim.faults.never_end_next_jobs = 1
    stuck = await ex.start(c, "emailSend", start=None, end=NOW)
    normal = await ex.start(c, "emailSend", start=None, end=NOW)
    await ex.wait_completed(c, clock, normal)
    clock.advance(10 * DAY)
    _, body, _ = await c.get(f"/api/export/{stuck}/files")
    assert (body["jobState"], body["files"]) == ("running", [])
    status, _ = await c.delete(f"/api/export/{stuck}")
    assert status == 200 and c.sim.jobs[stuck].state.value == "cancelled"
