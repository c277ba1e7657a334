"""python -m benchmarks [--only catchup,backfill,dense] [--share 0.5,1] [--time-scale 0.05] [--dense 1000000]"""

import argparse
import asyncio
import platform
import sys
from datetime import UTC, datetime

from . import catchup, dense, dense_backfill
from .harness import Scale, share_label, table

SCENARIOS = ("catchup", "backfill", "dense")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--only", default=",".join(SCENARIOS), help="catchup (scenarios 1 and 2), backfill, dense")
    parser.add_argument("--time-scale", type=float, default=0.05, help="wall seconds per simulated second")
    parser.add_argument("--dense-time-scale", type=float, default=0.01)
    parser.add_argument("--dense", default="1000000", help="events in the dense window, per run")
    parser.add_argument(
        "--share", default="0.5,1", help="shares of the export budget to run at; 'none' leaves the setting out"
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
        f"(dense {args.dense_time_scale}); Iterable's limits enforced, export/start and "
        "export/{jobId}/files 1 request/s each",
        flush=True,
    )
    if "catchup" in only:
        runs = [await catchup.run(scale, share, steady=n == 0) for n, share in enumerate(shares(args.share))]
        print(runs[0].report, flush=True)
        print(table(
            "1b. Sparse backfill by share of the export budget", catchup.BACKFILL_HEADER, [r.row() for r in runs]
        ), flush=True)  # fmt: skip
    if "backfill" in only:
        runs = [await dense_backfill.run(scale, share) for share in shares(args.share)]
        print(table(
            f"4. Dense backfill: {dense_backfill.EVENTS:,} events over {dense_backfill.DAYS} days in "
            f"{len(dense_backfill.BUSY)} busy types", catchup.BACKFILL_HEADER, [r.row() for r in runs],
        ), flush=True)  # fmt: skip
    if "dense" in only:
        rows = []
        for share in shares(args.share):
            for events in (int(n) for n in args.dense.split(",")):
                result = await dense.run(
                    Scale(args.dense_time_scale), events, share, every_type=True, records_per_file=5_000
                )
                rows.append(
                    [
                        share_label(share),
                        f"{events:,}",
                        result.docs_per_s,
                        result.job_done_s,
                        result.first_doc_s,
                        result.last_doc_s,
                        result.peak_rss_mb,
                        result.cpu_s,
                    ]
                )
        print(table(
            f"3. Dense window: one {dense.DATA_TYPE} export job in files of 5,000 records, the other 51 "
            "types enabled (wall seconds from the open request; CPU includes the connector's start-up)",
            ["export budget", "events", "docs/s (first..last)", "job completed (s)", "first doc (s)", "last doc (s)",
             "peak RSS (MB)", "connector CPU (s)"], rows,
        ), flush=True)  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
