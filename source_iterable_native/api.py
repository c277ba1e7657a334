"""Fetch functions for Iterable's JSON endpoints: pure async functions yielding documents."""

from logging import Logger
from typing import Any, AsyncGenerator, TypeVar

from estuary_cdk.http import HTTPSession
from pydantic import BaseModel

from .models import SnapshotStream, Template

TEMPLATES_PAGE_SIZE = 1000

S = TypeVar("S", bound=SnapshotStream)


def api_url(origin: str, path: str) -> str:
    return f"{origin}/api/{path}"


class _Envelope(BaseModel, extra="allow"):
    """Iterable wraps every listing in an object; the items sit under a stream-specific key."""

    nextPageUrl: str | None = None

    def items(self, key: str) -> list[dict[str, Any]]:
        extra = self.model_extra or {}
        items = extra.get(key)
        if not isinstance(items, list):
            raise RuntimeError(
                f"Iterable's response has no '{key}' array (keys: {sorted(extra)}); "
                "the API may have changed shape"
            )
        return items


async def _get_envelope(
    http: HTTPSession, log: Logger, url: str, params: dict[str, Any] | None = None
) -> _Envelope:
    return _Envelope.model_validate_json(await http.request(log, url, params=params))


async def snapshot_resource(
    http: HTTPSession, origin: str, stream: type[S], log: Logger
) -> AsyncGenerator[S, None]:
    """Every item of an unpaged listing such as `GET /api/channels`."""
    envelope = await _get_envelope(http, log, api_url(origin, stream.path))
    for item in envelope.items(stream.items_key):
        yield stream.model_validate(item)


async def pages(
    http: HTTPSession,
    log: Logger,
    url: str,
    params: dict[str, Any],
    items_key: str,
    page_size: int,
) -> AsyncGenerator[list[dict[str, Any]], None]:
    """The items of a `page`/`pageSize` listing, one page at a time, until Iterable stops
    offering a `nextPageUrl` (the unpaged form of these listings is deprecated)."""
    page = 1
    while True:
        envelope = await _get_envelope(http, log, url, {**params, "page": page, "pageSize": page_size})
        items = envelope.items(items_key)
        yield items
        if not envelope.nextPageUrl or len(items) < page_size:
            return
        page += 1


async def snapshot_templates(
    http: HTTPSession, origin: str, log: Logger
) -> AsyncGenerator[Template, None]:
    """Every template of every type and medium; the listing filters by both."""
    for template_type in Template.TEMPLATE_TYPES:
        for medium in Template.MESSAGE_MEDIUMS:
            params = {"templateType": template_type, "messageMedium": medium, "sort": "+id"}
            url = api_url(origin, Template.path)
            async for items in pages(http, log, url, params, Template.items_key, TEMPLATES_PAGE_SIZE):
                for item in items:
                    item.setdefault("templateType", template_type)
                    item.setdefault("messageMedium", medium)
                    yield Template.model_validate(item)
