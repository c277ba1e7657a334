"""Binds Iterable's streams to CDK resources: `all_resources()` and `validate_credentials()`."""

import functools
from datetime import timedelta
from logging import Logger
from typing import Any, AsyncGenerator, Callable

from estuary_cdk.capture import Task, common
from estuary_cdk.flow import CaptureBinding, ValidationError
from estuary_cdk.http import HTTPError

from . import api
from .models import (
    SNAPSHOT_STREAMS,
    EndpointConfig,
    ResourceConfig,
    SnapshotStream,
    Template,
)
from .rate_limits import Bucket, IterableHTTP

SNAPSHOT_INTERVAL = timedelta(minutes=5)


async def validate_credentials(log: Logger, http: IterableHTTP, config: EndpointConfig) -> None:
    """Check the API key with one cheap call, `GET /api/channels`."""
    origin = _origin(config)
    try:
        await http[Bucket.DEFAULT].request(log, api.api_url(origin, "channels"))
    except HTTPError as err:
        if err.code == 401:
            raise ValidationError([
                f"Invalid credentials: Iterable rejected the API key ({_iterable_message(err)}). "
                f"Check that it is a server-side key of this project, and that the project lives "
                f"in the {config.advanced.data_center.value} data center: a key only works in the "
                f"data center it was created in (Advanced > Data Center)."
            ]) from err
        raise ValidationError([
            f"Iterable answered HTTP {err.code} to GET /api/channels: {_iterable_message(err)}"
        ]) from err
    except Exception as err:
        raise ValidationError([
            f"Could not reach Iterable at {origin}: {type(err).__name__}: {err}. Check the "
            f"network path to Iterable and the data center setting."
        ]) from err


def _iterable_message(err: HTTPError) -> str:
    """Iterable's own error text, from the `{msg, code}` body the CDK put in the error message."""
    _, _, body = err.message.partition("Response:\n")
    return body.strip() or err.message


def _origin(config: EndpointConfig) -> str:
    try:
        return config.api_origin()
    except ValueError as err:
        raise ValidationError([str(err)]) from err


def all_resources(
    log: Logger, http: IterableHTTP, config: EndpointConfig
) -> list[common.Resource]:
    origin = _origin(config)
    return [_snapshot_resource(stream, _snapshot_fetcher(http, origin, stream)) for stream in SNAPSHOT_STREAMS]


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
        common.open_binding(binding, binding_index, state, task, fetch_snapshot=fetch)

    return common.SnapshotResource(
        name=stream.name,
        open=open,
        initial_config=ResourceConfig(name=stream.name, interval=SNAPSHOT_INTERVAL),
    )
