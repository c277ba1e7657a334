from __future__ import annotations

import time

import aiohttp
import orjson
import pytest

from iterable_simulator import DataSpec, Fault, FaultConfig

from . import exporting as ex
from .conftest import NOW, FakeClock


def _spec(**kwargs):
    return DataSpec(now=NOW, late_fraction=0.0, **kwargs)


@pytest.mark.asyncio
async def test_scheduled_gateway_errors_then_recovery(make_client):
    c = await make_client()
    c.sim.faults.schedule(Fault.HTTP_502, "/api/channels", count=1)
    c.sim.faults.schedule("504", "/api/channels", count=1)
    status, body, resp = await c.get("/api/channels")
    assert status == 502 and resp.content_type == "text/html" and "Bad Gateway" in body
    assert (await c.get("/api/lists"))[0] == 200  # other paths unaffected
    assert (await c.get("/api/channels"))[0] == 504
    assert (await c.get("/api/channels"))[0] == 200
    assert [f["fault"] for f in c.sim.injected_faults] == ["502", "504"]
    assert [e.get("fault") for e in c.sim.request_log] == ["502", None, "504", None]


@pytest.mark.asyncio
async def test_injected_429_with_and_without_retry_after_and_generic_500(make_client):
    c = await make_client(faults=FaultConfig(retry_after_s=30))
    c.sim.faults.schedule(Fault.RATE_LIMIT, "/api/lists")
    c.sim.faults.schedule(Fault.RATE_LIMIT_RETRY_AFTER, "/api/lists")
    c.sim.faults.schedule(Fault.GENERIC_500, "/api/lists")
    status, body, resp = await c.get("/api/lists")
    assert status == 429 and body["code"] == "RateLimitExceeded" and "Retry-After" not in resp.headers
    status, _, resp = await c.get("/api/lists")
    assert status == 429 and resp.headers["Retry-After"] == "30"
    status, body, _ = await c.get("/api/lists")
    assert status == 500 and body["code"] == "GenericError"
    assert c.sim.rate_limited == {"general": 2}


@pytest.mark.asyncio
async def test_random_fault_rates_are_seeded_and_scoped(make_client):
    c = await make_client(faults=FaultConfig(rate_path_prefix="/api/channels", rate_5xx=1.0))
    assert {(await c.get("/api/channels"))[0] for _ in range(8)} <= {500, 502, 503, 504}
    assert (await c.get("/api/lists"))[0] == 200
    c.sim.faults.rate_5xx = 0.0  # mutable at runtime
    assert (await c.get("/api/channels"))[0] == 200


@pytest.mark.asyncio
async def test_slow_response(make_client):
    c = await make_client(time_scale=0.05, faults=FaultConfig(slow_delay_s=2.0))
    c.sim.faults.schedule(Fault.SLOW, "/api/channels")
    began = time.monotonic()
    assert (await c.get("/api/channels"))[0] == 200
    assert time.monotonic() - began >= 0.1


@pytest.mark.asyncio
async def test_dropped_export_file_and_forced_expiry(make_client):
    clock = FakeClock()
    c = await make_client(clock=clock, data=_spec())
    job_id = await ex.start(c, "emailSend", start=None, end=NOW)
    body = await ex.wait_completed(c, clock, job_id)
    url = body["files"][0]["url"]
    c.sim.faults.schedule(Fault.DROP, "/_files/")
    c.sim.faults.schedule(Fault.EXPIRED_URL, "/_files/")
    with pytest.raises(aiohttp.ClientPayloadError):
        async with c.session.get(url) as resp:
            await resp.read()
    async with c.session.get(url) as resp:
        assert resp.status == 403 and "Request has expired" in await resp.text()
    async with c.session.get(url) as resp:
        assert resp.status == 200


@pytest.mark.asyncio
async def test_failed_job_then_resubmission_succeeds(make_client):
    clock = FakeClock()
    c = await make_client(clock=clock, data=_spec(), faults=FaultConfig(fail_next_jobs=1))
    first = await ex.start(c, "emailSend", start=None, end=NOW)
    assert (await ex.wait_completed(c, clock, first))["jobState"] == "failed"
    _, body, _ = await c.get(f"/api/export/{first}/files")
    assert body["files"] == []
    second = await ex.start(c, "emailSend", start=None, end=NOW)
    assert (await ex.wait_completed(c, clock, second))["jobState"] == "completed"
    assert [f["fault"] for f in c.sim.injected_faults] == ["job_failed"]


@pytest.mark.asyncio
async def test_job_falls_back_to_enqueued_and_keeps_progress(make_client):
    clock = FakeClock()
    c = await make_client(clock=clock, data=_spec(), faults=FaultConfig(requeue_next_jobs=1))
    job_id = await ex.start(c, "emailSend", start=None, end=NOW)
    seen = []
    for _ in range(200):
        _, body, _ = await c.get(f"/api/export/{job_id}/files")
        if not seen or seen[-1] != body["jobState"]:
            seen.append(body["jobState"])
        if body["jobState"] == "completed":
            break
        clock.advance(0.25)
    assert seen == ["running", "enqueued", "running", "completed"]
    job = c.sim.jobs[job_id]
    assert job.requeue_count == 1 and job.record_count == len(
        c.sim.export_ground_truth("emailSend", None, NOW)
    )


@pytest.mark.asyncio
async def test_malformed_lines_and_missing_cursor(make_client):
    clock = FakeClock()
    c = await make_client(
        clock=clock, data=_spec(events={"emailOpen": 20}), faults=FaultConfig(malformed_line_rate=1.0)
    )
    job_id = await ex.start(c, "emailOpen", start=None, end=NOW)
    await ex.wait_completed(c, clock, job_id)
    _, lines = await ex.read_all(c, job_id)
    assert len(lines) == 20
    for line in lines:
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(line)
    c.sim.faults.malformed_line_rate = 0.0
    c.sim.faults.missing_cursor_rate = 1.0
    job_id = await ex.start(c, "emailOpen", start=None, end=NOW)
    await ex.wait_completed(c, clock, job_id)
    _, lines = await ex.read_all(c, job_id)
    assert lines and all("createdAt" not in orjson.loads(line) for line in lines)


@pytest.mark.asyncio
async def test_users_missing_their_key(make_client):
    clock = FakeClock()
    c = await make_client(clock=clock, data=_spec(users=10), faults=FaultConfig(missing_key_rate=1.0))
    job_id = await ex.start(c, "user", start=None, end=NOW)
    await ex.wait_completed(c, clock, job_id)
    _, lines = await ex.read_all(c, job_id)
    users = [orjson.loads(line) for line in lines]
    assert len(users) == 10 and not any("email" in u or "itblUserId" in u for u in users)
    assert all("profileUpdatedAt" in u for u in users)


@pytest.mark.asyncio
async def test_slow_response_counts_against_the_limit_when_it_arrives(make_client):
    # Export requests are limited to 1 per second (50 ms here); a slow one answers after 100 ms.
    c = await make_client(time_scale=0.05, enforce_rate_limits=True, faults=FaultConfig(slow_delay_s=2.0))
    c.sim.faults.schedule(Fault.SLOW, "/api/export/")
    assert (await c.get("/api/export/1/files"))[0] == 404
    assert (await c.get("/api/export/2/files"))[0] == 404  # sent 100 ms after the first arrived
    assert c.sim.rate_limited == {}


@pytest.mark.asyncio
async def test_listing_shift_misses_one_item_or_repeats_one(make_client):
    c = await make_client(data=_spec(catalogs=1, catalog_items=25))
    name = c.sim.records("catalogs")[0]["name"]
    path = f"/api/catalogs/{name}/items"
    every = [i["itemId"] for i in c.sim.records("catalog_items")]

    async def walk() -> list[str]:
        ids: list[str] = []
        for page in (1, 2, 3):
            _, body, _ = await c.get(path, {"page": page, "pageSize": 10})
            ids += [i["itemId"] for i in body["params"]["catalogItemsWithProperties"]]
        return ids

    assert await walk() == every  # off by default
    c.sim.faults.shift_listing(path, count=1, offset=1)
    missed = await walk()
    assert len(missed) == 25 and every[10] not in missed and missed.count(every[20]) == 2
    c.sim.faults.shift_listing("/api/campaigns", count=1, offset=-1)  # another listing: untouched
    assert await walk() == every
    c.sim.faults.shift_listing(path, count=1, offset=-1)
    repeated = await walk()
    assert len(repeated) == 25 and repeated.count(every[9]) == 2 and every[19] not in repeated
    assert [f["fault"] for f in c.sim.injected_faults] == ["listing_shift", "listing_shift"]


@pytest.mark.asyncio
async def test_campaign_listing_shifts_and_late_visible_updates(make_client):
    clock = FakeClock()
    c = await make_client(data=_spec(campaigns=30), clock=clock)
    ids = [x["id"] for x in sorted(c.sim.records("campaigns"), key=lambda x: x["id"])]
    c.sim.faults.shift_listing("/api/campaigns", count=1, offset=1)
    _, page2, _ = await c.get("/api/campaigns", {"page": 2, "pageSize": 10, "sort": "+id"})
    assert [x["id"] for x in page2["campaigns"]] == ids[11:21]

    c.sim.update_campaign(ids[0], name="late", updatedAt=123, visible_after_s=60)
    assert c.sim.records("campaigns")[0]["name"] == "late"  # ground truth has it at once
    _, page1, _ = await c.get("/api/campaigns", {"page": 1, "pageSize": 10, "sort": "+id"})
    assert page1["campaigns"][0]["name"] != "late"
    clock.advance(61)
    _, page1, _ = await c.get("/api/campaigns", {"page": 1, "pageSize": 10, "sort": "+id"})
    assert page1["campaigns"][0]["name"] == "late" and page1["campaigns"][0]["updatedAt"] == 123


@pytest.mark.asyncio
async def test_catalog_items_accept_pages_of_1000(make_client):
    c = await make_client(data=_spec(catalogs=1, catalog_items=1200))
    name = c.sim.records("catalogs")[0]["name"]
    status, body, _ = await c.get(f"/api/catalogs/{name}/items", {"page": 1, "pageSize": 1000})
    assert status == 200 and len(body["params"]["catalogItemsWithProperties"]) == 1000
    assert (await c.get(f"/api/catalogs/{name}/items", {"page": 1, "pageSize": 1001}))[0] == 400
