"""Micro-benchmark of the per-record path: µs per exported line becoming a document.

`python -m benchmarks.records [--records 20000] [--repeat 5]` prints the best of `repeat` runs of
`ExportedStream.record` (parse, datetime repair, key, cursor) and of `repair_datetimes` alone, for
users and emailSend events as the simulator writes them (Iterable's usual datetime form, with its
occasional `+0000` and double-fraction variants)."""

import argparse
import gc
import sys
import time
from typing import Any, Callable

import orjson

from iterable_simulator.data import Generator
from iterable_simulator.config import DataSpec
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


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.records", description=__doc__)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"{'data type':<10} {'record() µs':>12} {'repair_datetimes µs':>20}")
    for data_type, record_us, repair_us in measure(args.records, args.repeat):
        print(f"{data_type:<10} {record_us:>12.2f} {repair_us:>20.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
