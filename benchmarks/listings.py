"""State and memory of the listing streams at a large organisation's scale (no simulator needed).

`measure()` returns the figures; `python -m benchmarks.listings [--catalog-items N]` prints them.
Budgets (issue 11): the whole state at most 512 KB, at most 16 bytes per tracked item beyond its
id, catalog_items at most 64 bytes per item in memory, pages of 1000 items.
"""

import argparse
import asyncio
import logging
import random
import sys
import time
import tracemalloc
from datetime import UTC, datetime
from typing import Any, AsyncIterator

import orjson

from source_iterable_native import campaigns as campaigns_module
from source_iterable_native.catalogs import CatalogItems
from source_iterable_native.cursors import CatalogItemsCursor, RefreshCursor
from source_iterable_native.models import CatalogItem, Journey, RefreshedStream, UserField
from source_iterable_native.refresh import fetch_refreshed

LOG = logging.getLogger("benchmarks.listings")
NOW_MS = 1_796_000_000_000
DAY_MS = 86_400_000
RATE_PER_S = 100
"""Iterable's budget for catalog reads: 100 requests per second per API key."""


def state_bytes(cursor: tuple[str | int]) -> int:
    """What a cursor costs in the connector state: its JSON, as Flow stores it."""
    return len(orjson.dumps({"inc": {"cursor": list(cursor)}}))


async def _refreshed_cursor(stream: type[RefreshedStream], items: list[dict[str, Any]]) -> tuple[str | int]:
    async def listing(log: logging.Logger) -> AsyncIterator[dict[str, Any]]:
        for item in items:
            yield item

    cursor: tuple[str | int] = RefreshCursor().encode()
    async for doc in fetch_refreshed(stream, listing, log=LOG, cursor=cursor):
        if isinstance(doc, tuple):
            cursor = doc
    return cursor


def _journeys(count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": 1_000_000 + i,
            "name": f"Journey {i}",
            "createdAt": NOW_MS - i * 60_000,
            "enabled": i % 3 > 0,
            "isArchived": i % 5 == 0,
            "journeyType": "Journey",
            "triggerEventNames": ["purchase"],
        }
        for i in range(count)
    ]


def _user_fields(count: int) -> list[dict[str, Any]]:
    groups = ("profile", "shippingAddress", "preferences", "loyalty", "devices")
    return [{"name": f"{groups[i % 5]}.customField{i}", "type": "string"} for i in range(count)]


def _campaigns(count: int, unended: int, rng: random.Random) -> list[dict[str, Any]]:
    """`unended` campaigns that never end (drafts, triggered ones Running for months, recurring
    parents) plus a few in transitional states; the rest ended."""
    transitional = ("Scheduled", "Starting", "Ready", "Running", "Recalling")
    out = []
    for i in range(count):
        cid = 5_000_000 + i
        updated = NOW_MS - rng.randrange(365 * DAY_MS)
        if i < unended:
            state, kind = rng.choice((("Draft", "Blast"), ("Running", "Triggered"), ("Recurring", "Blast")))
        elif i < unended + 300:
            state, kind = transitional[i % len(transitional)], "Blast"
        else:
            state, kind = rng.choice(("Finished", "Aborted", "Archived", "Recalled")), "Blast"
        out.append(
            {
                "id": cid,
                "name": f"Campaign {cid}",
                "type": kind,
                "campaignState": state,
                "updatedAt": updated,
                "createdAt": updated - DAY_MS,
                "messageMedium": "Email",
                "templateId": cid + 1,
            }
        )
    return out


class _CampaignsListing:
    def __init__(self, campaigns: list[dict[str, Any]]) -> None:
        self.ordered = sorted(campaigns, key=lambda c: (c["updatedAt"], c["id"]), reverse=True)
        self.requests = 0

    async def request(self, log: logging.Logger, url: str, params: dict[str, Any]) -> bytes:
        self.requests += 1
        page, size = params["page"], params["pageSize"]
        more = page * size < len(self.ordered)
        return orjson.dumps(
            {"campaigns": self.ordered[(page - 1) * size : page * size], "nextPageUrl": "n" if more else None}
        )


async def _campaigns_cursor(listing: _CampaignsListing, cursor: tuple[str | int]) -> tuple[str | int]:
    async for doc in campaigns_module.fetch_campaigns(listing, "https://x", log=LOG, cursor=cursor):  # type: ignore[arg-type]
        if isinstance(doc, tuple):
            cursor = doc
    return cursor


class _CatalogsListing:
    """`catalogs` catalogs sharing `items` items, served as Iterable wraps them (the CPU figure
    includes building and encoding these pages)."""

    def __init__(self, catalogs: int, items: int) -> None:
        self.names = [f"catalog-{c:03d}" for c in range(catalogs)]
        self.per_catalog = items // catalogs
        self.requests = 0

    async def request(self, log: logging.Logger, url: str, params: dict[str, Any]) -> bytes:
        self.requests += 1
        page, size = params["page"], params["pageSize"]
        if url.endswith("/catalogs"):
            names = [{"name": n} for n in self.names[(page - 1) * size : page * size]]
            more_names = page * size < len(self.names)
            return orjson.dumps(
                {
                    "code": "Success",
                    "params": {"catalogNames": names, "nextPageUrl": "n" if more_names else None},
                }
            )
        name = url.rsplit("/", 2)[1]
        first, last = (page - 1) * size, min(page * size, self.per_catalog)
        items = [
            {
                "catalogName": name,
                "itemId": f"sku-{n:08d}",
                "lastModified": "2026-10-01T12:00:00Z",
                "size": 80,
                "value": {"title": f"Product {n}", "price": n % 500, "inStock": n % 7 > 0},
            }
            for n in range(first, last)
        ]
        more = last < self.per_catalog
        return orjson.dumps(
            {
                "code": "Success",
                "params": {"catalogItemsWithProperties": items, "nextPageUrl": "n" if more else None},
            }
        )


async def _catalog_pass(items: CatalogItems, cursor: tuple[str | int]) -> tuple[str | int]:
    async for doc in items.fetch_changes(LOG, cursor):
        if not isinstance(doc, CatalogItem):
            assert isinstance(doc, tuple)
            cursor = doc
    return cursor


async def measure_async(
    journeys: int = 5_000,
    user_fields: int = 5_000,
    campaigns: int = 100_000,
    unended: int = 20_000,
    catalogs: int = 300,
    catalog_items: int = 2_000_000,
) -> dict[str, Any]:
    rng = random.Random(11)
    journey_items, field_items = _journeys(journeys), _user_fields(user_fields)
    journeys_cursor = await _refreshed_cursor(Journey, journey_items)
    fields_cursor = await _refreshed_cursor(UserField, field_items)
    id_bytes = sum(len(str(j["id"])) for j in journey_items) + sum(len(f["name"]) for f in field_items)

    listing = _CampaignsListing(_campaigns(campaigns, unended, rng))
    after_backfill = await _campaigns_cursor(listing, campaigns_module.CampaignsCursor().encode())
    listing.requests = 0
    steady = await _campaigns_cursor(listing, after_backfill)

    catalogs_listing = _CatalogsListing(catalogs, catalog_items)
    reader = CatalogItems(catalogs_listing, "https://x")  # type: ignore[arg-type]
    start_cursor = CatalogItemsCursor(since=datetime.fromtimestamp(0, tz=UTC), counts={}).encode()
    tracemalloc.start()
    items_cursor = await _catalog_pass(reader, start_cursor)
    remembered = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    total_items = sum(len(index) for index in reader.catalogs.values())
    catalogs_listing.requests = 0
    cpu = time.process_time()
    items_cursor = await _catalog_pass(reader, items_cursor)  # nothing changed: every item looked up
    cpu = time.process_time() - cpu

    refreshed = state_bytes(journeys_cursor) + state_bytes(fields_cursor)
    whole = refreshed + state_bytes(steady) + state_bytes(items_cursor)
    return {
        "refreshed_state_bytes": refreshed,
        "refreshed_bytes_per_item_beyond_id": (refreshed - id_bytes) / (journeys + user_fields),
        "campaigns_state_bytes": state_bytes(steady),
        "campaigns_watched": len(campaigns_module.CampaignsCursor.decode(steady).watching),
        "campaigns_recent": len(campaigns_module.CampaignsCursor.decode(steady).recent),
        "campaigns_steady_pass_requests": listing.requests,
        "catalog_items_state_bytes": state_bytes(items_cursor),
        "listing_state_bytes": whole,
        "catalog_items_remembered": total_items,
        "catalog_items_memory_bytes_per_item": remembered / total_items,
        "catalog_items_packed_bytes_per_item": sum(i.nbytes() for i in reader.catalogs.values())
        / total_items,
        "catalog_items_pass_requests": catalogs_listing.requests,
        "catalog_items_pass_min_seconds_at_budget": catalogs_listing.requests / RATE_PER_S,
        "catalog_items_steady_pass_cpu_seconds": cpu,
        "catalog_items_steady_pass_cpu_us_per_item": cpu / total_items * 1e6,
    }


def measure(**scale: int) -> dict[str, Any]:
    return asyncio.run(measure_async(**scale))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.listings", description=__doc__)
    parser.add_argument("--catalog-items", type=int, default=2_000_000)
    args = parser.parse_args(argv)
    for name, value in measure(catalog_items=args.catalog_items).items():
        print(f"{name:45} {value:,.1f}" if isinstance(value, float) else f"{name:45} {value:,}")


if __name__ == "__main__":
    main(sys.argv[1:])
