"""Campaigns and their metrics: `GET /api/campaigns`, and the CSVs of campaign and experiment metrics."""

import asyncio
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from logging import Logger
from typing import Any, AsyncGenerator, TypeVar

from estuary_cdk.capture.common import LogCursor, PageCursor
from estuary_cdk.http import HTTPSession
from estuary_cdk.incremental_csv_processor import IncrementalCSVProcessor

from .api import api_url, paged_items
from .cursors import CampaignsCursor, Fingerprints
from .models import Campaign, MetricsRow, UnkeyedMetrics
from .refresh import content_fingerprint

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
    http: HTTPSession, origin: str, log: Logger, *, sort: str
) -> AsyncGenerator[tuple[Campaign, dict[str, Any]], None]:
    """Every campaign, with the raw object it was read from."""
    pages = paged_items(
        http,
        log,
        api_url(origin, Campaign.path),
        params={"sort": sort},
        items_key=Campaign.items_key,
        page_size=Campaign.page_size,
    )
    async for item in pages:
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
    async with aclosing(list_campaigns(http, origin, log, sort="-updatedAt")) as listing:
        async for campaign, item in listing:
            if walk.done(campaign):
                break
            if walk.is_new(campaign, item):
                yield campaign
    after = walk.cursor()
    if walk.emitted or after != position:
        summary = {"emitted": walk.emitted, "watching": len(after.watching), "updated_at": after.updated_at}
        log.info("campaigns changed", summary)
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
            updated_at=self.newest,
            floor=floor,
            recent=recent,
            watching=self.watching,
            missed=frozenset(missed - self.position.missed),
        )


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
    http: HTTPSession, origin: str, log: Logger, *, medium: str | None
) -> list[Campaign]:
    """Campaigns that have sent (or are sending), in id order, of one message medium if given."""
    return [
        campaign
        async for campaign, _ in list_campaigns(http, origin, log, sort="+id")
        if campaign.campaignState not in Campaign.NOT_LAUNCHED and medium in (None, campaign.messageMedium)
    ]


async def read_metrics(
    http: HTTPSession, origin: str, log: Logger, *, metrics: type[M], campaign_ids: list[int]
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
            raise UnkeyedMetrics(binding=metrics.name, path=metrics.path, problem=problem, header=header)
        keys.add(key)
        yield row


async def _one_chunk(body: bytes) -> AsyncGenerator[bytes, None]:
    yield body


@dataclass
class MetricsPasses:
    """The passes of one metrics stream: a backfill of every launched campaign, one batch per
    step, then refreshes of the campaigns whose metrics may still move."""

    metrics: type[MetricsRow]
    metrics_http: HTTPSession
    campaigns_http: HTTPSession
    """The session campaigns are listed through: the metrics budget is not spent on them."""
    origin: str
    lookback: timedelta
    stopping: asyncio.Event
    """Set when the connector is asked to stop: a pass ends early, a stalled binding returns."""

    async def backfill(
        self, log: Logger, page: PageCursor, cutoff: LogCursor
    ) -> AsyncGenerator[MetricsRow | PageCursor, None]:
        """Metrics of every launched campaign, one batch per call; the page is the last campaign id read."""
        after = page if isinstance(page, int) else 0
        launched = await launched_campaigns(self.campaigns_http, self.origin, log, medium=self.metrics.medium)
        batch = [c.id for c in launched if c.id > after][: self.metrics.BATCH]
        if not batch:
            return
        try:
            async for row in read_metrics(
                self.metrics_http, self.origin, log, metrics=self.metrics, campaign_ids=batch
            ):
                yield row
        except UnkeyedMetrics as err:
            await _stall(err, self.stopping, log)
            yield after  # the batch is read again by the next session
            return
        yield batch[-1]

    async def fetch_changes(
        self, log: Logger, cursor: LogCursor
    ) -> AsyncGenerator[MetricsRow | LogCursor, None]:
        """Fresh metrics of every running campaign and of every campaign that ended within the
        lookback, or since the previous pass if that is longer ago. The cursor is the start of the
        last complete pass; a pass cut short by a stop is done again whole by the next session."""
        assert isinstance(cursor, datetime)
        started = datetime.now(tz=UTC)
        launched = await launched_campaigns(self.campaigns_http, self.origin, log, medium=self.metrics.medium)
        due = metrics_due(launched, min(started - self.lookback, cursor))
        batch_size = self.metrics.BATCH
        for start in range(0, len(due), batch_size):
            if self.stopping.is_set():
                log.info(f"{self.metrics.name} pass stopped early", {"campaigns_left": len(due) - start})
                yield cursor + timedelta(microseconds=1)  # the smallest step: the next pass covers as much
                return
            batch = due[start : start + batch_size]
            try:
                async for row in read_metrics(
                    self.metrics_http, self.origin, log, metrics=self.metrics, campaign_ids=batch
                ):
                    yield row
            except UnkeyedMetrics as err:
                await _stall(err, self.stopping, log)
                yield cursor + timedelta(microseconds=1)
                return
        log.info(f"refreshed {self.metrics.name}", {"campaigns": len(due)})
        yield started


async def _stall(err: UnkeyedMetrics, stopping: asyncio.Event, log: Logger) -> None:
    """A CSV whose rows cannot be keyed stops its binding, not the capture, until the next session."""
    log.error(str(err))
    await stopping.wait()
