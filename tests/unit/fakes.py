"""Fakes shared by the export unit tests: an injectable clock, export jobs answering from lines held
in memory, and helpers that drain a pass and sort what it yielded."""

import logging
from datetime import UTC, datetime, timedelta
from typing import Any, AsyncIterator, Callable, Generic, TypeVar

import orjson
from estuary_cdk.capture.common import PageCursor, is_cursor_dict

from source_iterable_native.export.capture import BackfillPage, ExportCapture, now_seconds
from source_iterable_native.export.jobs import ExportLines, ExportWindow, Priority

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
INTERVAL = timedelta(minutes=5)
FILE_LINES = 1000
log = logging.getLogger("test")

Instant = TypeVar("Instant", datetime, float)


class Clock(Generic[Instant]):
    """A clock that stands still until a test moves `now`: a datetime for the passes' wall clock,
    seconds for the pacers' monotonic one."""

    def __init__(self, now: Instant) -> None:
        self.now: Instant = now

    def __call__(self) -> Instant:
        return self.now


def monotonic_clock() -> Clock[float]:
    return Clock(1000.0)


def event_line(at: datetime, email: str) -> bytes:
    return orjson.dumps({"createdAt": at.isoformat(), "email": email})


class FakeExports:
    """Export jobs that answer each window with the lines whose cursor lies inside it, as they are
    at the moment the job runs (tests change `lines` between passes), in files of FILE_LINES lines
    named `f`. Every window asked for is kept in `windows`."""

    def __init__(self) -> None:
        self.lines: list[tuple[datetime, bytes]] = []
        self.windows: list[ExportWindow] = []

    @classmethod
    def of_events(cls, created: list[datetime]) -> "FakeExports":
        exports = cls()
        for at in created:
            exports.event(at)
        return exports

    def event(self, at: datetime) -> bytes:
        line = event_line(at, f"{len(self.lines)}@x.test")
        self.lines.append((at, line))
        return line

    def user(self, at: datetime, email: str, **fields: Any) -> bytes:
        line = orjson.dumps(
            {"email": email, "profileUpdatedAt": at.strftime("%Y-%m-%d %H:%M:%S +00:00"), **fields}
        )
        self.lines.append((at, line))
        return line

    def replace(self, old: bytes, new: bytes) -> None:
        self.lines = [(at, new if line == old else line) for at, line in self.lines]

    async def export(
        self, log: Any, window: ExportWindow, priority: Priority, adopt: int | None = None
    ) -> AsyncIterator[ExportLines]:
        self.windows.append(window)
        inside = [line for at, line in self.lines if window.start <= at < window.end]
        for i in range(0, len(inside), FILE_LINES):
            yield ExportLines(window=window, file="f", first=i + 1, lines=inside[i : i + FILE_LINES])


def export_capture(
    jobs: Any,
    data_type: str,
    realtime_cursor: datetime,
    *,
    window: timedelta = timedelta(hours=12),
    lag: timedelta = HOUR,
    clock: Callable[[], datetime] = now_seconds,
    **kwargs: Any,
) -> ExportCapture:
    """The capture of the binding of `data_type`, pacing that type from `realtime_cursor`."""
    capture = ExportCapture(
        jobs=jobs,
        binding="users" if data_type == "user" else "events",
        initial_window=window,
        lag=lag,
        interval=INTERVAL,
        clock=clock,
        **kwargs,
    )
    capture.track(data_type, realtime_cursor)
    return capture


async def collect(gen: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in gen]


def docs(items: list[Any]) -> list[dict[str, Any]]:
    """The documents among what a pass yielded, its checkpoints left out."""
    return [i for i in items if isinstance(i, dict) and not is_cursor_dict(i)]


def page_start(item: Any) -> int | None:
    """The next window's start, if `item` is a backfill page the CDK would checkpoint."""
    return item["start"] if isinstance(item, dict) and is_cursor_dict(item) else None


def page_to_datetime(page: PageCursor) -> datetime | None:
    """Where a checkpointed backfill page starts its next window."""
    read = BackfillPage.read(page)
    return None if read is None else datetime.fromtimestamp(read.start, tz=UTC)
