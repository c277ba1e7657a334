"""Fault switches: random rates (seeded) and explicit schedules ("the next N requests to prefix P")."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum


class Fault(StrEnum):
    RATE_LIMIT = "429"  # 429 RateLimitExceeded without Retry-After
    RATE_LIMIT_RETRY_AFTER = "429_retry_after"
    GENERIC_500 = "500_generic"  # 500 with Iterable's GenericError body
    HTTP_500 = "500"  # bare 500
    HTTP_502 = "502"  # gateway errors answer with HTML bodies
    HTTP_503 = "503"
    HTTP_504 = "504"
    DROP = "drop"  # connection closed after part of the body
    SLOW = "slow"  # delay before answering
    EXPIRED_URL = "expired_url"  # export file URL answers 403 "Request has expired"
    LOST_500 = "lost_500"  # the request is carried out, then answered 500 (an export/start's job exists)


@dataclass
class ScheduledFault:
    fault: Fault
    path_prefix: str = "/"
    remaining: int = 1
    method: str | None = None


@dataclass
class ListingShift:
    """Page-number listings have no snapshot isolation: an item deleted (or added) elsewhere while a
    walk is between two pages moves the later items across the page boundary."""

    path_prefix: str = "/api/"
    remaining: int = 1
    offset: int = 1
    """+1: the page starts one item later, so the walk misses one; -1: one earlier, seen twice."""


@dataclass
class FaultConfig:
    """Every fault is off by default. Rates are probabilities per request (or per job / per record)."""

    # Per-request rates, applied to requests whose path starts with `rate_path_prefix`.
    rate_path_prefix: str = "/"
    rate_429: float = 0.0
    retry_after_fraction: float = 0.5  # share of injected 429s that carry Retry-After
    retry_after_s: float = 1.0
    rate_5xx: float = 0.0  # spread over 500/502/503/504
    rate_generic_500: float = 0.0
    rate_drop: float = 0.0
    rate_slow: float = 0.0
    slow_delay_s: float = 2.0
    rate_expired_url: float = 0.0  # on /_files requests only
    # Export jobs.
    job_fail_rate: float = 0.0
    job_requeue_rate: float = 0.0
    fail_next_jobs: int = 0
    requeue_next_jobs: int = 0
    never_end_next_jobs: int = 0  # the next N jobs run forever, listing no file
    # The next N export/start requests each coincide with another tool starting a job of the same type.
    foreign_start_next_jobs: int = 0
    # Export file content, per record.
    malformed_line_rate: float = 0.0
    missing_cursor_rate: float = 0.0
    missing_key_rate: float = 0.0  # users only: a record with neither email nor itblUserId
    # Per user update: a second update follows within the same second (same profileUpdatedAt,
    # `sameSecondRevision` set), visible only `same_second_update_delay_s` later; until then
    # exports show the first version.
    same_second_update_rate: float = 0.0
    same_second_update_delay_s: float = 600.0
    scheduled: list[ScheduledFault] = field(default_factory=list)
    # Page-number listings (campaigns, journeys, catalogs, catalog items, templates): the rate
    # applies to every page after the first, shifting it by one item either way.
    listing_shift_rate: float = 0.0
    listing_shifts: list[ListingShift] = field(default_factory=list)

    def shift_listing(self, path_prefix: str = "/api/", count: int = 1, offset: int = 1) -> ListingShift:
        """The next `count` pages after the first of listings under `path_prefix` shift by `offset`."""
        entry = ListingShift(path_prefix, count, offset)
        self.listing_shifts.append(entry)
        return entry

    def take_listing_shift(self, rng: random.Random, path: str) -> int:
        """The shift of a page after the first of a page-number listing: 0, or +-1 items."""
        for entry in self.listing_shifts:
            if entry.remaining > 0 and path.startswith(entry.path_prefix):
                entry.remaining -= 1
                return entry.offset
        if self.listing_shift_rate and rng.random() < self.listing_shift_rate:
            return rng.choice((1, -1))
        return 0

    def schedule(
        self, fault: Fault | str, path_prefix: str = "/", count: int = 1, method: str | None = None
    ) -> ScheduledFault:
        """The next `count` requests whose path starts with `path_prefix` get `fault`."""
        entry = ScheduledFault(
            Fault(fault), path_prefix, remaining=count, method=method.upper() if method else None
        )
        self.scheduled.append(entry)
        return entry

    def take_scheduled(self, method: str, path: str) -> Fault | None:
        self.scheduled[:] = [e for e in self.scheduled if e.remaining > 0]
        for entry in self.scheduled:
            if not path.startswith(entry.path_prefix) or entry.method not in (None, method):
                continue
            if entry.fault is Fault.EXPIRED_URL and not path.startswith("/_files/"):
                continue
            entry.remaining -= 1
            return entry.fault
        return None

    def roll_random(self, rng: random.Random, path: str) -> Fault | None:
        if not path.startswith(self.rate_path_prefix):
            return None
        if path.startswith("/_files/") and rng.random() < self.rate_expired_url:
            return Fault.EXPIRED_URL
        if rng.random() < self.rate_429:
            with_header = rng.random() < self.retry_after_fraction
            return Fault.RATE_LIMIT_RETRY_AFTER if with_header else Fault.RATE_LIMIT
        if rng.random() < self.rate_generic_500:
            return Fault.GENERIC_500
        if rng.random() < self.rate_5xx:
            return rng.choice((Fault.HTTP_500, Fault.HTTP_502, Fault.HTTP_503, Fault.HTTP_504))
        if rng.random() < self.rate_drop:
            return Fault.DROP
        if rng.random() < self.rate_slow:
            return Fault.SLOW
        return None

    def pick(self, rng: random.Random, method: str, path: str) -> Fault | None:
        return self.take_scheduled(method, path) or self.roll_random(rng, path)

    def take_never_ending(self) -> bool:
        taken = self.never_end_next_jobs > 0
        self.never_end_next_jobs -= taken
        return taken

    def take_foreign_start(self) -> bool:
        taken = self.foreign_start_next_jobs > 0
        self.foreign_start_next_jobs -= taken
        return taken

    def take_job_fault(self, rng: random.Random) -> tuple[bool, bool]:
        """Decide (fail, requeue) for a newly created export job."""
        fail = rng.random() < self.job_fail_rate
        if self.fail_next_jobs > 0:
            self.fail_next_jobs -= 1
            fail = True
        requeue = rng.random() < self.job_requeue_rate
        if self.requeue_next_jobs > 0:
            self.requeue_next_jobs -= 1
            requeue = True
        return fail, requeue
