"""`flowctl preview` for this connector: spec, discover, validate, then capture sessions carrying state."""

import json
import re
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

import orjson
import yaml

from .bindings import bindings_from_discovered
from .leaks import SecretLeakError, secret_values
from .protocol import CaptureProgress, CaptureResult, ConnectorDriver, ConnectorError, Document, ProtocolError
from .validation import DocumentError

UUID_PLACEHOLDER = "DocUUIDPlaceholder-329Bb50aa48EAa9ef"
DEFAULT_TIME_SCALE = 0.02
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

OutputMode = Literal["docs", "summary", "none"]


class PreviewError(Exception):
    """A preview step failed; the message is what the user sees."""


def parse_duration(text: str) -> float:
    """Parse `10s`, `500ms`, `1m30s`, `2h` or a bare number of seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"invalid duration {text!r}")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


def parse_sessions(text: str) -> list[int]:
    """`1,-1` gives one session of one transaction, then an unlimited one."""
    try:
        sessions = [int(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"invalid --sessions {text!r}: expected comma-separated integers") from None
    return sessions


def load_config(path: Path) -> dict[str, Any]:
    config = yaml.safe_load(path.read_text())
    if not isinstance(config, dict):
        raise PreviewError(f"{path}: expected a mapping")
    if "sops" in config:
        raise PreviewError(f"{path} is sops-encrypted; decrypt it first")
    return config


@dataclass
class PreviewOptions:
    config_path: Path | None = None
    sessions: list[int] = field(default_factory=lambda: [-1])
    timeout: float = 10.0
    delay: float = 0.0
    initial_state: Path | None = None
    output_state: Path | None = None
    include_disabled: bool = False
    bindings: list[str] | None = None
    output: OutputMode = "docs"
    time_scale: float | None = None
    seed: int | None = None
    command: list[str] | None = None
    interval_seconds: int = 300
    capture_name: str = "acmeCo/source-iterable-native"


@dataclass
class ProgressReporter:
    stream: TextIO
    tty: bool
    every: float = field(init=False)
    last: float = 0.0
    open_line: bool = False

    def __post_init__(self) -> None:
        self.every = 0.1 if self.tty else 5.0

    def update(self, session: int, progress: CaptureProgress) -> None:
        now = time.monotonic()
        if now - self.last < self.every:
            return
        self.last = now
        self._write(self._line(session, progress))

    def session_done(self, session: int, result: CaptureResult) -> None:
        progress = CaptureProgress(
            result.elapsed,
            len(result.documents),
            len(result.uncommitted),
            result.checkpoints,
            _counts(result.documents),
            result.stopped_by,
        )
        self._write(f"{self._line(session, progress)}; ended by {result.stopped_by} (rc {result.rc})")
        if self.tty:
            self.stream.write("\n")
            self.open_line = False
        self.last = 0.0

    def message(self, text: str) -> None:
        if self.open_line:
            self.stream.write("\n")
            self.open_line = False
        self.stream.write(f"{text}\n")
        self.stream.flush()

    def _write(self, line: str) -> None:
        self.stream.write(f"\r\x1b[2K{line}" if self.tty else f"{line}\n")
        self.stream.flush()
        self.open_line = self.tty

    @staticmethod
    def _line(session: int, progress: CaptureProgress) -> str:
        per = " ".join(f"{name.split('/')[-1]}={n}" for name, n in sorted(progress.per_collection.items()))
        return (
            f"session {session}: {progress.documents} docs [{per}] {progress.checkpoints} checkpoints "
            f"{progress.elapsed:.1f}s"
        )


def _counts(documents: list[Document]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name, _ in documents:
        counts[name] = counts.get(name, 0) + 1
    return counts


def with_placeholder_uuid(doc: Any) -> Any:
    if not isinstance(doc, dict):
        return doc
    meta = doc.get("_meta")
    return {**doc, "_meta": {**(meta if isinstance(meta, dict) else {}), "uuid": UUID_PLACEHOLDER}}


def doc_printer(out: TextIO) -> Any:
    def print_docs(batch: list[Document]) -> None:
        for name, doc in batch:
            out.write(orjson.dumps([name, with_placeholder_uuid(doc)]).decode() + "\n")
        out.flush()

    return print_docs


def summary_table(bindings: list[dict[str, Any]], counts: dict[str, int], checkpoints: int) -> str:
    names = [b["collection"]["name"] for b in bindings]
    width = max([len("collection"), *map(len, names)])
    rows = [f"{'collection':<{width}}  documents", f"{'-' * width}  ---------"]
    rows += [f"{name:<{width}}  {counts.get(name, 0):>9}" for name in names]
    rows.append(f"{'total':<{width}}  {sum(counts.values()):>9}  ({checkpoints} checkpoints)")
    return "\n".join(rows) + "\n"


@asynccontextmanager
async def simulated_iterable(seed: int | None, time_scale: float) -> AsyncIterator[Any]:
    try:
        from iterable_simulator import Simulator, SimulatorConfig
    except ImportError as exc:
        raise PreviewError(f"the Iterable simulator is unavailable ({exc}); pass --config") from exc
    settings: dict[str, Any] = {"time_scale": time_scale}
    if seed is not None:
        settings["seed"] = seed
    try:
        simulator = Simulator(SimulatorConfig(**settings))
        await simulator.start()
    except Exception as exc:
        raise PreviewError(f"the Iterable simulator failed to start: {exc!r}") from exc
    try:
        yield simulator
    finally:
        await simulator.stop()


def simulator_config(api_key: str) -> dict[str, Any]:
    return {
        "credentials": {"credentials_title": "Private App Credentials", "access_token": api_key},
        "project_type": "Email-based",
    }


class Preview:
    def __init__(
        self, options: PreviewOptions, driver: ConnectorDriver, out: TextIO, reporter: ProgressReporter
    ):
        self.options = options
        self.driver = driver
        self.out = out
        self.reporter = reporter

    async def run(self) -> dict[str, Any]:
        bindings = await self._discover()
        await self._validate(bindings)
        state = self._initial_state()
        counts: dict[str, int] = {}
        checkpoints = 0
        for number, transactions in enumerate(self.options.sessions, start=1):
            result = await self._session(number, transactions, bindings, state)
            state = result.state
            checkpoints += result.checkpoints
            for name, n in _counts(result.documents).items():
                counts[name] = counts.get(name, 0) + n
        if self.options.output == "summary":
            self.out.write(summary_table(bindings, counts, checkpoints))
        if self.options.output_state is not None:
            self.options.output_state.write_text(json.dumps(state, indent=2) + "\n")
        return state

    async def _discover(self) -> list[dict[str, Any]]:
        (await self.driver.spec()).raise_for_error("spec")
        discovered = (await self.driver.discover()).raise_for_error("discover")
        try:
            bindings = bindings_from_discovered(
                discovered,
                include_disabled=self.options.include_disabled,
                only=self.options.bindings,
                prefix=self.driver.collection_prefix,
            )
        except ValueError as exc:
            raise PreviewError(str(exc)) from None
        self.reporter.message(
            f"discovered {len(bindings)} bindings: {', '.join(b['resourcePath'][0] for b in bindings)}"
        )
        return bindings

    async def _validate(self, bindings: list[dict[str, Any]]) -> None:
        validated = (await self.driver.validate(bindings)).raise_for_error("validate")
        paths = [b.get("resourcePath") for b in validated["validated"]["bindings"]]
        expected = [b["resourcePath"] for b in bindings]
        if paths != expected:
            raise PreviewError(f"validate returned resource paths {paths}, expected {expected}")

    def _initial_state(self) -> dict[str, Any]:
        if self.options.initial_state is None:
            return {}
        state = json.loads(self.options.initial_state.read_text())
        if not isinstance(state, dict):
            raise PreviewError("--initial-state must hold a JSON object")
        return state

    async def _session(
        self, number: int, transactions: int, bindings: list[dict[str, Any]], state: dict[str, Any]
    ) -> CaptureResult:
        result = await self.driver.capture(
            bindings,
            state,
            interval_seconds=self.options.interval_seconds,
            max_checkpoints=transactions if transactions >= 0 else None,
            idle_timeout=self.options.timeout,
            on_progress=lambda progress: self.reporter.update(number, progress),
            on_commit=doc_printer(self.out) if self.options.output == "docs" else None,
            poll_delay=self.options.delay,
        )
        self.reporter.session_done(number, result)
        result.raise_for_error()
        return result


async def run_preview(options: PreviewOptions, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    reporter = ProgressReporter(err, err.isatty())
    try:
        if options.config_path is not None:
            config = load_config(options.config_path)
            env = (
                {} if options.time_scale is None else {"SOURCE_ITERABLE_TIME_SCALE": str(options.time_scale)}
            )
            await Preview(options, _driver(options, config, env, secret_values(config)), out, reporter).run()
            return 0
        time_scale = DEFAULT_TIME_SCALE if options.time_scale is None else options.time_scale
        async with simulated_iterable(options.seed, time_scale) as simulator:
            env = {"ITERABLE_API_BASE_URL": simulator.base_url, "SOURCE_ITERABLE_TIME_SCALE": str(time_scale)}
            driver = _driver(options, simulator_config(simulator.api_key), env, [simulator.api_key])
            await Preview(options, driver, out, reporter).run()
        return 0
    except (ConnectorError, ProtocolError, DocumentError, SecretLeakError, PreviewError, OSError) as exc:
        reporter.message(f"error: {exc}")
        return 1


def _driver(
    options: PreviewOptions, config: dict[str, Any], env: dict[str, str], secrets: list[str]
) -> ConnectorDriver:
    prefix = options.capture_name.split("/")[0]
    return ConnectorDriver(
        config,
        env=env,
        command=options.command,
        secrets=secrets,
        capture_name=options.capture_name,
        collection_prefix=prefix,
    )
