"""Configuration, state and document models of the Iterable capture."""

import base64
import functools
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Self
from urllib.parse import urlsplit

import orjson

from estuary_cdk.capture.common import (
    BaseDocument,
    ConnectorState as GenericConnectorState,
    ResourceConfigWithSchedule,
    ResourceState,
)
from estuary_cdk.flow import AccessToken
from estuary_cdk.incremental_csv_processor import BaseCSVRow
from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, Field, model_validator

from .budgets import DEFAULT_EXPORT_SHARE

BASE_URL_ENV = "ITERABLE_API_BASE_URL"
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")

EVENT_TYPES: tuple[str, ...] = (
    "emailSend",
    "emailOpen",
    "emailClick",
    "hostedUnsubscribeClick",
    "emailComplaint",
    "emailBounce",
    "emailSendSkip",
    "emailSubscribe",
    "emailUnsubscribe",
    "pushSend",
    "pushOpen",
    "pushUninstall",
    "pushBounce",
    "pushSendSkip",
    "inAppSend",
    "inAppOpen",
    "inAppClick",
    "inAppClose",
    "inAppDelete",
    "inAppDelivery",
    "inAppSendSkip",
    "inAppRecall",
    "inboxSession",
    "inboxMessageImpression",
    "smsSend",
    "smsBounce",
    "smsClick",
    "smsReceived",
    "smsSendSkip",
    "smsUsageInfo",
    "webPushSend",
    "webPushClick",
    "webPushSendSkip",
    "rcsSend",
    "rcsSendSkip",
    "purchase",
    "customEvent",
    "embeddedSend",
    "embeddedSendSkip",
    "embeddedClick",
    "embeddedReceived",
    "embeddedImpression",
    "embeddedSession",
    "unknownSession",
    "journeyExit",
    "whatsAppBounce",
    "whatsAppClick",
    "whatsAppReceived",
    "whatsAppSeen",
    "whatsAppSend",
    "whatsAppSendSkip",
    "whatsAppUsageInfo",
)
"""Every event export data type. `emailUnsubscribe` is spelled as Estuary's existing Iterable
connector spells it (Iterable matches data type names case-insensitively), so event keys match."""


class ProjectType(StrEnum):
    EMAIL_BASED = "Email-based"
    USER_ID_BASED = "UserID-based"
    HYBRID = "Hybrid"


class DataCenter(StrEnum):
    US = "US"
    EU = "EU"


DATA_CENTER_ORIGINS: dict[DataCenter, str] = {
    DataCenter.US: "https://api.iterable.com",
    DataCenter.EU: "https://api.eu.iterable.com",
}


class ApiKey(AccessToken):
    credentials_title: Literal["Private App Credentials"] = Field(
        default="Private App Credentials",
        title="Authentication Method",
        json_schema_extra={"type": "string", "order": 0},
    )
    access_token: str = Field(
        title="API Key",
        description=(
            "A server-side API key from Iterable (Integrations > API Keys). Read-only and "
            "client-side keys cannot start export jobs or read list membership."
        ),
        min_length=1,
        json_schema_extra={"secret": True, "order": 1},
    )


def _duration_within(low: timedelta, high: timedelta, what: str):
    def check(value: timedelta) -> timedelta:
        if not low <= value <= high:
            raise ValueError(
                f"{what} must be between {_iso_duration(low)} and {_iso_duration(high)}, "
                f"got {_iso_duration(value)}"
            )
        return value

    return AfterValidator(check)


def _iso_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    time = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (secs, "S")) if n)
    return "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "" if days else "T0S")


def _known_event_types(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    unknown = [name for name in value if name not in EVENT_TYPES]
    if unknown:
        raise ValueError(
            f"Unknown event type(s) {', '.join(unknown)}. Valid event types are: {', '.join(EVENT_TYPES)}"
        )
    return list(dict.fromkeys(value)) or None


class Advanced(BaseModel):
    window_size: Annotated[
        timedelta, _duration_within(timedelta(seconds=1), timedelta(days=365), "Window size")
    ] = Field(
        default=timedelta(hours=12),
        title="Initial Export Window",
        description=(
            "Span of time the first export job of a backfill covers, as an ISO 8601 duration "
            "(for example PT12H). Later windows grow across stretches with little data and "
            "shrink where Iterable truncates an export."
        ),
    )
    late_data_lag: Annotated[
        timedelta, _duration_within(timedelta(0), timedelta(days=1), "Late data lag")
    ] = Field(
        default=timedelta(hours=1),
        title="Late Data Lookback",
        description=(
            "How far behind real time users and events are read a second time, as an ISO 8601 "
            "duration, so that records Iterable makes available late are still captured."
        ),
    )
    list_users_timeout: Annotated[
        timedelta, _duration_within(timedelta(minutes=5), timedelta(hours=6), "List users timeout")
    ] = Field(
        default=timedelta(minutes=30),
        title="List Users Timeout",
        description=(
            "How long to wait for Iterable to return the members of one list, as an ISO 8601 "
            "duration. Large lists can take over an hour."
        ),
    )
    campaign_metrics_lookback: Annotated[
        timedelta,
        _duration_within(timedelta(0), timedelta(days=365), "Campaign metrics lookback"),
    ] = Field(
        default=timedelta(days=15),
        title="Campaign Metrics Lookback",
        description=(
            "How long after a campaign ends its metrics keep being refreshed, as an ISO 8601 "
            "duration, so late opens and attributed purchases are captured."
        ),
    )
    event_types: Annotated[list[str] | None, AfterValidator(_known_event_types)] = Field(
        default=None,
        title="Event Types",
        description=(
            "Event data types to capture, for example emailSend or customEvent. Leave empty "
            "to capture all of them."
        ),
    )
    skip_malformed_records: bool = Field(
        default=False,
        title="Skip Malformed Records",
        description=(
            "Leave off: a user or event Iterable exports as invalid JSON, or without its cursor "
            "(createdAt, profileUpdatedAt) or key (email, itblUserId), stops the capture with an "
            "error naming the export file and line. Turn on only when such an error repeats on "
            "every restart and you accept losing those records: each one is then skipped, logged "
            "with its location and counted, and the capture goes on."
        ),
    )
    capture_all_users: bool = Field(
        default=True,
        title="Capture All Users",
        description=(
            "When on, the users backfill starts at 2013-01-01T00:00:00Z (Iterable's launch) "
            "whatever the start date says, so every user is captured and every event can be "
            "joined to its user; the start date still bounds events. When off, users follow the "
            "start date: only users whose profile changed since then are captured. Turn it off "
            "for a large project that does not need users unchanged since the start date: "
            "exporting every profile takes Iterable longer and transfers every user. Applies to "
            "users backfills that start after it is set."
        ),
    )
    data_center: DataCenter = Field(
        default=DataCenter.US,
        title="Data Center",
        description=(
            "The Iterable data center your project lives in: US (api.iterable.com) or EU "
            "(api.eu.iterable.com). An API key only works in its own data center."
        ),
        json_schema_extra={"type": "string"},
    )
    export_budget_share: float = Field(
        default=DEFAULT_EXPORT_SHARE,
        ge=0.1,
        le=1,
        title="Share of Iterable's Export Limits",
        description=(
            "How much of your Iterable organisation's export limits this capture may use, from 0.1 "
            "to 1. Iterable allows each organisation 1 export request per second and 4 export jobs "
            "processing at once, shared by every tool that exports from it. The default, 0.5, "
            "leaves half for your other Iterable tools; set 1 for the fastest backfill when no "
            "other tool exports from Iterable."
        ),
    )


def _blank_as_none(value: Any) -> Any:
    return None if value == "" else value


def _in_utc(value: datetime | None) -> datetime | None:
    """Export windows are sent to Iterable in UTC: an offset is converted, never dropped."""
    return None if value is None else value.astimezone(UTC)


def _not_in_future(value: datetime | None) -> datetime | None:
    if value is not None and value > datetime.now(tz=UTC):
        raise ValueError(f"Start date {value.isoformat()} is in the future")
    return value


USERS_HISTORY_START = datetime(2013, 1, 1, tzinfo=UTC)
"""Iterable launched in 2013: no profile was updated before."""


class EndpointConfig(BaseModel):
    credentials: ApiKey = Field(
        discriminator="credentials_title",
        title="Authentication",
        json_schema_extra={"order": 0},
    )
    project_type: ProjectType = Field(
        title="Project Type",
        description=(
            "How users are identified in your Iterable project (Settings > Project Settings). "
            "Email-based projects key users by email; UserID-based and Hybrid projects by "
            "Iterable's itblUserId."
        ),
        json_schema_extra={"order": 1, "type": "string"},
    )
    start_date: Annotated[
        AwareDatetime | None,
        BeforeValidator(_blank_as_none),
        AfterValidator(_in_utc),
        AfterValidator(_not_in_future),
    ] = Field(
        default=None,
        title="Start Date",
        description=(
            "Date and time in the format YYYY-MM-DDTHH:MM:SSZ (UTC), or with an offset such as "
            "2026-01-01T00:00:00-08:00, which is converted to UTC. Events before it are not "
            "captured, nor users last updated before it unless Capture All Users is on (the "
            "default). Leave empty to start 30 days before the capture is created."
        ),
        json_schema_extra={
            "order": 2,
            "format": "date-time",
            "pattern": r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2}))?$",
        },
    )
    advanced: Advanced = Field(
        default_factory=Advanced,
        title="Advanced",
        description="Settings most captures can leave as they are.",
        json_schema_extra={"advanced": True, "order": 3},
    )

    @model_validator(mode="after")
    def _project_exists_in_data_center(self) -> "EndpointConfig":
        if self.advanced.data_center is DataCenter.EU and self.project_type is ProjectType.EMAIL_BASED:
            raise ValueError(
                "Iterable's EU data center has no Email-based projects: choose your project's type "
                "(Iterable: Settings > Project Settings) or the US data center (Advanced > Data Center)"
            )
        return self

    def start(self, now: datetime) -> datetime:
        """Where events (and users, without capture_all_users) start, for a binding created at `now`."""
        return self.start_date or now - timedelta(days=30)

    def users_start(self, now: datetime) -> datetime:
        """Where the users backfill of a binding created at `now` starts."""
        return USERS_HISTORY_START if self.advanced.capture_all_users else self.start(now)

    def api_origin(self) -> str:
        """The Iterable origin requests go to: the data center's, or `ITERABLE_API_BASE_URL`."""
        override = os.environ.get(BASE_URL_ENV, "").rstrip("/")
        if not override:
            return DATA_CENTER_ORIGINS[self.advanced.data_center]
        parts = urlsplit(override)
        if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS):
            return override
        raise ValueError(
            f"{BASE_URL_ENV} must be an https:// origin (plain http is allowed only for "
            f"127.0.0.1, ::1 or localhost) so that the API key is never sent in clear text; "
            f"got {override!r}"
        )


class ResourceConfig(ResourceConfigWithSchedule):
    pass


ConnectorState = GenericConnectorState[ResourceState]


def key_schemas(model: type[BaseDocument], key: list[str]) -> dict[str, Any]:
    """The JSON schema of each key field of a document model, for the binding's sourced schema."""
    properties = model.model_json_schema(by_alias=True)["properties"]
    return {pointer.lstrip("/"): {"type": properties[pointer.lstrip("/")]["type"]} for pointer in key}


class SnapshotStream(BaseDocument, extra="allow"):
    """A small Iterable resource captured whole on every interval."""

    name: ClassVar[str]
    path: ClassVar[str]
    items_key: ClassVar[str]


class Channel(SnapshotStream):
    name: ClassVar[str] = "channels"
    path: ClassVar[str] = "channels"
    items_key: ClassVar[str] = "channels"


class MessageType(SnapshotStream):
    name: ClassVar[str] = "message_types"
    path: ClassVar[str] = "messageTypes"
    items_key: ClassVar[str] = "messageTypes"


class List(SnapshotStream):
    name: ClassVar[str] = "lists"
    path: ClassVar[str] = "lists"
    items_key: ClassVar[str] = "lists"

    id: int


class MetadataTable(SnapshotStream):
    name: ClassVar[str] = "metadata_tables"
    path: ClassVar[str] = "metadata"
    items_key: ClassVar[str] = "results"


class Template(SnapshotStream):
    name: ClassVar[str] = "templates"
    path: ClassVar[str] = "templates"
    items_key: ClassVar[str] = "templates"

    TEMPLATE_TYPES: ClassVar[tuple[str, ...]] = ("Base", "Blast", "Triggered", "Workflow")
    # All the listing's messageMedium filter accepts; other mediums (WebPush, Embedded, WhatsApp)
    # can only come from the listing without it.
    MESSAGE_MEDIUMS: ClassVar[tuple[str, ...]] = ("Email", "Push", "InApp", "SMS")


SNAPSHOT_STREAMS: list[type[SnapshotStream]] = [Channel, List, MessageType, MetadataTable, Template]


class Event(BaseDocument, extra="allow"):
    """One exported event of any data type, keyed like Estuary's existing Iterable connector."""

    name: ClassVar[str] = "events"
    key: ClassVar[list[str]] = ["/_estuary_id", "/eventType"]
    cursor_field: ClassVar[str] = "createdAt"

    estuary_id: str = Field(
        alias="_estuary_id", description="xxh128 of createdAt|email|itblUserId|campaignId|eventName|eventType"
    )
    eventType: str = Field(description="The Iterable export data type of this event")
    createdAt: AwareDatetime


class User(BaseDocument, extra="allow"):
    name: ClassVar[str] = "users"
    data_type: ClassVar[str] = "user"
    cursor_field: ClassVar[str] = "profileUpdatedAt"
    key_field: ClassVar[str]

    profileUpdatedAt: AwareDatetime


class UserByEmail(User):
    key_field: ClassVar[str] = "email"
    email: str


class UserByItblUserId(User):
    key_field: ClassVar[str] = "itblUserId"
    itblUserId: str


def user_model(project_type: ProjectType) -> type[User]:
    return UserByEmail if project_type is ProjectType.EMAIL_BASED else UserByItblUserId


def enabled_event_types(config: "EndpointConfig") -> list[str]:
    return list(config.advanced.event_types or EVENT_TYPES)


class Campaign(BaseDocument, extra="allow"):
    """A campaign as `GET /api/campaigns` lists it; times stay epoch milliseconds, as Iterable sends them."""

    name: ClassVar[str] = "campaigns"
    path: ClassVar[str] = "campaigns"
    items_key: ClassVar[str] = "campaigns"
    key: ClassVar[list[str]] = ["/id"]

    # Campaigns Iterable has not sent yet; they have no metrics.
    NOT_LAUNCHED: ClassVar[frozenset[str]] = frozenset({"Draft", "Scheduled", "Recurring", "Starting"})
    # Campaigns that are sending or may still send; their metrics move on every pass.
    RUNNING: ClassVar[frozenset[str]] = frozenset({"Ready", "Running", "Recalling"})
    # Campaigns that are over; their metrics still move for a while (late opens, purchases).
    ENDED: ClassVar[frozenset[str]] = frozenset({"Aborted", "Archived", "Finished", "Recalled"})
    # States that last until a user acts, which moves `updatedAt`: drafts, recurring parents, and
    # triggered campaigns (Running for months).
    SETTLED: ClassVar[frozenset[str]] = frozenset({"Draft", "Recurring"})

    id: int
    updatedAt: int
    campaignState: str
    endedAt: int | None = None
    messageMedium: str | None = None

    def changes_silently(self) -> bool:
        """Whether Iterable may still change this campaign without moving its `updatedAt`: a blast
        on its way from Scheduled or Starting through Ready and Running to Finished, one being
        recalled, or one in a state Iterable may add later."""
        if self.campaignState in self.ENDED or self.campaignState in self.SETTLED:
            return False
        return not (self.campaignState == "Running" and (self.model_extra or {}).get("type") == "Triggered")


_KEY_ESCAPED = re.compile(r'[%,|"\\\x00-\x1f\x7f]')
_KEY_ESCAPE = re.compile(r"%([0-9A-F]{2})")


def _pack_keys(keys: Iterable[str]) -> str:
    """Keys joined by commas; the characters a cursor uses as separators, or JSON would escape, are
    percent-encoded, so the packed string costs no more in the state than its length."""
    return ",".join(_KEY_ESCAPED.sub(lambda m: f"%{ord(m[0]):02X}", key) for key in keys)


def _unpack_keys(text: str) -> list[str]:
    return [_KEY_ESCAPE.sub(lambda m: chr(int(m[1], 16)), key) for key in text.split(",")] if text else []


class Fingerprints(dict[str, int]):
    """64-bit content fingerprints by key, packed for a cursor as the keys joined by commas, then
    `:` and the digests in base64 (about 11 bytes per key beyond the key itself)."""

    def pack(self) -> str:
        digests = b"".join(digest.to_bytes(8, "big") for digest in self.values())
        return f"{_pack_keys(self)}:{base64.b64encode(digests).decode()}"

    @classmethod
    def unpack(cls, text: str) -> "Fingerprints":
        keys, _, encoded = text.rpartition(":")
        digests = base64.b64decode(encoded)
        names = _unpack_keys(keys)
        assert len(digests) == 8 * len(names), "corrupt fingerprints in the cursor"
        return cls((name, int.from_bytes(digests[8 * i : 8 * i + 8], "big")) for i, name in enumerate(names))


@dataclass
class CampaignsCursor:
    """The campaigns stream's position.

    `floor`: the next pass re-reads every campaign updated after it (an overlap behind the newest
    `updatedAt`, so same-millisecond, late and page-shifted updates are read again); `recent`
    fingerprints what was read above it, so re-reads are not emitted twice; `watching` fingerprints
    the campaigns in a transitional state, which Iterable changes without moving `updatedAt`.
    """

    updated_at: int = 0
    """The newest `updatedAt` seen; 0 before the first pass."""
    floor: int = 0
    recent: Fingerprints = field(default_factory=Fingerprints)
    watching: Fingerprints = field(default_factory=Fingerprints)
    missed: frozenset[str] = frozenset()
    """Watched campaigns the last pass did not see; a second miss stops watching them."""

    def encode(self) -> tuple[str]:
        packed = f"{self.recent.pack()}|{self.watching.pack()}|{_pack_keys(sorted(self.missed))}"
        return (f"c2|{self.updated_at}|{self.floor}|{packed}",)

    @classmethod
    def decode(cls, cursor: Any) -> Self:
        assert isinstance(cursor, tuple) and len(cursor) == 1, f"not a campaigns cursor: {cursor!r}"
        text = str(cursor[0])
        if text.startswith("{"):  # the earlier form: JSON with hex fingerprints of every unended campaign
            old = orjson.loads(text)
            updated_at = int(old.get("updated_at", 0))
            watching = Fingerprints({str(k): int(v, 16) for k, v in old.get("watching", {}).items()})
            return cls(
                updated_at=updated_at, floor=0 if not updated_at else updated_at - 1, watching=watching
            )
        _, newest, lowest, recently, watched, missed_text = text.split("|", 5)
        return cls(updated_at=int(newest), floor=int(lowest), recent=Fingerprints.unpack(recently),
                   watching=Fingerprints.unpack(watched), missed=frozenset(_unpack_keys(missed_text)))  # fmt: skip


class UnkeyedMetrics(Exception):
    """A metrics CSV whose header offers nothing to key its rows by."""

    def __init__(self, binding: str, path: str, problem: str, header: str):
        super().__init__(
            f"{binding}: Iterable's {path} CSV {problem}; header received: {header!r}. This binding "
            f"captures nothing more until the connector restarts; if this persists, disable the "
            f"{binding} binding and report the header to Estuary."
        )


class MetricsRow(BaseCSVRow):
    """One row of one of Iterable's metrics CSVs, under the column names Iterable uses."""

    name: ClassVar[str]
    path: ClassVar[str]
    key: ClassVar[list[str]]
    medium: ClassVar[str | None] = None
    """The only message medium whose campaigns have these metrics, if there is one."""
    BATCH: ClassVar[int] = 80
    """Campaign ids per request: Iterable answers 414 URI Too Long well before 400 ids."""
    NULL_VALUES: ClassVar[set[str]] = set()
    """None: `typed_cells` leaves empty cells out itself, and a key field may be empty."""

    @model_validator(mode="before")
    @classmethod
    def typed_cells(cls, data: Any) -> Any:
        """Numeric cells as JSON numbers; empty cells (metrics that do not apply) omitted."""
        if not isinstance(data, dict):
            return data
        cells = {name: _number_or_text(value) for name, value in data.items() if value not in ("", None)}
        return cls.keyed(cells, tuple(data))

    @classmethod
    def keyed(cls, cells: dict[str, Any], header: tuple[str, ...]) -> dict[str, Any]:
        """The row's cells with its key fields, which the header's own columns may not name."""
        return cells

    def key_values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, pointer.lstrip("/")) for pointer in self.key)


class CampaignMetrics(MetricsRow):
    """Lifetime metrics of one campaign, under the column names Iterable's metrics CSV uses."""

    name: ClassVar[str] = "campaign_metrics"
    path: ClassVar[str] = "campaigns/metrics"
    key: ClassVar[list[str]] = ["/id"]

    id: int


class ExperimentMetrics(MetricsRow):
    """Lifetime metrics of one variant of one experiment, or of a whole one; columns as Iterable names them."""

    name: ClassVar[str] = "experiment_metrics"
    path: ClassVar[str] = "experiments/metrics"
    key: ClassVar[list[str]] = ["/experimentId", "/variantKey"]
    medium: ClassVar[str | None] = "Email"
    # Column names compared without case, spaces, underscores or hyphens ("Experiment ID" is
    # experimentid): Iterable has published no sample of this CSV.
    ID_COLUMNS: ClassVar[dict[str, str]] = {
        "experimentid": "experimentId", "campaignid": "campaignId", "templateid": "templateId",
    }  # fmt: skip
    """Id columns also written under these field names, so they read alike whatever the header."""
    VARIANT_COLUMNS: ClassVar[tuple[str, ...]] = ("templateid", "variantid", "variantname", "variant")
    """Columns that tell an experiment's rows apart, the first the header has taken."""

    experimentId: int = Field(description="The experiment, from Iterable's experiment id column")
    variantKey: str = Field(
        description="The row's variant: its template id, else its variant id, else its variant name, "
        "from the first of those columns Iterable's CSV has; empty when it has none (a row per experiment)"
    )

    @classmethod
    def keyed(cls, cells: dict[str, Any], header: tuple[str, ...]) -> dict[str, Any]:
        ids, variant = _experiment_columns(header)
        if "experimentId" not in ids:
            problem = "has no experiment id column, so its rows cannot be keyed"
            raise UnkeyedMetrics(cls.name, cls.path, problem, ",".join(header))
        named = {field: cells[column] for field, column in ids.items() if column in cells}
        variant_key = "" if variant is None else str(cells.get(variant, ""))
        return {**cells, **named, "variantKey": variant_key}


@functools.cache
def _experiment_columns(header: tuple[str, ...]) -> tuple[dict[str, str], str | None]:
    """The id columns the header has, by field name, and the column telling variants apart."""
    spelled = {_spelling(name): name for name in reversed(header)}
    ids = {
        field: spelled[spelling]
        for spelling, field in ExperimentMetrics.ID_COLUMNS.items()
        if spelling in spelled
    }
    variant = next((spelled[c] for c in ExperimentMetrics.VARIANT_COLUMNS if c in spelled), None)
    return ids, variant


def _spelling(column: str) -> str:
    return "".join(ch for ch in column.lower() if ch.isalnum())


def _number_or_text(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return int(value)
    except ValueError:
        pass
    try:
        number = float(value)
    except ValueError:
        return value
    return number if number not in (float("inf"), float("-inf")) and number == number else value


class ListMember(BaseDocument):
    """One member of one list: an email, or a userId in UserID-based projects."""

    name: ClassVar[str] = "list_users"
    key: ClassVar[list[str]] = ["/list_id", "/user_id"]
    SCHEDULE: ClassVar[str] = "55 23 * * *"

    list_id: int
    user_id: str
    run_started_at: AwareDatetime = Field(
        description="Start of the latest run that saw this member in this list; members since "
        "removed from the list keep the time of an earlier run"
    )


class RefreshedStream(BaseDocument, extra="allow"):
    """A small Iterable resource read whole each interval, keyed by its own id; only items that
    changed are emitted, and items that disappeared come back as deletions."""

    name: ClassVar[str]
    path: ClassVar[str]
    items_key: ClassVar[str]
    key_field: ClassVar[str]


class Journey(RefreshedStream):
    name: ClassVar[str] = "journeys"
    path: ClassVar[str] = "journeys"
    items_key: ClassVar[str] = "journeys"
    key_field: ClassVar[str] = "id"
    PAGE_SIZE: ClassVar[int] = 50
    # Without a state filter Iterable lists only journeys that are not archived.
    STATE_FILTERS: ClassVar[tuple[str | None, ...]] = (None, "Archived")

    id: int


class Snippet(RefreshedStream):
    name: ClassVar[str] = "snippets"
    path: ClassVar[str] = "snippets"
    items_key: ClassVar[str] = "snippets"
    key_field: ClassVar[str] = "id"

    id: int


class UserField(RefreshedStream):
    """One user profile field and its Iterable type."""

    name: ClassVar[str] = "user_fields"
    path: ClassVar[str] = "users/getFields"
    items_key: ClassVar[str] = "fields"
    key_field: ClassVar[str] = "name"

    name_: str = Field(alias="name")
    type: Any = None


class Catalog(RefreshedStream):
    name: ClassVar[str] = "catalogs"
    path: ClassVar[str] = "catalogs"
    items_key: ClassVar[str] = "catalogNames"
    key_field: ClassVar[str] = "name"
    PAGE_SIZE: ClassVar[int] = 100

    name_: str = Field(alias="name")


REFRESHED_STREAMS: list[type[RefreshedStream]] = [Catalog, Journey, Snippet, UserField]


@dataclass
class RefreshCursor:
    """Fingerprints of every item a refreshed stream tracks, by key; `absent` are the keys the last
    pass did not see: an item is deleted only when two consecutive passes miss it."""

    fingerprints: Fingerprints = field(default_factory=Fingerprints)
    absent: frozenset[str] = frozenset()

    def encode(self) -> tuple[str]:
        return (f"r2|{self.fingerprints.pack()}|{_pack_keys(sorted(self.absent))}",)

    @classmethod
    def decode(cls, cursor: Any) -> Self:
        assert isinstance(cursor, tuple) and len(cursor) == 1, f"not a refresh cursor: {cursor!r}"
        text = str(cursor[0])
        if text.startswith("{"):  # the earlier form: JSON with hex fingerprints
            old = orjson.loads(text).get("fingerprints", {})
            return cls(fingerprints=Fingerprints({k: int(v, 16) for k, v in old.items()}))
        _, fingerprints, absent = text.split("|", 2)
        return cls(fingerprints=Fingerprints.unpack(fingerprints), absent=frozenset(_unpack_keys(absent)))


@dataclass
class CatalogItemsCursor:
    """Where the catalog_items stream resumes after a restart: items modified after `since` (the
    start of the pass before the last complete one) are read as changed, and the item count of
    every catalog it had; item ids are remembered in memory only (millions do not fit a state)."""

    since: datetime
    counts: dict[str, int] | None = None
    """None for a cursor of an earlier version, which did not record its catalogs."""

    def encode(self) -> tuple[str]:
        names, counts = _pack_keys(self.counts or {}), ",".join(map(str, (self.counts or {}).values()))
        return (f"i2|{self.since.isoformat()}|{names}|{counts}",)

    @classmethod
    def decode(cls, cursor: Any) -> Self:
        if isinstance(cursor, datetime):  # the earlier form: the start of the last pass
            return cls(since=cursor)
        assert isinstance(cursor, tuple) and len(cursor) == 1, f"not a catalog items cursor: {cursor!r}"
        _, since, names, counts = str(cursor[0]).split("|", 3)
        numbers = [int(n) for n in counts.split(",")] if counts else []
        return cls(since=datetime.fromisoformat(since), counts=dict(zip(_unpack_keys(names), numbers)))


class CatalogItem(BaseDocument, extra="allow"):
    name: ClassVar[str] = "catalog_items"
    key: ClassVar[list[str]] = ["/catalogName", "/itemId"]
    PAGE_SIZE: ClassVar[int] = 1000
    """The largest page Iterable accepts (its own API client uses 1000)."""

    catalogName: str
    itemId: str
    lastModified: str | None = Field(
        default=None, description="When the item last changed, as Iterable writes it"
    )
