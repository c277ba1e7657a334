"""Campaign change detection, metrics selection and metrics cells."""

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from source_iterable_native.campaigns import fetch_campaigns, metrics_due
from source_iterable_native.models import Campaign, CampaignMetrics, CampaignsCursor

LOG = logging.getLogger("test")
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def campaign(cid: int, state: str, updated: datetime = NOW - timedelta(days=40), **fields: Any) -> dict[str, Any]:
    return {"id": cid, "campaignState": state, "updatedAt": ms(updated), **fields}


class FakeCampaignsAPI:
    """Serves `GET /api/campaigns` pages sorted the way the request asks."""

    def __init__(self, campaigns: list[dict[str, Any]]):
        self.campaigns = campaigns
        self.pages_served = 0

    async def request(self, log: logging.Logger, url: str, params: dict[str, Any]) -> bytes:
        key, reverse = ("updatedAt", True) if params["sort"] == "-updatedAt" else ("id", False)
        ordered = sorted(self.campaigns, key=lambda c: c[key], reverse=reverse)
        page, size = params["page"], params["pageSize"]
        items = ordered[(page - 1) * size : page * size]
        self.pages_served += 1
        more = page * size < len(ordered)
        return orjson.dumps({"campaigns": items, "nextPageUrl": "next" if more else None})


async def run(api: FakeCampaignsAPI, cursor: tuple[str]) -> tuple[list[int], tuple[str] | None]:
    emitted, new_cursor = [], None
    async for item in fetch_campaigns(api, "https://x", LOG, cursor):  # type: ignore[arg-type]
        if isinstance(item, Campaign):
            emitted.append(item.id)
        else:
            new_cursor = item
    return emitted, new_cursor


@pytest.mark.asyncio
async def test_campaigns_first_pass_emits_all_then_only_changes() -> None:
    campaigns = [
        campaign(1, "Finished", endedAt=ms(NOW - timedelta(days=30))),
        campaign(2, "Running", startAt=ms(NOW - timedelta(days=2))),
        campaign(3, "Scheduled"),
        campaign(4, "Draft", updated=NOW - timedelta(days=1)),
        campaign(5, "Aborted"),
    ]
    api = FakeCampaignsAPI(campaigns)
    emitted, cursor = await run(api, CampaignsCursor().encode())
    assert sorted(emitted) == [1, 2, 3, 4, 5]
    assert cursor is not None
    position = CampaignsCursor.decode(cursor)
    assert set(position.watching) == {2, 3, 4}
    assert position.updated_at == ms(NOW - timedelta(days=1))

    assert await run(api, cursor) == ([], None)

    campaigns[1].update(campaignState="Finished", endedAt=ms(NOW))  # updatedAt untouched
    campaigns[4].update(name="renamed", updatedAt=ms(NOW))
    campaigns[0].update(name="silently renamed")  # ended and unwatched: Iterable would move updatedAt
    emitted, cursor = await run(api, cursor)
    assert sorted(emitted) == [2, 5]
    assert cursor is not None
    assert set(CampaignsCursor.decode(cursor).watching) == {3, 4}


@pytest.mark.asyncio
async def test_campaigns_walk_stops_past_the_cursor_once_watched_ones_are_seen(monkeypatch) -> None:
    monkeypatch.setattr("source_iterable_native.campaigns.CAMPAIGNS_PAGE_SIZE", 2)
    old = [campaign(i, "Finished", updated=NOW - timedelta(days=10 + i)) for i in range(1, 9)]
    api = FakeCampaignsAPI(old + [campaign(20, "Running", updated=NOW - timedelta(hours=1))])
    _, cursor = await run(api, CampaignsCursor().encode())
    assert cursor is not None
    api.pages_served = 0
    assert await run(api, cursor) == ([], None)
    assert api.pages_served == 1

    api.campaigns.append(campaign(21, "Running", updated=NOW - timedelta(days=30)))  # watched, deep
    _, cursor = await run(api, CampaignsCursor().encode())
    assert cursor is not None
    api.pages_served = 0
    await run(api, cursor)
    assert api.pages_served == 5


def test_metrics_due_running_and_recently_ended_only() -> None:
    since = NOW - timedelta(days=15)
    campaigns = [
        Campaign.model_validate(c)
        for c in (
            campaign(1, "Running"),
            campaign(2, "Ready"),
            campaign(3, "Recalling"),
            campaign(4, "Finished", endedAt=ms(NOW - timedelta(days=1))),
            campaign(5, "Finished", endedAt=ms(NOW - timedelta(days=16))),
            campaign(6, "Archived"),
            campaign(7, "Recalled", endedAt=ms(since)),
            campaign(8, "Paused"),
            campaign(9, "Paused", endedAt=ms(NOW - timedelta(days=40))),
        )
    ]
    assert metrics_due(campaigns, since) == [1, 2, 3, 4, 7, 8]


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        ({"id": "7", "Total Email Sends": "120"}, {"id": 7, "Total Email Sends": 120}),
        ({"id": "7", "Revenue": "10.50", "Revenue / M (Email)": "0.0"}, {"id": 7, "Revenue": 10.5, "Revenue / M (Email)": 0.0}),
        ({"id": "7", "Total Pushes Sent": ""}, {"id": 7}),
        ({"id": "7", "Note": "n/a", "Odd": "NaN", "Big": "inf"}, {"id": 7, "Note": "n/a", "Odd": "NaN", "Big": "inf"}),
    ],
)
def test_metrics_cells_are_typed_and_empty_ones_left_out(cells: dict[str, str], expected: dict[str, Any]) -> None:
    row = CampaignMetrics.model_validate(cells)
    assert orjson.loads(row.model_dump_json(by_alias=True, exclude_unset=True, exclude={"meta_"})) == expected
