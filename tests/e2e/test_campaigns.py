"""campaigns and campaign_metrics against the simulator's ground truth."""

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from iterable_simulator import Simulator

from .conftest import bindings, driver, listing_passes, small_data

NOT_LAUNCHED = {"Draft", "Scheduled", "Recurring", "Starting"}
RUNNING = {"Ready", "Running", "Recalling"}
ENDED = {"Aborted", "Archived", "Finished", "Recalled"}
LOOKBACK_MS = 15 * 86400 * 1000


def by_id(docs: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Documents combined by /id, last write winning, without _meta."""
    return {doc["id"]: {k: v for k, v in doc.items() if k != "_meta"} for doc in docs}


def metrics_requests(sim: Simulator, since: int = 0) -> list[list[int]]:
    """The campaign ids of each campaigns/metrics request, in order."""
    return [
        [int(value) for name, value in entry["query"] if name == "campaignId"]
        for entry in sim.request_log[since:]
        if entry["path"] == "/api/campaigns/metrics"
    ]


def metrics_dates(sim: Simulator, path: str = "/api/campaigns/metrics") -> set[tuple[tuple[str, str], ...]]:
    """The date parameters of every request to a metrics endpoint."""
    return {
        tuple((name, value) for name, value in entry["query"] if name.endswith("DateTime"))
        for entry in sim.request_log
        if entry["path"] == path
    }


def lifetime_dates(since: datetime) -> set[tuple[tuple[str, str], ...]]:
    """The dates a lifetime metrics request sent between `since` and now carries: 1970 to tomorrow."""
    days = {(moment + timedelta(days=1)).date().isoformat() for moment in (since, datetime.now(tz=UTC))}
    return {(("startDateTime", "1970-01-01"), ("endDateTime", day)) for day in days}


def typed_metrics(row: dict[str, str]) -> dict[str, Any]:
    def number(text: str) -> int | float:
        return int(text) if text.lstrip("-").isdigit() else float(text)

    return {name: number(value) for name, value in row.items() if value != ""}


@pytest.mark.asyncio
async def test_campaigns_backfill_update_and_state_change_without_updated_at(simulator_factory) -> None:
    sim = await simulator_factory()
    d = driver(sim)
    binds = await bindings(d, ["campaigns"])
    total = len(sim.records("campaigns"))

    first = await d.capture(binds, stop_when=lambda p: p.documents >= total, deadline=20)
    first.raise_for_error()
    assert by_id(first.docs("acmeCo/campaigns")) == {c["id"]: c for c in sim.records("campaigns")}
    assert len(first.docs("acmeCo/campaigns")) == total

    # Nothing changed: a new session resumes from the folded state and emits nothing.
    mark = len(sim.request_log)
    quiet = await d.capture(
        binds,
        state=first.state,
        stop_when=lambda _: listing_passes(sim, "/api/campaigns", mark) >= 2,
        deadline=30,
    )
    quiet.raise_for_error()
    assert quiet.stopped_by == "stop_when", "a whole pass over the campaigns never happened"
    assert quiet.documents == [] and quiet.uncommitted == []

    campaigns = sim.records("campaigns")
    edited = next(c for c in campaigns if c["campaignState"] in ENDED)
    running = next(c for c in campaigns if c["campaignState"] == "Running")
    scheduled = next(c for c in campaigns if c["campaignState"] == "Scheduled")
    now_ms = int(time.time() * 1000)
    sim.update_campaign(edited["id"], name="Renamed", updatedAt=now_ms)
    # Iterable moves campaigns through their states without touching updatedAt.
    sim.update_campaign(running["id"], campaignState="Finished", endedAt=now_ms)
    sim.update_campaign(scheduled["id"], campaignState="Paused")  # a state Iterable may add one day

    # Within one interval (PT1S) every change arrives, and nothing else.
    second = await d.capture(binds, state=quiet.state, stop_when=lambda p: p.documents >= 3, deadline=10)
    second.raise_for_error()
    changed = by_id(second.docs("acmeCo/campaigns"))
    assert set(changed) == {edited["id"], running["id"], scheduled["id"]}
    assert changed[edited["id"]]["name"] == "Renamed"
    assert changed[running["id"]]["campaignState"] == "Finished"
    assert changed[running["id"]]["endedAt"] == now_ms
    assert changed[scheduled["id"]]["campaignState"] == "Paused"
    assert len(second.docs("acmeCo/campaigns")) == 3


@pytest.mark.asyncio
async def test_campaign_metrics_batches_typed_values_and_lookback(simulator_factory) -> None:
    sim = await simulator_factory(data=small_data(campaigns=200, users=20, events={}))
    d = driver(sim)
    # A long interval keeps the first session to the backfill; the second one refreshes.
    backfill_binds = await bindings(d, ["campaign_metrics"], interval="PT1H")
    binds = await bindings(d, ["campaign_metrics"])
    campaigns = {c["id"]: c for c in sim.records("campaigns")}
    launched = sorted(cid for cid, c in campaigns.items() if c["campaignState"] not in NOT_LAUNCHED)
    rows_by_id = sim.campaign_metrics_rows()
    truth = {cid: typed_metrics(rows_by_id[cid]) for cid in launched if cid in rows_by_id}
    assert len(launched) > 2 * 80

    started = datetime.now(tz=UTC)
    first = await d.capture(backfill_binds, stop_when=lambda p: p.documents >= len(truth), deadline=60)
    first.raise_for_error()
    backfill_requests = metrics_requests(sim)
    assert all(len(ids) <= 80 for ids in backfill_requests)
    assert sorted(cid for ids in backfill_requests for cid in ids) == launched
    # Lifetime totals: the simulator, like Iterable's documentation, ends a request without
    # endDateTime on 2018-07-25, so every request names its end: tomorrow, UTC.
    rows = by_id(first.docs("acmeCo/campaign_metrics"))
    assert rows == {cid: {"id": cid, **metrics} for cid, metrics in truth.items()}
    assert metrics_dates(sim) and metrics_dates(sim) <= lifetime_dates(started)
    assert any("Total Email Sends" in row for row in rows.values())
    assert sim.peak_request_rate().get("campaign_metrics", 0) <= 10

    # The incremental pass refreshes running campaigns and those ended within the lookback only.
    now_ms = int(time.time() * 1000)
    due = sorted(
        cid
        for cid in launched
        if campaigns[cid]["campaignState"] in RUNNING
        or campaigns[cid].get("endedAt", 0) >= now_ms - LOOKBACK_MS
        or ("endedAt" not in campaigns[cid] and campaigns[cid]["campaignState"] not in ENDED)
    )
    assert 0 < len(due) < len(launched)
    mark = len(sim.request_log)
    second = await d.capture(
        binds,
        state=first.state,
        stop_when=lambda _: sum(map(len, metrics_requests(sim, mark))) >= len(due),
        deadline=30,
    )
    second.raise_for_error()
    refreshed = [cid for ids in metrics_requests(sim, mark) for cid in ids]
    assert sorted(refreshed) == due
    assert all(len(ids) <= 80 for ids in metrics_requests(sim, mark))
    assert sim.peak_request_rate().get("campaign_metrics", 0) <= 10


@pytest.mark.asyncio
async def test_campaign_updates_in_the_cursors_millisecond_or_visible_late_are_captured(
    simulator_factory,
) -> None:
    sim = await simulator_factory()
    d = driver(sim)
    binds = await bindings(d, ["campaigns"])
    total = len(sim.records("campaigns"))
    first = await d.capture(binds, stop_when=lambda p: p.documents >= total, deadline=20)
    first.raise_for_error()

    ended = sorted(
        (c for c in sim.records("campaigns") if c["campaignState"] in ENDED), key=lambda c: c["updatedAt"]
    )
    newest = max(c["updatedAt"] for c in sim.records("campaigns"))
    same_ms, late = ended[0], ended[1]
    sim.update_campaign(same_ms["id"], name="Edited in the cursor's millisecond", updatedAt=newest)
    # Edited a minute before the newest update already read, listed only some passes later.
    sim.update_campaign(late["id"], name="Visible late", updatedAt=newest - 60_000, visible_after_s=300)
    second = await d.capture(binds, state=first.state, stop_when=lambda p: p.documents >= 2, deadline=20)
    second.raise_for_error()
    assert [(doc["id"], doc["name"]) for doc in second.docs("acmeCo/campaigns")] == [
        (same_ms["id"], "Edited in the cursor's millisecond"),
        (late["id"], "Visible late"),
    ]
