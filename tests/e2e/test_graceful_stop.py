"""SIGTERM (the runtime's stop) makes every stream finish its current step promptly, then exit 0."""

import asyncio
import sys
from typing import Any

import pytest

from . import reliability as rel
from .conftest import ROOT, driver, endpoint_config, small_data

STOP_BOUND_S = 5.0


@pytest.mark.asyncio
async def test_stop_while_export_jobs_run(simulator_factory) -> None:
    # Jobs take 60 s here, so every stream is waiting on one when the stop arrives.
    sim = await simulator_factory(
        data=small_data(events={"emailSend": 20, "emailOpen": 10}, users=10), export_job_latency_base_s=6000.0
    )
    config = endpoint_config(
        sim, start_date=rel.start_date(sim), advanced={"event_types": ["emailSend", "emailOpen"]}
    )
    d = driver(sim, config)
    d.stop_timeout = STOP_BOUND_S
    binds = await rel.all_bindings(d)

    def each_event_type_has_a_job(_: Any) -> bool:
        active = {
            job.data_type.lower()
            for job in sim.jobs.values()
            if job.created_by_connector and job.state.value in ("enqueued", "running")
        }
        return {"emailsend", "emailopen"} <= active

    # Stopped (SIGTERM) once each event type's backfill has started a job (60 wall seconds long),
    # however long the connector took to start.
    result = await d.capture(binds, stop_when=each_event_type_has_a_job, deadline=60)
    assert (result.stopped_by, result.killed, result.rc) == ("stop_when", False, 0), result.error
    assert result.stop_to_exit is not None and result.stop_to_exit < STOP_BOUND_S
    ours = [
        job.id for job in sim.jobs.values() if job.created_by_connector and job.state.value != "completed"
    ]
    assert ours and set(ours) <= set(sim.cancelled_jobs), "jobs left running would hold Iterable's slots"
    backfill = result.state["bindingStateV1"]["events"]["backfill"]
    assert set(backfill) == {"emailSend", "emailOpen"}, "an unfinished window was checkpointed as done"


@pytest.mark.asyncio
async def test_stop_during_start_up_exits_cleanly(simulator_factory) -> None:
    sim = await simulator_factory()
    d = driver(sim)
    d.stop_timeout = STOP_BOUND_S
    # SIGTERM as soon as `opened` is read, while the streams are still starting.
    result = await d.capture(await rel.all_bindings(d), stop_when=lambda _: True, deadline=60)
    assert result.stopped_by == "stop_when"
    assert (result.killed, result.rc) == (False, 0), result.error
    assert result.opened is not None


EXIT_AFTER_SIGTERM = """
import asyncio, os, signal
from source_iterable_native import Connector


async def no_requests(cls):
    return
    yield


asyncio.run(Connector().serve(requests=no_requests))
os.kill(os.getpid(), signal.SIGTERM)  # the runtime's stop, arriving while the process exits
"""


@pytest.mark.asyncio
async def test_stop_arriving_while_the_connector_exits_keeps_its_exit_code() -> None:
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", EXIT_AFTER_SIGTERM, cwd=ROOT)
    assert await process.wait() == 0
