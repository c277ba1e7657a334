"""Iterable's streams: one document class per binding, whose ClassVars are the binding's whole
contract (endpoint, items key, page size, rate bucket, default interval, key); its base class is
its capture mode, which picks the factory in `resources.py`."""

import functools
from abc import abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Protocol, Self

from estuary_cdk.capture.common import BaseDocument, FetchChangesFn, LogCursor
from estuary_cdk.http import HTTPSession
from estuary_cdk.incremental_csv_processor import BaseCSVRow
from pydantic import AwareDatetime, Field, model_validator

from . import api
from .budgets import Bucket
from .config import EVENT_TYPES, EndpointConfig, ProjectType
from .cursors import CampaignsCursor, CatalogItemsCursor

LISTING_INTERVAL = timedelta(minutes=5)
"""How often the small listings (snapshots, refreshed streams, campaigns, catalog items) are read."""

KEY_SCHEMA_ANNOTATIONS = frozenset({"title", "description", "default", "examples"})
"""JSON schema keywords that describe a field without constraining it: left out of key schemas."""


def key_schemas(model: type[BaseDocument], key: list[str]) -> dict[str, Any]:
    """The JSON schema of each key field of a document model, for the binding's sourced schema:
    everything the model states about the field (type, length, ...) but its annotations."""
    properties = model.model_json_schema(by_alias=True)["properties"]
    return {
        name: {
            keyword: value
            for keyword, value in properties[name].items()
            if keyword not in KEY_SCHEMA_ANNOTATIONS
        }
        for name in (pointer.lstrip("/") for pointer in key)
    }


class Stream(Protocol):
    """A stream class of any capture mode: its name is the binding's."""

    name: ClassVar[str]


class ListedStream(BaseDocument, extra="allow"):
    """A small Iterable resource read whole on every interval from one listing: by default an
    unpaged `GET /api/<path>` whose items sit under `items_key`."""

    name: ClassVar[str]
    path: ClassVar[str]
    items_key: ClassVar[str]
    bucket: ClassVar[Bucket] = Bucket.DEFAULT
    interval: ClassVar[timedelta] = LISTING_INTERVAL

    @classmethod
    def listing(cls, http: HTTPSession, origin: str) -> api.Listing:
        return functools.partial(api.list_unpaged, cls, http, origin)


class SnapshotStream(ListedStream):
    """A small Iterable resource captured whole on every interval, keyed by the CDK's row id."""

    id_properties: ClassVar[dict[str, dict[str, Any]]]
    """The sourced schema of the id Iterable gives each item (not the collection key)."""


class Channel(SnapshotStream):
    name: ClassVar[str] = "channels"
    path: ClassVar[str] = "channels"
    items_key: ClassVar[str] = "channels"
    id_properties: ClassVar[dict[str, dict[str, Any]]] = {"id": {"type": "integer"}}


class MessageType(SnapshotStream):
    name: ClassVar[str] = "message_types"
    path: ClassVar[str] = "messageTypes"
    items_key: ClassVar[str] = "messageTypes"
    id_properties: ClassVar[dict[str, dict[str, Any]]] = {"id": {"type": "integer"}}


class List(SnapshotStream):
    name: ClassVar[str] = "lists"
    path: ClassVar[str] = "lists"
    items_key: ClassVar[str] = "lists"
    id_properties: ClassVar[dict[str, dict[str, Any]]] = {"id": {"type": "integer"}}

    id: int


class MetadataTable(SnapshotStream):
    name: ClassVar[str] = "metadata_tables"
    path: ClassVar[str] = "metadata"
    items_key: ClassVar[str] = "results"
    id_properties: ClassVar[dict[str, dict[str, Any]]] = {"name": {"type": "string"}}


class Template(SnapshotStream):
    name: ClassVar[str] = "templates"
    path: ClassVar[str] = "templates"
    items_key: ClassVar[str] = "templates"
    id_properties: ClassVar[dict[str, dict[str, Any]]] = {"templateId": {"type": "integer"}}
    page_size: ClassVar[int] = 1000

    TEMPLATE_TYPES: ClassVar[tuple[str, ...]] = ("Base", "Blast", "Triggered", "Workflow")
    # All the listing's messageMedium filter accepts; other mediums (WebPush, Embedded, WhatsApp)
    # can only come from the listing without it.
    MESSAGE_MEDIUMS: ClassVar[tuple[str, ...]] = ("Email", "Push", "InApp", "SMS")

    @classmethod
    def listing(cls, http: HTTPSession, origin: str) -> api.Listing:
        return functools.partial(api.list_templates, cls, http, origin)


class RefreshedStream(ListedStream):
    """A small Iterable resource read whole each interval, keyed by its own id; only items that
    changed are emitted, and items that disappeared come back as deletions."""

    key_field: ClassVar[str]


class Journey(RefreshedStream):
    name: ClassVar[str] = "journeys"
    path: ClassVar[str] = "journeys"
    items_key: ClassVar[str] = "journeys"
    key_field: ClassVar[str] = "id"
    page_size: ClassVar[int] = 50
    # Without a state filter Iterable lists only journeys that are not archived.
    STATE_FILTERS: ClassVar[tuple[str | None, ...]] = (None, "Archived")

    id: int

    @classmethod
    def listing(cls, http: HTTPSession, origin: str) -> api.Listing:
        return functools.partial(api.list_journeys, cls, http, origin)


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
    bucket: ClassVar[Bucket] = Bucket.USER_FIELDS

    name_: str = Field(alias="name")
    type: Any = None

    @classmethod
    def listing(cls, http: HTTPSession, origin: str) -> api.Listing:
        return functools.partial(api.list_user_fields, cls, http, origin)


class Catalog(RefreshedStream):
    name: ClassVar[str] = "catalogs"
    path: ClassVar[str] = "catalogs"
    items_key: ClassVar[str] = "catalogNames"
    key_field: ClassVar[str] = "name"
    page_size: ClassVar[int] = 100
    bucket: ClassVar[Bucket] = Bucket.CATALOGS

    name_: str = Field(alias="name")

    @classmethod
    def listing(cls, http: HTTPSession, origin: str) -> api.Listing:
        return functools.partial(api.list_paged, cls, http, origin)


class IncrementalStream(BaseDocument, extra="allow"):
    """A listing read each interval from a cursor of its own, emitting only what changed."""

    name: ClassVar[str]
    key: ClassVar[list[str]]
    path: ClassVar[str]
    items_key: ClassVar[str]
    page_size: ClassVar[int]
    bucket: ClassVar[Bucket] = Bucket.DEFAULT
    interval: ClassVar[timedelta] = LISTING_INTERVAL

    @classmethod
    @abstractmethod
    def initial_cursor(cls) -> LogCursor: ...

    @classmethod
    @abstractmethod
    def changes(cls, http: HTTPSession, origin: str) -> FetchChangesFn[BaseDocument]:
        """The stream's fetch_changes, reading through `http` (the session of its bucket)."""


class Campaign(IncrementalStream):
    """A campaign as `GET /api/campaigns` lists it; times stay epoch milliseconds, as Iterable sends them."""

    name: ClassVar[str] = "campaigns"
    path: ClassVar[str] = "campaigns"
    items_key: ClassVar[str] = "campaigns"
    key: ClassVar[list[str]] = ["/id"]
    page_size: ClassVar[int] = 1000

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

    @classmethod
    def initial_cursor(cls) -> LogCursor:
        return CampaignsCursor().encode()

    @classmethod
    def changes(cls, http: HTTPSession, origin: str) -> FetchChangesFn[BaseDocument]:
        from .campaigns import fetch_campaigns  # campaigns.py reads this class, so not at the top

        return functools.partial(fetch_campaigns, http, origin)


class CatalogItem(IncrementalStream):
    name: ClassVar[str] = "catalog_items"
    key: ClassVar[list[str]] = ["/catalogName", "/itemId"]
    path: ClassVar[str] = "catalogs/{catalog}/items"
    items_key: ClassVar[str] = "catalogItemsWithProperties"
    page_size: ClassVar[int] = 1000
    """The largest page Iterable accepts (its own API client uses 1000)."""
    bucket: ClassVar[Bucket] = Bucket.CATALOGS

    catalogName: str
    itemId: str
    lastModified: str | None = Field(
        default=None, description="When the item last changed, as Iterable writes it"
    )

    @classmethod
    def initial_cursor(cls) -> LogCursor:
        return CatalogItemsCursor(since=datetime.fromtimestamp(0, tz=UTC), counts={}).encode()

    @classmethod
    def changes(cls, http: HTTPSession, origin: str) -> FetchChangesFn[BaseDocument]:
        from .catalogs import CatalogItems  # catalogs.py reads this class, so not at the top

        return CatalogItems(http, origin).fetch_changes


class UnkeyedMetrics(Exception):
    """A metrics CSV whose header offers nothing to key its rows by."""

    def __init__(self, *, binding: str, path: str, problem: str, header: str) -> None:
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
    bucket: ClassVar[Bucket]
    interval: ClassVar[timedelta] = timedelta(hours=1)
    """Each pass spends one request per 80 running or recently ended campaigns, of 10 a minute."""
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
    bucket: ClassVar[Bucket] = Bucket.CAMPAIGN_METRICS

    id: int


class ExperimentMetrics(MetricsRow):
    """Lifetime metrics of one variant of one experiment, or of a whole one; columns as Iterable names them."""

    name: ClassVar[str] = "experiment_metrics"
    path: ClassVar[str] = "experiments/metrics"
    key: ClassVar[list[str]] = ["/experimentId", "/variantKey"]
    bucket: ClassVar[Bucket] = Bucket.EXPERIMENT_METRICS
    medium: ClassVar[str | None] = "Email"
    # Column names compared without case, spaces, underscores or hyphens ("Experiment ID" is
    # experimentid): Iterable has published no sample of this CSV.
    ID_COLUMNS: ClassVar[dict[str, str]] = {
        "experimentid": "experimentId",
        "campaignid": "campaignId",
        "templateid": "templateId",
    }
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
            raise UnkeyedMetrics(binding=cls.name, path=cls.path, problem=problem, header=",".join(header))
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
    path: ClassVar[str] = "lists/getUsers"
    bucket: ClassVar[Bucket] = Bucket.LIST_USERS
    interval: ClassVar[timedelta] = timedelta()
    schedule: ClassVar[str] = "55 23 * * *"
    disable: ClassVar[bool] = True
    """Disabled when discovered: a large list can take Iterable over an hour to answer."""

    list_id: int
    user_id: str
    run_started_at: AwareDatetime = Field(
        description="Start of the latest run that saw this member in this list; members since "
        "removed from the list keep the time of an earlier run"
    )


class ExportStream(BaseDocument, extra="allow"):
    """Records of Iterable's export jobs, captured per data type by `export.resource`, which
    spends the export budgets."""

    name: ClassVar[str]
    interval: ClassVar[timedelta] = LISTING_INTERVAL
    """How often real time looks for new records of a busy type; quiet types are read less often."""
    key: ClassVar[list[str]]
    cursor_field: ClassVar[str]
    key_field: ClassVar[str | None] = None
    """The field a record's key is read from; None where the connector computes the key."""

    @classmethod
    def keyed_for(cls, project_type: ProjectType) -> type[Self]:
        """The class whose key fits a project of this type."""
        return cls

    @classmethod
    @abstractmethod
    def data_types(cls, config: EndpointConfig) -> list[str]:
        """The export data types this binding captures."""

    @classmethod
    @abstractmethod
    def backfill_start(cls, config: EndpointConfig) -> Callable[[datetime], datetime]:
        """Where the backfill of a binding (or data type) created at the given instant starts."""


class Event(ExportStream):
    """One exported event of any data type, keyed like Estuary's existing Iterable connector."""

    name: ClassVar[str] = "events"
    key: ClassVar[list[str]] = ["/_estuary_id", "/eventType"]
    cursor_field: ClassVar[str] = "createdAt"

    estuary_id: str = Field(
        alias="_estuary_id",
        description="xxh128 of createdAt|email|itblUserId|campaignId|eventName|eventType",
        min_length=32,
        max_length=32,
    )
    eventType: str = Field(description="The Iterable export data type of this event")
    createdAt: AwareDatetime

    @classmethod
    def data_types(cls, config: EndpointConfig) -> list[str]:
        return list(config.advanced.event_types or EVENT_TYPES)

    @classmethod
    def backfill_start(cls, config: EndpointConfig) -> Callable[[datetime], datetime]:
        return config.start


class User(ExportStream):
    name: ClassVar[str] = "users"
    cursor_field: ClassVar[str] = "profileUpdatedAt"
    data_type: ClassVar[str] = "user"

    profileUpdatedAt: AwareDatetime

    @classmethod
    def keyed_for(cls, project_type: ProjectType) -> type["User"]:
        return UserByEmail if project_type is ProjectType.EMAIL_BASED else UserByItblUserId

    @classmethod
    def data_types(cls, config: EndpointConfig) -> list[str]:
        return [cls.data_type]

    @classmethod
    def backfill_start(cls, config: EndpointConfig) -> Callable[[datetime], datetime]:
        return config.users_start


class UserByEmail(User):
    key: ClassVar[list[str]] = ["/email"]
    key_field: ClassVar[str | None] = "email"

    email: str


class UserByItblUserId(User):
    key: ClassVar[list[str]] = ["/itblUserId"]
    key_field: ClassVar[str | None] = "itblUserId"

    itblUserId: str


STREAMS: list[type[Stream]] = [
    Campaign,
    CampaignMetrics,
    Catalog,
    CatalogItem,
    Channel,
    Event,
    ExperimentMetrics,
    Journey,
    List,
    ListMember,
    MessageType,
    MetadataTable,
    Snippet,
    Template,
    User,
    UserField,
]
"""Every binding the connector discovers, one stream class each; `resources.py` builds them."""
