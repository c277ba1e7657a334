"""Micro-benchmark of the per-record path: µs per exported line becoming a document.

`python -m benchmarks.records [--records 20000] [--repeat 5]` prints the best of `repeat` runs of
`ExportedStream.record` (parse, datetime repair, key, cursor) and of `repair_datetimes` alone, for
users and emailSend events as the simulator writes them (Iterable's usual datetime form, with its
occasional `+0000` and double-fraction variants).

`--path` instead runs emailOpen lines as the dense benchmark serves them (shuffled over a day)
through a backfill window of `ExportCapture`, from a stand-in export, into a CDK task's buffer as
the CDK's backfill loop hands them over: the connector's whole per-document path, without HTTP.
It prints the best of `repeat` passes; `valgrind --tool=callgrind` of `--repeat 3` less that of
`--repeat 1`, over twice the records, gives instructions per document that do not depend on the
machine's load."""

import argparse
import asyncio
import gc
import logging
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any, AsyncIterator, Callable

import orjson
import xxhash
from estuary_cdk.capture.common import is_cursor_dict
from estuary_cdk.capture.task import _BaseTask

from iterable_simulator.data import Generator
from iterable_simulator.config import DataSpec
from iterable_simulator.streams import EmailOpens
from source_iterable_native.export.capture import ExportCapture
from source_iterable_native.export.jobs import ExportLines, ExportWindow, JobAccepted, Priority
from source_iterable_native.export.streams import ExportedStream
from source_iterable_native.records import repair_datetimes


def sample(records: int) -> dict[str, list[dict[str, Any]]]:
    spec = DataSpec(users=records, events={"emailSend": records}, campaigns=20, lists=0, late_fraction=0.0)
    ds = Generator(spec, "Email-based", seed=3, now=time.time(), time_scale=1.0).generate()
    return {"user": [u.data for u in ds.users], "emailSend": [e.data for e in ds.events["emailSend"]]}


def best_us_per_record(run: Callable[[], None], records: int, repeat: int) -> float:
    timings = []
    gc.disable()
    try:
        for _ in range(repeat):
            started = time.process_time()
            run()
            timings.append(time.process_time() - started)
    finally:
        gc.enable()
    return min(timings) / records * 1e6


def measure(records: int, repeat: int) -> list[tuple[str, float, float]]:
    rows = []
    streams = {
        "user": ExportedStream("user", "profileUpdatedAt", "email"),
        "emailSend": ExportedStream("emailSend", "createdAt", None),
    }
    for data_type, docs in sample(records).items():
        stream = streams[data_type]
        lines = [orjson.dumps(doc) for doc in docs]
        copies = [[orjson.loads(line) for line in lines] for _ in range(repeat)]

        def record_all() -> None:
            for line in lines:
                stream.record(line, "bench")

        def repair_all() -> None:
            for doc in copies.pop():
                repair_datetimes(doc)

        rows.append(
            (
                data_type,
                best_us_per_record(record_all, len(lines), repeat),
                best_us_per_record(repair_all, len(lines), repeat),
            )
        )
    return rows


END = datetime(2026, 6, 1, tzinfo=UTC)
LINES_PER_READ = 750
"""About one 256 KB network read of emailOpen lines."""


def email_opens(records: int) -> list[bytes]:
    users = [{"email": f"u{i}@example.com", "userId": f"id{i}", "itblUserId": f"itbl{i}"} for i in range(200)]
    end = END.timestamp()
    stream = EmailOpens(
        3,
        start=end - 86_400,
        end=end,
        count=1_000_000,
        users=users,
        campaigns=[(i, i * 10) for i in range(10)],
        project_type="Hybrid",
    )
    return [stream.line(i) for i in random.Random(1).sample(range(1_000_000), records)]


class _OneJob:
    """Stands in for ExportJobs: one job serving the window, its lines in network-read batches."""

    def __init__(self, lines: list[bytes]) -> None:
        self.lines = lines

    async def export(
        self, log: Any, window: ExportWindow, priority: Priority, adopt: int | None = None
    ) -> AsyncIterator[JobAccepted | ExportLines]:
        yield JobAccepted(1, window)
        for i in range(0, len(self.lines), LINES_PER_READ):
            yield ExportLines(window, "f", first=i + 1, lines=self.lines[i : i + LINES_PER_READ])


class _Buffer:
    """A CDK task's buffer and digest, for the CDK's own `_BaseTask._captured` to write and
    `_BaseTask._reset` to empty."""

    def __init__(self) -> None:
        self._buffer = tempfile.SpooledTemporaryFile(max_size=_BaseTask.MAX_BUFFER_MEM)
        self._hasher = xxhash.xxh3_128()


async def document_path(lines: list[bytes]) -> int:
    """Documents of `lines` through a backfill window into a task buffer; checkpoints empty it."""
    capture = ExportCapture(
        _OneJob(lines),  # type: ignore[arg-type]  # a stand-in for ExportJobs
        "events",
        initial_window=timedelta(days=3),
        lag=timedelta(hours=1),
        interval=timedelta(minutes=5),
    )
    capture.track("emailOpen", END)
    task, documents = _Buffer(), 0
    pages = capture.backfill(
        ExportedStream("emailOpen", "createdAt", None),
        END - timedelta(days=1),
        logging.getLogger("benchmarks.records"),
        None,
        END,
    )
    async for item in pages:
        if isinstance(item, dict) and not is_cursor_dict(item):
            _BaseTask._captured(task, 0, item)  # type: ignore[arg-type]  # uses only these two
            documents += 1
        else:
            _BaseTask._reset(task)  # type: ignore[arg-type]  # as a checkpoint does
    return documents


def measure_path(records: int, repeat: int) -> float:
    lines = email_opens(records)

    def run() -> None:
        documents = asyncio.run(document_path(lines))
        assert documents == records, documents

    return best_us_per_record(run, records, repeat)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.records", description=__doc__)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--path", action="store_true", help="the whole per-document path, emailOpen")
    args = parser.parse_args(argv)
    if args.path:
        print(f"emailOpen, whole path: {measure_path(args.records, args.repeat):.2f} µs per document")
        return
    print(f"{'data type':<10} {'record() µs':>12} {'repair_datetimes µs':>20}")
    for data_type, record_us, repair_us in measure(args.records, args.repeat):
        print(f"{data_type:<10} {record_us:>12.2f} {repair_us:>20.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
