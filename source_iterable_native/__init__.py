"""Estuary Flow capture connector for Iterable."""

import asyncio
import signal
from logging import Logger
from typing import Awaitable, Callable

from estuary_cdk.capture import (
    BaseCaptureConnector,
    Request,
    Task,
    common,
    request,
    response,
)
from estuary_cdk.flow import ConnectorSpec
from estuary_cdk.http import TokenSource

from .models import ConnectorState, EndpointConfig, ResourceConfig
from .rate_limits import IterableHTTP
from .resources import all_resources, validate_credentials

DOCUMENTATION_URL = "https://go.estuary.dev/source-iterable-native"


class Connector(
    BaseCaptureConnector[EndpointConfig, ResourceConfig, ConnectorState],
):
    def request_class(self) -> type[Request[EndpointConfig, ResourceConfig, ConnectorState]]:
        return Request[EndpointConfig, ResourceConfig, ConnectorState]

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
        resources = all_resources(log, self._http(discover.config), discover.config)
        return common.discovered(resources)

    async def validate(
        self, log: Logger, validate: request.Validate[EndpointConfig, ResourceConfig]
    ) -> response.Validated:
        http = self._http(validate.config)
        await validate_credentials(log, http, validate.config)
        resources = all_resources(log, http, validate.config)
        resolved = common.resolve_bindings(validate.bindings, resources)
        return common.validated(resolved)

    async def open(
        self, log: Logger, open: request.Open[EndpointConfig, ResourceConfig, ConnectorState]
    ) -> tuple[response.Opened, Callable[[Task], Awaitable[None]]]:
        resources = all_resources(log, self._http(open.capture.config), open.capture.config)
        resolved = common.resolve_bindings(open.capture.bindings, resources)
        opened, capture = common.open(open, resolved)

        async def capture_until_stopped(task: Task) -> None:
            # SIGTERM asks for the CDK's graceful stop: streams finish their current step, then exit 0.
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.stopping.event.set)
            await capture(task)

        return opened, capture_until_stopped

    def _http(self, config: EndpointConfig) -> IterableHTTP:
        self.token_source = TokenSource(
            oauth_spec=None, credentials=config.credentials, authorization_header="Api-Key"
        )
        return IterableHTTP(self.inner, self.token_source)
