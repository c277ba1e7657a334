"""Scenario 3: one export window holding N events of one type, read as fast as the connector can.

The connector's stdout is read in large chunks and only counted (documents are one line each and
start with `{"captured":`), so the reader never slows it."""

import asyncio
import gc
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from iterable_simulator import DataSpec, Simulator

from .harness import Scale, bindings, connector, iterable_like

DATA_TYPE = "emailOpen"
CAPTURED = b'{"captured":'
CHUNK = 1 << 20
ACK = orjson.dumps({"acknowledge": {"checkpoints": 1}}) + b"\n"


@dataclass
class Dense:
    events: int
    first_doc_s: float
    job_done_s: float
    """When Iterable (the simulator) completed the export job, on the same clock."""
    last_doc_s: float
    first_batch: int
    """Documents that arrived with the first one (the CDK writes them out at each checkpoint)."""
    peak_rss_mb: float
    cpu_s: float
    opened_at: float

    @property
    def docs_per_s(self) -> float:
        return (self.events - self.first_batch) / max(self.last_doc_s - self.first_doc_s, 1e-9)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


async def run(
    scale: Scale,
    events: int,
    share: float | None = None,
    every_type: bool = False,
    records_per_file: int = 25_000,
) -> Dense:
    """`every_type`: the other 51 event types are enabled too (and empty), so their starts and
    polls compete with the dense window's files pages."""
    now = time.time()
    # Everything lies in one window that ends before the late-data pass's range, one day back.
    data = DataSpec(
        events={DATA_TYPE: events}, users=200, history_days=1, now=now - 7200, late_fraction=0.0, campaigns=10
    )
    sim = Simulator(iterable_like(scale, data, export_records_per_file=records_per_file))
    for stored in sim.data.events[DATA_TYPE]:
        stored.encoded()  # so the export job's start costs the simulator little
    gc.freeze()  # the simulator's million records would make every collection of this process slow
    await sim.start()
    try:
        start = datetime.fromtimestamp(now - 2 * 86_400, tz=UTC)
        advanced: dict[str, Any] = {"window_size": "P3D"} | (
            {} if every_type else {"event_types": [DATA_TYPE]}
        )
        d = connector(sim, scale, advanced, share, start_date=start.strftime("%Y-%m-%dT%H:%M:%SZ"))
        binds = await bindings(d, ["events"], scale.duration(timedelta(minutes=5)))
        result = await _measure(d, binds, events)
        job = max(sim.jobs.values(), key=lambda j: j.record_count or 0)
        assert job.ended_at is not None
        result.job_done_s = job.ended_at - result.opened_at
        return result
    finally:
        await sim.stop()
        gc.unfreeze()


async def _measure(d, binds, events: int) -> Dense:  # type: ignore[no-untyped-def]
    proc = await d.start_process()
    assert proc.stdin is not None and proc.stdout is not None
    started, opened_at = time.monotonic(), time.time()
    proc.stdin.write(orjson.dumps(d.open_request(binds, {}, 300)) + b"\n")
    await proc.stdin.drain()
    stderr = asyncio.create_task(_drain(proc.stderr))
    seen, first, first_batch, last, rest, acks = 0, 0.0, 0, 0.0, b"", False
    try:
        while seen < events:
            chunk = await proc.stdout.read(CHUNK)
            if not chunk:
                raise RuntimeError(f"the connector exited after {seen:,} documents")
            data = rest + chunk
            cut = data.rfind(b"\n") + 1
            complete, rest = data[:cut], data[cut:]
            if complete.startswith(b'{"opened"'):
                acks = bool(
                    orjson.loads(complete.split(b"\n", 1)[0])["opened"].get("explicitAcknowledgements")
                )
            if acks:
                proc.stdin.write(ACK * complete.count(b'{"checkpoint":'))
            count = complete.count(CAPTURED)
            if count:
                last = time.monotonic() - started
                seen += count
                if not first:
                    first, first_batch = last, seen
        peak, cpu = peak_rss_mb(proc.pid), cpu_seconds(proc.pid)
    finally:
        proc.terminate()
        await proc.wait()
        stderr.cancel()
    return Dense(events, first, 0.0, last, first_batch, peak, cpu, opened_at)


async def _drain(stream: asyncio.StreamReader | None) -> None:
    while stream is not None and await stream.read(CHUNK):
        pass
