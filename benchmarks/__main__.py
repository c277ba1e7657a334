"""python -m benchmarks [--only catchup,dense,dedupe,users] [--time-scale 0.05] [--dense 100000,1000000] [--users 50000,2000000]"""

import argparse
import asyncio
import platform
import sys
from datetime import UTC, datetime

from . import catchup, dedupe, dense, users_history
from .harness import Scale, table

SCENARIOS = ("catchup", "dense", "dedupe", "users")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--only", default=",".join(SCENARIOS), help="catchup (scenarios 1 and 2), dense, dedupe, users")
    parser.add_argument("--time-scale", type=float, default=0.05, help="wall seconds per simulated second")
    parser.add_argument("--dense-time-scale", type=float, default=0.01)
    parser.add_argument("--dense", default="100000,1000000", help="events in the dense window, per run")
    parser.add_argument("--dedupe-per-day", type=int, default=5_000_000, help="records a day of the busy type")
    parser.add_argument("--users", default="50000,2000000", help="users of the project, per users backfill run")
    return parser.parse_args(argv)


async def main(argv: list[str]) -> None:
    args = parse(argv)
    only = set(args.only.split(","))
    print(
        f"source-iterable-native benchmark, {datetime.now(tz=UTC):%Y-%m-%d %H:%M} UTC, Python "
        f"{platform.python_version()}, {platform.machine()}, time scale {args.time_scale} "
        f"(dense {args.dense_time_scale})",
        flush=True,
    )
    if "catchup" in only:
        print(await catchup.run(Scale(args.time_scale)), flush=True)
    if "dense" in only:
        rows = []
        for events in (int(n) for n in args.dense.split(",")):
            result = await dense.run(Scale(args.dense_time_scale), events)
            rows.append(
                [
                    f"{events:,}",
                    result.docs_per_s,
                    result.job_done_s,
                    result.first_doc_s,
                    result.last_doc_s,
                    result.peak_rss_mb,
                    result.cpu_s,
                    events / result.cpu_s,
                ]
            )
        print(table(
            f"3. Dense window: one {dense.DATA_TYPE} export job (wall seconds from the open request; "
            "CPU includes the connector's start-up)",
            ["events", "docs/s (first..last)", "job completed (s)", "first doc (s)", "last doc (s)", "peak RSS (MB)",
             "connector CPU (s)", "docs per CPU s"], rows,
        ), flush=True)  # fmt: skip
    if "users" in only:
        results = await users_history.main(Scale(args.time_scale), [int(n) for n in args.users.split(",")])
        print(table(
            f"6. Users backfill from 2013 (capture_all_users) vs from a 30-day start_date: users last updated "
            f"over the past {users_history.HISTORY_DAYS // 365} years",
            users_history.HEADER, users_history.rows(results),
        ), flush=True)  # fmt: skip
    if "dedupe" in only:
        print(dedupe_memory_table(args.dedupe_per_day), flush=True)
        print(await dedupe_restart_table(), flush=True)


def dedupe_memory_table(per_day: int) -> str:
    default = dedupe.memory(per_day, held=dedupe.HELD_DEFAULT)
    day = dedupe.memory(per_day, held=dedupe.HELD_P1D, compare=False)
    return table(
        f"4. Late-data de-duplication memory, a type at {per_day:,} records a day read by real time every "
        "5 minutes (tracemalloc)",
        ["late_data_lag", "records held", "bytes per record", "MB", "CDK cache bytes per record", "budget"],
        [[lag, f"{m.records:,}", m.bytes_per_record, m.records * m.bytes_per_record / 1e6,
          m.cdk_cache_bytes_per_record, "<= 32"] for lag, m in (("PT1H", default), ("P1D", day))],
    )  # fmt: skip


async def dedupe_restart_table() -> str:
    r = await dedupe.restart()
    return table(
        f"5. Duplicates one restart causes, a type at {r.per_day:,} records a day, late_data_lag "
        f"{r.lag}, restarted at three points of the late-data pass's step",
        ["records per lag", "duplicates per restart", "in lags", "peak records remembered"],
        [[f"{r.records_per_lag:,}", ", ".join(f"{d:,}" for d in r.duplicates),
          ", ".join(f"{d / r.records_per_lag:.2f}" for d in r.duplicates), f"{r.peak_remembered:,}"]],
    )  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
