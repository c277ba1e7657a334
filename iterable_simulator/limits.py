"""Iterable's rate limits (iterable-api.md §3), enforced as rolling-window counts."""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    requests: int
    window_s: float


# The one place each limit is stated. Bucket names appear in request_log entries.
LIMITS: dict[str, Limit | None] = {
    "general": Limit(100, 1.0),  # campaigns, channels, messageTypes, lists, templates: per project
    "catalogs": Limit(100, 1.0),  # per API key
    "user_fields": Limit(3, 1.0),  # users/getFields
    "campaign_metrics": Limit(10, 60.0),
    "list_users": Limit(5, 60.0),  # lists/getUsers, previewUsers, {id}/size
    # Per ORGANISATION. Which requests share a budget depends on the reading (EXPORT_READINGS).
    "export_async": Limit(1, 1.0),
    "export_start": Limit(1, 1.0),
    "export_files": Limit(1, 1.0),
    "unlimited": None,  # metadata, journeys, snippets, experiments/metrics, export/jobs
    "files": None,  # pre-signed export file downloads (S3, not Iterable)
}

_RULES: tuple[tuple[str | None, re.Pattern[str], str], ...] = (
    ("POST", re.compile(r"^/api/export/start$"), "export_start"),
    ("GET", re.compile(r"^/api/export/[^/]+/files$"), "export_files"),
    ("DELETE", re.compile(r"^/api/export/[^/]+$"), "export_cancel"),
    (None, re.compile(r"^/api/export/jobs$"), "unlimited"),
    (None, re.compile(r"^/api/campaigns/metrics$"), "campaign_metrics"),
    (None, re.compile(r"^/api/lists/(getUsers|previewUsers|[^/]+/size)$"), "list_users"),
    (None, re.compile(r"^/api/users/getFields$"), "user_fields"),
    (None, re.compile(r"^/api/catalogs"), "catalogs"),
    (None, re.compile(r"^/api/(metadata|journeys|snippets|experiments)"), "unlimited"),
    (None, re.compile(r"^/_files/"), "files"),
)


EXPORT_READINGS: dict[str, dict[str, str]] = {
    # Pessimistic: export/start, export/{id}/files and cancelling draw on one 1 request/s budget.
    "shared": {
        "export_start": "export_async",
        "export_files": "export_async",
        "export_cancel": "export_async",
    },
    # Iterable's spec: export/start and export/{id}/files each 1 request/s; cancelling (no limit
    # stated) draws on export/start's.
    "separate": {"export_cancel": "export_start"},
}
EXPORT_BUCKETS = ("export_async", "export_start", "export_files")


def bucket_for(method: str, path: str, export_reading: str = "shared") -> str:
    for rule_method, pattern, bucket in _RULES:
        if (rule_method is None or rule_method == method) and pattern.match(path):
            return EXPORT_READINGS[export_reading].get(bucket, bucket)
    return "general"


class RollingWindow:
    """Counts events in a rolling window and remembers the highest count ever seen."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()
        self.peak = 0

    def _expire(self, now: float) -> None:
        while self._times and self._times[0] <= now - self.window_s:
            self._times.popleft()

    def count(self, now: float) -> int:
        self._expire(now)
        return len(self._times)

    def add(self, now: float) -> None:
        self._expire(now)
        self._times.append(now)
        self.peak = max(self.peak, len(self._times))


class OtherTool:
    """Another tool of the organisation, sending export requests at a steady rate to every export
    budget; its requests are always accepted (it got there first)."""

    def __init__(self, requests_per_s: float, since: float, time_scale: float) -> None:
        self.period = time_scale / requests_per_s
        self.next = since

    def requests_until(self, now: float) -> list[float]:
        sent = []
        while self.next <= now:
            sent.append(self.next)
            self.next += self.period
        return sent


class RateLimiter:
    """Accepted requests count against the limit; attempts are tracked separately for peak rates.
    A request refused while another tool's requests fill part of the window is that tool's doing."""

    def __init__(self, time_scale: float) -> None:
        self.time_scale = time_scale
        self._accepted: dict[str, RollingWindow] = {}
        self._attempts: dict[str, RollingWindow] = {}
        self._foreign: dict[str, RollingWindow] = {}
        self.other_tool: OtherTool | None = None
        for bucket, limit in LIMITS.items():
            window = (limit.window_s if limit else 1.0) * time_scale
            self._accepted[bucket] = RollingWindow(window)
            self._attempts[bucket] = RollingWindow(window)
            self._foreign[bucket] = RollingWindow(window)

    def set_other_tool(self, requests_per_s: float, now: float) -> None:
        """Another tool starts spending each export budget at `requests_per_s` (0 stops it)."""
        self._other_tool_until(now)
        self.other_tool = OtherTool(requests_per_s, now, self.time_scale) if requests_per_s > 0 else None

    def refusal(self, bucket: str, now: float, enforce: bool) -> str | None:
        """None when the request is accepted; else "connector" when the connector's own requests
        fill the window, "other_tool" when another tool's requests take part of it."""
        self._other_tool_until(now)
        self._attempts[bucket].add(now)
        limit = LIMITS[bucket]
        own, foreign = self._accepted[bucket].count(now), self._foreign[bucket].count(now)
        if enforce and limit is not None and own + foreign >= limit.requests:
            return "connector" if own >= limit.requests else "other_tool"
        self._accepted[bucket].add(now)
        return None

    def _other_tool_until(self, now: float) -> None:
        if self.other_tool is None:
            return
        for at in self.other_tool.requests_until(now):
            for bucket in EXPORT_BUCKETS:
                self._foreign[bucket].add(at)

    def peak_attempts(self) -> dict[str, int]:
        """Highest number of requests (accepted or not) seen within one window of each bucket."""
        return {bucket: w.peak for bucket, w in self._attempts.items()}
