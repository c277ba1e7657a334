from collections.abc import Callable
from typing import Any

import pytest

from flow_driver import ConnectorDriver, bindings_from_discovered

from .driver_helpers import DEFAULT_BINDINGS, fake_command


@pytest.fixture
def make_driver() -> Callable[..., ConnectorDriver]:
    def make(config: dict[str, Any] | None = None, **kwargs: Any) -> ConnectorDriver:
        kwargs.setdefault("stop_timeout", 10.0)
        return ConnectorDriver(config or {}, command=fake_command(), **kwargs)

    return make


@pytest.fixture
def bindings() -> list[dict[str, Any]]:
    return bindings_from_discovered({"bindings": DEFAULT_BINDINGS})
