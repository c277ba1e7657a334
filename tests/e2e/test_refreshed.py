"""journeys, snippets, user_fields, catalogs, catalog_items and experiment_metrics end to end."""

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from flow_driver.protocol import CaptureProgress
from iterable_simulator import Simulator

from .conftest import bindings, driver, endpoint_config, listing_passes, small_data
from .test_campaigns import lifetime_dates, metrics_dates

REFRESHED = {"journeys": "id", "snippets": "id", "user_fields": "name", "catalogs": "name"}


def keyed(docs: list[dict[str, Any]], *key: str) -> dict[Any, dict[str, Any]]:
    """Documents combined by key, last write winning, deletions applied, without _meta."""
    combined: dict[Any, dict[str, Any]] = {}
    for doc in docs:
        k = tuple(doc[f] for f in key)
        if doc.get("_meta", {}).get("op") == "d":
            combined.pop(k, None)
        else:
            combined[k] = {f: v for f, v in doc.items() if f != "_meta"}
    return combined


def truth(sim: Simulator, name: str, *key: str) -> dict[Any, dict[str, Any]]:
    return {tuple(r[f] for f in key): r for r in sim.records(name)}


@pytest.mark.asyncio
async def test_refreshed_streams_equal_ground_truth_emit_only_changes_and_deletions(
    simulator_factory,
) -> None:
    sim = await simulator_factory(data=small_data(journeys=60, events={}, users=30))
    d = driver(sim)
    binds = await bindings(d, [*REFRESHED])
    journeys = sim.records("journeys")
    assert {j["isArchived"] for j in journeys} == {True, False} and len(journeys) > 50
    total = sum(len(sim.records(name)) for name in REFRESHED)

    first = await d.capture(binds, stop_when=lambda p: p.documents >= total, deadline=20)
    first.raise_for_error()
    for name, key in REFRESHED.items():
        assert keyed(first.docs(f"acmeCo/{name}"), key) == truth(sim, name, key), name
        assert len(first.docs(f"acmeCo/{name}")) == len(sim.records(name)), name

    # Nothing changed: a new session emits nothing, resuming from the folded state.
    listings = ["/api/journeys", "/api/snippets", "/api/users/getFields", "/api/catalogs"]
    mark = len(sim.request_log)

    def each_listing_read_whole(_: CaptureProgress) -> bool:
        return all(listing_passes(sim, path, mark) >= 2 for path in listings)

    quiet = await d.capture(binds, state=first.state, stop_when=each_listing_read_whole, deadline=30)
    quiet.raise_for_error()
    assert quiet.stopped_by == "stop_when", "some binding never finished a pass"
    assert quiet.documents == [] and quiet.uncommitted == []

    archived = next(j for j in journeys if j["isArchived"])
    sim.update_record("journeys", archived["id"], name="Renamed while archived")
    snippet = sim.records("snippets")[0]
    sim.remove("snippets", snippet["id"])
    removed_catalog = sim.records("catalogs")[-1]["name"]
    sim.remove("catalogs", removed_catalog)

    second = await d.capture(binds, state=quiet.state, stop_when=lambda p: p.documents >= 3, deadline=10)
    second.raise_for_error()
    assert [(doc["id"], doc["name"]) for doc in second.docs("acmeCo/journeys")] == [
        (archived["id"], "Renamed while archived")
    ]
    assert second.docs("acmeCo/snippets") == [{"id": snippet["id"], "_meta": {"op": "d"}}]
    assert second.docs("acmeCo/catalogs") == [{"name": removed_catalog, "_meta": {"op": "d"}}]
    assert {name for name, _ in second.documents} == {"acmeCo/journeys", "acmeCo/snippets", "acmeCo/catalogs"}


@pytest.mark.asyncio
async def test_catalog_items_incremental_on_last_modified_with_deletions(simulator_factory) -> None:
    sim = await simulator_factory(data=small_data(catalogs=3, catalog_items=250, events={}, users=5))
    d = driver(sim)
    binds = await bindings(d, ["catalog_items"])
    items = sim.records("catalog_items")
    catalog = items[0]["catalogName"]
    gone_item, edited_item = [i["itemId"] for i in items if i["catalogName"] == catalog][:2]
    dropped_catalog = items[-1]["catalogName"]
    dropped_items = {i["itemId"] for i in items if i["catalogName"] == dropped_catalog}
    changes: list[str] = []

    def change_once_backfilled(progress: CaptureProgress) -> None:
        # Within one session: the connector remembers what the previous pass saw.
        if progress.documents >= len(items) and not changes:
            sim.remove("catalog_items", (catalog, gone_item))
            sim.put_catalog_item(catalog, edited_item, {"title": "new title", "price": 1.0})
            sim.remove("catalogs", dropped_catalog)
            changes.append("done")

    expected = len(items) + 2 + len(dropped_items)
    result = await d.capture(
        binds, on_progress=change_once_backfilled, stop_when=lambda p: p.documents >= expected, deadline=20
    )
    result.raise_for_error()
    docs = result.docs("acmeCo/catalog_items")
    assert keyed(docs[: len(items)], "catalogName", "itemId") == {
        (i["catalogName"], i["itemId"]): i for i in items
    }
    later = {
        (doc["catalogName"], doc["itemId"], doc.get("_meta", {}).get("op")) for doc in docs[len(items) :]
    }
    assert later == {(catalog, gone_item, "d"), (catalog, edited_item, None)} | {
        (dropped_catalog, item_id, "d") for item_id in dropped_items
    }
    assert keyed(docs, "catalogName", "itemId") == truth(sim, "catalog_items", "catalogName", "itemId")


def typed_cell(value: str) -> Any:
    try:
        return int(value)
    except ValueError:
        return float(value) if value.replace(".", "", 1).isdigit() else value


# Header style -> the column whose value becomes /variantKey (None: one row per experiment), and
# the id columns the connector also writes under their camelCase names.
EXPERIMENT_VARIANT_COLUMN = {
    "experimentId": "templateId", "Experiment ID": "Template ID", "experiment_id": "variant_name",
    "per experiment": None,
}  # fmt: skip
EXPERIMENT_ID_COLUMNS = {
    "experimentId": {"experimentId": "experimentId", "campaignId": "campaignId", "templateId": "templateId"},
    "Experiment ID": {
        "experimentId": "Experiment ID",
        "campaignId": "Campaign ID",
        "templateId": "Template ID",
    },
    "experiment_id": {"experimentId": "experiment_id", "campaignId": "campaign_id"},
    "per experiment": {"experimentId": "experimentId", "campaignId": "campaignId"},
}


@pytest.mark.asyncio
@pytest.mark.parametrize("style", sorted(EXPERIMENT_VARIANT_COLUMN))
async def test_experiment_metrics_keyed_by_whatever_header_iterable_sends(simulator_factory, style) -> None:
    sim = await simulator_factory(
        data=small_data(campaigns=60, experiments=3, events={}, users=20), experiment_metrics_header=style
    )
    d = driver(sim)
    binds = await bindings(d, ["experiment_metrics"], interval="PT1H")
    header, rows = sim.experiment_metrics_table([], [])
    assert len(rows) == (3 if style == "per experiment" else 6)
    variant_column, id_columns = EXPERIMENT_VARIANT_COLUMN[style], EXPERIMENT_ID_COLUMNS[style]

    started = datetime.now(tz=UTC)
    result = await d.capture(binds, stop_when=lambda p: p.documents >= len(rows), deadline=30)
    result.raise_for_error()
    docs = keyed(result.docs("acmeCo/experiment_metrics"), "experimentId", "variantKey")
    expected = {}
    for row in rows:
        # Every column as Iterable names it, numbers typed, plus the ids under their camelCase names
        # and the variant key.
        cells = {name: typed_cell(value) for name, value in zip(header, row)}
        ids = {field: cells[column] for field, column in id_columns.items()}
        variant_key = "" if variant_column is None else str(cells[variant_column])
        expected[(ids["experimentId"], variant_key)] = {**cells, **ids, "variantKey": variant_key}
    assert docs == expected
    assert len(result.docs("acmeCo/experiment_metrics")) == len(rows)
    requests = [e for e in sim.request_log if e["path"] == "/api/experiments/metrics"]
    assert requests and all(sum(1 for k, _ in e["query"] if k == "campaignId") <= 80 for e in requests)
    email = {c["id"] for c in sim.records("campaigns") if c["messageMedium"] == "Email"}
    assert {int(v) for e in requests for k, v in e["query"] if k == "campaignId"} <= email
    assert metrics_dates(sim, "/api/experiments/metrics") <= lifetime_dates(started)


@pytest.mark.asyncio
async def test_experiment_metrics_without_an_experiment_id_column_stop_that_binding_only(
    simulator_factory,
) -> None:
    sim = await simulator_factory(
        data=small_data(campaigns=60, experiments=3, events={}, users=20),
        experiment_metrics_header="no experiment id",
    )
    d = driver(sim)
    binds = await bindings(d, ["experiment_metrics", "snippets"])
    header, _ = sim.experiment_metrics_table([], [])
    snippets = len(sim.records("snippets"))

    def stalled_and_others_done(progress: CaptureProgress) -> bool:
        asked = any(e["path"] == "/api/experiments/metrics" for e in sim.request_log)
        return asked and progress.per_collection.get("acmeCo/snippets", 0) >= snippets

    result = await d.capture(binds, stop_when=stalled_and_others_done, deadline=30)
    result.raise_for_error()
    assert result.docs("acmeCo/experiment_metrics") == []
    assert len(result.docs("acmeCo/snippets")) == snippets  # the other bindings keep flowing
    errors = [log["msg"] for log in result.logs if "experiment_metrics:" in str(log.get("msg"))]
    assert set(errors) == {
        "experiment_metrics: Iterable's experiments/metrics CSV has no experiment id column, so its rows "
        f"cannot be keyed; header received: {','.join(header)!r}. This binding captures nothing more until "
        "the connector restarts; if this persists, disable the experiment_metrics binding and report the "
        "header to Estuary."
    }
    # Stalled, not spinning: one request each for the backfill and the incremental pass.
    requests = [e for e in sim.request_log if e["path"] == "/api/experiments/metrics"]
    assert 1 <= len(requests) == len(errors) <= 2
    # The backfill is not over: the next session asks again.
    assert result.state["bindingStateV1"]["experiment_metrics"]["backfill"] is not None


@pytest.mark.asyncio
async def test_a_key_that_may_not_read_an_endpoint_fails_that_binding_with_advice(simulator_factory) -> None:
    sim = await simulator_factory(data=small_data(events={}, users=5))
    d = driver(sim, config=endpoint_config(sim))
    binds = await bindings(d, ["snippets"])
    sim.config.api_key = "another-projects-key"  # Iterable now refuses the capture's key
    result = await d.capture(binds, deadline=10)
    assert result.rc != 0
    assert result.error is not None
    assert "snippets: Iterable refused the API key (HTTP 401" in result.error
    assert "disable the snippets binding" in result.error


def shifts(sim: Simulator) -> int:
    return sum(1 for f in sim.injected_faults if f["fault"] == "listing_shift")


@pytest.mark.asyncio
async def test_refreshed_item_missed_by_a_shifting_listing_is_not_deleted(simulator_factory) -> None:
    sim = await simulator_factory(data=small_data(journeys=130, events={}, users=5))
    d = driver(sim)
    binds = await bindings(d, ["journeys"])
    journeys = sim.records("journeys")
    assert sum(not j["isArchived"] for j in journeys) > 50  # the default listing has a second page
    first = await d.capture(binds, stop_when=lambda p: p.documents >= len(journeys), deadline=20)
    first.raise_for_error()

    # The next second page of the listing starts one journey late, as if one before it had been
    # deleted elsewhere: that pass misses a live journey.
    sim.faults.shift_listing("/api/journeys", count=1, offset=1)
    quiet = await d.capture(binds, state=first.state, stop_when=lambda p: p.checkpoints >= 2, deadline=15)
    quiet.raise_for_error()
    assert shifts(sim) == 1
    assert quiet.documents == []

    gone = journeys[0]["id"]
    sim.remove("journeys", gone)
    second = await d.capture(binds, state=quiet.state, stop_when=lambda p: p.documents >= 1, deadline=10)
    second.raise_for_error()
    assert second.docs("acmeCo/journeys") == [{"id": gone, "_meta": {"op": "d"}}]


@pytest.mark.slow
@pytest.mark.asyncio
async def test_catalog_items_missed_by_a_shifting_listing_stay_live_and_unknown_items_are_emitted(
    simulator_factory,
) -> None:
    sim = await simulator_factory(data=small_data(catalogs=2, catalog_items=1200, events={}, users=5))
    d = driver(sim)
    binds = await bindings(d, ["catalog_items"])
    items = sim.records("catalog_items")
    catalog = items[0]["catalogName"]
    old = {**items[5], "itemId": f"{catalog}-late", "value": {"title": "written long ago, listed only now"}}
    steps: list[str] = []

    def change_once_backfilled(progress: CaptureProgress) -> None:
        if progress.documents >= len(items) and not steps:
            # Page 2 of the next read starts one item late: item 1000 is missed by that pass.
            sim.faults.shift_listing(f"/api/catalogs/{catalog}/items", count=1, offset=1)
            sim.data.catalogs[catalog].append(old)  # its lastModified is as old as the others'
            steps.append("shifted")

    result = await d.capture(
        binds,
        on_progress=change_once_backfilled,
        stop_when=lambda p: p.documents >= len(items) + 1,
        deadline=20,
    )
    result.raise_for_error()
    # A restart, then more passes: stopped once the restart's pass and the one after it are over.
    mark = len(sim.request_log)
    items_path = f"/api/catalogs/{catalog}/items"
    tail = await d.capture(
        binds, state=result.state, stop_when=lambda _: listing_passes(sim, items_path, mark) >= 3, deadline=30
    )
    assert tail.stopped_by == "stop_when", "the restarted capture did not read the catalog three times"
    tail.raise_for_error()
    assert shifts(sim) == 1
    docs = result.docs("acmeCo/catalog_items") + tail.docs("acmeCo/catalog_items")
    assert [doc for doc in docs if doc.get("_meta", {}).get("op") == "d"] == []
    assert (catalog, old["itemId"]) in keyed(docs[len(items) :], "catalogName", "itemId")
    assert keyed(docs, "catalogName", "itemId") == truth(sim, "catalog_items", "catalogName", "itemId")
    pages = [e for e in sim.request_log if e["path"].endswith("/items")]
    assert {dict(e["query"])["pageSize"] for e in pages} == {"1000"}


@pytest.mark.asyncio
async def test_catalog_missing_from_a_shifting_listing_keeps_its_items(simulator_factory) -> None:
    sim = await simulator_factory(data=small_data(catalogs=101, catalog_items=1, events={}, users=5))
    d = driver(sim)
    binds = await bindings(d, ["catalog_items", "catalogs"])
    items = sim.records("catalog_items")
    total = len(items) + len(sim.records("catalogs"))
    first = await d.capture(binds, stop_when=lambda p: p.documents >= total, deadline=30)
    first.raise_for_error()

    # The next two second pages of the catalogs listing start one late: each stream's next pass
    # misses the 101st catalog. Three passes later it is really deleted.
    sim.faults.shift_listing("/api/catalogs", count=2, offset=1)
    mark = len(sim.request_log)
    removed = sim.records("catalogs")[-1]["name"]

    async def remove_after_three_passes() -> None:
        # Watches the request log, not the capture's progress: passes that change nothing checkpoint nothing.
        while True:
            listings = [
                e
                for e in sim.request_log[mark:]
                if e["path"] == "/api/catalogs" and ("page", "1") in e["query"]
            ]
            if len(listings) >= 6:
                sim.remove("catalogs", removed)
                return
            await asyncio.sleep(0.02)

    remover = asyncio.create_task(remove_after_three_passes())
    try:
        second = await d.capture(binds, state=first.state, stop_when=lambda p: p.documents >= 2, deadline=30)
    finally:
        remover.cancel()
    second.raise_for_error()
    assert shifts(sim) == 2
    assert second.docs("acmeCo/catalogs") == [{"name": removed, "_meta": {"op": "d"}}]
    assert [
        (doc["catalogName"], doc.get("_meta", {}).get("op")) for doc in second.docs("acmeCo/catalog_items")
    ] == [(removed, "d")]
