"""Asynchronous export jobs (iterable-api.md §8), simulated lazily against the injected clock.

`ExportManager.tick(now)` replays every state change up to `now` in time order, so the concurrency
cap, queueing and "records visible when processing starts" hold exactly whatever the polling pattern."""

from __future__ import annotations

import math
import random
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, overload

import orjson

FILE_NAME_FORMAT = "file-{job_id}-{index:04d}.json"
_FAIL_AT_FRACTION = 0.5
_REQUEUE_AT_FRACTION = 0.3
USER_KEYS = ("email", "itblUserId")


class JobState(StrEnum):
    # Wire values are lowercase, unlike the spec's enum.
    ENQUEUED = "enqueued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"


ACTIVE_STATES = (JobState.ENQUEUED, JobState.RUNNING)


class LineSource(Protocol):
    """A store that renders the JSON line of its record `i` on demand."""

    def line(self, i: int) -> bytes: ...

    def line_size(self, i: int) -> int: ...


@dataclass
class LazySelection:
    """The records an export selected from a LineSource, as indices into it."""

    source: LineSource
    indices: list[int]


class RenderedLines(Sequence[bytes]):
    """Export lines rendered when read: line `k` is `source.line(indices[k])`."""

    def __init__(self, source: LineSource, indices: array[int]) -> None:
        self.source, self.indices = source, indices

    def __len__(self) -> int:
        return len(self.indices)

    @overload
    def __getitem__(self, index: int) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> RenderedLines: ...
    def __getitem__(self, index: int | slice) -> bytes | RenderedLines:
        if isinstance(index, slice):
            return RenderedLines(self.source, self.indices[index])
        return self.source.line(self.indices[index])

    def __iter__(self) -> Iterator[bytes]:
        return map(self.source.line, self.indices)

    def size(self) -> int:
        """Bytes of these lines, newlines included, without rendering them."""
        return sum(map(self.source.line_size, self.indices)) + len(self.indices)


@dataclass
class ExportFile:
    name: str
    lines: Sequence[bytes]
    _size: int | None = field(default=None, repr=False, compare=False)

    @property
    def body(self) -> bytes:
        return b"".join(line + b"\n" for line in self.lines)

    @property
    def size(self) -> int:
        """Bytes of the body (computed once)."""
        if self._size is None:
            lines = self.lines
            self._size = (
                lines.size() if isinstance(lines, RenderedLines) else sum(len(line) + 1 for line in lines)
            )
        return self._size


@dataclass
class ExportJob:
    id: int
    data_type: str
    start: float | None
    end: float | None
    created_at: float
    created_by_connector: bool
    project_visible: bool = True
    campaign_id: int | None = None
    only_fields: tuple[str, ...] = ()
    omit_fields: tuple[str, ...] = ()
    state: JobState = JobState.ENQUEUED
    eligible_at: float = 0.0
    fail_planned: bool = False
    requeue_planned: bool = False
    fixed_duration: float | None = None
    duration: float = 0.0
    progress: float = 0.0  # seconds of running time accumulated (kept across requeues)
    running_since: float | None = None
    first_started_at: float | None = None
    ended_at: float | None = None
    record_count: int | None = None  # how many records the export contains; None until it runs
    truncated: bool = False
    files: list[ExportFile] = field(default_factory=list)
    requeue_count: int = 0

    @property
    def window(self) -> tuple[float | None, float | None]:
        return self.start, self.end

    def progress_at(self, now: float) -> float:
        running = now - self.running_since if self.running_since is not None else 0.0
        return self.progress + running

    def files_available(self, now: float) -> list[ExportFile]:
        if self.state is JobState.COMPLETED:
            return self.files
        if (
            self.record_count is None
            or self.duration <= 0
            or self.state in (JobState.FAILED, JobState.CANCELLED)
        ):
            return []
        # Files are appended while the job runs.
        fraction = min(1.0, self.progress_at(now) / self.duration)
        return self.files[: int(len(self.files) * fraction)]

    def bytes_exported(self) -> int:
        return sum(f.size for f in self.files) if self.state is JobState.COMPLETED else 0


# Returns (record, its pre-encoded JSON line or None) pairs, or records a LineSource renders.
Selection = list[tuple[dict[str, Any], bytes | None]] | LazySelection
Selector = Callable[["ExportJob", float], Selection]
FaultHook = Callable[[str, dict[str, Any]], None]


@dataclass
class ExportSettings:
    max_concurrent: int
    latency_base: float  # already scaled
    latency_per_1k: float  # already scaled
    records_per_file: int
    truncate_above: Callable[[], int | None]
    requeue_pause: float  # already scaled
    malformed_line_rate: Callable[[], float]
    missing_cursor_rate: Callable[[], float]
    missing_key_rate: Callable[[], float]


class ExportManager:
    def __init__(
        self, settings: ExportSettings, select: Selector, rng: random.Random, on_fault: FaultHook
    ) -> None:
        self.settings = settings
        self._select = select
        self._rng = rng
        self._on_fault = on_fault
        self.jobs: dict[int, ExportJob] = {}
        self.cancelled_jobs: list[int] = []
        self.max_concurrent_running_seen = 0
        self._next_id = 3562
        self._time = -math.inf

    # -- public ------------------------------------------------------------------------------------
    def create(self, now: float, **kwargs: Any) -> ExportJob:
        self.tick(now)
        job = ExportJob(id=self._next_id, created_at=now, eligible_at=now, **kwargs)
        self._next_id += self._rng.randint(1, 9)
        self.jobs[job.id] = job
        self.tick(now)
        return job

    def cancel(self, job: ExportJob, now: float) -> None:
        self.tick(now)
        if job.state in ACTIVE_STATES:
            self._stop_running(job, now)
            job.state = JobState.CANCELLED
            job.ended_at = now
        self.tick(now)

    def running_count(self) -> int:
        return sum(1 for j in self.jobs.values() if j.state is JobState.RUNNING)

    def tick(self, now: float) -> None:
        now = max(now, self._time)  # an injected clock may step backwards; never rewind
        while True:
            self._fill_slots(self._time)
            event = self._next_event(now)
            if event is None:
                break
            at, job, action = event
            self._time = at
            action(job, at)
        self._time = now

    # -- state machine ------------------------------------------------------------------------------
    def _fill_slots(self, at: float) -> None:
        waiting = sorted(
            (j for j in self.jobs.values() if j.state is JobState.ENQUEUED and j.eligible_at <= at),
            key=lambda j: (j.created_at, j.id),
        )
        for job in waiting:
            if self.running_count() >= self.settings.max_concurrent:
                break
            self._start(job, at)
        self.max_concurrent_running_seen = max(self.max_concurrent_running_seen, self.running_count())

    def _next_event(self, now: float) -> tuple[float, ExportJob, Callable[[ExportJob, float], None]] | None:
        candidates: list[tuple[float, int, ExportJob, Callable[[ExportJob, float], None]]] = []
        for job in self.jobs.values():
            if job.state is JobState.RUNNING and job.running_since is not None:
                remaining = job.duration - job.progress
                if job.fail_planned:
                    at = job.running_since + max(0.0, job.duration * _FAIL_AT_FRACTION - job.progress)
                    candidates.append((at, job.id, job, self._fail))
                elif job.requeue_planned:
                    at = job.running_since + max(0.0, job.duration * _REQUEUE_AT_FRACTION - job.progress)
                    candidates.append((at, job.id, job, self._requeue))
                else:
                    candidates.append((job.running_since + remaining, job.id, job, self._complete))
            elif job.state is JobState.ENQUEUED and job.eligible_at > self._time:
                if self.running_count() < self.settings.max_concurrent:
                    candidates.append((job.eligible_at, job.id, job, lambda _j, _t: None))
        due = [c for c in candidates if c[0] <= now]
        if not due:
            return None
        at, _, job, action = min(due, key=lambda c: (c[0], c[1]))
        return at, job, action

    def _start(self, job: ExportJob, at: float) -> None:
        if job.record_count is None:
            self._materialise(job, at)
        job.state = JobState.RUNNING
        job.running_since = at
        if job.first_started_at is None:
            job.first_started_at = at

    def _materialise(self, job: ExportJob, at: float) -> None:
        """Select records visible when processing starts, in no particular order, and cut files."""
        selected = self._select(job, at)
        records = selected.indices if isinstance(selected, LazySelection) else selected
        self._rng.shuffle(records)  # indices draw from the RNG exactly as their records would
        limit = self.settings.truncate_above()
        if limit is not None and len(records) > limit:
            del records[limit:]
            job.truncated = True
        job.record_count = len(records)
        per_1k = self.settings.latency_per_1k * len(records) / 1000
        job.duration = (
            job.fixed_duration if job.fixed_duration is not None else self.settings.latency_base + per_1k
        )
        lines: Sequence[bytes]
        if isinstance(selected, LazySelection):
            # Selected lazily only when no line fault can apply (the selector sees to it).
            lines = RenderedLines(selected.source, array("q", selected.indices))
        elif self.line_faults():
            lines = [self._encode(job, record, line) for record, line in selected]
        else:
            lines = [line if line is not None else orjson.dumps(record) for record, line in selected]
        size = self.settings.records_per_file
        job.files = [
            ExportFile(FILE_NAME_FORMAT.format(job_id=job.id, index=i // size + 1), lines[i : i + size])
            for i in range(0, len(lines), size)
        ]

    def line_faults(self) -> bool:
        """Whether a line of an export may now be malformed or lack a field."""
        rates = (
            self.settings.malformed_line_rate,
            self.settings.missing_cursor_rate,
            self.settings.missing_key_rate,
        )
        return any(rate() for rate in rates)

    def _encode(self, job: ExportJob, record: dict[str, Any], line: bytes | None) -> bytes:
        if self._rng.random() < self.settings.malformed_line_rate():
            self._on_fault("malformed_line", {"job_id": job.id})
            return orjson.dumps(record)[:-7] + b'",,'
        if self._rng.random() < self.settings.missing_cursor_rate():
            cursor_field = "profileUpdatedAt" if job.data_type == "user" else "createdAt"
            self._on_fault("missing_cursor", {"job_id": job.id, "field": cursor_field})
            return orjson.dumps({k: v for k, v in record.items() if k != cursor_field})
        if job.data_type == "user" and self._rng.random() < self.settings.missing_key_rate():
            self._on_fault("missing_key", {"job_id": job.id})
            return orjson.dumps({k: v for k, v in record.items() if k not in USER_KEYS})
        return line if line is not None else orjson.dumps(record)

    def _stop_running(self, job: ExportJob, at: float) -> None:
        if job.state is JobState.RUNNING and job.running_since is not None:
            job.progress += at - job.running_since
        job.running_since = None

    def _complete(self, job: ExportJob, at: float) -> None:
        self._stop_running(job, at)
        job.progress = job.duration
        job.state = JobState.COMPLETED
        job.ended_at = at

    def _fail(self, job: ExportJob, at: float) -> None:
        self._stop_running(job, at)
        job.state = JobState.FAILED
        job.ended_at = at
        self._on_fault("job_failed", {"job_id": job.id})

    def _requeue(self, job: ExportJob, at: float) -> None:
        # A job may drop from running back to enqueued; its progress is kept.
        self._stop_running(job, at)
        job.requeue_planned = False
        job.requeue_count += 1
        job.state = JobState.ENQUEUED
        job.eligible_at = at + self.settings.requeue_pause
        self._on_fault("job_requeued", {"job_id": job.id})
