"""Estuary Flow capture connector for Iterable."""

import signal
import sys

if sys.argv[:1] == ["-m"]:
    # Run as `python -m source_iterable_native` (argv[0] is "-m" while Python locates __main__):
    # hold SIGTERM from the first moment, so a stop during start-up is kept for serve().
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})

import asyncio
from logging import Logger
from typing import Any, AsyncGenerator, Awaitable, Callable

import pydantic
from estuary_cdk import stdin_jsonl
from estuary_cdk.capture import (
    BaseCaptureConnector,
    Request,
    Task,
    common,
    request,
    response,
)
from estuary_cdk.flow import ConnectorSpec, ValidationError
from estuary_cdk.http import TokenSource

from .config import ConnectorState, EndpointConfig, ResourceConfig
from .errors import request_errors
from .sessions import IterableHTTP
from .resources import all_resources, validate_credentials

DOCUMENTATION_URL = "https://go.estuary.dev/source-iterable-native"


ConnectorRequest = Request[EndpointConfig, ResourceConfig, ConnectorState]


async def _requests(cls: type[ConnectorRequest]) -> AsyncGenerator[ConnectorRequest, None]:
    """The CDK's stdin reader, with invalid requests reported as actionable messages."""
    try:
        async for request in stdin_jsonl(cls):
            yield request
    except pydantic.ValidationError as err:
        raise ValidationError(request_errors(err)) from None


def _resolve_bindings(bindings: Any, resources: list[common.Resource]) -> Any:
    """The CDK's binding resolution; an unknown binding's error also lists the ones that exist."""
    try:
        return common.resolve_bindings(bindings, resources)
    except ValidationError as err:
        names = ", ".join(resource.name for resource in resources)
        raise ValidationError(
            [f"{error} This connector's bindings are: {names}." for error in err.errors]
        ) from None


class Connector(
    BaseCaptureConnector[EndpointConfig, ResourceConfig, ConnectorState],
):
    def __init__(self) -> None:
        super().__init__()
        self.stop_requested = False
        self.stopping: asyncio.Event | None = None

    async def serve(self, log: Any = None, requests: Any = _requests) -> None:
        # SIGTERM may be blocked since start-up (above), so a stop requested meanwhile is kept.
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self._request_stop)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        try:
            await super().serve(log, requests)
        finally:
            # Once served there is nothing left to stop: a SIGTERM while the process exits must not
            # turn its exit code into a kill. Closing the loop would restore the default action.
            asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def _request_stop(self) -> None:
        """SIGTERM asks for the CDK's graceful stop: streams finish their current step, then exit 0."""
        self.stop_requested = True
        if self.stopping is not None:
            self.stopping.set()

    def request_class(self) -> type[ConnectorRequest]:
        return ConnectorRequest

    async def spec(self, log: Logger, _: request.Spec) -> ConnectorSpec:
        return ConnectorSpec(
            configSchema=EndpointConfig.model_json_schema(),
            documentationUrl=DOCUMENTATION_URL,
            resourceConfigSchema=ResourceConfig.model_json_schema(),
            resourcePathPointers=ResourceConfig.PATH_POINTERS,
        )

    async def discover(
        self, log: Logger, discover: request.Discover[EndpointConfig]
    ) -> response.Discovered[ResourceConfig]:
        resources = all_resources(self._http(discover.config), discover.config)
        return common.discovered(resources)

    async def validate(
        self, log: Logger, validate: request.Validate[EndpointConfig, ResourceConfig]
    ) -> response.Validated:
        http = self._http(validate.config)
        await validate_credentials(log, http, validate.config)
        resources = all_resources(http, validate.config)
        resolved = _resolve_bindings(validate.bindings, resources)
        return common.validated(resolved)

    async def open(
        self, log: Logger, open: request.Open[EndpointConfig, ResourceConfig, ConnectorState]
    ) -> tuple[response.Opened, Callable[[Task], Awaitable[None]]]:
        resources = all_resources(self._http(open.capture.config), open.capture.config)
        resolved = _resolve_bindings(open.capture.bindings, resources)
        opened, capture = common.open(open, resolved)

        async def capture_until_stopped(task: Task) -> None:
            self.stopping = task.stopping.event
            if self.stop_requested:
                self.stopping.set()
            await capture(task)

        return opened, capture_until_stopped

    def _http(self, config: EndpointConfig) -> IterableHTTP:
        self.token_source = TokenSource(
            oauth_spec=None, credentials=config.credentials, authorization_header="Api-Key"
        )
        return IterableHTTP(self.inner, self.token_source, export_share=config.advanced.export_budget_share)
