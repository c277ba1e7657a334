"""The stream registry and what each stream class tells Flow about its binding."""

from typing import Any

import pytest

from source_iterable_native.models import (
    STREAMS,
    Campaign,
    CatalogItem,
    Event,
    ExperimentMetrics,
    ListMember,
    UserByEmail,
    UserField,
    key_schemas,
)


def test_every_stream_is_registered_once_under_its_own_name() -> None:
    names = [stream.name for stream in STREAMS]
    assert len(names) == len(set(names)) == 16


@pytest.mark.parametrize(
    ("stream", "key", "schemas"),
    [
        (
            Event,
            Event.key,
            {
                "_estuary_id": {"type": "string", "minLength": 32, "maxLength": 32},
                "eventType": {"type": "string"},
            },
        ),
        (Campaign, Campaign.key, {"id": {"type": "integer"}}),
        (CatalogItem, CatalogItem.key, {"catalogName": {"type": "string"}, "itemId": {"type": "string"}}),
        (
            ExperimentMetrics,
            ExperimentMetrics.key,
            {"experimentId": {"type": "integer"}, "variantKey": {"type": "string"}},
        ),
        (ListMember, ListMember.key, {"list_id": {"type": "integer"}, "user_id": {"type": "string"}}),
        (UserByEmail, UserByEmail.key, {"email": {"type": "string"}}),
        (UserField, ["/name"], {"name": {"type": "string"}}),
    ],
)
def test_key_schemas_state_what_the_model_knows_and_no_annotations(
    stream: Any, key: list[str], schemas: dict[str, Any]
) -> None:
    assert key_schemas(stream, key) == schemas
