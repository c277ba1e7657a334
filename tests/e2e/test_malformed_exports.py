"""A malformed export line stops its window with an error naming data type, window, file and line;
nothing of that window is committed and the window is not checkpointed past."""

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from iterable_simulator import FaultConfig, Simulator
from iterable_simulator.exports import ExportJob

from . import reliability as rel
from .conftest import bindings, driver, endpoint_config, small_data


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def first_bad_line(sim: Simulator, data_type: str, bad: Any) -> tuple[ExportJob, str, int, bytes]:
    """The job, file name, 1-based line number and content of the first line `bad` rejects."""
    for job in sim.jobs.values():
        if job.data_type != data_type or job.state.value != "completed":
            continue
        for file in job.files:
            for number, line in enumerate(file.lines, start=1):
                if bad(line):
                    return job, file.name, number, line
    raise AssertionError(f"no malformed {data_type} line was exported")


def invalid_json(line: bytes) -> bool:
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return True
    return False


async def capture_until_failure(sim: Simulator, binding: str, **advanced: Any) -> Any:
    config = endpoint_config(sim, start_date=rel.start_date(sim), advanced={"window_size": "P40D", **advanced})
    d = driver(sim, config)
    result = await d.capture(await bindings(d, [binding]), deadline=30)
    assert result.rc == 1 and not result.killed, f"the capture did not fail: {result.stopped_by}"
    return result


def assert_window_not_passed(result: Any, binding: str, data_type: str, job: ExportJob) -> None:
    backfill = result.state.get("bindingStateV1", {}).get(binding, {}).get("backfill", {}).get(data_type)
    assert backfill is not None, "the backfill of the failed window was checkpointed as finished"
    assert backfill.get("next_page") is None or backfill["next_page"] <= job.start
    assert result.docs(f"acmeCo/{binding}") == [], "records of the failed window were committed"


@pytest.mark.asyncio
async def test_invalid_json_line_stops_the_window(simulator_factory) -> None:
    sim = await simulator_factory(
        data=small_data(events={"emailSend": 30}), export_records_per_file=8,
        faults=FaultConfig(malformed_line_rate=0.2),
    )  # fmt: skip
    result = await capture_until_failure(sim, "events", event_types=["emailSend"])
    job, file, number, line = first_bad_line(sim, "emailSend", invalid_json)
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError as err:
        reason = str(err)
    assert result.error == (
        f"Task capture.events.backfill.emailSend: export of emailSend [{_iso(job.start)}, {_iso(job.end)}), "
        f"file {file}, line {number}: invalid JSON ({reason})"
    )
    assert_window_not_passed(result, "events", "emailSend", job)


@pytest.mark.asyncio
async def test_event_without_its_cursor_stops_the_window(simulator_factory) -> None:
    sim = await simulator_factory(
        data=small_data(events={"emailOpen": 30}), export_records_per_file=8,
        faults=FaultConfig(missing_cursor_rate=0.1),
    )  # fmt: skip
    result = await capture_until_failure(sim, "events", event_types=["emailOpen"])
    job, file, number, _ = first_bad_line(sim, "emailOpen", lambda line: b'"createdAt"' not in line)
    assert result.error == (
        f"Task capture.events.backfill.emailOpen: export of emailOpen [{_iso(job.start)}, {_iso(job.end)}), "
        f"file {file}, line {number}: record has no createdAt"
    )
    assert_window_not_passed(result, "events", "emailOpen", job)


@pytest.mark.asyncio
async def test_user_without_its_key_stops_the_window(simulator_factory) -> None:
    sim = await simulator_factory(
        data=small_data(events={}, users=30), export_records_per_file=8, faults=FaultConfig(missing_key_rate=0.1)
    )
    result = await capture_until_failure(sim, "users")
    job, file, number, _ = first_bad_line(sim, "user", lambda line: b'"email"' not in line)
    assert result.error == (
        f"Task capture.users.backfill.user: export of user [{_iso(job.start)}, {_iso(job.end)}), "
        f"file {file}, line {number}: record has no email, the collection key"
    )
    assert_window_not_passed(result, "users", "user", job)
