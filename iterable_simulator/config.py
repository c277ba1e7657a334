"""Configuration dataclasses for the Iterable simulator."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from .faults import FaultConfig

PROJECT_TYPES = ("Email-based", "UserID-based", "Hybrid")

EXPERIMENT_HEADER_STYLES: dict[str, tuple[str | None, str | None, str | None, str | None]] = {
    # style: (experiment id, campaign id, template id, variant name) columns; None = no such column.
    "experimentId": ("experimentId", "campaignId", "templateId", "variantName"),
    "Experiment ID": ("Experiment ID", "Campaign ID", "Template ID", "Variant Name"),
    "experiment_id": ("experiment_id", "campaign_id", None, "variant_name"),
    # One row per experiment, as in Iterable's own client tests.
    "per experiment": ("experimentId", "campaignId", None, None),
    # No experiment id at all: a header the connector cannot key.
    "no experiment id": (None, "campaignId", "templateId", "variantName"),
}


def _default_events() -> dict[str, int]:
    return {
        "emailSend": 300,
        "emailOpen": 150,
        "emailClick": 60,
        "emailBounce": 8,
        "emailUnSubscribe": 10,
        "emailSubscribe": 12,
        "pushSend": 40,
        "smsSend": 20,
        "customEvent": 80,
        "purchase": 20,
    }


@dataclass
class DataSpec:
    """What the simulated project contains. Timestamps span [now - history_days, now)."""

    now: float | None = None  # anchor; None = config.clock() when the Simulator is built
    history_days: int = 30
    channels: int = 4
    message_types: int = 6
    lists: int = 5
    list_members: tuple[int, int] = (0, 50)
    templates_per_combo: tuple[int, int] = (0, 3)
    # Templates per type of each medium the listing's messageMedium filter cannot select (WebPush,
    # Embedded, WhatsApp); they are listed only when no messageMedium is given.
    other_medium_templates: int = 0
    metadata_tables: int = 3
    campaigns: int = 40
    users: int = 200
    journeys: int = 12
    snippets: int = 5
    catalogs: int = 2
    catalog_items: int = 15
    experiments: int = 3
    events: dict[str, int] = field(default_factory=_default_events)
    # 0 = uniform over the history span; larger values concentrate events near `now`.
    event_skew: float = 0.0
    # Fraction of events/users that become visible only some time after their cursor time.
    late_fraction: float = 0.05
    late_delay_s: float = 1800.0
    # Index into the generated lists (negative allowed); None disables the behaviour.
    failing_list_index: int | None = -1
    breaking_list_index: int | None = -2
    # Hold users as their sorted update instants only (8 bytes each) and render each record when
    # read: millions of users in little memory. Such users are read-only (no add_user/update_user).
    light_users: bool = False


@dataclass
class SimulatorConfig:
    seed: int = 1
    api_key: str = "sim-key-0123456789abcdef"
    project_type: str = "Email-based"
    data_center: str = "US"
    data: DataSpec = field(default_factory=DataSpec)
    # Multiplies every simulated duration (rate-limit windows, job latencies, URL expiry, late arrival).
    time_scale: float = 1.0
    enforce_rate_limits: bool = True
    export_job_latency_base_s: float = 2.0
    export_job_latency_per_1k_records_s: float = 0.5
    export_max_concurrent_jobs: int = 4
    # How Iterable counts its 1 export request/s per organisation: "shared" by export/start, files
    # and cancel (the pessimistic reading), or "separate" for start and files (its spec's wording).
    export_reading: str = "shared"
    # Another tool of the organisation spends this many requests per second of each export budget.
    other_tool_export_rps: float = 0.0
    export_records_per_file: int = 1000
    export_files_page_size: int = 10
    export_truncate_above_records: int | None = None
    # export/start answers 400 for these dataTypeName values (case-insensitive), as Iterable does
    # for a name it does not accept (its spec says unknownSession, its client anonSession).
    export_refused_data_types: tuple[str, ...] = ()
    # A job that falls back to enqueued waits this long (x time_scale) before it may run again.
    export_requeue_pause_s: float = 2.0
    file_url_expiry_s: float = 1800.0
    faults: FaultConfig = field(default_factory=FaultConfig)
    # Column names of the experiments/metrics CSV, one of EXPERIMENT_HEADER_STYLES (Iterable never
    # published a sample): the key columns' spelling, and whether rows are per variant.
    experiment_metrics_header: str = "experimentId"
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        if self.project_type not in PROJECT_TYPES:
            raise ValueError(f"project_type must be one of {PROJECT_TYPES}, got {self.project_type!r}")
        if self.experiment_metrics_header not in EXPERIMENT_HEADER_STYLES:
            raise ValueError(f"experiment_metrics_header must be one of {sorted(EXPERIMENT_HEADER_STYLES)}")
        if self.export_reading not in ("shared", "separate"):
            raise ValueError(f"export_reading must be 'shared' or 'separate', got {self.export_reading!r}")
        if self.time_scale <= 0:
            raise ValueError("time_scale must be > 0")

    def scaled(self, seconds: float) -> float:
        return seconds * self.time_scale
