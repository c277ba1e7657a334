"""Catalog items: every item of every catalog, incremental on the items' `lastModified`.

The items listing can neither filter nor (reliably) sort on `lastModified`, so each pass pages
through every catalog and emits the items modified since the previous pass. Item ids seen by the
previous pass of this process are remembered per catalog, so that an item (or a whole catalog)
that disappears comes back as a deletion.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from logging import Logger
from typing import Any, AsyncGenerator
from urllib.parse import quote

from estuary_cdk.capture.common import LogCursor
from estuary_cdk.http import HTTPError, HTTPSession

from .api import api_url, list_catalogs, paged_items
from .models import CatalogItem
from .records import repair_datetime
from .refresh import content_fingerprint

LAST_MODIFIED_OVERLAP = timedelta(minutes=5)
"""Items modified this long before the previous pass are read again, for clock skew between
Iterable and the connector and for writes that become visible late."""


@dataclass
class CatalogItems:
    http: HTTPSession
    origin: str
    known: dict[str, set[str]] = field(default_factory=dict)
    """Item ids of each catalog, as the previous pass of this process saw them."""
    recent: dict[tuple[str, str], tuple[str, datetime]] = field(default_factory=dict)
    """Fingerprint and `lastModified` of items emitted within the overlap, not to emit them twice."""

    async def fetch_changes(self, log: Logger, cursor: LogCursor) -> AsyncGenerator[CatalogItem | LogCursor, None]:
        assert isinstance(cursor, datetime)
        started = datetime.now(tz=UTC)
        since = cursor - LAST_MODIFIED_OVERLAP
        names = [str(catalog["name"]) async for catalog in list_catalogs(self.http, self.origin, log)]
        emitted = deleted = 0
        for name in names:
            ids: set[str] = set()
            async for item, raw in self._items(name, log):
                ids.add(item.itemId)
                if self._is_new(item, raw, since):
                    emitted += 1
                    yield item
            for item_id in sorted(self.known.get(name, set()) - ids):
                deleted += 1
                yield _deletion(name, item_id)
            self.known[name] = ids
        for name in sorted(self.known.keys() - set(names)):
            for item_id in sorted(self.known.pop(name)):
                deleted += 1
                yield _deletion(name, item_id)
        self.recent = {key: seen for key, seen in self.recent.items() if seen[1] > started - LAST_MODIFIED_OVERLAP}
        if emitted or deleted:
            log.info("catalog items changed", {"emitted": emitted, "deleted": deleted, "catalogs": len(names)})
        yield started

    def _is_new(self, item: CatalogItem, raw: dict[str, Any], since: datetime) -> bool:
        modified = _last_modified(item)
        if modified is not None and modified <= since:
            return False
        fingerprint = content_fingerprint(raw)
        key = (item.catalogName, item.itemId)
        if key in self.recent and self.recent[key][0] == fingerprint:
            return False
        self.recent[key] = (fingerprint, modified or datetime.now(tz=UTC))
        return True

    async def _items(self, name: str, log: Logger) -> AsyncGenerator[tuple[CatalogItem, dict[str, Any]], None]:
        """Every item of the catalog, with the raw object it was read from."""
        url = api_url(self.origin, f"catalogs/{quote(name, safe='')}/items")
        try:
            async for raw in paged_items(self.http, log, url, {}, "catalogItemsWithProperties", CatalogItem.PAGE_SIZE):
                raw.setdefault("catalogName", name)
                yield CatalogItem.model_validate(raw), raw
        except HTTPError as err:
            if err.code != 404:
                raise
            log.info("catalog was deleted while being read", {"catalog": name})


def _last_modified(item: CatalogItem) -> datetime | None:
    """The item's `lastModified`, or None if it has none Python can read (the item is then emitted)."""
    try:
        return datetime.fromisoformat(repair_datetime(item.lastModified)) if item.lastModified else None
    except ValueError:
        return None


def _deletion(catalog: str, item_id: str) -> CatalogItem:
    doc: dict[str, Any] = {"catalogName": catalog, "itemId": item_id, "_meta": {"op": "d"}}
    return CatalogItem.model_validate(doc)
