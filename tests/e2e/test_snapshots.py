"""The five snapshot streams against the simulator's ground truth."""

import json
from typing import Any

import pytest

from .conftest import bindings, driver

SNAPSHOTS = ["channels", "lists", "message_types", "metadata_tables", "templates"]


def canonical(docs: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps({k: v for k, v in d.items() if k != "_meta"}, sort_keys=True) for d in docs)


def reduced(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Documents combined by their key, /_meta/row_id, last write winning, deletions applied."""
    by_row = {doc["_meta"]["row_id"]: doc for doc in docs}
    return [doc for doc in by_row.values() if doc["_meta"]["op"] != "d"]


@pytest.mark.asyncio
async def test_snapshots_equal_ground_truth_then_stay_quiet_then_tombstone(simulator_factory) -> None:
    sim = await simulator_factory()
    d = driver(sim)
    binds = await bindings(d, SNAPSHOTS)

    # Three passes per binding: the CDK emits a snapshot's first pass with op "c" and re-emits it
    # once with op "u", after which an unchanged snapshot is quiet.
    first = await d.capture(binds, stop_when=lambda p: p.checkpoints >= 15, deadline=30)
    first.raise_for_error()
    for name in SNAPSHOTS:
        assert canonical(reduced(first.docs(f"acmeCo/{name}"))) == canonical(sim.records(name)), name
    assert all(doc["_meta"]["op"] in ("c", "u") for _, doc in first.documents)

    # A second session on unchanged data emits nothing, resuming from the folded state.
    second = await d.capture(binds, state=first.state, deadline=4)
    second.raise_for_error()
    assert second.documents == []
    assert second.checkpoints > 0

    # A removed channel comes back as a tombstone.
    removed = sim.records("channels")[-1]
    sim.remove("channels", removed["id"])
    third = await d.capture(binds, state=second.state, stop_when=lambda p: p.documents > 0, deadline=15)
    third.raise_for_error()
    channels = third.docs("acmeCo/channels")
    assert [doc["_meta"]["op"] for doc in channels].count("d") == 1
    assert canonical(reduced(first.docs("acmeCo/channels") + channels)) == canonical(sim.records("channels"))
    assert {name for name, _ in third.documents} == {"acmeCo/channels"}
