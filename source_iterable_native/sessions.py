"""HTTP sessions that pace requests to fit Iterable's budgets (`budgets`).

The CDK's HTTP client paces every request of a connector through one shared `RateLimiter` that
knows nothing of Iterable's per-endpoint and per-organisation limits, and that slows every later
request for good after sustained 429s. Iterable's limits differ by three orders of magnitude
between endpoints (100 per second for campaigns, 5 per minute for list membership), so each
endpoint family gets its own `PacedSession`: the CDK client with a `RateLimiter` that reserves a
slot in a rolling window before each request, and backs off only its own family after a 429
caused by another tool, recovering as soon as requests succeed again.
"""

import asyncio
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from logging import Logger
from typing import Any, Awaitable, Callable, Mapping

import aiohttp
from estuary_cdk.http import HeadersAndBodyGenerator, HTTPMixin, RateLimiter, ShouldRetryProtocol, TokenSource

from .budgets import (
    DEFAULT_EXPORT_SHARE,
    LIMITS,
    ORGANISATION_BUCKETS,
    Bucket,
    ExportPlan,
    Priority,
    PriorityGate,
    RateLimit,
    organisation_limit,
    time_scale,
)

SAFETY_MARGIN = 0.02
"""Fraction of a window added to each reservation, for the drift between our clock and Iterable's."""
JITTER_MARGIN_S = 0.05
"""Seconds added to each reservation, so that network jitter (which does not shrink with a short
window) never lets two paced requests arrive closer than Iterable allows."""

BACKOFF_FIRST = timedelta(seconds=2)
BACKOFF_MAX = timedelta(minutes=2)
RETRY_AFTER_MAX = timedelta(hours=1)
"""The longest `Retry-After` obeyed, so that a wrong date cannot stall a family for good."""


class RollingWindowPacer(RateLimiter):
    """A CDK `RateLimiter` whose `delay` reserves the next free slot of a rolling window.

    The CDK reads `delay` once before each attempt and sleeps that long, so reserving the slot at
    that moment keeps concurrent requests of the family in order. A 429 (another tool spending
    the shared budget) pushes the next slot out exponentially; a success resets the back-off.
    """

    def __init__(
        self, limit: RateLimit | None, clock: Callable[[], float] = time.monotonic, full: bool = False
    ):
        """`full`: count the window as spent when the process starts, so that the first request of
        a restarted connector cannot land in the same second as the last one of its predecessor."""
        self.limit = limit
        self.clock = clock
        self.sent: deque[float] = deque(maxlen=limit.requests if limit else 1)
        self.departed: deque[float] = deque(maxlen=limit.requests if limit else 1)
        if limit and full:
            self.sent.extend([clock()] * limit.requests)
            self.departed.extend([clock()] * limit.requests)
        self.blocked_until = 0.0
        self.consecutive_429s = 0
        self.failed = 0
        self.total = 0

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
        return at - now

    async def depart(self, sleep: Callable[[float], Awaitable[None]] | None = None) -> None:
        """Wait, right before a request is sent, until the window has room for it.

        Reservations in `delay` assume each request leaves at its slot; one that leaves late (the
        event loop was busy, say) would crowd the next, and the CDK retries a broken connection
        without asking `delay` at all. Send times are what Iterable counts, so they are checked."""
        if not self.limit:
            return
        sleep = sleep or asyncio.sleep
        while (
            len(self.departed) == self.limit.requests
            and (wait := self.departed[0] + self._window() - self.clock()) > 0
        ):
            await sleep(wait)
        self.departed.append(self.clock())

    def restamp(self) -> None:
        """The latest request left later than its `depart` (it waited for another budget)."""
        if self.departed:
            self.departed[-1] = self.clock()

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
        backoff = (
            min(BACKOFF_FIRST.total_seconds() * 2 ** (consecutive - 1), BACKOFF_MAX.total_seconds())
            * time_scale()
        )
        self.blocked_until = max(self.blocked_until, self.clock() + backoff)
        return max(backoff, self.blocked_until - self.clock())

    def retry_after(self, log: Logger, value: str) -> None:
        """Hold the family back as long as Iterable's `Retry-After` asks (seconds or an HTTP date).
        It is Iterable's own clock, so it is not scaled."""
        seconds = retry_after_seconds(value, datetime.now(tz=UTC))
        if seconds is None:
            log.info("ignoring an unreadable Retry-After", {"retry_after": value})
            return
        self.blocked_until = max(
            self.blocked_until, self.clock() + min(seconds, RETRY_AFTER_MAX.total_seconds())
        )


def retry_after_seconds(value: str, now: datetime) -> float | None:
    """Seconds to wait from a `Retry-After` header: delay-seconds, or an HTTP date (RFC 9110)."""
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return max(0.0, (at - now).total_seconds())


class PacedSession(HTTPMixin):
    """The CDK HTTP client, paced by one endpoint family's budget."""

    rate_limiter: RollingWindowPacer

    def __init__(
        self,
        inner: aiohttp.ClientSession,
        token_source: TokenSource | None,
        pacer: RollingWindowPacer,
    ):
        self.inner = inner
        self.token_source = token_source
        self.rate_limiter = pacer

    async def _depart(self) -> None:
        await self.rate_limiter.depart()

    async def _establish_connection_and_get_response(self, log: Logger, *args: Any) -> Any:
        await self._depart()
        response = await super()._establish_connection_and_get_response(log, *args)
        if (response.status == 429 or response.status >= 500) and (
            retry_after := _header(response.headers, "Retry-After")
        ):
            self.rate_limiter.retry_after(log, retry_after)
        return response

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
            return self.rate_limiter.server_error(log, status, attempt)

        return await super()._request_stream(
            log,
            url,
            method,
            params=params,
            json=json,
            form=form,
            with_token=with_token,
            headers=headers,
            should_retry=should_retry or back_off,
            timeout=timeout,
        )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return headers.get(name) if headers is not None else None


class SerialSession(PacedSession):
    """For a budget shared by the whole organisation, where our 429 would also cost other tools:
    one request at a time, and each slot counted from the previous response, not from when the
    request was meant to leave. Reservations alone let a request held up in our own event loop
    arrive right behind the next one. Waiting requests go in `Priority` order. `combined` paces
    the requests of every export budget together, so that their sum stays within the connector's
    share of a single budget counted twice (the reading that Iterable counts them separately);
    the sessions paced together then also share their `turn`, one request at a time across both,
    each slot of `combined` counted from the previous response too."""

    def __init__(
        self,
        inner: aiohttp.ClientSession,
        token_source: TokenSource | None,
        pacer: RollingWindowPacer,
        combined: RollingWindowPacer | None = None,
        turn: PriorityGate | None = None,
    ):
        super().__init__(inner, token_source, pacer)
        self.turn = turn or PriorityGate(1)
        self.combined = combined

    async def _depart(self) -> None:
        await self.rate_limiter.depart()
        if self.combined is not None:
            await self.combined.depart()
            self.rate_limiter.restamp()

    async def request(  # type: ignore[override]
        self, log: Logger, url: str, *args: Any, priority: Priority = Priority.REALTIME, **kwargs: Any
    ) -> bytes:
        async with self.turn.hold(priority):
            try:
                return await super().request(log, url, *args, **kwargs)
            finally:
                self.rate_limiter.answered()
                if self.combined is not None:
                    self.combined.restamp()


class IterableHTTP:
    """One paced session per endpoint family, sharing a connection pool and the API key."""

    def __init__(
        self,
        inner: aiohttp.ClientSession,
        token_source: TokenSource,
        clock: Callable[[], float] = time.monotonic,
        export_share: float = DEFAULT_EXPORT_SHARE,
    ):
        self.export_share = export_share
        self.export_plan = ExportPlan(export_share)
        export = LIMITS[Bucket.EXPORT]
        assert export is not None
        # Up to a share of one half the export requests together stay within one budget: Iterable's
        # limit holds even if it counts export/start and export/{jobId}/files as one. Above it, that
        # reading cannot hold anyway, and each budget is paced on its own.
        combined = len(ORGANISATION_BUCKETS) * export_share
        self.export_combined = (
            RollingWindowPacer(RateLimit(export.requests, export.per / combined), clock, full=True)
            if combined <= 1
            else None
        )
        self.export_turn = PriorityGate(1) if self.export_combined is not None else None
        self.sessions = {bucket: self._session(bucket, inner, token_source, clock) for bucket in LIMITS}

    def _session(
        self,
        bucket: Bucket,
        inner: aiohttp.ClientSession,
        token_source: TokenSource,
        clock: Callable[[], float],
    ) -> PacedSession:
        limit = organisation_limit(bucket, self.export_share)
        if bucket in ORGANISATION_BUCKETS:
            return SerialSession(
                inner,
                token_source,
                RollingWindowPacer(limit, clock, full=True),
                combined=self.export_combined,
                turn=self.export_turn,
            )
        return PacedSession(
            inner, None if bucket is Bucket.FILES else token_source, RollingWindowPacer(limit, clock)
        )

    def __getitem__(self, bucket: Bucket) -> PacedSession:
        return self.sessions[bucket]

    def organisation(self, bucket: Bucket) -> SerialSession:
        """The session of a budget shared with the organisation's other tools."""
        session = self.sessions[bucket]
        assert isinstance(session, SerialSession), bucket
        return session
