"""Scenario 3: one export window holding N events of one type, read as fast as the connector can.

The simulator generates the window's emailOpen events lazily (iterable_simulator/large.py
`install_email_opens`): each record is built when its file is downloaded.

The connector's stdout is read in large chunks and only counted (documents are one line each and
start with `{"captured":`), so the reader never slows it."""

import asyncio
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from flow_driver import ConnectorDriver
from iterable_simulator import DataSpec, Simulator
from iterable_simulator.large import install_email_opens

from .harness import Scale, Traffic, bindings, connector, iterable_like

DATA_TYPE = "emailOpen"
RECORDS_PER_FILE = 5_000
CAPTURED = b'{"captured":'
CHUNK = 1 << 20
ACK = orjson.dumps({"acknowledge": {"checkpoints": 1}}) + b"\n"


@dataclass
class Dense:
    events: int
    first_doc_s: float
    last_doc_s: float
    first_batch: int
    """Documents that arrived with the first one (the CDK writes them out at each checkpoint)."""
    peak_rss_mb: float
    cpu_s: float
    opened_at: float
    job_done_s: float = 0.0
    """When Iterable (the simulator) completed the export job, on the same clock."""
    traffic: Traffic | None = None
    simulator_peak_rss_mb: float = 0.0
    """Of this process, which runs the simulator: its peak while it served the run."""

    @property
    def docs_per_s(self) -> float:
        return (self.events - self.first_batch) / max(self.last_doc_s - self.first_doc_s, 1e-9)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int | str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


def reset_peak_rss() -> None:
    """Start this process's peak RSS (VmHWM) again from its current RSS."""
    Path("/proc/self/clear_refs").write_text("5")


async def run(scale: Scale, events: int, share: float | None) -> Dense:
    """The other 51 event types are enabled too (and empty), so their starts and polls compete
    with the dense window's files pages."""
    reset_peak_rss()
    now = time.time()
    # Everything lies in one window that ends before the late-data pass's range, one day back.
    data = DataSpec(events={}, users=200, history_days=1, now=now - 7200, late_fraction=0.0, campaigns=10)
    sim = Simulator(iterable_like(scale, data, export_records_per_file=RECORDS_PER_FILE))
    install_email_opens(sim, events)
    await sim.start()
    try:
        start = datetime.fromtimestamp(now - 2 * 86_400, tz=UTC)
        d = connector(
            sim,
            scale,
            advanced={"window_size": "P3D"},
            share=share,
            start_date=start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        binds = await bindings(d, ["events"], scale.duration(timedelta(minutes=5)))
        result = await _measure(d, binds, events)
        job = max(sim.jobs.values(), key=lambda j: j.record_count or 0)
        assert job.ended_at is not None
        result.job_done_s = job.ended_at - result.opened_at
        result.traffic = Traffic.between(sim, result.opened_at, time.time())
        result.simulator_peak_rss_mb = peak_rss_mb("self")
        return result
    finally:
        await sim.stop()


async def _measure(d: ConnectorDriver, binds: list[dict[str, Any]], events: int) -> Dense:
    proc = await d.start_process()
    assert proc.stdin is not None and proc.stdout is not None
    started, opened_at = time.monotonic(), time.time()
    proc.stdin.write(orjson.dumps(d.open_request(binds, {}, 300)) + b"\n")
    await proc.stdin.drain()
    stderr = asyncio.create_task(drain(proc.stderr))
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
    return Dense(
        events,
        first_doc_s=first,
        last_doc_s=last,
        first_batch=first_batch,
        peak_rss_mb=peak,
        cpu_s=cpu,
        opened_at=opened_at,
    )


async def drain(stream: asyncio.StreamReader | None) -> None:
    while stream is not None and await stream.read(CHUNK):
        pass
