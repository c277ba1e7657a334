"""Catalog items: every item of every catalog, with their changes and deletions.

The items listing can neither filter nor (reliably) sort on `lastModified`, so each pass pages
through every catalog. The running connector remembers, packed, each item's id and content
fingerprint: an item is emitted when its content changed or when it was not known (whatever its
`lastModified`), and emitted as deleted when two consecutive passes miss it, or at once when its
catalog answers 404. A restart keeps only `CatalogItemsCursor`: the first pass after it emits the
items modified since the pass before the last one (docs/refreshed-streams.md).
"""

import bisect
from array import array
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from logging import Logger
from typing import Any, AsyncGenerator
from urllib.parse import quote

import xxhash
from estuary_cdk.capture.common import LogCursor
from estuary_cdk.http import HTTPError, HTTPSession

from .api import api_url, paged_items
from .cursors import CatalogItemsCursor
from .models import Catalog, CatalogItem
from .records import repair_datetime
from .refresh import content_fingerprint

LAST_MODIFIED_OVERLAP = timedelta(minutes=5)
"""After a restart, items modified this long before the cursor are read as changed too, for clock
skew between Iterable and the connector and for writes that become visible late."""


class ItemIndex:
    """The items of one catalog as the last pass left them, packed and sorted by the hash of their
    id: per item 8 bytes of id hash, 8 of content fingerprint, 4 of offset, 1 flag and the id."""

    def __init__(self) -> None:
        self.hashes = array("Q")
        self.digests = array("Q")
        self.offsets = array("I", [0])
        self.ids = bytearray()
        self.absent = bytearray()
        """1 for an item the last pass missed: one more miss and it is deleted."""

    def __len__(self) -> int:
        return len(self.hashes)

    def item_id(self, position: int) -> str:
        return self.ids[self.offsets[position] : self.offsets[position + 1]].decode()

    def find(self, item_id: bytes, id_hash: int) -> int:
        """The item's position, or -1."""
        position = bisect.bisect_left(self.hashes, id_hash)
        while position < len(self.hashes) and self.hashes[position] == id_hash:
            if self.ids[self.offsets[position] : self.offsets[position + 1]] == item_id:
                return position
            position += 1
        return -1

    def nbytes(self) -> int:
        arrays = (self.hashes, self.digests, self.offsets)
        return sum(a.buffer_info()[1] * a.itemsize for a in arrays) + len(self.ids) + len(self.absent)


class ItemIndexBuilder:
    """The items one pass saw, in listing order; `build()` sorts them into an `ItemIndex`."""

    def __init__(self) -> None:
        self.unsorted = ItemIndex()

    def add(self, item_id: bytes, id_hash: int, digest: int, absent: bool = False) -> None:
        index = self.unsorted
        index.hashes.append(id_hash)
        index.digests.append(digest)
        index.ids += item_id
        index.offsets.append(len(index.ids))
        index.absent.append(absent)

    def build(self) -> ItemIndex:
        """Sorted by id hash, an item listed twice (the listing shifted) kept once."""
        source, index = self.unsorted, ItemIndex()
        for position in sorted(range(len(source)), key=source.hashes.__getitem__):
            item_id = source.ids[source.offsets[position] : source.offsets[position + 1]]
            id_hash = source.hashes[position]
            if index.hashes and index.hashes[-1] == id_hash and index.find(bytes(item_id), id_hash) >= 0:
                continue
            index.hashes.append(id_hash)
            index.digests.append(source.digests[position])
            index.ids += item_id
            index.offsets.append(len(index.ids))
            index.absent.append(source.absent[position])
        return index


def id_hash(item_id: bytes) -> int:
    return xxhash.xxh3_64_intdigest(item_id)


SINCE_STALE_AFTER = timedelta(hours=1)
"""A pass that changed nothing checkpoints its cursor only once `since` would move this much: each
checkpoint of a tuple cursor makes the CDK run the next pass at once instead of after `interval`."""


@dataclass
class CatalogItems:
    http: HTTPSession
    origin: str
    catalogs: dict[str, ItemIndex] = field(default_factory=dict)
    """Every catalog's items as the previous pass of this process left them."""
    previous_start: datetime | None = None
    """When the previous complete pass of this process started."""

    async def fetch_changes(
        self, log: Logger, cursor: LogCursor
    ) -> AsyncGenerator[CatalogItem | LogCursor, None]:
        position = CatalogItemsCursor.decode(cursor)
        started = datetime.now(tz=UTC)
        first_pass = self.previous_start is None
        catalogs = Catalog.listing(self.http, self.origin)
        listed = list(dict.fromkeys([str(c["name"]) async for c in catalogs(log)]))
        # A catalog the listing missed (it shifted) is still read: only its own 404 says it is gone.
        had = set(self.catalogs) | (set(position.counts or {}) if first_pass else set())
        names = listed + sorted(had - set(listed))
        counts: dict[str, int] = {}
        emitted = deleted = 0
        for name in names:
            pass_ = _CatalogPass(
                name, self.catalogs.get(name), _emit_unknown_since(position, name, first_pass)
            )
            async for doc in pass_.read(self._items(name, log)):
                yield doc
            emitted += pass_.emitted
            if pass_.gone:
                deleted += len(self.catalogs.pop(name, ItemIndex()))
                _warn_if_lost_while_stopped(log, name, position=position, seen=0, first_pass=first_pass)
                continue
            self.catalogs[name] = pass_.finish()
            for item_id in pass_.deleted:
                deleted += 1
                yield _deletion(name, item_id)
            counts[name] = len(self.catalogs[name])
            _warn_if_lost_while_stopped(log, name, position=position, seen=pass_.seen, first_pass=first_pass)
        if emitted or deleted:
            log.info(
                "catalog items changed", {"emitted": emitted, "deleted": deleted, "catalogs": len(counts)}
            )
        since = self.previous_start or position.since
        self.previous_start = started
        if isinstance(cursor, datetime):
            # A cursor of an earlier version: the CDK takes only a later cursor of the same type.
            yield started
        elif emitted or deleted or counts != position.counts or since - position.since >= SINCE_STALE_AFTER:
            # Not after every pass: the CDK calls a fetch again at once after a one-string tuple cursor.
            yield CatalogItemsCursor(since=since, counts=counts).encode()

    async def _items(
        self, name: str, log: Logger
    ) -> AsyncGenerator[tuple[CatalogItem, dict[str, Any]] | None, None]:
        """Every item of the catalog, with the raw object it was read from; None if the catalog is gone."""
        url = api_url(self.origin, CatalogItem.path.format(catalog=quote(name, safe="")))
        pages = paged_items(
            self.http, log, url, params={}, items_key=CatalogItem.items_key, page_size=CatalogItem.page_size
        )
        try:
            async for raw in pages:
                raw.setdefault("catalogName", name)
                yield CatalogItem.model_validate(raw), raw
        except HTTPError as err:
            if err.code != 404:
                raise
            log.info("catalog is gone", {"catalog": name})
            yield None


class _CatalogPass:
    """One pass over one catalog's items, against what the previous pass left."""

    def __init__(self, name: str, before: ItemIndex | None, unknown_since: datetime | None) -> None:
        self.name = name
        self.before = before or ItemIndex()
        self.unknown_since = unknown_since
        self.seen_before = bytearray(len(self.before))
        self.after = ItemIndexBuilder()
        self.gone = False
        self.seen = 0
        self.emitted = 0
        self.deleted: list[str] = []

    async def read(
        self, items: AsyncGenerator[tuple[CatalogItem, dict[str, Any]] | None, None]
    ) -> AsyncGenerator[CatalogItem, None]:
        async for entry in items:
            if entry is None:
                self.gone = True
                for position in range(len(self.before)):
                    yield _deletion(self.name, self.before.item_id(position))
                return
            item, raw = entry
            if self._is_new(item, raw):
                self.emitted += 1
                yield item

    def _is_new(self, item: CatalogItem, raw: dict[str, Any]) -> bool:
        item_id = item.itemId.encode()
        hashed, digest = id_hash(item_id), content_fingerprint(raw)
        position = self.before.find(item_id, hashed)
        if position >= 0:
            if self.seen_before[position]:  # listed twice: the listing shifted between two pages
                return False
            self.seen_before[position] = 1
            self.seen += 1
            self.after.add(item_id, hashed, digest)
            return self.before.digests[position] != digest
        self.seen += 1
        self.after.add(item_id, hashed, digest)
        if self.unknown_since is None:
            return True
        modified = _last_modified(item)
        return modified is None or modified > self.unknown_since

    def finish(self) -> ItemIndex:
        """The catalog's new index; items missed twice in a row are in `deleted`."""
        for position, seen in enumerate(self.seen_before):
            if seen:
                continue
            if self.before.absent[position]:
                self.deleted.append(self.before.item_id(position))
            else:
                item_id = bytes(
                    self.before.ids[self.before.offsets[position] : self.before.offsets[position + 1]]
                )
                self.after.add(
                    item_id, self.before.hashes[position], self.before.digests[position], absent=True
                )
        return self.after.build()


def _emit_unknown_since(position: CatalogItemsCursor, name: str, first_pass: bool) -> datetime | None:
    """Items this process does not know are emitted if modified after the returned time; None
    emits them all. Only the first pass after a start, in a catalog the state says was had, can
    tell new items from ones emitted before the restart by their `lastModified`."""
    if first_pass and (position.counts is None or name in position.counts):
        return position.since - LAST_MODIFIED_OVERLAP
    return None


def _warn_if_lost_while_stopped(
    log: Logger, name: str, *, position: CatalogItemsCursor, seen: int, first_pass: bool
) -> None:
    """Say so when the catalog has fewer items than the cursor recorded before the restart."""
    count = (position.counts or {}).get(name)
    if first_pass and count is not None and seen < count:
        log.warning(
            "catalog items were deleted while the connector was stopped; their deletions cannot be "
            "emitted (backfill the catalog_items binding to resynchronise)",
            {"catalog": name, "items_before": count, "items_now": seen},
        )


def _last_modified(item: CatalogItem) -> datetime | None:
    """The item's `lastModified`, or None if it has none Python can read (the item is then emitted)."""
    try:
        return datetime.fromisoformat(repair_datetime(item.lastModified)) if item.lastModified else None
    except ValueError:
        return None


def _deletion(catalog: str, item_id: str) -> CatalogItem:
    doc: dict[str, Any] = {"catalogName": catalog, "itemId": item_id, "_meta": {"op": "d"}}
    return CatalogItem.model_validate(doc)
