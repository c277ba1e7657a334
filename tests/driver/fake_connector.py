"""A scriptable stand-in for a capture connector, speaking the Flow JSON-lines protocol.

Its behaviour comes from the request's config: `discover` overrides the discovered bindings, and a
capture runs the `session` steps, then the `on_stop` steps if SIGTERM arrived. SIGTERM is graceful:
the current step finishes, then the process exits 0 (like the real connector's handler).
"""

import json
import signal
import sys
import threading
import time
from typing import Any

POLL = 0.01

EVENT_SCHEMA = {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
    "required": ["id"],
    "reduce": {"strategy": "merge"},
    "x-infer-schema": True,
}

DEFAULT_BINDINGS: list[dict[str, Any]] = [
    {
        "recommendedName": "events",
        "resourceConfig": {"name": "events", "interval": "PT5M"},
        "documentSchema": EVENT_SCHEMA,
        "key": ["/id"],
    },
    {
        "recommendedName": "users",
        "resourceConfig": {"name": "users", "interval": "PT5M"},
        "documentSchema": {
            "type": "object",
            "properties": {"email": {"type": "string"}},
            "required": ["email"],
        },
        "key": ["/email"],
    },
    {
        "recommendedName": "list_users",
        "resourceConfig": {"name": "list_users", "interval": "PT5M", "schedule": "55 23 * * *"},
        "documentSchema": {"type": "object"},
        "key": ["/list_id", "/user_id"],
        "disable": True,
    },
]


class Stdin:
    def __init__(self) -> None:
        self.acks: list[int] = []
        self.other: list[Any] = []
        self.eof = False

    def read(self) -> None:
        for line in sys.stdin:
            message = json.loads(line)
            if "acknowledge" in message:
                self.acks.append(message["acknowledge"]["checkpoints"])
            else:
                self.other.append(message)
        self.eof = True


stopping = False
stdin = Stdin()
counter = {"count": 0}


def on_sigterm(_signum: int, _frame: Any) -> None:
    global stopping
    stopping = True


def emit(message: dict[str, Any], *, ascii: bool = False) -> None:
    sys.stdout.write(json.dumps(message, ensure_ascii=ascii) + "\n")
    sys.stdout.flush()


def log(msg: str, level: str = "info", **fields: Any) -> None:
    sys.stderr.write(json.dumps({"level": level, "msg": msg, "fields": fields}) + "\n")
    sys.stderr.flush()


def fail(error: str, code: int = 1) -> None:
    log(error, level="error")
    sys.exit(code)


def wait_until(predicate: Any, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= end:
            return False
        time.sleep(POLL)
    return True


def run_step(step: dict[str, Any]) -> None:
    binding = step.get("binding", 0)
    if "doc" in step:
        emit({"captured": {"binding": binding, "doc": step["doc"]}})
    elif "docs" in step:
        for i in range(step.get("start", 0), step.get("start", 0) + step["docs"]):
            emit({"captured": {"binding": binding, "doc": {"id": i}}})
    elif "checkpoint" in step:
        state = {"updated": step["checkpoint"], "mergePatch": step.get("merge", True)}
        emit({"checkpoint": {"state": state}}, ascii=step.get("ascii", False))
    elif "sourced" in step:
        emit({"sourcedSchema": {"binding": binding, "schema_json": step["sourced"]}})
    elif "raw_stdout" in step:
        sys.stdout.write(step["raw_stdout"] + "\n")
        sys.stdout.flush()
    elif "log" in step:
        log(step["log"], step.get("level", "info"), **step.get("fields", {}))
    elif "raw_stderr" in step:
        sys.stderr.write(step["raw_stderr"] + "\n")
        sys.stderr.flush()
    elif "bump" in step:
        count = counter["count"]
        counter["count"] += 1
        emit({"captured": {"binding": binding, "doc": {"id": count}}})
        emit({"checkpoint": {"state": {"updated": {"count": count + 1}, "mergePatch": True}}})
    elif "sleep" in step:
        wait_until(lambda: stopping, step["sleep"])
    elif "wait_stop" in step:
        wait_until(lambda: stopping, step["wait_stop"])
    elif "await_acks" in step:
        if not wait_until(lambda: len(stdin.acks) >= step["await_acks"], step.get("timeout", 10)):
            fail(f"expected {step['await_acks']} acknowledgements, got {len(stdin.acks)}")
    elif "exit" in step:
        if "error" in step:
            log(step["error"], level="error")
        sys.exit(step["exit"])
    elif "loop" in step:
        for _ in range(step.get("max", 100_000)):
            if stopping:
                return
            run_steps(step["loop"])
    else:
        fail(f"unknown step {step}")


def run_steps(steps: list[dict[str, Any]]) -> None:
    for step in steps:
        if stopping:
            return
        run_step(step)


def capture(request: dict[str, Any]) -> None:
    config = request["capture"]["config"]
    signal.signal(signal.SIGTERM, signal.SIG_IGN if config.get("ignore_sigterm") else on_sigterm)
    threading.Thread(target=stdin.read, daemon=True).start()
    counter["count"] = request["state"].get("count", 0)
    if config.get("log_open"):
        log("open", open=request)
    wait_until(lambda: stopping, config.get("open_delay", 0))
    if not config.get("skip_opened"):
        emit({"opened": {"explicitAcknowledgements": config.get("explicit_acks", False)}})
    run_steps(config.get("session", []))
    if stopping:
        log("stopping on SIGTERM")
        run_steps_after_stop(config.get("on_stop", []))
        wait_until(lambda: stdin.eof, 5)
    log("stdin", acks=stdin.acks, other=stdin.other, eof=stdin.eof)


def run_steps_after_stop(steps: list[dict[str, Any]]) -> None:
    for step in steps:
        run_step(step)


def validate(request: dict[str, Any]) -> None:
    known = {b["resourceConfig"]["name"] for b in request["config"].get("discover", DEFAULT_BINDINGS)}
    resources = []
    for binding in request["bindings"]:
        name = binding["resourceConfig"]["name"]
        if name not in known:
            fail(f"Resource '{name}' was not found.")
        resources.append({"resourcePath": [name]})
    emit({"validated": {"bindings": resources}})


def main() -> None:
    request = json.loads(sys.stdin.readline())
    if "spec" in request:
        emit(
            {
                "spec": {
                    "configSchema": {"type": "object"},
                    "resourceConfigSchema": {"type": "object"},
                    "documentationUrl": "https://example.com",
                    "resourcePathPointers": ["/name"],
                    "protocol": 3032023,
                }
            }
        )
    elif "discover" in request:
        config = request["discover"]["config"]
        if "discover_error" in config:
            fail(config["discover_error"])
        log("discovering", token=config.get("log_token", "redacted"))
        emit({"discovered": {"bindings": config.get("discover", DEFAULT_BINDINGS)}})
    elif "validate" in request:
        validate(request["validate"])
    elif "open" in request:
        capture(request["open"])
    else:
        fail(f"unsupported request {sorted(request)}")


if __name__ == "__main__":
    main()
