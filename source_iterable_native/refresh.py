"""Refreshed streams: small resources read whole each interval, emitting only what changed.

The CDK's snapshots key documents by their position in the listing; these streams keep Iterable's
own key, so a pass compares each item's content fingerprint with the one remembered in the cursor
(so a restart re-emits nothing) and emits new or changed items. Iterable's page-number listings
shift while they are read, so one pass can miss a live item: an item is emitted as deleted only
when two consecutive passes miss it (docs/refreshed-streams.md).
"""

from logging import Logger
from typing import Any, AsyncGenerator

import orjson
import xxhash
from estuary_cdk.capture.common import LogCursor

from .api import Listing
from .cursors import Fingerprints, RefreshCursor
from .models import RefreshedStream


def content_fingerprint(item: dict[str, Any]) -> int:
    """A 64-bit digest of an API object's whole content, independent of key order."""
    return xxhash.xxh3_64_intdigest(orjson.dumps(item, option=orjson.OPT_SORT_KEYS))


async def fetch_refreshed(
    stream: type[RefreshedStream],
    list_items: Listing,
    log: Logger,
    cursor: LogCursor,
) -> AsyncGenerator[RefreshedStream | LogCursor, None]:
    before = RefreshCursor.decode(cursor)
    seen = Fingerprints()
    changed = 0
    async for item in list_items(log):
        key = str(item[stream.key_field])
        if key in seen:  # listed twice: the listing shifted between two pages
            continue
        seen[key] = content_fingerprint(item)
        if before.fingerprints.get(key) != seen[key]:
            changed += 1
            yield stream.model_validate(item)
    missed = before.fingerprints.keys() - seen.keys()
    gone = sorted(missed & before.absent)
    for key in gone:
        yield stream.model_validate({stream.key_field: key, "_meta": {"op": "d"}})
    absent = frozenset(missed - before.absent)
    for key in absent:
        seen[key] = before.fingerprints[key]
    if changed or gone or absent != before.absent:
        summary = {"changed": changed, "deleted": len(gone), "missed_once": len(absent), "total": len(seen)}
        log.info(f"{stream.name} changed", summary)
        yield RefreshCursor(fingerprints=seen, absent=absent).encode()
