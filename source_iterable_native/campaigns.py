"""Campaigns and their metrics: `GET /api/campaigns`, and the CSVs of campaign and experiment metrics."""

import asyncio
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from logging import Logger
from typing import Any, AsyncGenerator, TypeVar

from estuary_cdk.capture.common import LogCursor, PageCursor
from estuary_cdk.http import HTTPSession
from estuary_cdk.incremental_csv_processor import IncrementalCSVProcessor

from .api import api_url, paged_items
from .models import Campaign, CampaignsCursor, Fingerprints, MetricsRow, UnkeyedMetrics
from .refresh import content_fingerprint

CAMPAIGNS_PAGE_SIZE = 1000
RECENT_OVERLAP_MS = 15 * 60 * 1000
"""Campaigns updated this long before the newest `updatedAt` of the previous pass are read again:
updates in the cursor's own millisecond, or visible late."""
RECENT_LIMIT = 2000
"""At most this many fingerprints of re-read campaigns are kept; beyond, re-reads are emitted again."""
M = TypeVar("M", bound=MetricsRow)

METRICS_SINCE = "1970-01-01"
"""Metrics are lifetime totals; both metrics endpoints default to a month of 2018 (2018-06-25 to
2018-07-25), so every request sends its start and its end (`metrics_until`)."""


def metrics_until(now: datetime) -> str:
    """The end date of a lifetime metrics request: tomorrow (UTC), past anything sent so far."""
    return (now.astimezone(UTC) + timedelta(days=1)).date().isoformat()


async def list_campaigns(
    http: HTTPSession, origin: str, log: Logger, sort: str
) -> AsyncGenerator[tuple[Campaign, dict[str, Any]], None]:
    """Every campaign, with the raw object it was read from."""
    url = api_url(origin, Campaign.path)
    async for item in paged_items(http, log, url, {"sort": sort}, Campaign.items_key, CAMPAIGNS_PAGE_SIZE):
        yield Campaign.model_validate(item), item


async def fetch_campaigns(
    http: HTTPSession, origin: str, log: Logger, cursor: LogCursor
) -> AsyncGenerator[Campaign | LogCursor, None]:
    """Campaigns updated since the cursor's floor, and watched campaigns whose content changed
    without `updatedAt` moving (a state change or an `endedAt`), each emitted once per content.

    Walks the listing newest-updated first and stops once below the floor with every watched
    campaign seen. The first pass, from an empty cursor, emits every campaign.
    """
    position = CampaignsCursor.decode(cursor)
    walk = _CampaignsWalk(position)
    async with aclosing(list_campaigns(http, origin, log, "-updatedAt")) as listing:
        async for campaign, item in listing:
            if walk.done(campaign):
                break
            if walk.is_new(campaign, item):
                yield campaign
    after = walk.cursor()
    if walk.emitted or after != position:
        log.info("campaigns changed", {
            "emitted": walk.emitted, "watching": len(after.watching), "updated_at": after.updated_at,
        })  # fmt: skip
        yield after.encode()


class _CampaignsWalk:
    """One pass over the campaigns listing against the cursor of the previous one."""

    def __init__(self, position: CampaignsCursor) -> None:
        self.position = position
        self.first = position.updated_at == 0
        self.unseen = set(position.watching)
        self.seen: set[str] = set()
        self.read: list[tuple[int, str, int]] = []
        """(updatedAt, id, fingerprint) of the campaigns read above the next pass's floor."""
        self.watching = Fingerprints()
        self.newest = position.updated_at
        self.emitted = 0

    def done(self, campaign: Campaign) -> bool:
        return not self.first and not self.unseen and campaign.updatedAt <= self.position.floor

    def is_new(self, campaign: Campaign, item: dict[str, Any]) -> bool:
        key = str(campaign.id)
        if key in self.seen:  # listed twice: the listing shifted between two pages
            return False
        self.seen.add(key)
        self.unseen.discard(key)
        fingerprint = content_fingerprint(item)
        self.newest = max(self.newest, campaign.updatedAt)
        above = self.first or campaign.updatedAt > self.position.floor
        if campaign.changes_silently():
            self.watching[key] = fingerprint
        elif campaign.updatedAt > self._next_floor():
            self.read.append((campaign.updatedAt, key, fingerprint))
        known = self.position.recent.get(key, self.position.watching.get(key))
        # Below the floor, a campaign not watched before is emitted only if it now needs watching:
        # a listing shift may have hidden it from every earlier pass.
        new = fingerprint != known if known is not None else above or key in self.watching
        self.emitted += new
        return new

    def _next_floor(self) -> int:
        """The next pass re-reads everything this one read above the previous cursor, plus an
        overlap: an update hidden by a page shift, or visible late, is read again."""
        return (self.newest if self.first else self.position.updated_at) - RECENT_OVERLAP_MS

    def cursor(self) -> CampaignsCursor:
        floor = self._next_floor()
        recent = Fingerprints(
            (key, fingerprint)
            for updated_at, key, fingerprint in sorted(self.read, reverse=True)[:RECENT_LIMIT]
            if updated_at > floor
        )
        missed = set(self.position.watching) - self.seen
        for key in missed - self.position.missed:
            self.watching[key] = self.position.watching[key]
        return CampaignsCursor(
            updated_at=self.newest, floor=floor, recent=recent, watching=self.watching,
            missed=frozenset(missed - self.position.missed),
        )  # fmt: skip


def metrics_due(campaigns: list[Campaign], ended_since: datetime) -> list[int]:
    """Ids of the launched campaigns whose metrics may have moved: running ones, and ended ones
    that ended at or after `ended_since`. A state Iterable adds later counts as running until the
    campaign carries an `endedAt`."""
    since_ms = int(ended_since.timestamp() * 1000)
    due = []
    for campaign in campaigns:
        if campaign.campaignState in Campaign.RUNNING:
            due.append(campaign.id)
        elif campaign.endedAt is None:
            if campaign.campaignState not in Campaign.ENDED:
                due.append(campaign.id)
        elif campaign.endedAt >= since_ms:
            due.append(campaign.id)
    return due


async def launched_campaigns(
    http: HTTPSession, origin: str, log: Logger, medium: str | None = None
) -> list[Campaign]:
    """Campaigns that have sent (or are sending), in id order, of one message medium if given."""
    return [
        campaign
        async for campaign, _ in list_campaigns(http, origin, log, "+id")
        if campaign.campaignState not in Campaign.NOT_LAUNCHED and medium in (None, campaign.messageMedium)
    ]


async def read_metrics(
    http: HTTPSession, origin: str, metrics: type[M], log: Logger, campaign_ids: list[int]
) -> AsyncGenerator[M, None]:
    """Lifetime metrics of a batch of campaigns, in one request; campaigns without metrics have no row.
    Raises UnkeyedMetrics when two rows share a key: the header has no column telling them apart."""
    assert len(campaign_ids) <= metrics.BATCH
    url = api_url(origin, metrics.path)
    params = {
        "campaignId": campaign_ids,
        "startDateTime": METRICS_SINCE,
        "endDateTime": metrics_until(datetime.now(tz=UTC)),
    }
    # A batch is small: the CDK's request() reads it whole and reads it again if the transfer breaks.
    body = await http.request(log, url, params=params)
    keys: set[tuple[Any, ...]] = set()
    async for row in IncrementalCSVProcessor(_one_chunk(body), metrics):
        key = row.key_values()
        if key in keys:
            header = body.partition(b"\n")[0].decode(errors="replace").rstrip("\r")
            problem = f"has two rows keyed {key}, so one would overwrite the other"
            raise UnkeyedMetrics(metrics.name, metrics.path, problem, header)
        keys.add(key)
        yield row


async def _one_chunk(body: bytes) -> AsyncGenerator[bytes, None]:
    yield body


async def backfill_metrics(
    metrics: type[M],
    metrics_http: HTTPSession,
    campaigns_http: HTTPSession,
    origin: str,
    stopping: asyncio.Event,
    log: Logger,
    page: PageCursor,
    cutoff: LogCursor,
) -> AsyncGenerator[M | PageCursor, None]:
    """Metrics of every launched campaign, one batch per call; the page is the last campaign id read."""
    after = page if isinstance(page, int) else 0
    launched = await launched_campaigns(campaigns_http, origin, log, metrics.medium)
    batch = [c.id for c in launched if c.id > after][: metrics.BATCH]
    if not batch:
        return
    try:
        async for row in read_metrics(metrics_http, origin, metrics, log, batch):
            yield row
    except UnkeyedMetrics as err:
        await _stall(err, stopping, log)
        yield after  # the batch is read again by the next session
        return
    yield batch[-1]


async def fetch_metrics(
    metrics: type[M],
    metrics_http: HTTPSession,
    campaigns_http: HTTPSession,
    origin: str,
    lookback: timedelta,
    stopping: asyncio.Event,
    log: Logger,
    cursor: LogCursor,
) -> AsyncGenerator[M | LogCursor, None]:
    """Fresh metrics of every running campaign and of every campaign that ended within the
    lookback, or since the previous pass if that is longer ago. The cursor is the start of the
    last complete pass; a pass cut short by a stop is done again whole by the next session."""
    assert isinstance(cursor, datetime)
    started = datetime.now(tz=UTC)
    launched = await launched_campaigns(campaigns_http, origin, log, metrics.medium)
    due = metrics_due(launched, min(started - lookback, cursor))
    for start in range(0, len(due), metrics.BATCH):
        if stopping.is_set():
            log.info(f"{metrics.name} pass stopped early", {"campaigns_left": len(due) - start})
            yield cursor + timedelta(microseconds=1)  # the smallest step: the next pass covers as much
            return
        try:
            async for row in read_metrics(
                metrics_http, origin, metrics, log, due[start : start + metrics.BATCH]
            ):
                yield row
        except UnkeyedMetrics as err:
            await _stall(err, stopping, log)
            yield cursor + timedelta(microseconds=1)
            return
    log.info(f"refreshed {metrics.name}", {"campaigns": len(due)})
    yield started


async def _stall(err: UnkeyedMetrics, stopping: asyncio.Event, log: Logger) -> None:
    """A CSV whose rows cannot be keyed stops its binding, not the capture, until the next session."""
    log.error(str(err))
    await stopping.wait()
