"""Campaign change detection, metrics selection and metrics cells."""

import logging
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Callable

import orjson
import pytest
from estuary_cdk.capture.common import LogCursor

from source_iterable_native.campaigns import fetch_campaigns, metrics_due, metrics_until, read_metrics
from source_iterable_native.cursors import CampaignsCursor
from source_iterable_native.models import Campaign, CampaignMetrics, ExperimentMetrics, UnkeyedMetrics

LOG = logging.getLogger("test")
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def campaign(
    cid: int, state: str, updated: datetime = NOW - timedelta(days=40), **fields: Any
) -> dict[str, Any]:
    return {"id": cid, "campaignState": state, "updatedAt": ms(updated), **fields}


class FakeCampaignsAPI:
    """Serves `GET /api/campaigns` pages sorted the way the request asks."""

    def __init__(self, campaigns: list[dict[str, Any]]):
        self.campaigns = campaigns
        self.pages_served = 0
        self.between_pages: list[Callable[[], object]] = []
        """Changes made elsewhere after the next page is served, one per page."""

    async def request(self, log: logging.Logger, url: str, params: dict[str, Any]) -> bytes:
        key, reverse = ("updatedAt", True) if params["sort"] == "-updatedAt" else ("id", False)
        ordered = sorted(self.campaigns, key=lambda c: c[key], reverse=reverse)
        page, size = params["page"], params["pageSize"]
        items = ordered[(page - 1) * size : page * size]
        self.pages_served += 1
        more = page * size < len(ordered)
        if self.between_pages:
            self.between_pages.pop(0)()
        return orjson.dumps({"campaigns": items, "nextPageUrl": "next" if more else None})


async def run(api: FakeCampaignsAPI, cursor: LogCursor | None) -> tuple[list[int], LogCursor | None]:
    assert cursor is not None, "the previous pass checkpointed no cursor"
    emitted: list[int] = []
    new_cursor: LogCursor | None = None
    async for item in fetch_campaigns(api, "https://x", log=LOG, cursor=cursor):  # type: ignore[arg-type]
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
    assert set(position.watching) == {"2", "3"}  # a Draft changes only with its updatedAt
    assert position.updated_at == ms(NOW - timedelta(days=1))

    assert await run(api, cursor) == ([], None)

    campaigns[1].update(campaignState="Finished", endedAt=ms(NOW))  # updatedAt untouched
    campaigns[4].update(name="renamed", updatedAt=ms(NOW))
    campaigns[0].update(name="silently renamed")  # ended and unwatched: Iterable would move updatedAt
    emitted, cursor = await run(api, cursor)
    assert sorted(emitted) == [2, 5]
    assert cursor is not None
    assert set(CampaignsCursor.decode(cursor).watching) == {"3"}


@pytest.mark.asyncio
async def test_campaigns_walk_stops_past_the_cursor_once_watched_ones_are_seen(monkeypatch) -> None:
    monkeypatch.setattr(Campaign, "page_size", 2)
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


async def backfilled(campaigns: list[dict[str, Any]]) -> tuple[FakeCampaignsAPI, LogCursor | None]:
    api = FakeCampaignsAPI(campaigns)
    emitted, cursor = await run(api, CampaignsCursor().encode())
    assert sorted(emitted) == sorted(c["id"] for c in campaigns) and cursor is not None
    return api, cursor


@pytest.mark.asyncio
async def test_campaigns_update_in_the_cursors_own_millisecond_is_captured() -> None:
    newest = NOW - timedelta(hours=1)
    api, cursor = await backfilled([campaign(1, "Finished", updated=newest), campaign(2, "Finished")])
    api.campaigns[1].update(name="edited in the same millisecond", updatedAt=ms(newest))
    emitted, cursor = await run(api, cursor)
    assert emitted == [2]
    assert await run(api, cursor) == ([], None)


@pytest.mark.asyncio
async def test_campaigns_update_visible_late_is_captured() -> None:
    api, cursor = await backfilled([campaign(1, "Finished", updated=NOW), campaign(2, "Finished")])
    # Made at NOW - 5 min, listed only after a pass already moved the cursor to NOW.
    api.campaigns[1].update(name="late", updatedAt=ms(NOW - timedelta(minutes=5)))
    emitted, cursor = await run(api, cursor)
    assert emitted == [2]
    assert await run(api, cursor) == ([], None)


@pytest.mark.asyncio
async def test_campaigns_skipped_by_a_page_shift_is_captured_by_the_next_pass(monkeypatch) -> None:
    monkeypatch.setattr(Campaign, "page_size", 2)
    api, cursor = await backfilled(
        [campaign(i, "Finished", updated=NOW - timedelta(days=30, minutes=i)) for i in range(1, 9)]
    )
    for i in range(1, 7):  # six updates, an hour apart: the pass reads three pages
        api.campaigns[i - 1].update(name=f"edit {i}", updatedAt=ms(NOW - timedelta(hours=i)))
    # Campaign 1 is deleted elsewhere once page 1 is read: campaign 3 moves onto page 1, unread.
    api.between_pages = [lambda: api.campaigns.pop(0)]
    emitted, cursor = await run(api, cursor)
    assert 3 not in emitted and {1, 2, 4, 5} <= set(emitted)
    emitted, cursor = await run(api, cursor)
    assert emitted == [3]
    assert await run(api, cursor) == ([], None)


@pytest.mark.asyncio
async def test_campaigns_unended_campaign_first_seen_below_the_cursor_is_emitted() -> None:
    api, cursor = await backfilled([campaign(1, "Finished", updated=NOW), campaign(9, "Scheduled")])
    # Hidden from every earlier pass (a page shift); the walk meets it below the cursor while
    # looking for the watched campaign 9, deeper in the listing.
    api.campaigns.append(campaign(5, "Scheduled", updated=NOW - timedelta(days=20)))
    emitted, cursor = await run(api, cursor)
    assert emitted == [5]
    assert cursor is not None and set(CampaignsCursor.decode(cursor).watching) == {"5", "9"}
    assert await run(api, cursor) == ([], None)


@pytest.mark.asyncio
async def test_campaigns_cursor_watches_only_campaigns_that_change_without_updated_at() -> None:
    campaigns = [
        campaign(1, "Draft"),
        campaign(2, "Recurring"),
        campaign(3, "Running", type="Triggered"),
        campaign(4, "Running", type="Blast"),
        campaign(5, "Scheduled", type="Blast"),
        campaign(6, "Starting"),
        campaign(7, "Ready"),
        campaign(8, "Recalling"),
        campaign(9, "Paused"),
        campaign(10, "Finished"),
    ]
    _, cursor = await backfilled(campaigns)
    assert set(CampaignsCursor.decode(cursor).watching) == {"4", "5", "6", "7", "8", "9"}


def test_campaigns_cursor_of_the_earlier_form_is_read() -> None:
    old = CampaignsCursor.decode(('{"updated_at": 7000, "watching": {"3": "00000000000000ff"}}',))
    assert (old.updated_at, old.floor, dict(old.watching)) == (7000, 6999, {"3": 255})


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
        (
            {"id": "7", "Revenue": "10.50", "Revenue / M (Email)": "0.0"},
            {"id": 7, "Revenue": 10.5, "Revenue / M (Email)": 0.0},
        ),
        ({"id": "7", "Total Pushes Sent": ""}, {"id": 7}),
        (
            {"id": "7", "Note": "n/a", "Odd": "NaN", "Big": "inf"},
            {"id": 7, "Note": "n/a", "Odd": "NaN", "Big": "inf"},
        ),
    ],
)
def test_metrics_cells_are_typed_and_empty_ones_left_out(
    cells: dict[str, str], expected: dict[str, Any]
) -> None:
    row = CampaignMetrics.model_validate(cells)
    assert orjson.loads(row.model_dump_json(by_alias=True, exclude_unset=True, exclude={"meta_"})) == expected


def experiment_row(cells: dict[str, str]) -> dict[str, Any]:
    row = ExperimentMetrics.model_validate(cells)
    return orjson.loads(row.model_dump_json(by_alias=True, exclude_unset=True, exclude={"meta_"}))


@pytest.mark.parametrize(
    ("cells", "added"),
    [
        ({"experimentId": "8001", "campaignId": "5", "templateId": "77", "Opens": "3"}, {"variantKey": "77"}),
        (
            {"Experiment ID": "8001", "Campaign Id": "5", "Template Id": "77", "Variant Name": "B"},
            {"experimentId": 8001, "campaignId": 5, "templateId": 77, "variantKey": "77"},
        ),
        (
            {"experiment_id": "8001", "variant_id": "12", "variant_name": "B"},
            {"experimentId": 8001, "variantKey": "12"},
        ),
        (
            {"Experiment Id": "8001", "Variant Name": "Control"},
            {"experimentId": 8001, "variantKey": "Control"},
        ),
        ({"EXPERIMENT-ID": "8001", "variant": "B"}, {"experimentId": 8001, "variantKey": "B"}),
        # No variant column: one row per experiment.
        ({"experimentId": "8001", "campaignId": "5", "opens": "100", "clicks": "25"}, {"variantKey": ""}),
    ],
)
def test_experiment_metrics_key_from_any_spelling_with_every_column_kept(
    cells: dict[str, str], added: dict[str, Any]
) -> None:
    typed = {name: int(value) if value.isdigit() else value for name, value in cells.items()}
    assert experiment_row(cells) == {**typed, **added}


def test_experiment_metrics_without_an_experiment_id_column_name_the_binding_and_quote_the_header() -> None:
    with pytest.raises(UnkeyedMetrics) as raised:
        ExperimentMetrics.model_validate({"campaignId": "5", "templateId": "77", "Opens": "3"})
    assert str(raised.value).startswith(
        "experiment_metrics: Iterable's experiments/metrics CSV has no experiment id column, so its rows "
        "cannot be keyed; header received: 'campaignId,templateId,Opens'."
    )


@pytest.mark.parametrize(
    ("now", "until"),
    [
        (datetime(2026, 12, 2, 0, 0, tzinfo=UTC), "2026-12-03"),
        (datetime(2026, 12, 31, 23, 59, tzinfo=UTC), "2027-01-01"),
        (
            datetime(2026, 12, 2, 20, 0, tzinfo=timezone(timedelta(hours=-5))),
            "2026-12-04",
        ),  # 01:00 UTC on the 3rd
    ],
)
def test_metrics_requests_end_tomorrow_utc(now: datetime, until: str) -> None:
    assert metrics_until(now) == until


class FakeMetricsAPI:
    def __init__(self, body: bytes):
        self.body = body
        self.params: list[dict[str, Any]] = []

    async def request(self, log: Any, url: str, params: dict[str, Any]) -> bytes:
        self.params.append(params)
        return self.body


async def read_all(api: FakeMetricsAPI, ids: list[int]) -> list[ExperimentMetrics]:
    rows = read_metrics(api, "https://x", LOG, metrics=ExperimentMetrics, campaign_ids=ids)  # type: ignore[arg-type]
    return [row async for row in rows]


@pytest.mark.asyncio
async def test_read_metrics_sends_an_explicit_end_and_refuses_rows_it_cannot_tell_apart() -> None:
    api = FakeMetricsAPI(b"experimentId,campaignId,opens\r\n8001,5,100\r\n8002,5,90\r\n")
    before = metrics_until(datetime.now(tz=UTC))
    rows = await read_all(api, [5])
    assert [(r.experimentId, r.variantKey) for r in rows] == [(8001, ""), (8002, "")]
    [params] = api.params
    assert params["endDateTime"] in (before, metrics_until(datetime.now(tz=UTC)))
    assert params == {"campaignId": [5], "startDateTime": "1970-01-01", "endDateTime": params["endDateTime"]}

    # Rows per experiment and campaign, with nothing to tell them apart: not one overwriting the other.
    api = FakeMetricsAPI(b"experimentId,campaignId,opens\r\n8001,5,100\r\n8001,6,90\r\n")
    with pytest.raises(
        UnkeyedMetrics, match=r"two rows keyed \(8001, ''\).*header received: 'experimentId,campaignId,opens'"
    ):
        await read_all(api, [5, 6])
