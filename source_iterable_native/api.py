"""Fetch functions for Iterable's JSON endpoints: pure async functions yielding items.

They read what they need off the stream class they are given (see the protocols below), and never
import the stream classes, which name these functions as their listings.
"""

from collections.abc import Callable
from logging import Logger
from typing import Any, AsyncGenerator, AsyncIterator, ClassVar, Protocol, TypeVar

from estuary_cdk.capture.common import BaseDocument
from estuary_cdk.http import HTTPSession
from pydantic import BaseModel, model_validator

Listing = Callable[[Logger], AsyncIterator[dict[str, Any]]]
"""Every item of one stream's listing, as Iterable sent it."""

D = TypeVar("D", bound=BaseDocument)


class Listed(Protocol):
    path: ClassVar[str]
    items_key: ClassVar[str]


class Paged(Listed, Protocol):
    page_size: ClassVar[int]


class Journeys(Paged, Protocol):
    STATE_FILTERS: ClassVar[tuple[str | None, ...]]


class Templates(Paged, Protocol):
    TEMPLATE_TYPES: ClassVar[tuple[str, ...]]
    MESSAGE_MEDIUMS: ClassVar[tuple[str, ...]]


def api_url(origin: str, path: str) -> str:
    return f"{origin}/api/{path}"


class _Envelope(BaseModel, extra="allow"):
    """Iterable wraps every listing in an object; the items sit under a stream-specific key."""

    nextPageUrl: str | None = None

    @model_validator(mode="before")
    @classmethod
    def unwrap_success(cls, data: Any) -> Any:
        """Catalog listings arrive wrapped as `{msg, code: "Success", params: {...}}`."""
        if isinstance(data, dict) and "code" in data and isinstance(data.get("params"), dict):
            return data["params"]
        return data

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


async def snapshot(stream: type[D], list_items: Listing, log: Logger) -> AsyncGenerator[D, None]:
    """Every item of the stream's listing, as the stream's documents."""
    async for item in list_items(log):
        yield stream.model_validate(item)


async def paged_items(
    http: HTTPSession,
    log: Logger,
    url: str,
    *,
    params: dict[str, Any],
    items_key: str,
    page_size: int,
) -> AsyncGenerator[dict[str, Any], None]:
    """Every item of a `page`/`pageSize` listing, page after page, until Iterable stops offering
    a `nextPageUrl` (the unpaged form of these listings is deprecated)."""
    page = 1
    while True:
        envelope = await _get_envelope(http, log, url, {**params, "page": page, "pageSize": page_size})
        items = envelope.items(items_key)
        for item in items:
            yield item
        if not envelope.nextPageUrl or len(items) < page_size:
            return
        page += 1


def list_paged(
    stream: type[Paged], http: HTTPSession, origin: str, log: Logger
) -> AsyncGenerator[dict[str, Any], None]:
    """Every item of a paged listing such as `GET /api/catalogs`."""
    url = api_url(origin, stream.path)
    return paged_items(http, log, url, params={}, items_key=stream.items_key, page_size=stream.page_size)


async def list_unpaged(
    stream: type[Listed], http: HTTPSession, origin: str, log: Logger
) -> AsyncGenerator[dict[str, Any], None]:
    """Every item of an unpaged listing such as `GET /api/channels`."""
    envelope = await _get_envelope(http, log, api_url(origin, stream.path))
    for item in envelope.items(stream.items_key):
        yield item


async def list_templates(
    stream: type[Templates], http: HTTPSession, origin: str, log: Logger
) -> AsyncGenerator[dict[str, Any], None]:
    """Every template of every type: those of each medium the listing can filter by, then those the
    unfiltered listing adds (WebPush, Embedded, WhatsApp and any other medium), without a medium."""
    url = api_url(origin, stream.path)
    for template_type in stream.TEMPLATE_TYPES:
        seen: set[Any] = set()
        for medium in (*stream.MESSAGE_MEDIUMS, None):
            params = {
                "templateType": template_type,
                "sort": "+id",
                **({"messageMedium": medium} if medium else {}),
            }
            pages = paged_items(
                http, log, url, params=params, items_key=stream.items_key, page_size=stream.page_size
            )
            async for item in pages:
                template_id = item.get("templateId")
                if template_id in seen:
                    continue
                if template_id is not None:
                    seen.add(template_id)
                item.setdefault("templateType", template_type)
                if medium:
                    item.setdefault("messageMedium", medium)
                yield item


async def list_journeys(
    stream: type[Journeys], http: HTTPSession, origin: str, log: Logger
) -> AsyncGenerator[dict[str, Any], None]:
    """Every journey: the default listing, then the archived ones it leaves out."""
    url = api_url(origin, stream.path)
    for state in stream.STATE_FILTERS:
        params = {"sort": "+id", **({"state": state} if state else {})}
        pages = paged_items(
            http, log, url, params=params, items_key=stream.items_key, page_size=stream.page_size
        )
        async for item in pages:
            yield item


async def list_user_fields(
    stream: type[Listed], http: HTTPSession, origin: str, log: Logger
) -> AsyncGenerator[dict[str, Any], None]:
    """One item per user profile field: Iterable answers with a map of field name to type."""
    envelope = await _get_envelope(http, log, api_url(origin, stream.path))
    fields = (envelope.model_extra or {}).get(stream.items_key)
    if not isinstance(fields, dict):
        raise RuntimeError(f"Iterable's {stream.path} response has no '{stream.items_key}' map")
    for name, field_type in fields.items():
        yield {"name": name, "type": field_type}
