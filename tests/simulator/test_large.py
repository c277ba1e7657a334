"""The large-organisation scenario: deterministic, lazily generated, served in correct pages."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import pytest

from iterable_simulator import DataSpec, Simulator, SimulatorConfig, timefmt
from iterable_simulator.large import BusyTypeEvents, LargeOrg, forget_downloaded_exports, install

from . import exporting as ex
from .conftest import NOW, Client, FakeClock

SMALL = LargeOrg().scaled(0.001)  # 100 campaigns (20 not ended), 5 journeys, 5 fields, 1 catalog of 2,000
ENDED = {"Finished", "Archived", "Aborted", "Recalled"}


def _data() -> DataSpec:
    return DataSpec(now=NOW, history_days=1, events={}, users=5, campaigns=3, catalogs=1, late_fraction=0.0)


def _large(seed: int = 7, org: LargeOrg = SMALL) -> Simulator:
    sim = Simulator(SimulatorConfig(seed=seed, data=_data(), clock=FakeClock()))
    install(sim, org)
    return sim


def _snapshot(sim: Simulator) -> bytes:
    ds = sim.data
    catalogs = {name: list(items) for name, items in ds.catalogs.items()}
    events = [s.data for s in ds.events[SMALL.busy_event_type][:500]]
    return orjson.dumps(
        [ds.campaigns, ds.journeys, ds.user_fields, catalogs, events], option=orjson.OPT_NON_STR_KEYS
    )


def test_same_seed_same_organisation_other_seed_other_items() -> None:
    assert _snapshot(_large()) == _snapshot(_large())
    assert _snapshot(_large(seed=8)) != _snapshot(_large())


def test_sizes_follow_the_spec() -> None:
    sim = _large()
    ds = sim.data
    states = Counter(c["campaignState"] for c in ds.campaigns.values())
    assert len(ds.campaigns) == 100 and sum(n for s, n in states.items() if s not in ENDED) == 20
    assert all(("endedAt" in c) == (c["campaignState"] in ENDED) for c in ds.campaigns.values())
    assert len({c["updatedAt"] for c in ds.campaigns.values()}) == 100
    assert len(ds.journeys) == 5 and len(ds.user_fields) == 5
    assert [len(items) for items in ds.catalogs.values()] == [2000]
    full = LargeOrg()
    assert sum(len(items) for items in _large(org=full).data.catalogs.values()) == 2_000_000


def test_busy_type_rate_and_order() -> None:
    stream = _large().data.events[SMALL.busy_event_type]
    assert isinstance(stream, BusyTypeEvents)
    # 5,000 a day over one day of history and three ahead.
    assert len(stream) == 5000 * 4
    cursors = [s.cursor for s in stream[:2000]]
    assert cursors == sorted(cursors)
    assert all(timefmt.parse(s.data["createdAt"]) == s.cursor for s in stream[:50])
    assert len({s.data["email"] for s in stream[:2000]}) == 2000
    lo, hi = NOW - 3600, NOW - 1800
    assert stream.between(lo, hi) == sum(1 for s in stream if lo <= s.cursor < hi)


async def _pages(c: Client, catalog: str, size: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        status, body, _ = await c.get(f"/api/catalogs/{catalog}/items", {"page": page, "pageSize": size})
        assert status == 200, body
        params = body["params"]
        assert params["totalItemsCount"] == 2000
        items += params["catalogItemsWithProperties"]
        if "nextPageUrl" not in params:
            return items
        assert len(params["catalogItemsWithProperties"]) == size
        page += 1


@pytest.mark.asyncio
async def test_catalog_items_pages_of_up_to_1000(make_client: Any) -> None:
    c = await make_client(seed=7, data=_data())
    install(c.sim, SMALL)
    catalog = next(iter(c.sim.data.catalogs))
    expected = list(c.sim.data.catalogs[catalog])
    assert await _pages(c, catalog, 1000) == expected
    assert await _pages(c, catalog, 300) == expected  # 7 pages, the last one short
    status, _, _ = await c.get(f"/api/catalogs/{catalog}/items", {"page": 1, "pageSize": 1001})
    assert status == 400


@pytest.mark.asyncio
async def test_export_of_the_busy_type_is_its_window_and_can_be_forgotten(make_client: Any) -> None:
    clock = FakeClock()
    c = await make_client(seed=7, clock=clock, data=_data())
    stream = install(c.sim, SMALL)
    lo, hi = NOW - 7200, NOW - 3600
    job_id = await ex.start(c, SMALL.busy_event_type, start=lo, end=hi)
    await ex.wait_completed(c, clock, job_id)
    _, lines = await ex.read_all(c, job_id)
    records = [orjson.loads(line) for line in lines]
    assert len(records) == stream.between(lo, hi) > 0
    assert all(lo <= timefmt.parse(r["createdAt"]) < hi for r in records)
    assert ex.canon(records) == ex.canon([s.data for s in stream[stream.index_at(lo) : stream.index_at(hi)]])
    forget_downloaded_exports(c.sim, set(), 0)
    job = c.sim.exports.jobs[job_id]
    assert job.record_count and all(not f.lines for f in job.files)


@pytest.mark.parametrize("t", [NOW - 86_400, NOW - 0.5, NOW, NOW + 12.25])
def test_index_at_is_the_first_record_at_or_after(t: float) -> None:
    stream = _large().data.events[SMALL.busy_event_type]
    assert isinstance(stream, BusyTypeEvents)
    i = stream.index_at(t)
    assert stream.cursor(i) >= t and (i == 0 or stream.cursor(i - 1) < t)
