"""Scenario 3: one export window holding N events of one type, read as fast as the connector can.

The simulator generates the window's emailOpen events lazily (iterable_simulator/large.py
`install_email_opens`) and renders their lines before the connector starts (`prerender`), so that
serving a file costs it a copy, as a finished file costs S3: on a two-core machine, rendering as
files are downloaded took most of the core the connector did not use, and the benchmark measured
the simulator.

The connector's stdout is only counted (documents are one line each and start with `{"captured":`),
by a reader thread of its own (`output.py`), so the reader never slows it.

Files pages list 10 files and the next page is named by the last file of the one before. The
files endpoint's one request a second runs in simulated time, like every limit: at the dense time
scale (0.01) that is a hundred requests a wall second, so the listing never holds the window back
and the median interval between the job's files pages is the connector's own pace (50,000
records a page: 1.0 s is 50,000 documents a second)."""

import itertools
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any


from flow_driver import ConnectorDriver
from iterable_simulator import DataSpec, Simulator
from iterable_simulator.large import install_email_opens

from .harness import Scale, Traffic, bindings, connector, iterable_like
from .output import peak_rss_mb, read_until

DATA_TYPE = "emailOpen"
RECORDS_PER_FILE = 5_000


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
    files_pages: int = 0
    """Files pages of the dense job Iterable answered (10 files each, the last one empty)."""
    page_interval_s: float = 0.0
    """Median wall time between two of those pages. Each page is asked for when the previous one's
    files start downloading, and the files limit is scaled with time, so this is the connector's
    pace: 50,000 records a page, 1.0 s for 50,000 documents a second."""

    @property
    def docs_per_s(self) -> float:
        return (self.events - self.first_batch) / max(self.last_doc_s - self.first_doc_s, 1e-9)


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
    install_email_opens(sim, events).prerender()
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
        result.files_pages, result.page_interval_s = _files_pages(sim, job.id)
        result.traffic = Traffic.between(sim, result.opened_at, time.time())
        result.simulator_peak_rss_mb = peak_rss_mb("self")
        return result
    finally:
        await sim.stop()


def _files_pages(sim: Simulator, job_id: int) -> tuple[int, float]:
    """How many files pages of the job were answered, and the median time between two."""
    path = f"/api/export/{job_id}/files"
    answered = [e["t"] for e in sim.request_log if e["path"] == path and e["status"] == 200]
    gaps = [b - a for a, b in itertools.pairwise(answered)]
    return len(answered), statistics.median(gaps) if gaps else 0.0


async def _measure(d: ConnectorDriver, binds: list[dict[str, Any]], events: int) -> Dense:
    opened_at = time.time()
    run = await read_until(
        d, d.open_request(binds, {}, 300), done=lambda counts, _: counts.documents >= events
    )
    return Dense(
        events,
        first_doc_s=run.counts.first_s,
        last_doc_s=run.counts.last_s,
        first_batch=run.counts.first_batch,
        peak_rss_mb=run.peak_rss_mb,
        cpu_s=run.cpu_s,
        opened_at=opened_at,
    )
