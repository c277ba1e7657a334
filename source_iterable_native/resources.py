"""Binds Iterable's streams to CDK resources: `all_resources()` and `validate_credentials()`."""

import functools
from datetime import UTC, datetime, timedelta
from logging import Logger
from typing import Any, AsyncGenerator, Callable

from estuary_cdk.capture import Task, common
from estuary_cdk.flow import CaptureBinding, ValidationError
from estuary_cdk.http import HTTPError

from . import api, campaigns, catalogs, list_members, refresh
from .export import ExportJobs
from .export.resource import export_resource
from .models import (
    SNAPSHOT_STREAMS,
    REFRESHED_STREAMS,
    Campaign,
    Catalog,
    CatalogItem,
    CatalogItemsCursor,
    CampaignMetrics,
    CampaignsCursor,
    ExperimentMetrics,
    Journey,
    ListMember,
    MetricsRow,
    RefreshCursor,
    RefreshedStream,
    Snippet,
    UserField,
    EndpointConfig,
    Event,
    ResourceConfig,
    SnapshotStream,
    Template,
    User,
    enabled_event_types,
    key_schemas,
    user_model,
)
from .budgets import Bucket
from .sessions import IterableHTTP
from .export.streams import ExportedStream

SNAPSHOT_INTERVAL = timedelta(minutes=5)
EXPORT_INTERVAL = timedelta(minutes=5)
CAMPAIGNS_INTERVAL = timedelta(minutes=5)
METRICS_INTERVAL = timedelta(hours=1)
"""Each metrics pass spends one request per 80 running or recently ended campaigns, of 10 a minute."""

SNAPSHOT_KEY_PROPERTIES: dict[str, dict[str, Any]] = {
    "channels": {"id": {"type": "integer"}},
    "lists": {"id": {"type": "integer"}},
    "message_types": {"id": {"type": "integer"}},
    "metadata_tables": {"name": {"type": "string"}},
    "templates": {"templateId": {"type": "integer"}},
}


async def validate_credentials(log: Logger, http: IterableHTTP, config: EndpointConfig) -> None:
    """Check the API key with one cheap call, `GET /api/channels`."""
    origin = _origin(config)
    try:
        await http[Bucket.DEFAULT].request(log, api.api_url(origin, "channels"))
    except HTTPError as err:
        if err.code == 401:
            raise ValidationError(
                [
                    f"Invalid credentials: Iterable rejected the API key ({_iterable_message(err)}). "
                    f"Check that it is a server-side key of this project, and that the project lives "
                    f"in the {config.advanced.data_center.value} data center: a key only works in the "
                    f"data center it was created in (Advanced > Data Center)."
                ]
            ) from err
        raise ValidationError(
            [f"Iterable answered HTTP {err.code} to GET /api/channels: {_iterable_message(err)}"]
        ) from err
    except Exception as err:
        raise ValidationError(
            [
                f"Could not reach Iterable at {origin}: {type(err).__name__}: {err}. Check the "
                f"network path to Iterable and the data center setting."
            ]
        ) from err


def _iterable_message(err: HTTPError) -> str:
    """Iterable's own error text, from the `{msg, code}` body the CDK put in the error message."""
    _, _, body = err.message.partition("Response:\n")
    return body.strip() or err.message


def _origin(config: EndpointConfig) -> str:
    try:
        return config.api_origin()
    except ValueError as err:
        raise ValidationError([str(err)]) from err


def all_resources(log: Logger, http: IterableHTTP, config: EndpointConfig) -> list[common.Resource]:
    origin = _origin(config)
    jobs = ExportJobs(http, origin)
    now = datetime.now(tz=UTC).replace(microsecond=0)
    users = user_model(config.project_type)
    resources = [
        *(_snapshot_resource(stream, _snapshot_fetcher(http, origin, stream)) for stream in SNAPSHOT_STREAMS),
        export_resource(
            config=config,
            jobs=jobs,
            now=now,
            name=Event.name,
            key=Event.key,
            model=Event,
            streams=[ExportedStream(t, Event.cursor_field, None) for t in enabled_event_types(config)],
            backfill_start=config.start,
        ),
        _campaigns_resource(http, origin),
        _metrics_resource(CampaignMetrics, Bucket.CAMPAIGN_METRICS, http, origin, config, now),
        _metrics_resource(ExperimentMetrics, Bucket.EXPERIMENT_METRICS, http, origin, config, now),
        _list_users_resource(http, origin, config, now),
        *(_refreshed_resource(stream, http, origin) for stream in REFRESHED_STREAMS),
        _catalog_items_resource(http, origin),
        export_resource(
            config=config,
            jobs=jobs,
            now=now,
            name=User.name,
            key=[f"/{users.key_field}"],
            model=users,
            streams=[ExportedStream(User.data_type, User.cursor_field, users.key_field)],
            backfill_start=config.users_start,
        ),
    ]
    return sorted(resources, key=lambda resource: resource.name)


def _snapshot_fetcher(
    http: IterableHTTP, origin: str, stream: type[SnapshotStream]
) -> Callable[[Logger], AsyncGenerator[Any, None]]:
    session = http[Bucket.DEFAULT]
    if stream is Template:
        return functools.partial(api.snapshot_templates, session, origin)
    return functools.partial(api.snapshot_resource, session, origin, stream)


def _snapshot_resource(
    stream: type[SnapshotStream], fetch: Callable[[Logger], AsyncGenerator[Any, None]]
) -> common.Resource:
    def open(
        binding: CaptureBinding[ResourceConfig],
        binding_index: int,
        state: common.ResourceState,
        task: Task,
        all_bindings: Any,
    ) -> None:
        task.sourced_schema(binding_index, {"properties": SNAPSHOT_KEY_PROPERTIES[stream.name]})
        common.open_binding(
            binding, binding_index, state, task, fetch_snapshot=_binding_errors(stream.name, fetch)
        )

    return common.SnapshotResource(
        name=stream.name,
        open=open,
        initial_config=ResourceConfig(name=stream.name, interval=SNAPSHOT_INTERVAL),
    )


FetchFactory = Callable[[Task], Callable[..., AsyncGenerator[Any, None]]]
"""Builds a fetch function once the task (and so its stop signal) is known."""


def _resource(
    name: str,
    model: type[common.BaseDocument],
    key: list[str],
    initial_state: common.ResourceState,
    initial_config: ResourceConfig,
    fetch_changes: FetchFactory | None = None,
    fetch_page: FetchFactory | None = None,
    disable: bool = False,
) -> common.Resource:
    """A binding with one incremental and/or one backfill task, keyed by the model's own fields."""

    def open(
        binding: CaptureBinding[ResourceConfig],
        binding_index: int,
        state: common.ResourceState,
        task: Task,
        all_bindings: Any,
    ) -> None:
        task.sourced_schema(binding_index, {"properties": key_schemas(model, key)})
        common.open_binding(
            binding, binding_index, state, task,
            fetch_changes=_binding_errors(name, fetch_changes(task)) if fetch_changes else None,
            fetch_page=_binding_errors(name, fetch_page(task)) if fetch_page else None,
        )  # fmt: skip

    return common.Resource(
        name=name,
        key=key,
        model=model,
        open=open,
        initial_state=initial_state,
        initial_config=initial_config,
        schema_inference=True,
        disable=disable,
    )


def _binding_errors(
    name: str, fetch: Callable[..., AsyncGenerator[Any, None]]
) -> Callable[..., AsyncGenerator[Any, None]]:
    """The fetch function, with Iterable's refusals of the API key turned into an error that names
    the binding and what to do about it."""

    @functools.wraps(fetch)
    async def fetch_with_binding_errors(*args: Any) -> AsyncGenerator[Any, None]:
        try:
            async for item in fetch(*args):
                yield item
        except HTTPError as err:
            if err.code not in (401, 403):
                raise
            raise RuntimeError(
                f"{name}: Iterable refused the API key (HTTP {err.code}: {_iterable_message(err)}). "
                f"This binding needs a server-side key that may read this endpoint; use such a key, "
                f"or disable the {name} binding."
            ) from err

    return fetch_with_binding_errors


def _campaigns_resource(http: IterableHTTP, origin: str) -> common.Resource:
    fetch = functools.partial(campaigns.fetch_campaigns, http[Bucket.DEFAULT], origin)
    return _resource(
        Campaign.name, Campaign, Campaign.key,
        common.ResourceState(inc=common.ResourceState.Incremental(cursor=CampaignsCursor().encode())),
        ResourceConfig(name=Campaign.name, interval=CAMPAIGNS_INTERVAL),
        fetch_changes=lambda task: fetch,
    )  # fmt: skip


def _metrics_resource(
    metrics: type[MetricsRow],
    bucket: Bucket,
    http: IterableHTTP,
    origin: str,
    config: EndpointConfig,
    now: datetime,
) -> common.Resource:
    sessions = (http[bucket], http[Bucket.DEFAULT], origin)
    lookback = config.advanced.campaign_metrics_lookback
    return _resource(
        metrics.name, metrics, metrics.key,
        common.ResourceState(
            inc=common.ResourceState.Incremental(cursor=now),
            backfill=common.ResourceState.Backfill(cutoff=now, next_page=None),
        ),
        ResourceConfig(name=metrics.name, interval=METRICS_INTERVAL),
        fetch_changes=lambda task: functools.partial(
            campaigns.fetch_metrics, metrics, *sessions, lookback, task.stopping.event
        ),
        fetch_page=lambda task: functools.partial(campaigns.backfill_metrics, metrics, *sessions, task.stopping.event),
    )  # fmt: skip


def _list_users_resource(
    http: IterableHTTP, origin: str, config: EndpointConfig, now: datetime
) -> common.Resource:
    return _resource(
        ListMember.name, ListMember, ListMember.key,
        common.ResourceState(backfill=common.ResourceState.Backfill(cutoff=now, next_page=None)),
        ResourceConfig(name=ListMember.name, interval=timedelta(), schedule=ListMember.SCHEDULE),
        fetch_page=lambda task: functools.partial(
            list_members.fetch_list_members, http[Bucket.LIST_USERS], http[Bucket.DEFAULT], origin,
            config.advanced.list_users_timeout, task.stopping.event,
        ),
        disable=True,
    )  # fmt: skip


def _refreshed_resource(stream: type[RefreshedStream], http: IterableHTTP, origin: str) -> common.Resource:
    listings: dict[type[RefreshedStream], Callable[[Logger], AsyncGenerator[dict[str, Any], None]]] = {
        Journey: functools.partial(api.list_journeys, http[Bucket.DEFAULT], origin),
        Snippet: functools.partial(
            api.list_unpaged, http[Bucket.DEFAULT], origin, Snippet.path, Snippet.items_key
        ),
        UserField: functools.partial(api.list_user_fields, http[Bucket.USER_FIELDS], origin),
        Catalog: functools.partial(api.list_catalogs, http[Bucket.CATALOGS], origin),
    }
    fetch = functools.partial(refresh.fetch_refreshed, stream, listings[stream])
    return _resource(
        stream.name, stream, [f"/{stream.key_field}"],
        common.ResourceState(inc=common.ResourceState.Incremental(cursor=RefreshCursor().encode())),
        ResourceConfig(name=stream.name, interval=SNAPSHOT_INTERVAL),
        fetch_changes=lambda task: fetch,
    )  # fmt: skip


def _catalog_items_resource(http: IterableHTTP, origin: str) -> common.Resource:
    items = catalogs.CatalogItems(http[Bucket.CATALOGS], origin)
    return _resource(
        CatalogItem.name, CatalogItem, CatalogItem.key,
        common.ResourceState(inc=common.ResourceState.Incremental(cursor=CatalogItemsCursor(since=datetime.fromtimestamp(0, tz=UTC), counts={}).encode())),
        ResourceConfig(name=CatalogItem.name, interval=SNAPSHOT_INTERVAL),
        fetch_changes=lambda task: items.fetch_changes,
    )  # fmt: skip
