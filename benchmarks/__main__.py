"""python -m benchmarks [--only catchup,dense,scale] [--time-scale 0.05] [--dense 100000,1000000] [--scale 0.1]"""

import argparse
import asyncio
import platform
import sys
from datetime import UTC, datetime

from . import catchup, dense, scale
from .harness import Scale, table

SCENARIOS = ("catchup", "dense", "scale")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--only", default=",".join(SCENARIOS), help="catchup (scenarios 1 and 2), dense, scale"
    )
    parser.add_argument("--time-scale", type=float, default=0.05, help="wall seconds per simulated second")
    parser.add_argument("--dense-time-scale", type=float, default=0.01)
    parser.add_argument("--dense", default="100000,1000000", help="events in the dense window, per run")
    parser.add_argument("--scale", type=float, default=0.1, help="size of the large organisation (1 = full)")
    parser.add_argument("--scale-time-scale", type=float, default=0.01)
    parser.add_argument(
        "--scale-parts", default=",".join(scale.PARTS), help="state, catalog, memory, restart"
    )
    return parser.parse_args(argv)


async def main(argv: list[str]) -> None:
    args = parse(argv)
    only = set(args.only.split(","))
    print(
        f"source-iterable-native benchmark, {datetime.now(tz=UTC):%Y-%m-%d %H:%M} UTC, Python "
        f"{platform.python_version()}, {platform.machine()}, time scale {args.time_scale} "
        f"(dense {args.dense_time_scale}, scale {args.scale_time_scale})",
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

    if "scale" in only:
        parts = set(args.scale_parts.split(","))
        await scale.run(Scale(args.scale_time_scale), args.scale, parts)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
