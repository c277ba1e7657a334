from typing import Any

import pytest

from flow_driver import bindings_from_discovered, encode_state_key, fold_checkpoint, merge_patch
from .driver_helpers import DEFAULT_BINDINGS


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [
        ({"a": 1}, {"b": 2}, {"a": 1, "b": 2}),
        ({"a": {"x": 1, "y": 2}}, {"a": {"y": 3}}, {"a": {"x": 1, "y": 3}}),
        ({"a": {"x": 1, "y": 2}}, {"a": {"y": None}}, {"a": {"x": 1}}),
        ({"a": 1, "b": 2}, {"a": None}, {"b": 2}),
        ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),
        ({"a": {"x": 1}}, {"a": "flat"}, {"a": "flat"}),
        ({"a": "flat"}, {"a": {"x": 1, "gone": None}}, {"a": {"x": 1}}),
        ({}, {"missing": None}, {}),
        ({"a": 1}, ["whole"], ["whole"]),
    ],
)
def test_merge_patch_follows_rfc_7396(target: Any, patch: Any, expected: Any) -> None:
    assert merge_patch(target, patch) == expected


def test_merge_patch_does_not_mutate_its_inputs() -> None:
    target, patch = {"a": {"x": 1}}, {"a": {"y": {"z": 2}}}
    merged = merge_patch(target, patch)
    merged["a"]["y"]["z"] = 99
    assert target == {"a": {"x": 1}} and patch == {"a": {"y": {"z": 2}}}


def test_fold_checkpoint_merges_or_replaces() -> None:
    state = {"bindingStateV1": {"events": {"inc": {"cursor": 1}}, "users": {"inc": {"cursor": 5}}}}
    merged = fold_checkpoint(
        state,
        {
            "state": {
                "updated": {"bindingStateV1": {"events": {"inc": {"cursor": 2}}, "users": None}},
                "mergePatch": True,
            }
        },
    )
    assert merged == {"bindingStateV1": {"events": {"inc": {"cursor": 2}}}}
    replaced = fold_checkpoint(state, {"state": {"updated": {"bindingStateV1": {}}, "mergePatch": False}})
    assert replaced == {"bindingStateV1": {}}
    assert fold_checkpoint(state, {}) == state


@pytest.mark.parametrize(
    ("path", "backfill", "expected"),
    [
        (["events"], 0, "events"),
        (["events"], 2, "events.v2"),
        (["a/b"], 0, "a%2Fb"),
        (["a", "b"], 1, "a%2Fb.v1"),
        (["x+y=z.w_-9"], 0, "x+y=z.w_-9"),
        (["sp ace~!"], 0, "sp%20ace%7E%21"),
        (["café"], 0, "caf%C3%A9"),
    ],
)
def test_encode_state_key(path: list[str], backfill: int, expected: str) -> None:
    assert encode_state_key(path, backfill) == expected


def test_bindings_from_discovered_skips_disabled_by_default() -> None:
    bindings = bindings_from_discovered({"discovered": {"bindings": DEFAULT_BINDINGS}})
    assert [b["collection"]["name"] for b in bindings] == ["acmeCo/events", "acmeCo/users"]
    events = bindings[0]
    assert events == {
        "collection": {
            "name": "acmeCo/events",
            "key": ["/id"],
            "writeSchema": DEFAULT_BINDINGS[0]["documentSchema"],
        },
        "resourceConfig": {"name": "events", "interval": "PT5M"},
        "resourcePath": ["events"],
        "stateKey": "events",
        "backfill": 0,
    }


def test_bindings_from_discovered_options() -> None:
    discovered = {"bindings": DEFAULT_BINDINGS}
    everything = bindings_from_discovered(discovered, include_disabled=True, prefix="other")
    assert [b["collection"]["name"] for b in everything] == [
        "other/events",
        "other/users",
        "other/list_users",
    ]
    chosen = bindings_from_discovered(discovered, only=["list_users", "events"], backfill={"events": 3})
    assert [(b["stateKey"], b["backfill"]) for b in chosen] == [("events.v3", 3), ("list_users", 0)]
    with pytest.raises(ValueError, match="unknown bindings: nope"):
        bindings_from_discovered(discovered, only=["nope"])
