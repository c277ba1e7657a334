from __future__ import annotations

import csv
import io

import aiohttp
import pytest

from iterable_simulator.config import EXPERIMENT_HEADER_STYLES

GENERIC_500 = {"msg": "An error occurred. Please try again later.", "code": "GenericError", "params": None}


def _rows(text: str) -> tuple[list[str], dict[int, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    return list(reader.fieldnames or []), {int(r.pop("id")): r for r in reader}


@pytest.mark.asyncio
async def test_campaign_metrics_csv_matches_ground_truth(make_client):
    c = await make_client()
    ids = [x["id"] for x in c.sim.records("campaigns")]
    params = [("campaignId", i) for i in ids] + [
        ("startDateTime", "1970-01-01"),
        ("endDateTime", "2100-01-01"),
    ]
    status, text, resp = await c.get("/api/campaigns/metrics", params=params)
    assert status == 200 and resp.content_type == "text/csv"
    header, rows = _rows(text)
    truth = c.sim.campaign_metrics_rows()
    assert header[0] == "id" and "Total Email Sends" in header and "Revenue / M (Email)" in header
    assert set(rows) == set(truth) and len(rows) < len(ids)  # unlaunched campaigns have no row
    for cid, row in rows.items():
        assert {k: v for k, v in row.items() if v != ""} == truth[cid]
        assert "" in row.values()  # columns of other mediums are empty


@pytest.mark.asyncio
async def test_campaign_metrics_without_start_use_2018_default(make_client):
    c = await make_client()
    ids = list(c.sim.campaign_metrics_rows())[:5]
    _, text, _ = await c.get("/api/campaigns/metrics", params=[("campaignId", i) for i in ids])
    _, rows = _rows(text)
    assert len(rows) == 5
    assert all(float(v) == 0 for row in rows.values() for v in row.values() if v != "")


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/api/campaigns/metrics", "/api/experiments/metrics"])
async def test_metrics_without_end_stop_at_the_documented_2018_default(make_client, path):
    c = await make_client()
    ids = [("campaignId", i) for i in c.sim.campaign_metrics_rows()]
    since = [("startDateTime", "1970-01-01")]
    _, without_end, _ = await c.get(path, params=ids + since)
    _, with_end, _ = await c.get(path, params=ids + since + [("endDateTime", "2100-01-01")])
    header, *rows = list(csv.reader(io.StringIO(without_end)))
    header_with_end, *rows_with_end = list(csv.reader(io.StringIO(with_end)))
    sends = header.index("Total Email Sends")
    assert header_with_end == header and len(rows_with_end) == len(rows) > 0
    assert all(int(row[sends] or 0) == 0 for row in rows)
    assert any(int(row[sends] or 0) > 0 for row in rows_with_end)


@pytest.mark.asyncio
@pytest.mark.parametrize("style", sorted(EXPERIMENT_HEADER_STYLES))
async def test_experiment_metrics_header_styles(make_client, style):
    c = await make_client(experiment_metrics_header=style)
    _, text, _ = await c.get(
        "/api/experiments/metrics", params={"startDateTime": "1970-01-01", "endDateTime": "2100-01-01"}
    )
    header, *rows = list(csv.reader(io.StringIO(text)))
    experiment, campaign, template, variant = EXPERIMENT_HEADER_STYLES[style]
    key_columns = [name for name in (experiment, campaign, template, variant) if name]
    assert header[: len(key_columns)] == key_columns and "Total Email Sends" in header
    assert (header, rows) == c.sim.experiment_metrics_table([], []) and rows
    experiments = c.sim.data.experiments
    assert len(rows) == (len(experiments) if style == "per experiment" else 2 * len(experiments))
    sends = header.index("Total Email Sends")
    lifetime = c.sim.campaign_metrics_rows()
    total = sum(int(lifetime[e["campaignId"]]["Total Email Sends"]) for e in experiments)
    assert abs(sum(int(row[sends]) for row in rows) - total) <= len(
        rows
    )  # variants split each campaign in halves


@pytest.mark.asyncio
async def test_campaign_metrics_too_many_ids_is_414(make_client):
    c = await make_client()
    status, _, _ = await c.get(
        "/api/campaigns/metrics", params=[("campaignId", 5967603 + i) for i in range(101)]
    )
    assert status == 414
    status, _, _ = await c.get(
        "/api/campaigns/metrics", params=[("campaignId", 5967603 + i) for i in range(100)]
    )
    assert status == 200


@pytest.mark.asyncio
async def test_campaign_metrics_rate_limit_10_per_minute(make_client):
    c = await make_client(enforce_rate_limits=True)
    params = {"campaignId": 1, "startDateTime": "1970-01-01"}
    statuses = [(await c.get("/api/campaigns/metrics", params=params))[0] for _ in range(11)]
    assert statuses == [200] * 10 + [429]
    _, body, _ = await c.get("/api/campaigns/metrics", params=params)
    assert body == {"msg": "Rate limit exceeded", "code": "RateLimitExceeded", "params": None}
    assert c.sim.rate_limited["campaign_metrics"] == 2


@pytest.mark.asyncio
async def test_get_users_plain_text_shuffled(make_client):
    c = await make_client()
    sim = c.sim
    list_id = next(
        x["id"] for x in sim.records("lists") if x["id"] not in (sim.failing_list_id, sim.breaking_list_id)
    )
    members = [f"member{i}@example.com" for i in range(60)]
    sim.set_list_members(list_id, members)
    bodies = []
    for _ in range(2):
        status, text, resp = await c.get("/api/lists/getUsers", params={"listId": list_id})
        assert status == 200 and resp.content_type == "text/plain"
        bodies.append(text.splitlines())
    assert sorted(x for x in bodies[0] if x) == sorted(members)
    assert [x for x in bodies[0] if x] != [x for x in bodies[1] if x]
    truth = {(lid, ident) for lid, ident in sim.records("list_users") if lid == list_id}
    assert truth == {(list_id, m) for m in members}


@pytest.mark.asyncio
async def test_get_users_identifiers_follow_project_type(make_client):
    c = await make_client(project_type="Hybrid")
    sim = c.sim
    list_id = sim.records("lists")[0]["id"]
    _, by_email, _ = await c.get("/api/lists/getUsers", params={"listId": list_id})
    _, by_uid, _ = await c.get("/api/lists/getUsers", params={"listId": list_id, "preferUserId": "true"})
    assert {x for x in by_email.splitlines() if x} == {i for _, i in sim.list_users() if _ == list_id}
    assert {x for x in by_uid.splitlines() if x} == {
        i for _, i in sim.list_users(prefer_user_id=True) if _ == list_id
    }
    assert by_email != by_uid


@pytest.mark.asyncio
async def test_failing_list_always_500_and_breaking_list_breaks_once(make_client):
    c = await make_client()
    sim = c.sim
    for _ in range(2):
        status, body, _ = await c.get("/api/lists/getUsers", params={"listId": sim.failing_list_id})
        assert (status, body) == (500, GENERIC_500)
    assert sim.data.members[sim.breaking_list_id], "breaking list needs members"
    with pytest.raises(aiohttp.ClientPayloadError):
        await c.get("/api/lists/getUsers", params={"listId": sim.breaking_list_id})
    status, text, _ = await c.get("/api/lists/getUsers", params={"listId": sim.breaking_list_id})
    assert status == 200
    assert sorted(x for x in text.splitlines() if x) == sorted(
        i for lid, i in sim.list_users() if lid == sim.breaking_list_id
    )


@pytest.mark.asyncio
async def test_get_users_rate_limit_5_per_minute(make_client):
    c = await make_client(enforce_rate_limits=True)
    list_id = c.sim.records("lists")[0]["id"]
    statuses = [(await c.get("/api/lists/getUsers", params={"listId": list_id}))[0] for _ in range(5)]
    statuses.append((await c.get(f"/api/lists/{list_id}/size"))[0])
    assert statuses == [200] * 5 + [429]
    assert [e["bucket"] for e in c.sim.request_log] == ["list_users"] * 6
