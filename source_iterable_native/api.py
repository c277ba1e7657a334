"""Fetch functions for Iterable's JSON endpoints: pure async functions yielding documents."""

from logging import Logger
from typing import Any, AsyncGenerator, TypeVar

from estuary_cdk.http import HTTPSession
from pydantic import BaseModel, model_validator

from .models import Catalog, Journey, SnapshotStream, Template, UserField

TEMPLATES_PAGE_SIZE = 1000

S = TypeVar("S", bound=SnapshotStream)


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


async def snapshot_resource(
    http: HTTPSession, origin: str, stream: type[S], log: Logger
) -> AsyncGenerator[S, None]:
    """Every item of an unpaged listing such as `GET /api/channels`."""
    async for item in list_unpaged(http, origin, stream.path, stream.items_key, log):
        yield stream.model_validate(item)


async def paged_items(
    http: HTTPSession,
    log: Logger,
    url: str,
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


async def snapshot_templates(http: HTTPSession, origin: str, log: Logger) -> AsyncGenerator[Template, None]:
    """Every template of every type: those of each medium the listing can filter by, then those the
    unfiltered listing adds (WebPush, Embedded, WhatsApp and any other medium), without a medium."""
    url = api_url(origin, Template.path)
    for template_type in Template.TEMPLATE_TYPES:
        seen: set[Any] = set()
        for medium in (*Template.MESSAGE_MEDIUMS, None):
            params = {
                "templateType": template_type,
                "sort": "+id",
                **({"messageMedium": medium} if medium else {}),
            }
            async for item in paged_items(http, log, url, params, Template.items_key, TEMPLATES_PAGE_SIZE):
                template_id = item.get("templateId")
                if template_id in seen:
                    continue
                if template_id is not None:
                    seen.add(template_id)
                item.setdefault("templateType", template_type)
                if medium:
                    item.setdefault("messageMedium", medium)
                yield Template.model_validate(item)


async def list_journeys(http: HTTPSession, origin: str, log: Logger) -> AsyncGenerator[dict[str, Any], None]:
    """Every journey: the default listing, then the archived ones it leaves out."""
    url = api_url(origin, Journey.path)
    for state in Journey.STATE_FILTERS:
        params = {"sort": "+id", **({"state": state} if state else {})}
        async for item in paged_items(http, log, url, params, Journey.items_key, Journey.PAGE_SIZE):
            yield item


def list_catalogs(http: HTTPSession, origin: str, log: Logger) -> AsyncGenerator[dict[str, Any], None]:
    return paged_items(http, log, api_url(origin, Catalog.path), {}, Catalog.items_key, Catalog.PAGE_SIZE)


async def list_user_fields(
    http: HTTPSession, origin: str, log: Logger
) -> AsyncGenerator[dict[str, Any], None]:
    """One item per user profile field: Iterable answers with a map of field name to type."""
    envelope = await _get_envelope(http, log, api_url(origin, UserField.path))
    fields = (envelope.model_extra or {}).get(UserField.items_key)
    if not isinstance(fields, dict):
        raise RuntimeError(f"Iterable's {UserField.path} response has no '{UserField.items_key}' map")
    for name, field_type in fields.items():
        yield {"name": name, "type": field_type}


async def list_unpaged(
    http: HTTPSession, origin: str, path: str, items_key: str, log: Logger
) -> AsyncGenerator[dict[str, Any], None]:
    """Every item of an unpaged listing such as `GET /api/snippets`, as Iterable sent it."""
    envelope = await _get_envelope(http, log, api_url(origin, path))
    for item in envelope.items(items_key):
        yield item
