"""`python -m flow_driver preview|acmeco ...`"""

import argparse
import asyncio
import shlex
import sys
from pathlib import Path

from .acmeco import run_acmeco
from .preview import PreviewOptions, parse_duration, parse_sessions, run_preview


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _sessions(text: str) -> list[int]:
    try:
        return parse_sessions(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _command(text: str) -> list[str]:
    return shlex.split(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m flow_driver", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    preview = commands.add_parser("preview", help="run the connector like `flowctl preview`")
    preview.add_argument(
        "--config", type=Path, help="endpoint config (YAML/JSON); default: the Iterable simulator"
    )
    preview.add_argument(
        "--sessions", type=_sessions, default=[-1], help="transactions per session, e.g. 1,-1"
    )
    preview.add_argument(
        "--timeout",
        type=_duration,
        default=10.0,
        help="end a session after this long idle (starting up: at least 60 s)",
    )
    preview.add_argument("--delay", type=_duration, default=0.0, help="pause after each transaction")
    preview.add_argument("--initial-state", type=Path)
    preview.add_argument("--output-state", type=Path)
    preview.add_argument("--include-disabled", action="store_true")
    preview.add_argument("--bindings", type=_names, help="comma-separated resource names to capture")
    preview.add_argument("--output", choices=["docs", "summary", "none"], default="docs")
    preview.add_argument(
        "--time-scale", type=float, help="SOURCE_ITERABLE_TIME_SCALE (simulator default 0.02)"
    )
    preview.add_argument("--seed", type=int, help="simulator seed")
    preview.add_argument("--interval", type=int, default=300, help="capture intervalSeconds")
    preview.add_argument("--name", default="acmeCo/source-iterable-native", help="capture name")
    preview.add_argument("--connector-command", type=_command, help="run this instead of the connector")

    acmeco = commands.add_parser("acmeco", help="write the acmeCo/ collection layout from discovery")
    acmeco.add_argument(
        "--config", type=Path, help="endpoint config; default: test.flow.yaml's inline config"
    )
    acmeco.add_argument("--flow-file", type=Path, default=Path("test.flow.yaml"))
    acmeco.add_argument("--out", type=Path, default=Path("acmeCo"))
    acmeco.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 when stale")
    acmeco.add_argument("--connector-command", type=_command, help="run this instead of the connector")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "acmeco":
        return asyncio.run(
            run_acmeco(
                flow_file=args.flow_file,
                config_path=args.config,
                out=args.out,
                check=args.check,
                command=args.connector_command,
            )
        )
    options = PreviewOptions(
        config_path=args.config,
        sessions=args.sessions,
        timeout=args.timeout,
        delay=args.delay,
        initial_state=args.initial_state,
        output_state=args.output_state,
        include_disabled=args.include_disabled,
        bindings=args.bindings,
        output=args.output,
        time_scale=args.time_scale,
        seed=args.seed,
        command=args.connector_command,
        interval_seconds=args.interval,
        capture_name=args.name,
    )
    try:
        return asyncio.run(run_preview(options))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
