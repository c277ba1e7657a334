"""list_users: one list per backfill step, the failing list skipped, the broken transfer retried."""

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from iterable_simulator import Simulator

from .conftest import bindings, driver, small_data

LISTS = 6


def list_requests(sim: Simulator, since: int = 0) -> list[int]:
    return [
        int(value)
        for entry in sim.request_log[since:]
        if entry["path"] == "/api/lists/getUsers"
        for name, value in entry["query"]
        if name == "listId"
    ]


def members(docs: list[dict[str, Any]]) -> list[tuple[int, str]]:
    return [(doc["list_id"], doc["user_id"]) for doc in docs]


def expected_members(sim: Simulator) -> list[tuple[int, str]]:
    return sorted(
        (list_id, user) for list_id, user in sim.list_users() if user and list_id != sim.failing_list_id
    )


def backfill_done(state: dict[str, Any]) -> bool:
    binding = (state.get("bindingStateV1") or {}).get("list_users")
    return binding is not None and not binding.get("backfill")


@pytest.mark.asyncio
async def test_every_member_once_failing_list_skipped_broken_transfer_retried(simulator_factory) -> None:
    sim = await simulator_factory(data=small_data(lists=LISTS, list_members=(5, 40), events={}))
    d = driver(sim)
    binds = await bindings(d, ["list_users"])
    assert binds[0]["resourceConfig"]["schedule"] == "55 23 * * *"

    # list_users alone: the connector ends by itself once the backfill is over (a SIGTERM sent then
    # could arrive while it exits, so none is sent).
    result = await d.capture(binds, deadline=60)
    result.raise_for_error()
    assert result.stopped_by == "exit"
    captured = members(result.docs("acmeCo/list_users"))
    assert sorted(captured) == expected_members(sim)
    assert not [pair for pair, n in Counter(captured).items() if n > 1]
    assert backfill_done(result.state)

    assert [f["fault"] for f in sim.injected_faults].count("list_stream_break") == 1
    requests = Counter(list_requests(sim))
    assert requests[sim.breaking_list_id] == 2
    assert requests[sim.failing_list_id] == 3
    warnings = [
        log["msg"] for log in result.logs if log["level"] == "WARNING" and "skipping list" in log["msg"]
    ]
    assert warnings == [
        f"skipping list {sim.failing_list_id} until the next scheduled run: Iterable answered HTTP 500 3 times"
    ]
    assert sim.peak_request_rate()["list_users"] <= 5


@pytest.mark.asyncio
async def test_resume_after_stop_continues_with_next_list_and_schedule_recaptures(simulator_factory) -> None:
    sim = await simulator_factory(
        data=small_data(
            lists=LISTS, list_members=(5, 40), events={}, failing_list_index=None, breaking_list_index=None
        )
    )
    d = driver(sim)
    binds = await bindings(d, ["list_users"])
    list_ids = sorted(lst["id"] for lst in sim.records("lists"))

    # Stop a few checkpoints in, lists still to go; the next session starts at the list after.
    first = await d.capture(binds, max_checkpoints=3, deadline=30)
    first.raise_for_error()
    done = first.state["bindingStateV1"]["list_users"]["backfill"]["next_page"]
    assert done in list_ids[:-2]
    mark = len(sim.request_log)
    second = await d.capture(binds, state=first.state, deadline=60)
    second.raise_for_error()
    assert second.stopped_by == "exit"
    assert list_requests(sim, mark) == [list_id for list_id in list_ids if list_id > done]
    both = members(first.docs("acmeCo/list_users") + second.docs("acmeCo/list_users"))
    assert sorted(both) == expected_members(sim)
    assert backfill_done(second.state)

    # Once the schedule's next run time has passed, the next session captures every list again.
    state = second.state
    yesterday = datetime.now(tz=UTC) - timedelta(days=1, hours=1)
    state["bindingStateV1"]["list_users"]["last_initialized"] = yesterday.isoformat()
    mark = len(sim.request_log)
    third = await d.capture(binds, state=state, deadline=60)
    third.raise_for_error()
    assert third.stopped_by == "exit"
    assert list_requests(sim, mark) == list_ids
    assert sorted(members(third.docs("acmeCo/list_users"))) == expected_members(sim)
    # Every document says which run saw it, so members since removed can be told apart.
    runs = [{doc["run_started_at"] for doc in r.docs("acmeCo/list_users")} for r in (first, second, third)]
    assert runs[0] == runs[1] and len(runs[0]) == 1 and len(runs[2]) == 1
    assert min(runs[2]) > min(runs[0])
