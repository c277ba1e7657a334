"""An asyncio driver that plays the Flow runtime against a capture connector speaking JSON lines."""

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .bindings import validate_binding
from .leaks import SecretScanner, secret_values
from .state import fold_checkpoint
from .validation import BindingValidator

STREAM_LIMIT = 128 * 1024 * 1024
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_COMMAND = [sys.executable, "-m", "source_iterable_native"]
REAP_TIMEOUT = 5.0
STOP_CHECK_INTERVAL = 0.05
"""How often `stop_when` is asked while the connector is silent, so a quiet session can end on a condition."""
STARTUP_ALLOWANCE = 60.0
"""The least idle timeout until the connector has sent `opened`: starting up (imports, the first
requests) is not silence."""

Document = tuple[str, dict[str, Any]]


class ProtocolError(Exception):
    """The connector broke the protocol (bad framing, message order, or binding index)."""


class ConnectorError(Exception):
    """The connector exited unsuccessfully; `error` is its last log message."""

    def __init__(self, operation: str, rc: int, error: str | None):
        self.operation = operation
        self.rc = rc
        self.error = error
        super().__init__(f"{operation} failed with exit code {rc}: {error}")


def parse_log_line(line: bytes) -> dict[str, Any]:
    """Parse one stderr line; non-JSON text becomes a warn-level log, as in the runtime."""
    text = line.rstrip(b"\r\n")
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        return parsed
    return {"level": "warn", "msg": text.decode(errors="replace")}


def last_error(logs: list[dict[str, Any]]) -> str | None:
    for log in reversed(logs):
        if log.get("msg") not in (None, ""):
            return str(log["msg"])
    return None


@dataclass
class UnaryResult:
    rc: int
    response: dict[str, Any] | None
    logs: list[dict[str, Any]]
    error: str | None

    def raise_for_error(self, operation: str = "request") -> dict[str, Any]:
        """Return the response, or raise ConnectorError when the RPC failed."""
        if self.rc != 0 or self.response is None:
            raise ConnectorError(operation, self.rc, self.error)
        return self.response


@dataclass
class CaptureProgress:
    elapsed: float
    documents: int
    uncommitted: int
    checkpoints: int
    per_collection: dict[str, int]
    stopped_by: str | None
    state: dict[str, Any] = field(default_factory=dict)
    """The state folded from every checkpoint so far."""
    since_opened: float | None = None
    """Seconds since the connector sent `opened` (None before): a clock that leaves out start-up."""


@dataclass
class CaptureResult:
    rc: int
    documents: list[Document]
    uncommitted: list[Document]
    checkpoints: int
    checkpoint_patches: list[dict[str, Any] | None]
    state: dict[str, Any]
    sourced_schemas: dict[str, list[dict[str, Any]]]
    logs: list[dict[str, Any]]
    error: str | None
    stopped_by: str
    opened: dict[str, Any] | None
    killed: bool
    elapsed: float
    stop_to_exit: float | None = None
    """Seconds from the driver's stop (SIGTERM or SIGKILL) to the end of stdout; None if never stopped."""

    def docs(self, collection: str) -> list[dict[str, Any]]:
        return [doc for name, doc in self.documents if name == collection]

    def raise_for_error(self) -> "CaptureResult":
        if self.rc != 0 and not self.killed:
            raise ConnectorError("capture", self.rc, self.error)
        return self


async def _read_logs(
    stream: asyncio.StreamReader, scanner: SecretScanner, logs: list[dict[str, Any]]
) -> None:
    while line := await stream.readline():
        scanner.scan_bytes("stderr", line)
        logs.append(parse_log_line(line))


async def _read_all(stream: asyncio.StreamReader) -> bytes:
    return await stream.read()


def _signal_group(proc: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


async def _reap(proc: asyncio.subprocess.Process) -> None:
    """Make sure a process we started is dead and waited for."""
    if proc.returncode is None:
        _signal_group(proc, signal.SIGKILL)
    try:
        await asyncio.wait_for(proc.wait(), REAP_TIMEOUT)
    except asyncio.TimeoutError:
        pass


async def _write_line(proc: asyncio.subprocess.Process, message: dict[str, Any]) -> bool:
    assert proc.stdin is not None
    if proc.stdin.is_closing():
        return False
    try:
        proc.stdin.write(orjson.dumps(message) + b"\n")
        await proc.stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        return False
    return True


def _close_stdin(proc: asyncio.subprocess.Process) -> None:
    assert proc.stdin is not None
    if not proc.stdin.is_closing():
        try:
            proc.stdin.close()
        except (BrokenPipeError, ConnectionResetError):
            pass


class ConnectorDriver:
    def __init__(
        self,
        config: dict[str, Any],
        *,
        env: dict[str, str] | None = None,
        command: list[str] | None = None,
        cwd: str | None = None,
        secrets: list[str] | tuple[str, ...] = (),
        capture_name: str = "acmeCo/source-iterable-native",
        collection_prefix: str = "acmeCo",
        stop_timeout: float = 30.0,
        unary_timeout: float = 300.0,
    ):
        self.config = config
        self.env = dict(env or {})
        self.command = list(command) if command is not None else list(DEFAULT_COMMAND)
        self.cwd = cwd if cwd is not None else (str(PROJECT_ROOT) if command is None else None)
        # The config's own secrets are always scanned for, whatever the caller passes.
        self.secrets = list(dict.fromkeys([*secrets, *secret_values(config)]))
        self.capture_name = capture_name
        self.collection_prefix = collection_prefix
        self.stop_timeout = stop_timeout
        self.unary_timeout = unary_timeout

    def scanner(self) -> SecretScanner:
        return SecretScanner(self.secrets)

    async def start_process(self, stdout: int = asyncio.subprocess.PIPE) -> asyncio.subprocess.Process:
        """The connector as a subprocess; `stdout` may name a file descriptor to write to instead of
        a pipe read through the returned process."""
        return await asyncio.create_subprocess_exec(
            *self.command,
            stdin=asyncio.subprocess.PIPE,
            stdout=stdout,
            stderr=asyncio.subprocess.PIPE,
            cwd=self.cwd,
            env={**os.environ, **self.env},
            limit=STREAM_LIMIT,
            start_new_session=True,
        )

    async def spec(self) -> UnaryResult:
        return await self._unary({"spec": {"connectorType": "LOCAL"}})

    async def discover(self) -> UnaryResult:
        return await self._unary({"discover": {"connectorType": "LOCAL", "config": self.config}})

    async def validate(self, bindings: list[dict[str, Any]]) -> UnaryResult:
        request = {
            "name": self.capture_name,
            "connectorType": "LOCAL",
            "config": self.config,
            "bindings": [validate_binding(b) for b in bindings],
        }
        return await self._unary({"validate": request})

    async def capture(
        self,
        bindings: list[dict[str, Any]],
        state: dict[str, Any] | None = None,
        *,
        interval_seconds: int = 300,
        max_checkpoints: int | None = None,
        idle_timeout: float | None = None,
        deadline: float | None = None,
        stop_when: Callable[[CaptureProgress], bool] | None = None,
        kill: bool = False,
        on_progress: Callable[[CaptureProgress], None] | None = None,
        validate_documents: bool = True,
        on_commit: Callable[[list[Document]], None] | None = None,
        poll_delay: float = 0.0,
    ) -> CaptureResult:
        session = _CaptureSession(
            driver=self,
            bindings=bindings,
            state=dict(state or {}),
            limits=_Limits(max_checkpoints, idle_timeout, deadline, stop_when, kill),
            on_progress=on_progress,
            on_commit=on_commit,
            validate_documents=validate_documents,
            poll_delay=poll_delay,
        )
        return await session.run(self.open_request(bindings, state or {}, interval_seconds))

    def open_request(
        self, bindings: list[dict[str, Any]], state: dict[str, Any], interval_seconds: int
    ) -> dict[str, Any]:
        capture = {
            "name": self.capture_name,
            "connectorType": "LOCAL",
            "config": self.config,
            "intervalSeconds": interval_seconds,
            "bindings": bindings,
        }
        return {"open": {"capture": capture, "version": "flow-driver", "range": {}, "state": state}}

    async def _unary(self, request: dict[str, Any]) -> UnaryResult:
        scanner = self.scanner()
        proc = await self.start_process()
        logs: list[dict[str, Any]] = []
        assert proc.stdout is not None and proc.stderr is not None
        try:
            await _write_line(proc, request)
            _close_stdin(proc)
            stdout, _ = await asyncio.wait_for(
                asyncio.gather(_read_all(proc.stdout), _read_logs(proc.stderr, scanner, logs)),
                self.unary_timeout,
            )
            rc = await proc.wait()
        finally:
            await _reap(proc)
        scanner.scan_bytes("stdout", stdout)
        response = _parse_unary(stdout, rc)
        if response is not None:
            scanner.scan_value("stdout", response)
        return UnaryResult(rc, response, logs, last_error(logs) if rc != 0 else None)


def _parse_unary(stdout: bytes, rc: int) -> dict[str, Any] | None:
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines and rc != 0:
        return None
    if len(lines) != 1:
        raise ProtocolError(f"expected exactly one response line, got {len(lines)}")
    try:
        response = orjson.loads(lines[0])
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"response is not JSON: {exc}") from None
    if not isinstance(response, dict):
        raise ProtocolError("response is not a JSON object")
    return response


@dataclass
class _Limits:
    max_checkpoints: int | None
    idle_timeout: float | None
    deadline: float | None
    stop_when: Callable[[CaptureProgress], bool] | None
    kill: bool


@dataclass
class _CaptureSession:
    driver: ConnectorDriver
    bindings: list[dict[str, Any]]
    state: dict[str, Any]
    limits: _Limits
    on_progress: Callable[[CaptureProgress], None] | None
    on_commit: Callable[[list[Document]], None] | None
    validate_documents: bool
    poll_delay: float

    scanner: SecretScanner = field(init=False)
    validators: list[BindingValidator] = field(init=False)
    logs: list[dict[str, Any]] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)
    pending: list[Document] = field(default_factory=list)
    pending_schemas: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    sourced_schemas: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    per_collection: dict[str, int] = field(default_factory=dict)
    patches: list[dict[str, Any] | None] = field(default_factory=list)
    opened: dict[str, Any] | None = None
    stopped_by: str | None = None
    killed: bool = False
    started: float = field(default_factory=time.monotonic)
    last_output: float = field(default_factory=time.monotonic)
    stop_started: float | None = None
    kill_started: float | None = None
    opened_at: float | None = None
    stdout_closed: float | None = None

    def __post_init__(self) -> None:
        self.scanner = self.driver.scanner()
        self.scanner.scan_value("state", self.state)
        self.validators = (
            [BindingValidator.from_binding(i, b) for i, b in enumerate(self.bindings)]
            if self.validate_documents
            else []
        )

    async def run(self, open_request: dict[str, Any]) -> CaptureResult:
        proc = await self.driver.start_process()
        assert proc.stdout is not None and proc.stderr is not None
        stderr_task = asyncio.create_task(_read_logs(proc.stderr, self.scanner, self.logs))
        try:
            await _write_line(proc, open_request)
            await self._pump(proc, stderr_task)
            rc = await self._wait_exit(proc)
            done, _ = await asyncio.wait([stderr_task], timeout=REAP_TIMEOUT)
            if done:
                stderr_task.result()
        finally:
            stderr_task.cancel()
            await _reap(proc)
        if self.opened is None and rc == 0:
            raise ProtocolError("connector exited without sending `opened`")
        return self._result(rc)

    async def _wait_exit(self, proc: asyncio.subprocess.Process) -> int:
        """Wait for exit once stdout is closed; a process lingering past the stop timeout is killed."""
        grace = REAP_TIMEOUT if self.killed else self.driver.stop_timeout
        try:
            return await asyncio.wait_for(proc.wait(), grace)
        except asyncio.TimeoutError:
            self._kill(proc)
            return await proc.wait()

    async def _pump(self, proc: asyncio.subprocess.Process, stderr_task: asyncio.Task[None]) -> None:
        assert proc.stdout is not None
        reader: asyncio.Task[bytes] | None = None
        watched: set[asyncio.Task[Any]] = {stderr_task}
        try:
            while True:
                if reader is None:
                    reader = asyncio.create_task(proc.stdout.readline())
                done, _ = await asyncio.wait(
                    watched | {reader}, timeout=self._wait_timeout(), return_when=asyncio.FIRST_COMPLETED
                )
                if stderr_task in done:
                    stderr_task.result()
                    watched.discard(stderr_task)
                if reader in done:
                    line, reader = reader.result(), None
                    if not line:
                        self.stdout_closed = time.monotonic()
                        return
                    self.last_output = time.monotonic()
                    await self._handle_line(proc, line)
                    self._report_and_check(proc)
                elif not done and self._on_timeout(proc):
                    return
        finally:
            if reader is not None:
                reader.cancel()

    def _wait_timeout(self) -> float | None:
        now = time.monotonic()
        candidates: list[float] = []
        if self.kill_started is not None:
            candidates.append(self.kill_started + REAP_TIMEOUT)
        elif self.stop_started is not None:
            candidates.append(self.stop_started + self.driver.stop_timeout)
        else:
            if self.limits.deadline is not None:
                candidates.append(self.started + self.limits.deadline)
            idle_until = self._idle_until()
            if idle_until is not None:
                candidates.append(idle_until)
            if self.limits.stop_when is not None and self.opened is not None:
                candidates.append(now + STOP_CHECK_INTERVAL)
        return max(0.0, min(candidates) - now) if candidates else None

    def _on_timeout(self, proc: asyncio.subprocess.Process) -> bool:
        """Handle an expired timer; True means give up reading stdout."""
        now = time.monotonic()
        if self.kill_started is not None:
            return now >= self.kill_started + REAP_TIMEOUT
        if self.stop_started is not None:
            if now >= self.stop_started + self.driver.stop_timeout:
                self._kill(proc)
            return False
        if (
            self.limits.stop_when is not None
            and self.opened is not None
            and self.limits.stop_when(self.progress())
        ):
            self._stop(proc, "stop_when")
        elif self.limits.deadline is not None and now >= self.started + self.limits.deadline:
            self._stop(proc, "deadline")
        elif (idle_until := self._idle_until()) is not None and now >= idle_until:
            self._stop(proc, "idle")
        return False

    def _idle_until(self) -> float | None:
        if self.limits.idle_timeout is None:
            return None
        if self.opened_at is None:
            return self.last_output + max(self.limits.idle_timeout, STARTUP_ALLOWANCE)
        return self.last_output + self.limits.idle_timeout

    def _stop(self, proc: asyncio.subprocess.Process, reason: str) -> None:
        if self.stopped_by is not None:
            return
        self.stop_started = time.monotonic()
        _close_stdin(proc)
        if self.limits.kill:
            self.stopped_by = "kill"
            self._kill(proc)
            return
        self.stopped_by = reason
        try:
            proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass

    def _kill(self, proc: asyncio.subprocess.Process) -> None:
        self.killed = True
        self.kill_started = time.monotonic()
        _signal_group(proc, signal.SIGKILL)

    def progress(self) -> CaptureProgress:
        return CaptureProgress(
            elapsed=time.monotonic() - self.started,
            documents=len(self.documents),
            uncommitted=len(self.pending),
            checkpoints=len(self.patches),
            per_collection=dict(self.per_collection),
            stopped_by=self.stopped_by,
            state=self.state,
            since_opened=None if self.opened_at is None else time.monotonic() - self.opened_at,
        )

    def _report_and_check(self, proc: asyncio.subprocess.Process) -> None:
        progress = self.progress()
        if self.on_progress is not None:
            self.on_progress(progress)
        if self.stopped_by is not None or self.opened is None:
            return
        if self.limits.max_checkpoints is not None and progress.checkpoints >= self.limits.max_checkpoints:
            self._stop(proc, "max_checkpoints")
        elif self.limits.stop_when is not None and self.limits.stop_when(progress):
            self._stop(proc, "stop_when")

    async def _handle_line(self, proc: asyncio.subprocess.Process, line: bytes) -> None:
        self.scanner.scan_bytes("stdout", line)
        kind, body = self._parse_message(line)
        if self.opened is None and kind != "opened":
            raise ProtocolError(f"expected `opened` as the first message, got `{kind}`")
        if kind == "opened":
            self._on_opened(body)
        elif kind == "captured":
            self._on_captured(body)
        elif kind == "sourcedSchema":
            self._on_sourced_schema(body)
        elif kind == "checkpoint":
            await self._on_checkpoint(proc, body)
        else:
            raise ProtocolError(f"unexpected message `{kind}` during a capture")

    def _parse_message(self, line: bytes) -> tuple[str, Any]:
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ProtocolError(f"stdout line is not JSON: {exc}") from None
        if b"\\u" in line:
            self.scanner.scan_value("stdout", message)
        if not isinstance(message, dict) or len(message) != 1:
            raise ProtocolError("stdout message must be an object with exactly one key")
        kind, body = next(iter(message.items()))
        return kind, body

    def _on_opened(self, body: Any) -> None:
        if self.opened is not None:
            raise ProtocolError("received a second `opened`")
        self.opened = body if isinstance(body, dict) else {}
        self.opened_at = time.monotonic()

    def _collection(self, body: Any) -> tuple[int, str]:
        index = body.get("binding", 0) if isinstance(body, dict) else None
        if not isinstance(index, int) or not 0 <= index < len(self.bindings):
            raise ProtocolError(f"binding index {index!r} is out of range (0..{len(self.bindings) - 1})")
        return index, self.bindings[index]["collection"]["name"]

    def _on_captured(self, body: Any) -> None:
        index, collection = self._collection(body)
        doc = body.get("doc")
        if self.validate_documents:
            self.validators[index].check(doc)
        self.pending.append((collection, doc))

    def _on_sourced_schema(self, body: Any) -> None:
        _, collection = self._collection(body)
        schema = body.get("schema_json", body.get("documentSchema"))
        if not isinstance(schema, dict):
            raise ProtocolError(f"sourcedSchema for {collection} has no schema")
        self.pending_schemas.append((collection, schema))

    async def _on_checkpoint(self, proc: asyncio.subprocess.Process, body: Any) -> None:
        update = body.get("state") if isinstance(body, dict) else None
        if not isinstance(body, dict) or not (
            update is None or isinstance(update, dict) and "updated" in update
        ):
            raise ProtocolError("checkpoint must be {state: {updated, mergePatch}}")
        try:
            self.state = fold_checkpoint(self.state, body)
        except ValueError as exc:
            raise ProtocolError(str(exc)) from None
        self.scanner.scan_value("state", self.state)
        self.patches.append(body.get("state"))
        committed, self.pending = self.pending, []
        self.documents.extend(committed)
        for collection, _ in committed:
            self.per_collection[collection] = self.per_collection.get(collection, 0) + 1
        for collection, schema in self.pending_schemas:
            self.sourced_schemas.setdefault(collection, []).append(schema)
        self.pending_schemas = []
        if self.on_commit is not None:
            self.on_commit(committed)
        if self.opened and self.opened.get("explicitAcknowledgements") and self.stopped_by is None:
            await _write_line(proc, {"acknowledge": {"checkpoints": 1}})
        if self.poll_delay > 0 and self.stopped_by is None:
            await asyncio.sleep(self.poll_delay)
            self.last_output = time.monotonic()

    def _result(self, rc: int) -> CaptureResult:
        return CaptureResult(
            rc=rc,
            documents=self.documents,
            uncommitted=self.pending,
            checkpoints=len(self.patches),
            checkpoint_patches=self.patches,
            state=self.state,
            sourced_schemas=self.sourced_schemas,
            logs=self.logs,
            error=last_error(self.logs) if rc != 0 and not self.killed else None,
            stopped_by=self.stopped_by or "exit",
            opened=self.opened,
            killed=self.killed,
            elapsed=time.monotonic() - self.started,
            stop_to_exit=self._stop_to_exit(),
        )

    def _stop_to_exit(self) -> float | None:
        stopped = self.stop_started if self.stop_started is not None else self.kill_started
        if stopped is None:
            return None
        return (self.stdout_closed if self.stdout_closed is not None else time.monotonic()) - stopped
