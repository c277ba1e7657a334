"""What every scenario shares: a simulator with Iterable's limits, the connector under the protocol
driver, the export traffic it caused, and table printing."""

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flow_driver import ConnectorDriver, bindings_from_discovered
from iterable_simulator import DataSpec, Simulator, SimulatorConfig


def iso_seconds(seconds: float) -> str:
    """An ISO 8601 duration of whole milliseconds, which the connector's config accepts."""
    return f"PT{seconds:.3f}S"


@dataclass
class Scale:
    """Simulated durations times `factor` are wall-clock durations, on both sides of the wire."""

    factor: float

    def wall(self, simulated_s: float) -> float:
        return simulated_s * self.factor

    def simulated(self, wall_s: float) -> float:
        return wall_s / self.factor

    def duration(self, simulated: timedelta) -> str:
        return iso_seconds(self.wall(simulated.total_seconds()))


EXPORT_SLOTS = 4
"""Iterable's export jobs processing at once, per organisation."""
JOB_BASE_S = 2.0
JOB_PER_1K_RECORDS_S = 0.5
"""How long the simulator processes an export job: JOB_BASE_S plus this per 1,000 records."""


def iterable_like(scale: Scale, data: DataSpec, **overrides: Any) -> SimulatorConfig:
    """Iterable's export limits as documented: 1 request/s per organisation on export/start and,
    separately, on export/{jobId}/files, 4 jobs processing, 2 s plus 0.5 s per 1,000 records per
    job, files of at most 10 MB."""
    settings: dict[str, Any] = {
        "seed": 7,
        "time_scale": scale.factor,
        "data": data,
        "enforce_rate_limits": True,
        "export_reading": "separate",
        "export_max_concurrent_jobs": EXPORT_SLOTS,
        "export_job_latency_base_s": JOB_BASE_S,
        "export_job_latency_per_1k_records_s": JOB_PER_1K_RECORDS_S,
        "export_records_per_file": 25_000,
        **overrides,
    }
    return SimulatorConfig(**settings)


def connector(
    sim: Simulator, scale: Scale, advanced: dict[str, Any], share: float | None = None, **config: Any
) -> ConnectorDriver:
    """`share`: the connector's share of the export budget; None leaves the setting out."""
    if share is not None:
        advanced = {**advanced, "export_budget_share": share}
    return ConnectorDriver(
        {
            "credentials": {"credentials_title": "Private App Credentials", "access_token": sim.api_key},
            "project_type": sim.config.project_type,
            "advanced": advanced,
            **config,
        },
        env={"ITERABLE_API_BASE_URL": sim.base_url, "SOURCE_ITERABLE_TIME_SCALE": str(scale.factor)},
        secrets=[sim.api_key],
    )


async def bindings(d: ConnectorDriver, only: list[str], interval: str) -> list[dict[str, Any]]:
    discovered = (await d.discover()).raise_for_error("discover")
    result = bindings_from_discovered(discovered, only=only)
    for binding in result:
        binding["resourceConfig"]["interval"] = interval
    return result


def is_export_request(entry: dict[str, Any]) -> bool:
    """export/start and export/{id}/files: the organisation's export budgets."""
    path = entry["path"]
    return path.startswith("/api/export/") and (path == "/api/export/start" or path.endswith("/files"))


@dataclass
class Traffic:
    """Export traffic the connector caused between two instants of the simulator's clock."""

    jobs: int
    export_requests: int
    rate_limited: int
    processing_s: float = 0.0
    """Wall seconds Iterable spent running those jobs, summed over jobs."""

    @classmethod
    def between(cls, sim: Simulator, start: float, end: float, ending_by: float | None = None) -> "Traffic":
        """All export traffic in [start, end), or with `ending_by` only that of the jobs whose
        window ends by then (a backfill's): one export/start each, and their files requests."""
        jobs = [j for j in sim.jobs.values() if j.created_by_connector and start <= j.created_at < end]
        log = [e for e in sim.request_log if start <= e["t"] < end]
        if ending_by is None:
            requests = sum(1 for e in log if is_export_request(e))
        else:
            jobs = [j for j in jobs if j.end is not None and j.end <= ending_by]
            paths = {f"/api/export/{j.id}/files" for j in jobs}
            log = [e for e in log if e["path"] in paths]
            requests = len(jobs) + len(log)
        rate_limited = sum(1 for e in log if e["status"] == 429)
        return cls(len(jobs), requests, rate_limited, sum(j.duration for j in jobs))

    def processing_floor_minutes(self, sim: Simulator, scale: Scale) -> float:
        """Simulated minutes Iterable's processing slots need for these jobs with every slot busy
        throughout: no schedule of them finishes sooner."""
        return scale.simulated(self.processing_s / sim.config.export_max_concurrent_jobs) / 60

    @property
    def per_job(self) -> float:
        return self.export_requests / max(1, self.jobs)


def share_label(share: float | None) -> str:
    return "no share setting" if share is None else f"share {share:g}"


def backfills_done(state: dict[str, Any]) -> bool:
    """Whether every binding's backfill subtasks have finished (the CDK removes them when done)."""
    bindings_state = state.get("bindingStateV1") or {}
    return bool(bindings_state) and all(not (s or {}).get("backfill") for s in bindings_state.values())


def table(title: str, header: list[str], rows: list[list[Any]]) -> str:
    cells = [header, *[[_cell(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [f"\n{title}", "-" * len(title)]
    for n, row in enumerate(cells):
        lines.append(
            "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if abs(value) < 10:
            return f"{value:.2f}"
        return f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started
