"""Fetch functions for Iterable's JSON endpoints: pure async functions yielding documents."""

from logging import Logger
from typing import Any, AsyncGenerator

from estuary_cdk.http import HTTPSession
from pydantic import BaseModel

from .models import SnapshotStream, Template

TEMPLATES_PAGE_SIZE = 1000


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
    http: HTTPSession, origin: str, stream: type[SnapshotStream], log: Logger
) -> AsyncGenerator[SnapshotStream, None]:
    """Every item of an unpaged listing such as `GET /api/channels`."""
    envelope = await _get_envelope(http, log, api_url(origin, stream.path))
    for item in envelope.items(stream.items_key):
        yield stream.model_validate(item)


async def snapshot_templates(
    http: HTTPSession, origin: str, log: Logger
) -> AsyncGenerator[Template, None]:
    """Every template of every type and medium, paged explicitly (unpaged listing is deprecated)."""
    for template_type in Template.TEMPLATE_TYPES:
        for medium in Template.MESSAGE_MEDIUMS:
            page = 1
            while True:
                envelope = await _get_envelope(
                    http,
                    log,
                    api_url(origin, Template.path),
                    {
                        "templateType": template_type,
                        "messageMedium": medium,
                        "page": page,
                        "pageSize": TEMPLATES_PAGE_SIZE,
                        "sort": "+id",
                    },
                )
                items = envelope.items(Template.items_key)
                for item in items:
                    item.setdefault("templateType", template_type)
                    item.setdefault("messageMedium", medium)
                    yield Template.model_validate(item)
                if not envelope.nextPageUrl or len(items) < TEMPLATES_PAGE_SIZE:
                    break
                page += 1
