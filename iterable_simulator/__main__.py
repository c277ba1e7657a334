"""Run the simulator standalone: prints {"base_url", "api_key"} as one JSON line, serves until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

from .config import DataSpec, SimulatorConfig
from .simulator import Simulator


def _parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m iterable_simulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--api-key", default=SimulatorConfig.api_key)
    p.add_argument("--project-type", default="Email-based", choices=("Email-based", "UserID-based", "Hybrid"))
    p.add_argument("--time-scale", type=float, default=1.0)
    p.add_argument("--no-rate-limits", action="store_true")
    p.add_argument("--history-days", type=int, default=30)
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--campaigns", type=int, default=40)
    p.add_argument("--events", type=json.loads, default=None, help='JSON object, e.g. {"emailSend": 5000}')
    p.add_argument("--late-fraction", type=float, default=0.05)
    p.add_argument("--truncate-above", type=int, default=None)
    return p.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    data = DataSpec(
        history_days=args.history_days,
        users=args.users,
        campaigns=args.campaigns,
        late_fraction=args.late_fraction,
    )
    if args.events is not None:
        data.events = dict(args.events)
    return SimulatorConfig(
        seed=args.seed,
        api_key=args.api_key,
        project_type=args.project_type,
        data=data,
        time_scale=args.time_scale,
        enforce_rate_limits=not args.no_rate_limits,
        export_truncate_above_records=args.truncate_above,
    )


async def _serve(args: argparse.Namespace) -> None:
    sim = Simulator(config_from_args(args))
    await sim.start(args.host, args.port)
    print(json.dumps({"base_url": sim.base_url, "api_key": sim.api_key}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sim.stop()


def main(argv: list[str] | None = None) -> None:
    asyncio.run(_serve(_parse_args(sys.argv[1:] if argv is None else argv)))


if __name__ == "__main__":
    main()
