"""A malformed export line stops its window with an error naming data type, window, file and line;
nothing of that window is committed and the window is not checkpointed past."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Callable

import orjson
import pytest

from iterable_simulator import FaultConfig, Simulator
from iterable_simulator.exports import ExportJob

from . import reliability as rel
from .conftest import bindings, driver, endpoint_config, small_data


def _iso(ts: float | None) -> str:
    assert ts is not None, "an export job of the connector's has no window bound"
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def first_bad_line(
    sim: Simulator, data_type: str, reason: Callable[[bytes], str | None]
) -> tuple[ExportJob, str, int, str]:
    """The job, file name, 1-based line number and reason of the first line `reason` rejects."""
    for job in sim.jobs.values():
        if job.data_type != data_type or job.state.value != "completed":
            continue
        for file in job.files:
            for number, line in enumerate(file.lines, start=1):
                if (why := reason(line)) is not None:
                    return job, file.name, number, why
    raise AssertionError(f"no malformed {data_type} line was exported")


def json_error(line: bytes) -> str | None:
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError as err:
        return f"invalid JSON ({err})"
    return None


def lacks(field: str, reason: str) -> Callable[[bytes], str | None]:
    return lambda line: None if f'"{field}"'.encode() in line else reason


@dataclass
class Case:
    binding: str
    data_type: str
    fault: FaultConfig
    reason: Callable[[bytes], str | None]
    """The message's ending for a bad line, None for a good one."""


CASES = {
    "invalid JSON": Case("events", "emailSend", FaultConfig(malformed_line_rate=0.2), json_error),
    "event without createdAt": Case(
        "events",
        "emailOpen",
        FaultConfig(missing_cursor_rate=0.1),
        lacks("createdAt", "record has no createdAt"),
    ),
    "user without email": Case(
        "users",
        "user",
        FaultConfig(missing_key_rate=0.1),
        lacks("email", "record has no email, the collection key"),
    ),
}


async def capture_until_failure(sim: Simulator, binding: str, **advanced: Any) -> Any:
    config = endpoint_config(
        sim, start_date=rel.start_date(sim), advanced={"window_size": "P40D", **advanced}
    )
    d = driver(sim, config)
    result = await d.capture(await bindings(d, [binding]), deadline=30)
    assert result.rc == 1 and not result.killed, f"the capture did not fail: {result.stopped_by}"
    return result


def assert_window_not_passed(result: Any, binding: str, data_type: str, job: ExportJob) -> None:
    backfill = result.state.get("bindingStateV1", {}).get(binding, {}).get("backfill", {}).get(data_type)
    assert backfill is not None, "the backfill of the failed window was checkpointed as finished"
    page = backfill.get("next_page")
    start = page.get("start") if isinstance(page, dict) else page
    assert start is None or start <= job.start
    assert result.docs(f"acmeCo/{binding}") == [], "records of the failed window were committed"


@pytest.mark.parametrize("name", CASES)
@pytest.mark.asyncio
async def test_malformed_line_stops_its_window(simulator_factory, name: str) -> None:
    case = CASES[name]
    events = {case.data_type: 30} if case.binding == "events" else {}
    sim = await simulator_factory(
        data=small_data(events=events, users=30), export_records_per_file=8, faults=case.fault
    )
    advanced = {"event_types": [case.data_type]} if case.binding == "events" else {}
    result = await capture_until_failure(sim, case.binding, **advanced)
    job, file, number, reason = first_bad_line(sim, case.data_type, case.reason)
    assert result.error == (
        f"Task capture.{case.binding}.backfill.{case.data_type}: export of {case.data_type} "
        f"[{_iso(job.start)}, {_iso(job.end)}), file {file}, line {number}: {reason}"
    )
    assert_window_not_passed(result, case.binding, case.data_type, job)


def backfill_done(state: dict[str, Any], data_type: str) -> bool:
    """Whether the folded state shows the data type's backfill complete (its subtask removed)."""
    bindings = state.get("bindingStateV1") or {}
    return any(
        isinstance(s, dict) and s.get("inc") and data_type not in (s.get("backfill") or {})
        for s in bindings.values()
    )


@pytest.mark.parametrize("name", CASES)
@pytest.mark.asyncio
async def test_skip_malformed_records_skips_logs_and_counts_each_one(simulator_factory, name: str) -> None:
    case = CASES[name]
    events = {case.data_type: 30} if case.binding == "events" else {}
    sim = await simulator_factory(
        data=small_data(events=events, users=30), export_records_per_file=8, faults=case.fault
    )
    advanced = {"event_types": [case.data_type]} if case.binding == "events" else {}
    config = endpoint_config(
        sim,
        start_date=rel.start_date(sim),
        advanced={
            "window_size": "P40D",
            "skip_malformed_records": True,
            "capture_all_users": False,
            **advanced,
        },
    )
    d = driver(sim, config)
    result = await d.capture(
        await bindings(d, [case.binding]),
        stop_when=lambda p: backfill_done(p.state, case.data_type),
        deadline=30,
    )
    result.raise_for_error()

    job, file, number, reason = first_bad_line(sim, case.data_type, case.reason)
    skipped = [
        log["fields"]["args"] for log in result.logs if log.get("msg", "").startswith("skipped a malformed")
    ]
    window = f"[{_iso(job.start)}, {_iso(job.end)})"
    assert (
        skipped
        and skipped[0]["error"]
        == f"export of {case.data_type} {window}, file {file}, line {number}: {reason}"
    )
    assert [s["skipped_by_this_process"] for s in skipped] == list(range(1, len(skipped) + 1))
    good = sum(1 for f in job.files for line in f.lines if case.reason(line) is None)
    assert len(result.docs(f"acmeCo/{case.binding}")) >= good > 0
