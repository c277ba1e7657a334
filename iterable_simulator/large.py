"""A large Iterable organisation, generated lazily and deterministically from each record's index.

`install(sim, LargeOrg())` replaces a simulator's campaigns, journeys, user fields, catalogs and one
event type with those of a large organisation: 100,000 campaigns (20,000 never ended: drafts,
scheduled, triggered and recurring ones), 5,000 journeys, 5,000 user fields, 300 catalogs holding
2,000,000 items and one event type at 5,000,000 records a (simulated) day. Catalog items and events
are sequences that build a record when it is read, so neither memory nor start-up grows with them;
campaigns, journeys and user fields are small enough to hold. `LargeOrg().scaled(0.1)` is the same
organisation at a tenth of its size.

The simulator's endpoints serve these sequences unchanged (they only slice them and take their
length). What they do not support: `put_catalog_item`, `remove("catalog_items", ...)` and
`add_event` on the large event type.

`install_email_opens(sim, n)` is the other large case: one export window of `n` emailOpen events,
generated lazily (iterable_simulator/streams.py) in a project otherwise as generated.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, overload

import orjson

from . import timefmt
from .data import DAY
from .exports import ExportFile, JobState
from .state import SimulatorState
from .streams import EmailOpens, EventStream

_GOLDEN = 0x9E3779B97F4A7C15
_MASK = (1 << 64) - 1
_NOT_ENDED_STATES = ("Draft", "Scheduled", "Running", "Recurring", "Ready")
_ENDED_STATES = ("Finished", "Finished", "Finished", "Archived", "Aborted", "Recalled")
_MEDIUMS = ("Email", "Email", "Email", "Push", "SMS", "InApp")
_FIELD_TYPES = ("string", "long", "boolean", "date", "double", "object")


def mix(*values: int) -> int:
    """A 64-bit hash of integers (splitmix64 steps): the same numbers always give the same value."""
    h = 0
    for v in values:
        h = (h ^ (v & _MASK)) * _GOLDEN & _MASK
        h ^= h >> 31
        h = h * 0xBF58476D1CE4E5B9 & _MASK
        h ^= h >> 29
    return h


@dataclass(frozen=True)
class LargeOrg:
    """Sizes of the large organisation; counts are per organisation, `events_per_day` per simulated day."""

    campaigns: int = 100_000
    campaigns_not_ended: int = 20_000
    journeys: int = 5_000
    user_fields: int = 5_000
    catalogs: int = 300
    catalog_items: int = 2_000_000
    busy_event_type: str = "emailSend"
    events_per_day: int = 5_000_000
    event_days_ahead: float = 3.0
    """How far past the simulator's anchor the busy type keeps producing (simulated days)."""

    def scaled(self, factor: float) -> LargeOrg:
        def n(value: int) -> int:
            return max(1, round(value * factor))

        return replace(
            self,
            campaigns=n(self.campaigns),
            campaigns_not_ended=n(self.campaigns_not_ended),
            journeys=n(self.journeys),
            user_fields=n(self.user_fields),
            catalogs=n(self.catalogs),
            catalog_items=n(self.catalog_items),
            events_per_day=n(self.events_per_day),
        )


class CatalogItems(Sequence[dict[str, Any]]):
    """The items of one catalog, item `j` built from (seed, catalog, j) when read."""

    def __init__(
        self, seed: int, catalog: str, catalog_index: int, count: int, start: float, end: float
    ) -> None:
        self.seed, self.catalog, self.catalog_index = seed, catalog, catalog_index
        self.size, self.start, self.span = count, start, max(1.0, end - start)

    def __len__(self) -> int:
        return self.size

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self.item(j) for j in range(*index.indices(self.size))]
        if index < 0:
            index += self.size
        if not 0 <= index < self.size:
            raise IndexError(index)
        return self.item(index)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (self.item(j) for j in range(self.size))

    def item(self, j: int) -> dict[str, Any]:
        h = mix(self.seed, self.catalog_index, j)
        value = {
            "title": f"{self.catalog} item {j}",
            "price": (h % 9900 + 100) / 100,
            "inStock": bool(h >> 20 & 1),
            "sku": f"sku-{h >> 24 & 0xFFFFFF:06x}",
        }
        return {
            "catalogName": self.catalog,
            "itemId": f"{self.catalog}-{j:07d}",
            "lastModified": timefmt.iso_str(self.start + (h >> 32) % int(self.span)),
            "size": len(orjson.dumps(value)),
            "value": value,
        }


class BusyTypeEvents(EventStream):
    """The busy event type at a constant rate over [start, end), every record in its whole second
    (as Iterable writes `createdAt`). Keys are unique: every record has its own recipient."""

    def __init__(self, seed: int, data_type: str, start: float, end: float, per_second: float) -> None:
        super().__init__(
            seed, data_type, start=start, per_second=per_second, size=max(0, int((end - start) * per_second))
        )

    def record(self, i: int) -> dict[str, Any]:
        h = mix(self.seed, i)
        campaign = 5_000_000 + h % 997
        return {
            "email": f"user{i}@large.example",
            "createdAt": timefmt.seconds_str(int(self.cursor(i))) + " +00:00",
            "messageId": f"{h:016x}{i:016x}",
            "campaignId": campaign,
            "templateId": 9_000_000 + campaign % 89,
            "messageTypeId": 47257,
            "channelId": 39581,
            "contentId": h >> 40 & 0xFFFFF,
        }


def campaigns(seed: int, org: LargeOrg, now: float) -> dict[int, dict[str, Any]]:
    """Campaigns with distinct `updatedAt` spread over a year; the not-ended ones spread evenly among them."""
    out: dict[int, dict[str, Any]] = {}
    for i in range(org.campaigns):
        h = mix(seed, 1, i)
        cid = 6_000_000 + i
        created = now - 365 * DAY + i * (360 * DAY / org.campaigns)
        open_ = (
            i + 1
        ) * org.campaigns_not_ended // org.campaigns > i * org.campaigns_not_ended // org.campaigns
        state = (
            _NOT_ENDED_STATES[h % len(_NOT_ENDED_STATES)] if open_ else _ENDED_STATES[h % len(_ENDED_STATES)]
        )
        medium = _MEDIUMS[(h >> 8) % len(_MEDIUMS)]
        ctype = "Triggered" if state in ("Running", "Ready") else "Blast"
        c: dict[str, Any] = {
            "id": cid,
            "name": f"{medium} campaign {cid}",
            "type": ctype,
            "campaignState": state,
            "messageMedium": medium,
            "createdAt": timefmt.epoch_ms(created),
            "updatedAt": timefmt.epoch_ms(created + 3600) + i % 1000,
            "createdByUserId": "lifecycle@acme.test",
            "templateId": 2_000_000 + i,
            "listIds": [949814] if ctype == "Blast" else [],
            "labels": [],
        }
        if state not in ("Draft", "Ready", "Scheduled"):
            c["startAt"] = timefmt.epoch_ms(created + 1800)
        if not open_:
            c["endedAt"] = timefmt.epoch_ms(created + 3000)
        out[cid] = c
    return out


def journeys(seed: int, org: LargeOrg, now: float) -> list[dict[str, Any]]:
    out = []
    for i in range(org.journeys):
        h = mix(seed, 2, i)
        created = now - 300 * DAY + i * (290 * DAY / max(1, org.journeys))
        archived = h % 4 == 0
        jid = 80_001 + i * 5
        out.append(
            {
                "id": jid,
                "name": f"Journey {i}",
                "createdAt": timefmt.epoch_ms(created),
                "updatedAt": timefmt.epoch_ms(created + (h >> 8) % (5 * DAY)),
                "creatorUserId": "lifecycle@acme.test",
                "enabled": not archived and h >> 4 & 1 == 1,
                "isArchived": archived,
                "journeyType": "Journey",
                "lifetimeLimit": 1,
                "simultaneousLimit": 1,
                "startTileId": h % 99 + 1,
                "triggerEventNames": ["appLaunch"],
            }
        )
    return out


def user_fields(org: LargeOrg) -> dict[str, str]:
    fields = {"email": "string", "userId": "string", "signupDate": "date", "profileUpdatedAt": "date"}
    for i in range(max(0, org.user_fields - len(fields))):
        fields[f"customField{i:05d}"] = _FIELD_TYPES[i % len(_FIELD_TYPES)]
    return dict(sorted(fields.items()))


def catalogs(seed: int, org: LargeOrg, now: float) -> dict[str, CatalogItems]:
    """`catalog_items` spread evenly over `catalogs` catalogs, modified over the last 90 days."""
    per, extra = divmod(org.catalog_items, org.catalogs)
    return {
        f"catalog_{k:03d}": CatalogItems(
            seed, f"catalog_{k:03d}", catalog_index=k, count=per + (k < extra), start=now - 90 * DAY, end=now
        )
        for k in range(org.catalogs)
    }


def install(sim: SimulatorState, org: LargeOrg) -> BusyTypeEvents:
    """Give `sim` the large organisation (replacing its campaigns and their metrics, experiments,
    journeys, user fields, catalogs and the busy type's events); returns the busy type's stream,
    which starts `history_days` before the simulator's anchor."""
    ds, cfg = sim.data, sim.config
    seed = cfg.seed
    ds.campaigns = campaigns(seed, org, ds.now)
    ds.activity = {}  # no campaign has metrics: a metrics request costs the simulator nothing
    ds.experiments = []
    ds.journeys = journeys(seed, org, ds.now)
    ds.user_fields = user_fields(org)
    ds.catalogs = dict(catalogs(seed, org, ds.now))
    per_wall_second = org.events_per_day / (DAY * cfg.time_scale)
    start = ds.now - cfg.data.history_days * DAY * cfg.time_scale
    end = ds.now + org.event_days_ahead * DAY * cfg.time_scale
    stream = BusyTypeEvents(seed, org.busy_event_type, start=start, end=end, per_second=per_wall_second)
    ds.events[org.busy_event_type] = stream
    return stream


def install_email_opens(sim: SimulatorState, count: int) -> EmailOpens:
    """Replace `sim`'s emailOpen events with `count` generated lazily, spread evenly over the data's
    history as the Generator spreads its events, opened by its users on its launched email
    campaigns (any launched campaign when none is an email one); returns the stream."""
    ds = sim.data
    launched = [c for c in ds.campaigns.values() if ds.is_launched(c)]
    email = [c for c in launched if c["messageMedium"] == "Email"] or launched
    stream = EmailOpens(
        sim.config.seed,
        start=ds.now - sim.config.data.history_days * DAY,
        end=ds.now - 1.0,
        count=count,
        users=[s.data for s in ds.users],
        campaigns=[(c["id"], c["templateId"]) for c in email],
        project_type=ds.project_type,
    )
    ds.events[stream.data_type] = stream
    return stream


def forget_downloaded_exports(sim: SimulatorState, downloaded: set[tuple[str, str]], log_from: int) -> int:
    """Drop the file contents of completed export jobs whose every file was downloaded
    (a long run at 5M records a day would otherwise keep every export in memory). `downloaded`
    accumulates (job id, file name) from the request log, read from entry `log_from` on; returns
    where to read from next time. A file downloaded again afterwards is empty."""
    log = sim.request_log
    for entry in log[log_from:]:
        if entry["path"].startswith("/_files/") and entry["status"] == 200:
            _, _, job_id, name = entry["path"].split("/", 3)
            downloaded.add((job_id, name))
    for job in sim.exports.jobs.values():
        if (
            job.state is JobState.COMPLETED
            and any(f.lines for f in job.files)
            and all((str(job.id), f.name) in downloaded for f in job.files)
        ):
            job.files = [ExportFile(f.name, []) for f in job.files]
    return len(log)
