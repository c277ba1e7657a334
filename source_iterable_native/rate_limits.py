"""Iterable's request budgets, stated once, and the HTTP sessions that pace requests to fit them.

The CDK's HTTP client paces every request of a connector through one shared `RateLimiter` that
knows nothing of Iterable's per-endpoint and per-organisation limits, and that slows every later
request for good after sustained 429s. Iterable's limits differ by three orders of magnitude
between endpoints (100 per second for campaigns, 5 per minute for list membership), so each
endpoint family gets its own `PacedSession`: the CDK client with a `RateLimiter` that reserves a
slot in a rolling window before each request, and backs off only its own family after a 429
caused by another tool, recovering as soon as requests succeed again.
"""

import asyncio
import os
import time
from collections import deque
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from logging import Logger
from typing import Any, Awaitable, Callable

import aiohttp
from estuary_cdk.http import HeadersAndBodyGenerator, HTTPMixin, RateLimiter, ShouldRetryProtocol, TokenSource

TIME_SCALE_ENV = "SOURCE_ITERABLE_TIME_SCALE"


def time_scale() -> float:
    """Multiplier of every pacing interval and poll delay; below 1 only in tests and benchmarks."""
    return float(os.environ.get(TIME_SCALE_ENV, "1"))


class Bucket(StrEnum):
    DEFAULT = "default"
    CAMPAIGN_METRICS = "campaign_metrics"
    EXPERIMENT_METRICS = "experiment_metrics"
    CATALOGS = "catalogs"
    LIST_USERS = "list_users"
    USER_FIELDS = "user_fields"
    EXPORT = "export"
    EXPORT_CANCEL = "export_cancel"
    FILES = "files"


@dataclass(frozen=True)
class RateLimit:
    requests: int
    per: timedelta


LIMITS: dict[Bucket, RateLimit | None] = {
    Bucket.DEFAULT: RateLimit(100, timedelta(seconds=1)),
    Bucket.CAMPAIGN_METRICS: RateLimit(10, timedelta(minutes=1)),
    # Iterable states no limit for experiment metrics; they get the same caution as campaign metrics.
    Bucket.EXPERIMENT_METRICS: RateLimit(10, timedelta(minutes=1)),
    # Per API key rather than per project.
    Bucket.CATALOGS: RateLimit(100, timedelta(seconds=1)),
    Bucket.LIST_USERS: RateLimit(5, timedelta(minutes=1)),
    Bucket.USER_FIELDS: RateLimit(3, timedelta(seconds=1)),
    # Shared by export/start and export/{jobId}/files across the whole organisation.
    Bucket.EXPORT: RateLimit(1, timedelta(seconds=1)),
    Bucket.EXPORT_CANCEL: RateLimit(1, timedelta(seconds=1)),
    # Pre-signed export file URLs are served by object storage, outside Iterable's limits.
    Bucket.FILES: None,
}

EXPORT_JOBS_PROCESSING_PER_ORGANISATION = 4
ORGANISATION_BUCKETS = frozenset({Bucket.EXPORT})
"""Budgets shared with every tool of the Iterable organisation: requested one at a time."""

SAFETY_MARGIN = 0.02
"""Fraction of a window added to each reservation, for the drift between our clock and Iterable's."""
JITTER_MARGIN_S = 0.05
"""Seconds added to each reservation, so that network jitter (which does not shrink with a short
window) never lets two paced requests arrive closer than Iterable allows."""

BACKOFF_FIRST = timedelta(seconds=2)
BACKOFF_MAX = timedelta(minutes=2)


class RollingWindowPacer(RateLimiter):
    """A CDK `RateLimiter` whose `delay` reserves the next free slot of a rolling window.

    The CDK reads `delay` once before each attempt and sleeps that long, so reserving the slot at
    that moment keeps concurrent requests of the family in order. A 429 (another tool spending
    the shared budget) pushes the next slot out exponentially; a success resets the back-off.
    """

    def __init__(self, limit: RateLimit | None, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.clock = clock
        self.sent: deque[float] = deque(maxlen=limit.requests if limit else 1)
        self.departed: deque[float] = deque(maxlen=limit.requests if limit else 1)
        self.blocked_until = 0.0
        self.consecutive_429s = 0
        self.failed = 0
        self.total = 0
        self.waited = 0.0

    def _window(self) -> float:
        assert self.limit is not None
        return self.limit.per.total_seconds() * time_scale() * (1 + SAFETY_MARGIN) + JITTER_MARGIN_S

    @property
    def delay(self) -> float:  # type: ignore[override]
        now = self.clock()
        at = max(now, self.blocked_until)
        if self.limit and len(self.sent) == self.limit.requests:
            at = max(at, self.sent[0] + self._window())
        if self.limit:
            self.sent.append(at)
        self.waited += at - now
        return at - now

    async def depart(self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        """Wait, right before a request is sent, until the window has room for it.

        Reservations in `delay` assume each request leaves at its slot; one that leaves late (the
        event loop was busy, say) would crowd the next, and the CDK retries a broken connection
        without asking `delay` at all. Send times are what Iterable counts, so they are checked."""
        if not self.limit:
            return
        while len(self.departed) == self.limit.requests and (
            wait := self.departed[0] + self._window() - self.clock()
        ) > 0:
            self.waited += wait
            await sleep(wait)
        self.departed.append(self.clock())

    def answered(self) -> None:
        """Count the latest request's slot from now, when its response arrived: Iterable saw the
        request no later, however long our event loop or the network held it before sending."""
        if self.limit and self.sent:
            self.sent[-1] = max(self.sent[-1], self.clock())

    def update(self, log: Logger, cur_delay: float, failed: bool) -> None:
        self.total += 1
        if not failed:
            self.consecutive_429s = 0
            return
        self.failed += 1
        self.consecutive_429s += 1
        backoff = self._back_off(self.consecutive_429s)
        log.warning(
            "Iterable answered 429 Too Many Requests; another tool may be sharing the budget",
            {"backoff_seconds": round(backoff, 3), "consecutive": self.consecutive_429s},
        )

    def server_error(self, log: Logger, status: int, attempt: int) -> bool:
        """A 5xx backs the family off like a 429 does (the CDK alone would retry at full pace);
        the request is then retried."""
        backoff = self._back_off(attempt)
        log.info("backing off after a server error", {"status": status, "backoff_seconds": round(backoff, 3)})
        return True

    def _back_off(self, consecutive: int) -> float:
        backoff = min(
            BACKOFF_FIRST.total_seconds() * 2 ** (consecutive - 1), BACKOFF_MAX.total_seconds()
        ) * time_scale()
        self.blocked_until = max(self.blocked_until, self.clock() + backoff)
        return backoff


class PacedSession(HTTPMixin):
    """The CDK HTTP client, paced by one endpoint family's budget."""

    def __init__(
        self,
        inner: aiohttp.ClientSession,
        token_source: TokenSource | None,
        pacer: RollingWindowPacer,
    ):
        self.inner = inner
        self.token_source = token_source
        self.rate_limiter = pacer
        self.pacer = pacer

    async def _establish_connection_and_get_response(self, log: Logger, *args: Any) -> Any:
        await self.pacer.depart()
        return await super()._establish_connection_and_get_response(log, *args)

    async def _request_stream(
        self,
        log: Logger,
        url: str,
        method: str,
        params: dict[str, Any] | None,
        json: dict[str, Any] | None,
        form: dict[str, Any] | None,
        with_token: bool,
        headers: dict[str, Any] | None = None,
        should_retry: ShouldRetryProtocol | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
    ) -> HeadersAndBodyGenerator:
        """Every request method of the CDK funnels through here: give 5xx retries a back-off."""

        def back_off(status: int, headers: Any, body: bytes, attempt: int) -> bool:
            return self.pacer.server_error(log, status, attempt)

        return await super()._request_stream(
            log, url, method, params, json, form, with_token, headers, should_retry or back_off, timeout
        )


class SerialSession(PacedSession):
    """For a budget shared by the whole organisation, where our 429 would also cost other tools:
    one request at a time, and each slot counted from the previous response, not from when the
    request was meant to leave. Reservations alone let a request held up in our own event loop
    arrive right behind the next one."""

    def __init__(
        self,
        inner: aiohttp.ClientSession,
        token_source: TokenSource | None,
        pacer: RollingWindowPacer,
    ):
        super().__init__(inner, token_source, pacer)
        self.turn = asyncio.Lock()

    async def request(self, log: Logger, url: str, *args: Any, **kwargs: Any) -> bytes:
        async with self.turn:
            try:
                return await super().request(log, url, *args, **kwargs)
            finally:
                self.pacer.answered()


class IterableHTTP:
    """One paced session per endpoint family, sharing a connection pool and the API key."""

    def __init__(
        self,
        inner: aiohttp.ClientSession,
        token_source: TokenSource,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.sessions = {
            bucket: (SerialSession if bucket in ORGANISATION_BUCKETS else PacedSession)(
                inner, None if bucket is Bucket.FILES else token_source, RollingWindowPacer(limit, clock)
            )
            for bucket, limit in LIMITS.items()
        }

    def __getitem__(self, bucket: Bucket) -> PacedSession:
        return self.sessions[bucket]


async def sleep_unless(stopping: asyncio.Event | None, seconds: float) -> bool:
    """Sleep `seconds` (scaled), waking early if `stopping` is set. Returns whether it was set."""
    seconds *= time_scale()
    if stopping is None:
        await asyncio.sleep(seconds)
        return False
    try:
        await asyncio.wait_for(stopping.wait(), timeout=seconds)
        return True
    except asyncio.TimeoutError:
        return False
