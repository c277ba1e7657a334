"""Configuration, state and document models of the Iterable capture."""

import os
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Self
from urllib.parse import urlsplit

from estuary_cdk.capture.common import (
    BaseDocument,
    ConnectorState as GenericConnectorState,
    ResourceConfigWithSchedule,
    ResourceState,
)
from estuary_cdk.flow import AccessToken
from estuary_cdk.incremental_csv_processor import BaseCSVRow
from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, Field, model_validator

from .rate_limits import DEFAULT_EXPORT_SHARE

BASE_URL_ENV = "ITERABLE_API_BASE_URL"
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")

EVENT_TYPES: tuple[str, ...] = (
    "emailSend", "emailOpen", "emailClick", "hostedUnsubscribeClick", "emailComplaint",
    "emailBounce", "emailSendSkip", "emailSubscribe", "emailUnsubscribe",
    "pushSend", "pushOpen", "pushUninstall", "pushBounce", "pushSendSkip",
    "inAppSend", "inAppOpen", "inAppClick", "inAppClose", "inAppDelete", "inAppDelivery",
    "inAppSendSkip", "inAppRecall",
    "inboxSession", "inboxMessageImpression",
    "smsSend", "smsBounce", "smsClick", "smsReceived", "smsSendSkip", "smsUsageInfo",
    "webPushSend", "webPushClick", "webPushSendSkip",
    "rcsSend", "rcsSendSkip",
    "purchase", "customEvent",
    "embeddedSend", "embeddedSendSkip", "embeddedClick", "embeddedReceived",
    "embeddedImpression", "embeddedSession",
    "unknownSession", "journeyExit",
    "whatsAppBounce", "whatsAppClick", "whatsAppReceived", "whatsAppSeen", "whatsAppSend",
    "whatsAppSendSkip", "whatsAppUsageInfo",
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


def _not_in_future(value: datetime | None) -> datetime | None:
    if value is not None and value > datetime.now(tz=UTC):
        raise ValueError(f"Start date {value.isoformat()} is in the future")
    return value


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
        AwareDatetime | None, BeforeValidator(_blank_as_none), AfterValidator(_not_in_future)
    ] = Field(
        default=None,
        title="Start Date",
        description=(
            "UTC date and time in the format YYYY-MM-DDTHH:MM:SSZ. Users and events before it "
            "are not captured. Leave empty to start 30 days before the capture is created."
        ),
        json_schema_extra={"order": 2, "format": "date-time", "pattern": r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)?$"},
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
        return self.start_date or now - timedelta(days=30)

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
    MESSAGE_MEDIUMS: ClassVar[tuple[str, ...]] = ("Email", "Push", "InApp", "SMS")


SNAPSHOT_STREAMS: list[type[SnapshotStream]] = [Channel, List, MessageType, MetadataTable, Template]


class Event(BaseDocument, extra="allow"):
    """One exported event of any data type, keyed like Estuary's existing Iterable connector."""

    name: ClassVar[str] = "events"
    key: ClassVar[list[str]] = ["/_estuary_id", "/eventType"]
    cursor_field: ClassVar[str] = "createdAt"

    estuary_id: str = Field(alias="_estuary_id", description="xxh128 of createdAt|email|itblUserId|campaignId|eventName|eventType")
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

    id: int
    updatedAt: int
    campaignState: str
    endedAt: int | None = None
    messageMedium: str | None = None


class TupleCursor(BaseModel):
    """A stream position stored as a one-string tuple: the CDK's cursor form that need not increase."""

    def encode(self) -> tuple[str]:
        return (self.model_dump_json(),)

    @classmethod
    def decode(cls, cursor: Any) -> Self:
        assert isinstance(cursor, tuple) and len(cursor) == 1, f"not a {cls.__name__}: {cursor!r}"
        return cls.model_validate_json(cursor[0])


class CampaignsCursor(TupleCursor):
    """The campaigns stream's position: the newest `updatedAt` seen, and the content fingerprint of
    every campaign that can still change without its `updatedAt` moving (any state but an ended one:
    Iterable moves campaigns from Scheduled to Running to Finished without touching `updatedAt`)."""

    updated_at: int = 0
    watching: dict[int, str] = {}


class MetricsRow(BaseCSVRow):
    """One row of one of Iterable's metrics CSVs, under the column names Iterable uses."""

    name: ClassVar[str]
    path: ClassVar[str]
    key: ClassVar[list[str]]
    medium: ClassVar[str | None] = None
    """The only message medium whose campaigns have these metrics, if there is one."""
    BATCH: ClassVar[int] = 80
    """Campaign ids per request: Iterable answers 414 URI Too Long well before 400 ids."""

    @model_validator(mode="before")
    @classmethod
    def typed_cells(cls, data: Any) -> Any:
        """Numeric cells as JSON numbers; empty cells (metrics that do not apply) omitted."""
        if not isinstance(data, dict):
            return data
        return {name: _number_or_text(value) for name, value in data.items() if value not in ("", None)}


class CampaignMetrics(MetricsRow):
    """Lifetime metrics of one campaign, under the column names Iterable's metrics CSV uses."""

    name: ClassVar[str] = "campaign_metrics"
    path: ClassVar[str] = "campaigns/metrics"
    key: ClassVar[list[str]] = ["/id"]

    id: int


class ExperimentMetrics(MetricsRow):
    """Lifetime metrics of one variant (template) of one experiment."""

    name: ClassVar[str] = "experiment_metrics"
    path: ClassVar[str] = "experiments/metrics"
    key: ClassVar[list[str]] = ["/experimentId", "/templateId"]
    medium: ClassVar[str | None] = "Email"

    experimentId: int
    campaignId: int
    templateId: int


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


class RefreshCursor(TupleCursor):
    """Fingerprint of every item of a refreshed stream's last pass, by key."""

    fingerprints: dict[str, str] = {}


class CatalogItem(BaseDocument, extra="allow"):
    name: ClassVar[str] = "catalog_items"
    key: ClassVar[list[str]] = ["/catalogName", "/itemId"]
    PAGE_SIZE: ClassVar[int] = 100

    catalogName: str
    itemId: str
    lastModified: str | None = Field(default=None, description="When the item last changed, as Iterable writes it")
