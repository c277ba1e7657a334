"""A record as the simulator stores it for exports."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass
class Stored:
    """A record as exported, with its cursor instant and the time it becomes visible to exports."""

    data: dict[str, Any]
    cursor: float
    visible_at: float
    _encoded: bytes | None = None
    hidden_at: float = math.inf
    """When a later version of the same user became visible and replaced this one."""

    def visible(self, at: float) -> bool:
        return self.visible_at <= at < self.hidden_at

    def encoded(self) -> bytes:
        if self._encoded is None:
            self._encoded = orjson.dumps(self.data)
        return self._encoded
