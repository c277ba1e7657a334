"""Binds Iterable's streams to CDK resources: `all_resources()` and `validate_credentials()`.

`models.STREAMS` lists every stream class; the class's base is its capture mode, and each capture
mode has one factory here, which reads everything else off the class.
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from logging import Logger
from typing import Any, AsyncGenerator

from estuary_cdk.capture import Task, common
from estuary_cdk.flow import CaptureBinding, ValidationError
from estuary_cdk.http import HTTPError

from . import api, campaigns, list_members, refresh
from .config import EndpointConfig, ResourceConfig
from .cursors import RefreshCursor
from .export import ExportJobs
from .export.resource import export_resource
from .models import (
    STREAMS,
    Campaign,
    Channel,
    ExportStream,
    IncrementalStream,
    List,
    ListMember,
    MetricsRow,
    RefreshedStream,
    SnapshotStream,
    Stream,
    key_schemas,
)
from .export.streams import ExportedStream
from .sessions import IterableHTTP


async def validate_credentials(log: Logger, http: IterableHTTP, config: EndpointConfig) -> None:
    """Check the API key with one cheap call, `GET /api/channels`."""
    origin = _origin(config)
    try:
        await http[Channel.bucket].request(log, api.api_url(origin, Channel.path))
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
            [f"Iterable answered HTTP {err.code} to GET /api/{Channel.path}: {_iterable_message(err)}"]
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


@dataclass
class _Context:
    """What the factories bind streams to: the endpoint config and one capture's sessions."""

    config: EndpointConfig
    http: IterableHTTP
    origin: str
    jobs: ExportJobs
    now: datetime
    """When the resources were built: the cutoff and first cursor of new bindings."""


def all_resources(http: IterableHTTP, config: EndpointConfig) -> list[common.Resource]:
    origin = _origin(config)
    context = _Context(
        config=config,
        http=http,
        origin=origin,
        jobs=ExportJobs(http, origin),
        now=datetime.now(tz=UTC).replace(microsecond=0),
    )
    return sorted((_resource(stream, context) for stream in STREAMS), key=lambda resource: resource.name)


def _resource(stream: type[Stream], context: _Context) -> common.Resource:
    """The stream's resource, built by the factory of its capture mode."""
    if issubclass(stream, SnapshotStream):
        return _snapshot_resource(stream, context)
    if issubclass(stream, RefreshedStream):
        return _refreshed_resource(stream, context)
    if issubclass(stream, IncrementalStream):
        return _incremental_resource(stream, context)
    if issubclass(stream, MetricsRow):
        return _metrics_resource(stream, context)
    if issubclass(stream, ExportStream):
        return _export_resource(stream, context)
    if issubclass(stream, ListMember):
        return _list_members_resource(context)
    raise TypeError(f"{stream.__name__} has no capture mode: derive it from one of the stream bases")


def _snapshot_resource(stream: type[SnapshotStream], context: _Context) -> common.Resource:
    listing = stream.listing(context.http[stream.bucket], context.origin)
    fetch = _binding_errors(stream.name, functools.partial(api.snapshot, stream, listing))

    def open(
        binding: CaptureBinding[ResourceConfig],
        binding_index: int,
        state: common.ResourceState,
        task: Task,
        all_bindings: Any,
    ) -> None:
        task.sourced_schema(binding_index, {"properties": stream.id_properties})
        common.open_binding(binding, binding_index, state, task, fetch_snapshot=fetch)

    return common.SnapshotResource(
        name=stream.name,
        open=open,
        initial_config=ResourceConfig(name=stream.name, interval=stream.interval),
    )


def _refreshed_resource(stream: type[RefreshedStream], context: _Context) -> common.Resource:
    listing = stream.listing(context.http[stream.bucket], context.origin)
    return _keyed_resource(
        stream.name,
        stream,
        key=[f"/{stream.key_field}"],
        initial_state=common.ResourceState(
            inc=common.ResourceState.Incremental(cursor=RefreshCursor().encode())
        ),
        initial_config=ResourceConfig(name=stream.name, interval=stream.interval),
        fetchers=_Fetchers(changes=functools.partial(refresh.fetch_refreshed, stream, listing)),
    )


def _incremental_resource(stream: type[IncrementalStream], context: _Context) -> common.Resource:
    return _keyed_resource(
        stream.name,
        stream,
        key=stream.key,
        initial_state=common.ResourceState(
            inc=common.ResourceState.Incremental(cursor=stream.initial_cursor())
        ),
        initial_config=ResourceConfig(name=stream.name, interval=stream.interval),
        fetchers=_Fetchers(changes=stream.changes(context.http[stream.bucket], context.origin)),
    )


def _metrics_resource(stream: type[MetricsRow], context: _Context) -> common.Resource:
    def fetchers(task: Task) -> _Fetchers:
        passes = campaigns.MetricsPasses(
            metrics=stream,
            metrics_http=context.http[stream.bucket],
            campaigns_http=context.http[Campaign.bucket],
            origin=context.origin,
            lookback=context.config.advanced.campaign_metrics_lookback,
            stopping=task.stopping.event,
        )
        return _Fetchers(changes=passes.fetch_changes, page=passes.backfill)

    return _keyed_resource(
        stream.name,
        stream,
        key=stream.key,
        initial_state=common.ResourceState(
            inc=common.ResourceState.Incremental(cursor=context.now),
            backfill=common.ResourceState.Backfill(cutoff=context.now, next_page=None),
        ),
        initial_config=ResourceConfig(name=stream.name, interval=stream.interval),
        fetchers=fetchers,
    )


def _list_members_resource(context: _Context) -> common.Resource:
    def fetchers(task: Task) -> _Fetchers:
        members = list_members.ListMembers(
            members_http=context.http[ListMember.bucket],
            lists_http=context.http[List.bucket],
            origin=context.origin,
            timeout=context.config.advanced.list_users_timeout,
            stopping=task.stopping.event,
        )
        return _Fetchers(page=members.fetch_page)

    return _keyed_resource(
        ListMember.name,
        ListMember,
        key=ListMember.key,
        initial_state=common.ResourceState(
            backfill=common.ResourceState.Backfill(cutoff=context.now, next_page=None)
        ),
        initial_config=ResourceConfig(
            name=ListMember.name, interval=ListMember.interval, schedule=ListMember.schedule
        ),
        fetchers=fetchers,
        disable=ListMember.disable,
    )


def _export_resource(stream: type[ExportStream], context: _Context) -> common.Resource:
    keyed = stream.keyed_for(context.config.project_type)
    return export_resource(
        config=context.config,
        jobs=context.jobs,
        now=context.now,
        name=keyed.name,
        interval=keyed.interval,
        key=keyed.key,
        model=keyed,
        streams=[
            ExportedStream(data_type, keyed.cursor_field, keyed.key_field)
            for data_type in keyed.data_types(context.config)
        ],
        backfill_start=keyed.backfill_start(context.config),
    )


FetchFn = Callable[..., AsyncGenerator[Any, None]]


@dataclass
class _Fetchers:
    """A keyed binding's fetch functions: incremental changes, backfill pages, or both."""

    changes: FetchFn | None = None
    page: FetchFn | None = None


def _keyed_resource(
    name: str,
    model: type[common.BaseDocument],
    *,
    key: list[str],
    initial_state: common.ResourceState,
    initial_config: ResourceConfig,
    fetchers: _Fetchers | Callable[[Task], _Fetchers],
    disable: bool = False,
) -> common.Resource:
    """A binding keyed by the model's own fields. `fetchers` are built from the task when the
    stream must notice a stop request (`task.stopping`) while it waits."""

    def open(
        binding: CaptureBinding[ResourceConfig],
        binding_index: int,
        state: common.ResourceState,
        task: Task,
        all_bindings: Any,
    ) -> None:
        fetch = fetchers(task) if callable(fetchers) else fetchers
        task.sourced_schema(binding_index, {"properties": key_schemas(model, key)})
        common.open_binding(
            binding,
            binding_index,
            state,
            task,
            fetch_changes=_binding_errors(name, fetch.changes) if fetch.changes else None,
            fetch_page=_binding_errors(name, fetch.page) if fetch.page else None,
        )

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


def _binding_errors(name: str, fetch: FetchFn) -> FetchFn:
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
