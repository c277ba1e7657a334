"""python -m benchmarks [--only catchup,backfill,dense,dedupe,users,scale] [--share 0.5,1] [--time-scale 0.05]
[--dense 1000000] [--users 50000,2000000] [--scale 0.1]"""

import argparse
import asyncio
import platform
import sys
from datetime import UTC, datetime
from typing import Any

from . import catchup, dedupe, dense, dense_backfill, users_history
from . import scale as large_organisation
from .harness import Scale, share_label, table

SCENARIOS = ("catchup", "backfill", "dense", "dedupe", "users", "scale")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--only", default=",".join(SCENARIOS), help=", ".join(SCENARIOS))
    parser.add_argument("--time-scale", type=float, default=0.05, help="wall seconds per simulated second")
    parser.add_argument("--dense-time-scale", type=float, default=0.01)
    parser.add_argument("--dense", default="1000000", help="events in the dense window, per run")
    parser.add_argument(
        "--dedupe-per-day", type=int, default=5_000_000, help="records a day of the busy type"
    )
    parser.add_argument(
        "--users", default="50000,2000000", help="users of the project, per users backfill run"
    )
    parser.add_argument("--scale", type=float, default=0.1, help="size of the large organisation (1 = full)")
    parser.add_argument("--scale-time-scale", type=float, default=0.01)
    parser.add_argument(
        "--scale-parts", default=",".join(large_organisation.PARTS), help="state, catalog, memory, restart"
    )
    parser.add_argument(
        "--share",
        default="0.5,1",
        help="shares of the export budget to run at; 'none' leaves the setting out",
    )
    return parser.parse_args(argv)


def shares(arg: str) -> list[float | None]:
    return [None if s == "none" else float(s) for s in arg.split(",")]


async def main(argv: list[str]) -> None:
    args = parse(argv)
    only = set(args.only.split(","))
    scale = Scale(args.time_scale)
    print(
        f"source-iterable-native benchmark, {datetime.now(tz=UTC):%Y-%m-%d %H:%M} UTC, Python "
        f"{platform.python_version()}, {platform.machine()}, time scale {args.time_scale} "
        f"(dense {args.dense_time_scale}, scale {args.scale_time_scale}); Iterable's limits enforced, export/start and "
        "export/{jobId}/files 1 request/s each",
        flush=True,
    )
    if "catchup" in only:
        runs = [await catchup.run(scale, share, steady=n == 0) for n, share in enumerate(shares(args.share))]
        print(runs[0].report, flush=True)
        print(
            table(
                "1b. Sparse backfill by share of the export budget",
                catchup.BACKFILL_HEADER,
                [r.row() for r in runs],
            ),
            flush=True,
        )
    if "backfill" in only:
        runs = [await dense_backfill.run(scale, share) for share in shares(args.share)]
        print(
            table(
                f"4. Dense backfill: {dense_backfill.EVENTS:,} events over {dense_backfill.DAYS} days in "
                f"{len(dense_backfill.BUSY)} busy types",
                catchup.BACKFILL_HEADER,
                [r.row() for r in runs],
            ),
            flush=True,
        )
    if "dense" in only:
        rows = []
        for share in shares(args.share):
            for events in (int(n) for n in args.dense.split(",")):
                result = await dense.run(Scale(args.dense_time_scale), events, share)
                rows.append(dense_row(share, result))
        print(
            table(
                f"3. Dense window: one {dense.DATA_TYPE} export job in files of {dense.RECORDS_PER_FILE:,} records, the "
                "other 51 types enabled (wall seconds from the open request; CPU includes the connector's start-up)",
                DENSE_HEADER,
                rows,
            ),
            flush=True,
        )
    if "dedupe" in only:
        print(dedupe_memory_table(args.dedupe_per_day), flush=True)
        print(await dedupe_restart_table(), flush=True)
    if "users" in only:
        results = await users_history.main(scale, [int(n) for n in args.users.split(",")])
        print(
            table(
                f"7. Users backfill from 2013 (capture_all_users) vs from a 30-day start_date: users last updated "
                f"over the past {users_history.HISTORY_DAYS // 365} years",
                users_history.HEADER,
                users_history.rows(results),
            ),
            flush=True,
        )
    if "scale" in only:
        parts = set(args.scale_parts.split(","))
        await large_organisation.run(Scale(args.scale_time_scale), args.scale, parts)


DENSE_HEADER = [
    "export budget",
    "events",
    "docs/s (first..last)",
    "job completed (s)",
    "first doc (s)",
    "last doc (s)",
    "jobs",
    "export requests/job",
    "429s",
    "files pages",
    "median page interval (s)",
    "connector peak RSS (MB)",
    "connector CPU (s)",
    "simulator peak RSS (MB)",
]


def dense_row(share: float | None, result: dense.Dense) -> list[Any]:
    traffic = result.traffic
    assert traffic is not None
    return [
        share_label(share),
        f"{result.events:,}",
        result.docs_per_s,
        result.job_done_s,
        result.first_doc_s,
        result.last_doc_s,
        traffic.jobs,
        traffic.per_job,
        traffic.rate_limited,
        result.files_pages,
        result.page_interval_s,
        result.peak_rss_mb,
        result.cpu_s,
        result.simulator_peak_rss_mb,
    ]


def dedupe_memory_table(per_day: int) -> str:
    default = dedupe.memory(per_day, held=dedupe.HELD_DEFAULT)
    day = dedupe.memory(per_day, held=dedupe.HELD_P1D, compare=False)
    return table(
        f"5. Late-data de-duplication memory, a type at {per_day:,} records a day read by real time every "
        "5 minutes (tracemalloc)",
        ["late_data_lag", "records held", "bytes per record", "MB", "CDK cache bytes per record", "budget"],
        [
            [
                lag,
                f"{m.records:,}",
                m.bytes_per_record,
                m.records * m.bytes_per_record / 1e6,
                m.cdk_cache_bytes_per_record,
                "<= 32",
            ]
            for lag, m in (("PT1H", default), ("P1D", day))
        ],
    )


async def dedupe_restart_table() -> str:
    r = await dedupe.restart()
    return table(
        f"6. Duplicates one restart causes, a type at {r.per_day:,} records a day, late_data_lag "
        f"{r.lag}, restarted at three points of the late-data pass's step",
        ["records per lag", "duplicates per restart", "in lags", "peak records remembered"],
        [
            [
                f"{r.records_per_lag:,}",
                ", ".join(f"{d:,}" for d in r.duplicates),
                ", ".join(f"{d / r.records_per_lag:.2f}" for d in r.duplicates),
                f"{r.peak_remembered:,}",
            ]
        ],
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
