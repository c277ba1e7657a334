"""Refreshed streams: small resources read whole each interval, emitting only what changed.

The CDK's snapshots key documents by their position in the listing; these streams keep Iterable's
own key, so a pass compares each item's content fingerprint with the previous pass's (kept in the
cursor, so a restart re-emits nothing) and emits new or changed items, and a deletion for each
key that is gone.
"""

from logging import Logger
from typing import Any, AsyncGenerator, AsyncIterator, Callable

import orjson
import xxhash
from estuary_cdk.capture.common import LogCursor

from .models import RefreshCursor, RefreshedStream


def content_fingerprint(item: dict[str, Any]) -> str:
    """A short digest of an API object's whole content, independent of key order."""
    return xxhash.xxh3_64_hexdigest(orjson.dumps(item, option=orjson.OPT_SORT_KEYS))


async def fetch_refreshed(
    stream: type[RefreshedStream],
    list_items: Callable[[Logger], AsyncIterator[dict[str, Any]]],
    log: Logger,
    cursor: LogCursor,
) -> AsyncGenerator[RefreshedStream | LogCursor, None]:
    before = RefreshCursor.decode(cursor).fingerprints
    after: dict[str, str] = {}
    changed = 0
    async for item in list_items(log):
        key = str(item[stream.key_field])
        after[key] = content_fingerprint(item)
        if before.get(key) != after[key]:
            changed += 1
            yield stream.model_validate(item)
    gone = before.keys() - after.keys()
    for key in sorted(gone):
        yield stream.model_validate({stream.key_field: key, "_meta": {"op": "d"}})
    if changed or gone:
        log.info(f"{stream.name} changed", {"changed": changed, "deleted": len(gone), "total": len(after)})
        yield RefreshCursor(fingerprints=after).encode()
