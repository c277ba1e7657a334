"""Refreshed streams and catalog items: deletions confirmed, unknown items emitted, state and memory packed."""

import logging
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any, AsyncIterator

import orjson
import pytest
from estuary_cdk.capture.common import LogCursor
from estuary_cdk.http import HTTPError

from source_iterable_native.catalogs import CatalogItems, ItemIndexBuilder, id_hash
from source_iterable_native.cursors import CatalogItemsCursor, RefreshCursor
from source_iterable_native.models import CatalogItem, Journey, RefreshedStream, UserField
from source_iterable_native.refresh import fetch_refreshed

LOG = logging.getLogger("test")
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


async def refresh(
    items: list[dict[str, Any]], cursor: LogCursor, stream: type[RefreshedStream] = Journey
) -> tuple[list[Any], LogCursor]:
    async def listing(log: logging.Logger) -> AsyncIterator[dict[str, Any]]:
        for item in items:
            yield item

    docs: list[Any] = []
    async for doc in fetch_refreshed(stream, listing, log=LOG, cursor=cursor):
        if isinstance(doc, RefreshedStream):
            docs.append(orjson.loads(doc.model_dump_json(by_alias=True, exclude_unset=True)))
        else:
            cursor = doc
    return docs, cursor


@pytest.mark.asyncio
async def test_refreshed_item_is_deleted_only_when_two_consecutive_passes_miss_it() -> None:
    journeys = [{"id": i, "name": f"j{i}"} for i in range(1, 5)]
    docs, cursor = await refresh(journeys, RefreshCursor().encode())
    assert len(docs) == 4
    docs, missed_once = await refresh(journeys[1:], cursor)
    assert docs == [] and RefreshCursor.decode(missed_once).absent == {"1"}
    assert await refresh(journeys, missed_once) == ([], cursor)  # back, unchanged: nothing to emit
    docs, _ = await refresh(journeys[1:], missed_once)
    assert docs == [{"id": 1, "_meta": {"op": "d"}}]


@pytest.mark.asyncio
async def test_refreshed_cursor_costs_at_most_16_bytes_beyond_each_key() -> None:
    fields = [{"name": f"shippingAddress.line{i}.street", "type": "string"} for i in range(5000)]
    _, cursor = await refresh(fields, RefreshCursor().encode(), UserField)
    assert isinstance(cursor, tuple)
    encoded = len(orjson.dumps(list(cursor)))
    keys = sum(len(f["name"]) for f in fields)
    assert encoded - keys <= 16 * len(fields)


def test_refresh_cursor_of_the_earlier_form_is_read() -> None:
    old = RefreshCursor.decode(('{"fingerprints": {"7": "00000000000000ff"}}',))
    assert (dict(old.fingerprints), old.absent) == ({"7": 255}, frozenset())


class FakeCatalogsAPI:
    """Serves the catalogs listing and each catalog's items, wrapped as Iterable wraps them."""

    def __init__(self, catalogs: dict[str, list[dict[str, Any]]]):
        self.catalogs = catalogs

    async def request(self, log: logging.Logger, url: str, params: dict[str, Any]) -> bytes:
        page, size = params["page"], params["pageSize"]
        if url.endswith("/catalogs"):
            names = [{"name": name} for name in self.catalogs]
            return orjson.dumps(
                {"code": "Success", "params": {"catalogNames": names[(page - 1) * size : page * size]}}
            )
        name = url.split("/catalogs/")[1].removesuffix("/items")
        if name not in self.catalogs:
            raise HTTPError("Catalog not found", 404)
        items = self.catalogs[name][(page - 1) * size : page * size]
        return orjson.dumps({"code": "Success", "params": {"catalogItemsWithProperties": items}})


def item(catalog: str, n: int, modified: datetime = NOW - timedelta(days=3), **value: Any) -> dict[str, Any]:
    return {
        "catalogName": catalog,
        "itemId": f"{catalog}-{n}",
        "lastModified": modified.isoformat(),
        "value": value,
    }


async def catalog_pass(
    items: CatalogItems, cursor: LogCursor
) -> tuple[list[tuple[str, str | None]], LogCursor]:
    docs: list[tuple[str, str | None]] = []
    async for doc in items.fetch_changes(LOG, cursor):
        if isinstance(doc, CatalogItem):
            docs.append((doc.itemId, doc.meta_.op if doc.meta_.op == "d" else None))
        else:
            assert isinstance(doc, tuple)
            cursor = doc
    return docs, cursor


@pytest.mark.asyncio
async def test_catalog_items_after_a_restart_emit_what_changed_and_every_item_of_new_catalogs() -> None:
    api = FakeCatalogsAPI({"shoes": [item("shoes", i) for i in range(3)]})
    first = CatalogItems(api, "https://x")  # type: ignore[arg-type]
    docs, cursor = await catalog_pass(
        first, CatalogItemsCursor(since=datetime.fromtimestamp(0, tz=UTC), counts={}).encode()
    )
    assert len(docs) == 3
    api.catalogs["shoes"].append(item("shoes", 5))
    docs, cursor = await catalog_pass(first, cursor)
    assert docs == [("shoes-5", None)]

    # A restart: only the cursor is left. A new catalog's items are all emitted, whatever their
    # lastModified; in a catalog the state had, those modified since the pass before the last.
    api.catalogs["hats"] = [item("hats", 1)]
    api.catalogs["shoes"].append(item("shoes", 9, modified=NOW - timedelta(days=5)))
    api.catalogs["shoes"][0] = item("shoes", 0, modified=datetime.now(tz=UTC), title="new")
    restarted = CatalogItems(api, "https://x")  # type: ignore[arg-type]
    docs, cursor = await catalog_pass(restarted, cursor)
    assert sorted(docs) == [("hats-1", None), ("shoes-0", None)]
    # Once it knows the catalog, an item it never had is emitted whatever its lastModified.
    api.catalogs["shoes"].append(item("shoes", 10, modified=NOW - timedelta(days=5)))
    docs, cursor = await catalog_pass(restarted, cursor)
    assert docs == [("shoes-10", None)]
    assert CatalogItemsCursor.decode(cursor).counts == {"shoes": 6, "hats": 1}


@pytest.mark.asyncio
async def test_a_catalog_items_pass_that_changed_nothing_checkpoints_nothing() -> None:
    """A checkpointed one-string tuple cursor makes the CDK start the next pass at once: a quiet
    pass that checkpointed would read every catalog again and again, without waiting `interval`."""
    api = FakeCatalogsAPI({"shoes": [item("shoes", i) for i in range(3)]})
    items = CatalogItems(api, "https://x")  # type: ignore[arg-type]
    _, cursor = await catalog_pass(
        items, CatalogItemsCursor(since=datetime.fromtimestamp(0, tz=UTC), counts={}).encode()
    )
    _, cursor = await catalog_pass(items, cursor)  # `since` moves from 1970 to the first pass: checkpointed
    assert [doc async for doc in items.fetch_changes(LOG, cursor)] == []


@pytest.mark.asyncio
async def test_catalog_items_deleted_after_two_misses_or_at_once_when_the_catalog_answers_404() -> None:
    api = FakeCatalogsAPI({"shoes": [item("shoes", i) for i in range(3)], "hats": [item("hats", 1)]})
    items = CatalogItems(api, "https://x")  # type: ignore[arg-type]
    _, cursor = await catalog_pass(
        items, CatalogItemsCursor(since=datetime.fromtimestamp(0, tz=UTC), counts={}).encode()
    )
    missed = api.catalogs["shoes"].pop(1)
    assert (await catalog_pass(items, cursor))[0] == []
    api.catalogs["shoes"].insert(1, missed)
    assert (await catalog_pass(items, cursor))[0] == []  # missed once, back: never deleted
    api.catalogs["shoes"].pop(1)
    assert (await catalog_pass(items, cursor))[0] == []
    assert (await catalog_pass(items, cursor))[0] == [("shoes-1", "d")]
    del api.catalogs["hats"]
    assert (await catalog_pass(items, cursor))[0] == [("hats-1", "d")]


def test_catalog_items_memory_is_at_most_64_bytes_per_item() -> None:
    count = 100_000
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    builder = ItemIndexBuilder()
    for n in range(count):
        item_id = f"sku-{n:08d}".encode()
        builder.add(item_id, id_hash(item_id), n * 7919)
    index = builder.build()
    del builder
    used = sum(stat.size_diff for stat in tracemalloc.take_snapshot().compare_to(before, "filename"))
    tracemalloc.stop()
    assert len(index) == count and index.find(b"sku-00001234", id_hash(b"sku-00001234")) >= 0
    assert used / count <= 64, used / count
