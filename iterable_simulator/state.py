"""The simulator's state: the dataset, the export jobs, limits and faults, and what it was asked.

The HTTP routes (app.py) read and change it; simulator.py serves them."""

from __future__ import annotations

import bisect
import json
import math
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from . import timefmt
from .config import EXPERIMENT_HEADER_STYLES, SimulatorConfig
from .data import (
    Dataset,
    Generator,
    LightUsers,
    Member,
    canonical_data_type,
    metric_value_strings,
)
from .exports import ExportJob, ExportManager, ExportSettings, LazySelection, Selection
from .faults import FaultConfig
from .limits import RateLimiter
from .stored import Stored
from .streams import EventStream

T = TypeVar("T")


def _half(cell: str, decimal: bool) -> str:
    """One of an experiment's two variants: half of its campaign's metric."""
    return str(round(float(cell) * 0.5, 2)) if decimal else str(int(float(cell) * 0.5))


def _twice(cell: str) -> str:
    """A whole experiment: the sum of its two variants."""
    return str(round(float(cell) * 2, 2)) if "." in cell else str(int(cell) * 2)


LIGHT_RECORD: dict[str, Any] = {}
"""Stands for the record of a light user's export line: an export never reads it without faults."""


@dataclass
class IssuedUrl:
    job_id: int
    name: str
    issued_at: float
    expires_at: float


class SimulatorState:
    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        cfg = self.config
        self.rng = random.Random(f"{cfg.seed}:runtime")  # per-call shuffles and fault rolls
        anchor = cfg.data.now if cfg.data.now is not None else cfg.clock()
        self.data: Dataset = Generator(
            cfg.data, cfg.project_type, seed=cfg.seed, now=anchor, time_scale=cfg.time_scale
        ).generate()
        self._sort_stores()
        self.failing_list_id = self._list_id_at(cfg.data.failing_list_index)
        self.breaking_list_id = self._list_id_at(cfg.data.breaking_list_index)
        if self.breaking_list_id == self.failing_list_id:
            self.breaking_list_id = None
        self.breaking_list_broken = False
        self.limiter = RateLimiter(cfg.time_scale)
        if cfg.other_tool_export_rps:
            self.limiter.set_other_tool(cfg.other_tool_export_rps, self.now())
        self.exports = ExportManager(
            self._export_settings(),
            self._select_for_export,
            rng=random.Random(f"{cfg.seed}:exports"),
            on_fault=self.record_fault,
        )
        self.request_log: list[dict[str, Any]] = []
        self.injected_faults: list[dict[str, Any]] = []
        self.rate_limited: dict[str, int] = {}
        self.issued_urls: dict[str, IssuedUrl] = {}
        self.hidden_campaigns: dict[int, tuple[float, dict[str, Any]]] = {}
        """Campaigns whose latest update the listing does not show yet: (visible at, as listed)."""
        self.base_url = ""
        """Where the simulator is served, once it is."""

    # -- basic properties --------------------------------------------------------------------------
    @property
    def api_key(self) -> str:
        return self.config.api_key

    @property
    def faults(self) -> FaultConfig:
        return self.config.faults

    @faults.setter
    def faults(self, value: FaultConfig) -> None:
        self.config.faults = value

    def now(self) -> float:
        return self.config.clock()

    @property
    def jobs(self) -> dict[int, ExportJob]:
        self.exports.tick(self.now())
        return self.exports.jobs

    @property
    def cancelled_jobs(self) -> list[int]:
        return self.exports.cancelled_jobs

    @property
    def max_concurrent_running_jobs_seen(self) -> int:
        self.exports.tick(self.now())
        return self.exports.max_concurrent_running_seen

    def peak_request_rate(self) -> dict[str, int]:
        """Per bucket: the most requests (accepted or rejected) seen within one window of its limit."""
        return self.limiter.peak_attempts()

    # -- ground truth ------------------------------------------------------------------------------
    def records(self, kind: str) -> list[Any]:
        """Raw records as Iterable returns them (all of them, visible or not). Do not mutate."""
        ds = self.data
        match kind:
            case "channels" | "message_types" | "lists" | "metadata_tables" | "journeys" | "snippets":
                return list(getattr(ds, kind))
            case "templates":
                return [
                    {**t, "templateType": ttype, "messageMedium": medium}
                    for (ttype, medium), items in ds.templates.items()
                    for t in items
                ]
            case "campaigns":
                return list(ds.campaigns.values())
            case "catalogs":
                return [{"name": name} for name in ds.catalogs]
            case "catalog_items":
                return [item for items in ds.catalogs.values() for item in items]
            case "user_fields":
                return [{"name": name, "type": kind} for name, kind in ds.user_fields.items()]
            case "users":
                return [s.data for s in ds.users if s.hidden_at == math.inf]  # superseded versions left out
            case "list_users":
                return self.list_users()
        return [s.data for s in self._event_store(kind)]

    def listed_campaigns(self) -> list[dict[str, Any]]:
        """Campaigns as the listing shows them now: updates not yet visible are not applied."""
        now = self.now()
        for cid in [cid for cid, (at, _) in self.hidden_campaigns.items() if at <= now]:
            del self.hidden_campaigns[cid]
        return [
            self.hidden_campaigns[c["id"]][1] if c["id"] in self.hidden_campaigns else c
            for c in self.data.campaigns.values()
        ]

    def visible_records(self, kind: str, at: float | None = None) -> list[Any]:
        at = self.now() if at is None else at
        if kind == "users":
            return [s.data for s in self.data.users if s.visible(at)]
        if kind.startswith("events:"):
            return [s.data for s in self._event_store(kind) if s.visible(at)]
        return self.records(kind)

    def export_ground_truth(
        self, data_type: str, start: float | None, end: float | None, at: float | None = None
    ) -> list[dict[str, Any]]:
        """What an export of [start, end) whose processing starts at `at` (default now) contains."""
        return [
            s.data
            for s in self._window(self._store(data_type), start, end=end, at=self.now() if at is None else at)
        ]

    def templates_by_combo(self) -> dict[tuple[str, str], list[dict[str, Any]]]:
        return {combo: list(items) for combo, items in self.data.templates.items()}

    def list_users(self, prefer_user_id: bool = False) -> list[tuple[int, str]]:
        return [
            (list_id, self.data.member_line(m, prefer_user_id))
            for list_id, members in self.data.members.items()
            for m in members
        ]

    def campaign_metrics_rows(
        self, start: float | None = None, end: float | None = None
    ) -> dict[int, dict[str, str]]:
        """Lifetime metrics (or those of [start, end)) for every launched campaign, as the CSV cells."""
        return {
            cid: metric_value_strings(activity, start if start is not None else 0.0, end)
            for cid, activity in self.data.activity.items()
        }

    def experiment_metrics_table(
        self,
        experiment_ids: list[int],
        campaign_ids: list[int],
        start: float | None = None,
        end: float | None = None,
    ) -> tuple[list[str], list[list[str]]]:
        """The experiments/metrics CSV: header and rows, one row per variant of each selected
        experiment (all of them when no ids are given), or per experiment in the "per experiment"
        header style; columns named as `config.experiment_metrics_header` says."""
        rows = self.campaign_metrics_rows(start, end)
        experiment, campaign, template, variant = EXPERIMENT_HEADER_STYLES[
            self.config.experiment_metrics_header
        ]
        per_variant = template is not None or variant is not None
        columns = ["Total Email Sends", "Unique Email Opens", "Unique Email Clicks", "Revenue"]
        table = []
        for exp in self.data.experiments:
            if (
                (experiment_ids or campaign_ids)
                and exp["id"] not in experiment_ids
                and exp["campaignId"] not in campaign_ids
            ):
                continue
            metrics = rows.get(exp["campaignId"], {})
            cells = [_half(metrics.get(c, "0"), c == "Revenue") for c in columns]
            for v in exp["variants"] if per_variant else [None]:
                ids = {
                    experiment: exp["id"],
                    campaign: exp["campaignId"],
                    template: v and v["templateId"],
                    variant: v and v["name"],
                }
                key_cells = [str(ids[name]) for name in (experiment, campaign, template, variant) if name]
                table.append([*key_cells, *(cells if v else [_twice(c) for c in cells])])
        header = [name for name in (experiment, campaign, template, variant) if name]
        return [*header, *columns], table

    # -- mutations ---------------------------------------------------------------------------------
    def add_event(self, data_type: str, record: dict[str, Any], visible_after_s: float = 0) -> dict[str, Any]:
        """Add an event; its cursor is its `createdAt` (set to now if absent)."""
        name = self._canonical(data_type)
        now = self._settle()
        record = dict(record)
        record.setdefault("createdAt", timefmt.iterable_str(now))
        self._insert(
            self._writable(self.data.events[name]),
            record,
            cursor=timefmt.parse(record["createdAt"]),
            visible_at=now + self.config.scaled(visible_after_s),
        )
        return record

    def add_user(self, record: dict[str, Any], visible_after_s: float = 0) -> dict[str, Any]:
        """Add a user; exports select users by `profileUpdatedAt` (set to now if absent)."""
        now = self._settle()
        record = dict(record)
        record.setdefault("profileUpdatedAt", timefmt.iterable_str(now))
        self._insert(
            self._writable(self.data.users),
            record,
            cursor=timefmt.parse(record["profileUpdatedAt"]),
            visible_at=now + self.config.scaled(visible_after_s),
        )
        return record

    def update_user(
        self,
        identifier: str,
        fields: dict[str, Any] | None = None,
        *,
        touch: bool = True,
        visible_after_s: float = 0,
    ) -> dict[str, Any]:
        """Change a user found by email, userId or itblUserId; `touch` moves profileUpdatedAt to now.
        Exports show the previous version until the new one is visible. With the
        `same_second_update_rate` fault, a second version follows in the same second, visible late."""
        now = self._settle()
        users = self._writable(self.data.users)
        old = users.pop(self._user_index(identifier))
        record = {**old.data, **(fields or {})}
        if touch:
            record["profileUpdatedAt"] = timefmt.iterable_str(now)
        visible_at = now + self.config.scaled(visible_after_s)
        new = self._insert(
            users, record, cursor=timefmt.parse(record["profileUpdatedAt"]), visible_at=visible_at
        )
        if new.visible_at > now and old.visible(now):
            # The previous version is exported until its successor is visible.
            old.hidden_at = new.visible_at
            bisect.insort(users, old, key=lambda s: s.cursor)
        if self.rng.random() < self.faults.same_second_update_rate:
            revision = {**record, "sameSecondRevision": record.get("sameSecondRevision", 0) + 1}
            delay = self.config.scaled(self.faults.same_second_update_delay_s)
            late = self._insert(users, revision, cursor=new.cursor, visible_at=visible_at + delay)
            new.hidden_at = late.visible_at
            self.record_fault("same_second_update", {"user": identifier, "visible_at": late.visible_at})
        return record

    def remove(self, kind: str, id: Any) -> None:
        ds = self.data
        self._settle()
        match kind:
            case "channels" | "message_types" | "lists" | "journeys" | "snippets":
                items = getattr(ds, kind)
                items[:] = [r for r in items if r["id"] != id]
                if kind == "lists":
                    ds.members.pop(id, None)
            case "metadata_tables":
                ds.metadata_tables[:] = [r for r in ds.metadata_tables if r["name"] != id]
            case "templates":
                for items in ds.templates.values():
                    items[:] = [t for t in items if t["templateId"] != id]
            case "campaigns":
                ds.campaigns.pop(id, None)
                self.hidden_campaigns.pop(id, None)
                ds.activity.pop(id, None)
            case "catalogs":
                ds.catalogs.pop(id, None)
            case "catalog_items":
                catalog, item_id = id
                items = self._writable(ds.catalogs[catalog])
                items[:] = [i for i in items if i["itemId"] != item_id]
            case _:
                raise ValueError(f"cannot remove from {kind!r}")

    def update_record(self, kind: str, id: Any, **fields: Any) -> dict[str, Any]:
        """Set fields of a journey or snippet (found by id), as an edit in Iterable's UI would."""
        record = next(r for r in getattr(self.data, kind) if r["id"] == id)
        record.update(fields)
        return record

    def put_catalog_item(self, catalog: str, item_id: str, value: dict[str, Any]) -> dict[str, Any]:
        """Create or replace a catalog item; its `lastModified` becomes now."""
        items = self._writable(self.data.catalogs[catalog])
        item = {
            "catalogName": catalog,
            "itemId": item_id,
            "lastModified": timefmt.iso_str(self._settle()),
            "size": len(json.dumps(value)),
            "value": value,
        }
        items[:] = [i for i in items if i["itemId"] != item_id] + [item]
        return item

    def update_campaign(self, campaign_id: int, visible_after_s: float = 0, **fields: Any) -> dict[str, Any]:
        """Set campaign fields; `updatedAt` moves only if the caller passes it. None deletes a field.
        With `visible_after_s` the listing shows the campaign as it was until then."""
        campaign = self.data.campaigns[campaign_id]
        if visible_after_s:
            self.hidden_campaigns[campaign_id] = (
                self.now() + self.config.scaled(visible_after_s),
                dict(campaign),
            )
        for key, value in fields.items():
            if value is None:
                campaign.pop(key, None)
            else:
                campaign[key] = value
        return campaign

    def set_campaign_metrics(self, campaign_id: int, totals: dict[str, float]) -> None:
        """Override lifetime metric totals (e.g. late opens keep a finished campaign's metrics moving)."""
        self.data.activity[campaign_id].totals.update(totals)

    def set_list_members(self, list_id: int, identifiers: list[str]) -> None:
        self.data.members[list_id] = [self._member_for(ident) for ident in identifiers]

    def create_foreign_job(
        self,
        data_type: str,
        start: float | None,
        end: float | None,
        *,
        duration_s: float | None = None,
        same_project: bool = True,
    ) -> int:
        """An export job started by another tool of the organisation; it occupies a processing slot."""
        job = self.exports.create(
            self.now(),
            data_type=self._canonical(data_type),
            start=start,
            end=end,
            created_by_connector=False,
            project_visible=same_project,
            fixed_duration=self.config.scaled(duration_s) if duration_s is not None else None,
        )
        return job.id

    def other_tool_exports(self, requests_per_s: float) -> None:
        """Another tool of the organisation starts (or, at 0, stops) spending each export budget."""
        self.limiter.set_other_tool(requests_per_s, self.now())

    # -- internals used by the app -----------------------------------------------------------------
    def record_request(self, entry: dict[str, Any]) -> None:
        self.request_log.append(entry)
        if entry.get("status") == 429:
            self.rate_limited[entry["bucket"]] = self.rate_limited.get(entry["bucket"], 0) + 1

    def record_fault(self, kind: str, details: dict[str, Any]) -> None:
        self.injected_faults.append({"t": self.now(), "fault": kind, **details})

    def issue_file_url(self, job_id: int, name: str, now: float) -> str:
        token = secrets.token_hex(32)
        expiry = self.config.scaled(self.config.file_url_expiry_s)
        self.issued_urls[token] = IssuedUrl(job_id, name, issued_at=now, expires_at=now + expiry)
        amz_date = timefmt.to_dt(now).strftime("%Y%m%dT%H%M%SZ")
        return (
            f"{self.base_url}/_files/{job_id}/{name}?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            f"&X-Amz-Credential=AKIASIMULATOR%2F{amz_date[:8]}%2Fus-east-1%2Fs3%2Faws4_request"
            f"&X-Amz-Date={amz_date}&X-Amz-Expires={int(round(expiry))}&X-Amz-SignedHeaders=host"
            f"&X-Amz-Signature={token}"
        )

    def _settle(self) -> float:
        """Bring export jobs up to date before data changes, so snapshots see the right state."""
        now = self.now()
        self.exports.tick(now)
        return now

    def _export_settings(self) -> ExportSettings:
        cfg = self.config
        return ExportSettings(
            max_concurrent=cfg.export_max_concurrent_jobs,
            latency_base=cfg.scaled(cfg.export_job_latency_base_s),
            latency_per_1k=cfg.scaled(cfg.export_job_latency_per_1k_records_s),
            records_per_file=cfg.export_records_per_file,
            truncate_above=lambda: self.config.export_truncate_above_records,
            requeue_pause=cfg.scaled(cfg.export_requeue_pause_s),
            malformed_line_rate=lambda: self.faults.malformed_line_rate,
            missing_cursor_rate=lambda: self.faults.missing_cursor_rate,
            missing_key_rate=lambda: self.faults.missing_key_rate,
        )

    def _select_for_export(self, job: ExportJob, at: float) -> Selection:
        """(record, its JSON line if unchanged) for every record the job exports, or the indices of
        a lazily generated type's records when the job takes them unchanged."""
        store = self._store(job.data_type)
        unchanged = not (job.campaign_id or job.only_fields or job.omit_fields or self.exports.line_faults())
        if isinstance(store, EventStream) and unchanged:
            return LazySelection(store, store.window(job.start, job.end, at))
        if isinstance(store, LightUsers) and unchanged:
            # Millions of light users: only their lines are held (the record is never read).
            return [(LIGHT_RECORD, line) for line in store.export_lines(job.start, job.end, at)]
        out: list[tuple[dict[str, Any], bytes | None]] = []
        for stored in self._window(store, job.start, end=job.end, at=at):
            record = stored.data
            if job.campaign_id is not None and record.get("campaignId") != job.campaign_id:
                continue
            if not job.only_fields and not job.omit_fields:
                out.append((record, stored.encoded()))
                continue
            if job.only_fields:
                record = {k: v for k, v in record.items() if k in job.only_fields}
            if job.omit_fields:
                record = {k: v for k, v in record.items() if k not in job.omit_fields}
            out.append((record, None))
        return out

    @staticmethod
    def _window(store: Sequence[Stored], start: float | None, end: float | None, at: float) -> list[Stored]:
        if isinstance(store, EventStream):
            return [store.stored(i) for i in store.window(start, end, at)]
        lo = 0 if start is None else bisect.bisect_left(store, start, key=lambda s: s.cursor)
        hi = len(store) if end is None else bisect.bisect_left(store, end, key=lambda s: s.cursor)
        return [s for s in store[lo:hi] if s.visible(at)]

    def _store(self, data_type: str) -> Sequence[Stored]:
        name = self._canonical(data_type)
        return self.data.users if name == "user" else self.data.events[name]

    def _event_store(self, kind: str) -> Sequence[Stored]:
        if not kind.startswith("events:"):
            raise ValueError(f"unknown record kind {kind!r}")
        return self.data.events[self._canonical(kind.removeprefix("events:"))]

    @staticmethod
    def _canonical(data_type: str) -> str:
        name = canonical_data_type(data_type)
        if name is None:
            raise ValueError(f"unknown data type {data_type!r}")
        return name

    @staticmethod
    def _writable(records: Sequence[T]) -> list[T]:
        if not isinstance(records, list):
            raise TypeError(f"{type(records).__name__} records are read-only")
        return records

    @staticmethod
    def _insert(store: list[Stored], record: dict[str, Any], *, cursor: float, visible_at: float) -> Stored:
        stored = Stored(record, cursor, visible_at)
        bisect.insort(store, stored, key=lambda s: s.cursor)
        return stored

    def _sort_stores(self) -> None:
        for store in [self.data.users, *self.data.events.values()]:
            if isinstance(store, list):
                store.sort(key=lambda s: s.cursor)

    def _user_index(self, identifier: str) -> int:
        for i, stored in enumerate(self.data.users):
            if stored.hidden_at == math.inf and identifier in (
                stored.data.get("email"),
                stored.data.get("userId"),
                stored.data.get("itblUserId"),
            ):
                return i
        raise KeyError(f"no user {identifier!r}")

    def _member_for(self, identifier: str) -> Member:
        ptype = self.config.project_type
        if ptype == "Email-based":
            return Member(identifier, None)
        if ptype == "UserID-based":
            return Member(None, identifier)
        for stored in self.data.users:
            if identifier in (stored.data.get("email"), stored.data.get("userId")):
                return Member(stored.data.get("email"), stored.data.get("userId"))
        return Member(identifier, None) if "@" in identifier else Member(None, identifier)

    def _list_id_at(self, index: int | None) -> int | None:
        if index is None or not self.data.lists:
            return None
        try:
            return self.data.lists[index]["id"]
        except IndexError:
            return None
