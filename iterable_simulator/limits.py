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
    "export_async": Limit(1, 1.0),  # POST export/start + GET export/{id}/files, per ORGANISATION
    "export_cancel": Limit(1, 1.0),  # DELETE export/{id}
    "unlimited": None,  # metadata, journeys, snippets, experiments/metrics, export/jobs
    "files": None,  # pre-signed export file downloads (S3, not Iterable)
}

_RULES: tuple[tuple[str | None, re.Pattern[str], str], ...] = (
    ("POST", re.compile(r"^/api/export/start$"), "export_async"),
    ("GET", re.compile(r"^/api/export/[^/]+/files$"), "export_async"),
    ("DELETE", re.compile(r"^/api/export/[^/]+$"), "export_cancel"),
    (None, re.compile(r"^/api/export/jobs$"), "unlimited"),
    (None, re.compile(r"^/api/campaigns/metrics$"), "campaign_metrics"),
    (None, re.compile(r"^/api/lists/(getUsers|previewUsers|[^/]+/size)$"), "list_users"),
    (None, re.compile(r"^/api/users/getFields$"), "user_fields"),
    (None, re.compile(r"^/api/catalogs"), "catalogs"),
    (None, re.compile(r"^/api/(metadata|journeys|snippets|experiments)"), "unlimited"),
    (None, re.compile(r"^/_files/"), "files"),
)


def bucket_for(method: str, path: str) -> str:
    for rule_method, pattern, bucket in _RULES:
        if (rule_method is None or rule_method == method) and pattern.match(path):
            return bucket
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


class RateLimiter:
    """Accepted requests count against the limit; attempts are tracked separately for peak rates."""

    def __init__(self, time_scale: float) -> None:
        self._accepted: dict[str, RollingWindow] = {}
        self._attempts: dict[str, RollingWindow] = {}
        for bucket, limit in LIMITS.items():
            window = (limit.window_s if limit else 1.0) * time_scale
            self._accepted[bucket] = RollingWindow(window)
            self._attempts[bucket] = RollingWindow(window)

    def try_acquire(self, bucket: str, now: float, enforce: bool) -> bool:
        self._attempts[bucket].add(now)
        limit = LIMITS[bucket]
        if enforce and limit is not None and self._accepted[bucket].count(now) >= limit.requests:
            return False
        self._accepted[bucket].add(now)
        return True

    def peak_attempts(self) -> dict[str, int]:
        """Highest number of requests (accepted or not) seen within one window of each bucket."""
        return {bucket: w.peak for bucket, w in self._attempts.items()}
