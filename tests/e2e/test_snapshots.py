"""The five snapshot streams against the simulator's ground truth."""

import json
from typing import Any

import pytest

from iterable_simulator.data import OTHER_TEMPLATE_MEDIUMS, TEMPLATE_MEDIUMS, TEMPLATE_TYPES

from .conftest import bindings, driver, small_data

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
    # Stopped after a pass of each binding, however slowly the connector starts on a busy machine.
    second = await d.capture(
        binds, state=first.state, stop_when=lambda p: p.checkpoints >= len(SNAPSHOTS), deadline=30
    )
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


@pytest.mark.asyncio
async def test_templates_of_mediums_the_listing_cannot_filter_by_are_captured(simulator_factory) -> None:
    sim = await simulator_factory(data=small_data(other_medium_templates=2, events={}, users=5))
    d = driver(sim)
    binds = await bindings(d, ["templates"], interval="PT1H")  # one pass
    truth = {t["templateId"]: t for t in sim.records("templates")}
    assert {t["messageMedium"] for t in truth.values()} >= set(OTHER_TEMPLATE_MEDIUMS)

    result = await d.capture(binds, stop_when=lambda p: p.documents >= len(truth), deadline=20)
    result.raise_for_error()
    docs = {
        doc["templateId"]: {k: v for k, v in doc.items() if k != "_meta"}
        for doc in result.docs("acmeCo/templates")
    }
    # Every template once; those the listing cannot filter by come without a medium, which
    # Iterable's template objects do not carry.
    assert len(result.docs("acmeCo/templates")) == len(truth)
    for template_id, template in truth.items():
        if template["messageMedium"] in OTHER_TEMPLATE_MEDIUMS:
            template = {k: v for k, v in template.items() if k != "messageMedium"}
        assert docs[template_id] == template
    # One pass costs one listing per type and filterable medium, and one per type without it.
    listings = [e for e in sim.request_log if e["path"] == "/api/templates"]
    assert len(listings) == len(TEMPLATE_TYPES) * (len(TEMPLATE_MEDIUMS) + 1)
