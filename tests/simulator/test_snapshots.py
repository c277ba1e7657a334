from __future__ import annotations

import pytest

from iterable_simulator import DataSpec
from iterable_simulator.data import CAMPAIGN_STATES, OTHER_TEMPLATE_MEDIUMS, TEMPLATE_MEDIUMS, TEMPLATE_TYPES

BAD_KEY_BODY = {"msg": "Invalid API key", "code": "BadApiKey", "params": None}


@pytest.mark.asyncio
async def test_missing_or_wrong_key_is_401_with_iterable_body(make_client):
    c = await make_client()
    for key in (None, "wrong-key"):
        status, body, _ = await c.get("/api/channels", key=key)
        assert (status, body) == (401, BAD_KEY_BODY)
    async with c.session.get(c.sim.base_url + "/api/channels", headers={"Api_Key": c.sim.api_key}) as resp:
        assert resp.status == 200
    assert [e["api_key_present"] for e in c.sim.request_log] == [False, True, True]
    assert all(c.sim.api_key not in str(e) for e in c.sim.request_log)


@pytest.mark.asyncio
async def test_unknown_route_is_404_not_found(make_client):
    c = await make_client()
    status, body, _ = await c.get("/api/doesNotExist")
    assert status == 404 and body["code"] == "NotFound" and set(body) == {"msg", "code", "params"}


@pytest.mark.asyncio
async def test_small_resources_shapes(make_client):
    c = await make_client()
    for path, key, kind in (
        ("/api/channels", "channels", "channels"),
        ("/api/messageTypes", "messageTypes", "message_types"),
        ("/api/lists", "lists", "lists"),
        ("/api/metadata", "results", "metadata_tables"),
    ):
        status, body, _ = await c.get(path)
        assert status == 200 and list(body) == [key]
        assert body[key] == c.sim.records(kind) and body[key]
    _, lists, _ = await c.get("/api/lists")
    for lst in lists["lists"]:
        assert ("isGlobalSuppressionEnabled" in lst) == (lst["listType"] == "Suppression")
        assert isinstance(lst["createdAt"], int) and lst["createdAt"] > 10**12  # epoch ms


@pytest.mark.asyncio
async def test_templates_paging_per_combination(make_client):
    c = await make_client()
    expected = c.sim.templates_by_combo()
    assert sum(len(v) for v in expected.values()) > 0
    for ttype in TEMPLATE_TYPES:
        for medium in TEMPLATE_MEDIUMS:
            got, url = [], f"/api/templates?templateType={ttype}&messageMedium={medium}&page=1&pageSize=2"
            while url:
                status, body, _ = await c.get(url)
                assert status == 200
                assert body["totalTemplatesCount"] == len(expected[(ttype, medium)])
                got += body["templates"]
                url = body.get("nextPageUrl")
                assert url is None or url.startswith(c.sim.base_url)
            assert got == expected[(ttype, medium)]
            assert all("templateType" not in t and "messageMedium" not in t for t in got)
    status, body, _ = await c.get("/api/templates", params={"page": 1, "pageSize": 1001})
    assert status == 400 and body["code"] == "BadParams"


@pytest.mark.asyncio
async def test_campaigns_paging_sort_and_filter(make_client):
    c = await make_client()
    truth = c.sim.records("campaigns")
    got, url = [], "/api/campaigns?page=1&pageSize=7&sort=-updatedAt"
    while url:
        _, body, _ = await c.get(url)
        assert body["totalCampaignsCount"] == len(truth)
        got += body["campaigns"]
        url = body.get("nextPageUrl")
    assert got == sorted(truth, key=lambda x: x["updatedAt"], reverse=True)
    assert {x["campaignState"] for x in got} == set(CAMPAIGN_STATES)
    for campaign in got:
        assert None not in campaign.values()  # optional fields are absent, not null
        assert ("endedAt" in campaign) <= (
            campaign["campaignState"] in ("Finished", "Aborted", "Recalled", "Archived")
        )
    _, body, _ = await c.get(
        "/api/campaigns",
        params=[("page", 1), ("pageSize", 1000), ("campaignState", "Draft"), ("campaignState", "Running")],
    )
    assert {x["campaignState"] for x in body["campaigns"]} == {"Draft", "Running"}
    assert "nextPageUrl" not in body
    first = truth[0]
    status, one, _ = await c.get(f"/api/campaigns/{first['id']}")
    assert status == 200 and one == first


@pytest.mark.asyncio
async def test_journeys_archived_only_on_request_and_page_size_cap(make_client):
    c = await make_client()
    _, active, _ = await c.get("/api/journeys", params={"page": 1, "pageSize": 50})
    _, archived, _ = await c.get("/api/journeys", params={"page": 1, "pageSize": 50, "state": "Archived"})
    assert not any(j["isArchived"] for j in active["journeys"])
    assert archived["journeys"] and all(j["isArchived"] for j in archived["journeys"])
    assert len(active["journeys"]) + len(archived["journeys"]) == len(c.sim.records("journeys"))
    status, body, _ = await c.get("/api/journeys", params={"pageSize": 51})
    assert status == 400 and body["code"] == "BadParams"


@pytest.mark.asyncio
async def test_catalogs_wrapped_snippets_iso_and_user_fields(make_client):
    c = await make_client()
    _, cats, _ = await c.get("/api/catalogs")
    assert cats["code"] == "Success" and cats["params"]["catalogNames"]
    name = cats["params"]["catalogNames"][0]["name"]
    _, items, _ = await c.get(f"/api/catalogs/{name}/items")
    assert items["params"]["catalogItemsWithProperties"][0]["catalogName"] == name
    _, snippets, _ = await c.get("/api/snippets")
    assert (
        isinstance(snippets["snippets"][0]["createdAt"], str) and "T" in snippets["snippets"][0]["createdAt"]
    )
    _, fields, _ = await c.get("/api/users/getFields")
    assert fields["fields"]["profileUpdatedAt"] == "date" and fields["fields"]["email"] == "string"


@pytest.mark.asyncio
async def test_templates_of_other_mediums_are_listed_only_without_a_medium_filter(make_client):
    c = await make_client(data=DataSpec(other_medium_templates=2))
    combos = c.sim.templates_by_combo()
    for ttype in TEMPLATE_TYPES:
        others = [t for medium in OTHER_TEMPLATE_MEDIUMS for t in combos[(ttype, medium)]]
        assert len(others) == 2 * len(OTHER_TEMPLATE_MEDIUMS)
        filtered = []
        for medium in TEMPLATE_MEDIUMS:
            _, body, _ = await c.get(
                "/api/templates", params={"templateType": ttype, "messageMedium": medium, "pageSize": 1000}
            )
            filtered += body["templates"]
        _, body, _ = await c.get("/api/templates", params={"templateType": ttype, "pageSize": 1000})
        unfiltered = {t["templateId"] for t in body["templates"]}
        assert not {t["templateId"] for t in others} & {t["templateId"] for t in filtered}
        assert unfiltered == {t["templateId"] for t in filtered + others}
    status, body, _ = await c.get("/api/templates", params={"messageMedium": "WebPush"})
    assert status == 400 and body["code"] == "BadParams"
    # Off by default.
    plain = await make_client()
    assert not any(medium in OTHER_TEMPLATE_MEDIUMS for _, medium in plain.sim.templates_by_combo())
