"""The endpoint and binding configuration a user sets, and the connector state Flow keeps."""

import os
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from estuary_cdk.capture.common import (
    ConnectorState as GenericConnectorState,
    ResourceConfigWithSchedule,
    ResourceState,
)
from estuary_cdk.flow import AccessToken
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


def _duration_within(low: timedelta, high: timedelta, what: str) -> AfterValidator:
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
