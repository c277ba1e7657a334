"""Crash-and-resume and soak harness: sessions of a full capture, checked against ground truth.

Every binding discover returns is enabled. Completeness is judged per collection from the
simulator's ground truth; duplicates are allowed only where a session re-read a range that no
subtask of that data type had checkpointed past (at-least-once, never re-reading finished work).
"""

import copy
import json
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from flow_driver import CaptureProgress, CaptureResult, ConnectorDriver
from iterable_simulator import FaultConfig, Simulator, timefmt
import time

from .conftest import bindings, endpoint_config
from .test_exports import expected_event_id

SIMULATED_SNAPSHOTS = ("channels", "lists", "message_types", "metadata_tables", "templates")
"""Snapshot bindings whose ground truth is `Simulator.records(name)`."""
RETRY_MARKERS = ("(will retry)", "resubmitting", "resuming it", "refreshing it")
"""Log messages of the CDK and the connector that announce a retried request, job or file."""


@dataclass
class Session:
    start_state: dict[str, Any]
    result: CaptureResult
    kill_at: str


@dataclass
class KillPlan:
    """Seeded kill points: after a number of protocol messages, or a number of seconds after the
    connector said `opened` (its start-up, slow on a busy machine, is not counted)."""

    seed: int
    max_messages: int = 30
    min_seconds: float = 0.2
    max_seconds: float = 2.0
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def next(self) -> tuple[str, Callable[[CaptureProgress], bool]]:
        """(description, stop_when) of the next kill."""
        if self.rng.random() < 0.5:
            n = self.rng.randint(1, self.max_messages)
            return f"after {n} messages", lambda p: p.documents + p.uncommitted + p.checkpoints >= n
        seconds = round(self.rng.uniform(self.min_seconds, self.max_seconds), 2)
        return f"{seconds}s after opened", lambda p: p.since_opened is not None and p.since_opened >= seconds


async def all_bindings(d: ConnectorDriver, interval: str = "PT1S") -> list[dict[str, Any]]:
    """Every binding discover returns, disabled-by-default ones included."""
    return await bindings(d, None, interval)


def backfill_pending(state: dict[str, Any]) -> bool:
    return any(binding.get("backfill") for binding in state.get("bindingStateV1", {}).values())


async def run_session(
    d: ConnectorDriver, binds: list[dict[str, Any]], state: dict[str, Any], plan: KillPlan
) -> Session:
    what, stop_when = plan.next()
    result = await d.capture(binds, state=state, stop_when=stop_when, deadline=60, kill=True)
    assert result.killed or result.rc == 0, f"session ({what}) failed: {result.error}"
    return Session(state, result, what)


# -- ground truth ------------------------------------------------------------------------------------


def _instant(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


@dataclass
class Identity:
    """What makes a document of an incremental collection distinct, and its data type and cursor."""

    key: str
    data_type: str
    cursor: float


def event_identity(doc: dict[str, Any]) -> Identity:
    return Identity(doc["_estuary_id"], doc["eventType"], _instant(doc["createdAt"]))


def user_identity(key_field: str) -> Callable[[dict[str, Any]], Identity]:
    def identity(doc: dict[str, Any]) -> Identity:
        cursor = _instant(doc["profileUpdatedAt"])
        return Identity(f"{doc[key_field]}@{cursor}", "user", cursor)

    return identity


def expected_events(sim: Simulator, event_types: list[str]) -> set[str]:
    return {expected_event_id(r, t) for t in event_types for r in sim.visible_records(f"events:{t}")}


def expected_users(sim: Simulator, key_field: str) -> set[str]:
    return {f"{r[key_field]}@{timefmt.parse(r['profileUpdatedAt'])}" for r in sim.visible_records("users")}


def _pointer(doc: dict[str, Any], pointer: str) -> Any:
    value: Any = doc
    for part in pointer.lstrip("/").split("/"):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def reduced_by_key(docs: list[dict[str, Any]], key: list[str]) -> dict[str, str]:
    """A collection's final content by its key: last write wins, deletions applied, canonical JSON."""
    out: dict[str, str] = {}
    for doc in docs:
        k = json.dumps([_pointer(doc, p) for p in key])
        if doc.get("_meta", {}).get("op") == "d":
            out.pop(k, None)
        else:
            out[k] = json.dumps({f: v for f, v in doc.items() if f != "_meta"}, sort_keys=True)
    return out


def _difference(name: str, got: dict[str, str], want: dict[str, str]) -> str:
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    return f"{name}: {len(missing)} keys missing {missing[:3]}, {len(extra)} keys extra {extra[:3]}"


async def reference_capture(
    d: ConnectorDriver, binds: list[dict[str, Any]], names: set[str]
) -> dict[str, list[dict[str, Any]]]:
    """What one uninterrupted capture of these bindings from empty state commits: the ground truth
    of bindings the simulator has none for.

    It ends once every binding has read all it holds: its backfill, if it was initialised with one,
    is over; otherwise (a refreshed binding) a pass has moved its cursor since it was initialised."""
    chosen = [b for b in binds if b["resourceConfig"]["name"] in names]
    if not chosen:
        return {}
    initialised: dict[str, dict[str, Any]] = {}

    def note_initial_states(progress: CaptureProgress) -> None:
        for key, state in (progress.state.get("bindingStateV1") or {}).items():
            initialised.setdefault(key, copy.deepcopy(state or {}))

    def read_whole(progress: CaptureProgress) -> bool:
        states = progress.state.get("bindingStateV1") or {}
        for binding in chosen:
            key = binding["stateKey"]
            state, first = states.get(key) or {}, initialised.get(key)
            if first is None or state.get("backfill"):
                return False
            if not first.get("backfill") and state.get("inc") == first.get("inc"):
                return False
        return True

    result = await d.capture(chosen, on_progress=note_initial_states, stop_when=read_whole, deadline=60)
    assert (result.rc, result.killed) == (0, False), f"reference capture failed: {result.error}"
    assert result.stopped_by == "stop_when", "the reference capture did not read every binding whole"
    return {b["resourceConfig"]["name"]: result.docs(b["collection"]["name"]) for b in chosen}


def reduced_snapshot(docs: list[dict[str, Any]]) -> list[str]:
    """A snapshot collection's final content: last write per row, deletions applied, canonical JSON."""
    by_row = {doc["_meta"]["row_id"]: doc for doc in docs}
    kept = [doc for doc in by_row.values() if doc["_meta"]["op"] != "d"]
    return sorted(json.dumps({k: v for k, v in d.items() if k != "_meta"}, sort_keys=True) for d in kept)


def canonical_records(records: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True) for r in records)


# -- checks -------------------------------------------------------------------------------------------


def _floor(state: dict[str, Any], state_key: str, data_type: str) -> float:
    """The earliest cursor any subtask of `data_type` had not checkpointed past, in `state`."""
    binding = state.get("bindingStateV1", {}).get(state_key)
    if binding is None:
        return float("-inf")  # the binding had not started: everything is uncheckpointed
    floors = [
        _instant(sub["cursor"])
        for name, sub in (binding.get("inc") or {}).items()
        if sub and name.split(".", 1)[1] == data_type
    ]
    backfill = (binding.get("backfill") or {}).get(data_type)
    if backfill:
        page = backfill.get("next_page")
        start = page.get("start") if isinstance(page, dict) else page  # dict pages: export data types
        floors.append(float(start) if isinstance(start, int) else float("-inf"))
    return min(floors, default=float("-inf"))


@dataclass
class Tally:
    expected: int = 0
    captured: int = 0
    committed: int = 0
    duplicates: int = 0
    missing: list[str] = field(default_factory=list)
    bad_duplicates: list[str] = field(default_factory=list)


def check_incremental(
    sessions: list[Session],
    collection: str,
    state_key: str,
    identity: Callable[[dict[str, Any]], Identity],
    expected: set[str],
) -> Tally:
    tally = Tally(expected=len(expected))
    seen: set[str] = set()
    for session in sessions:
        in_session: set[str] = set()
        for doc in session.result.docs(collection):
            ident = identity(doc)
            tally.committed += 1
            if ident.key in in_session:
                tally.bad_duplicates.append(f"{ident.key} twice in one session ({session.kill_at})")
            elif ident.key in seen:
                tally.duplicates += 1
                if ident.cursor < _floor(session.start_state, state_key, ident.data_type):
                    tally.bad_duplicates.append(
                        f"{ident.key} re-read below every checkpoint ({session.kill_at})"
                    )
            in_session.add(ident.key)
            seen.add(ident.key)
    tally.captured = len(seen & expected)
    tally.missing = sorted(expected - seen)
    return tally


def check_windows(sim: Simulator, start: float, ends: dict[str, float]) -> list[str]:
    """Data types whose completed export jobs do not cover [start, end) without a gap."""
    gaps = []
    for data_type, end in ends.items():
        spans = sorted(
            (job.start, job.end)
            for job in sim.jobs.values()
            if job.created_by_connector
            and job.data_type.lower() == data_type.lower()
            and job.state.value == "completed"
            and job.start is not None
            and job.end is not None
        )
        reached = start
        for lo, hi in spans:
            if lo > reached:
                break
            reached = max(reached, hi)
        if reached < end:
            gaps.append(f"{data_type}: covered up to {timefmt.iso_str(reached)}, not {timefmt.iso_str(end)}")
    return gaps


def realtime_cursors(state: dict[str, Any], state_key: str) -> dict[str, float]:
    inc = state["bindingStateV1"][state_key]["inc"]
    return {
        name.split(".", 1)[1]: _instant(sub["cursor"])
        for name, sub in inc.items()
        if name.startswith("realtime.")
    }


def request_stats(sim: Simulator, sessions: list[Session]) -> dict[str, Any]:
    statuses = Counter(entry["status"] for entry in sim.request_log)
    faults = Counter(entry["fault"] for entry in sim.request_log if entry.get("fault"))
    logs = [log for s in sessions for log in s.result.logs]
    backoff = sum(
        float(((log.get("fields") or {}).get("args") or {}).get("backoff_seconds", 0)) for log in logs
    )
    retries = sum(1 for log in logs if any(marker in str(log.get("msg", "")) for marker in RETRY_MARKERS))
    uninjected = Counter(
        f"{e['status']} {e['method']} {re.sub(r'/[^/]*[0-9][^/]*', '/{id}', e['path'])}"
        for e in sim.request_log
        if e["status"] >= 400 and not e.get("fault")
    )
    return {
        "requests": len(sim.request_log),
        "uninjected_errors": dict(uninjected),
        "statuses": dict(sorted((str(k), v) for k, v in statuses.items())),
        "injected": dict(faults),
        "429s": statuses.get(429, 0),
        "429s_injected": faults.get("429", 0) + faults.get("429_retry_after", 0),
        "retries_logged": retries,
        "backoff_s_scaled": round(backoff, 3),
    }


def start_date(sim: Simulator) -> str:
    """A day before the simulator's oldest record, in whole seconds."""
    return timefmt.iso_str(int(time.time()) - (sim.config.data.history_days + 1) * 86400)[:19] + "Z"


def capture_config(sim: Simulator, start: str, event_types: list[str], window_size: str) -> dict[str, Any]:
    """A late-data lag of 3 s, so the late-data pass runs within the tests' few seconds."""
    advanced = {"event_types": event_types, "late_data_lag": "PT3S", "window_size": window_size}
    return endpoint_config(sim, start_date=start, advanced=advanced)


def identity_of(binding_name: str) -> Callable[[dict[str, Any]], Identity]:
    return event_identity if binding_name == "events" else user_identity("email")


async def run_until_complete(
    d: ConnectorDriver,
    binds: list[dict[str, Any]],
    state: dict[str, Any],
    earlier: list[Session],
    expected: dict[str, set[str]],
    deadline: float = 60.0,
) -> Session:
    """A session stopped gracefully (SIGTERM) once every expected record has been committed."""
    collections = {f"acmeCo/{name}": name for name in expected}
    captured: dict[str, set[str]] = {name: set() for name in expected}

    def on_commit(docs: list[tuple[str, dict[str, Any]]]) -> None:
        for collection, doc in docs:
            if (name := collections.get(collection)) is not None:
                captured[name].add(identity_of(name)(doc).key)

    for session in earlier:
        on_commit(session.result.documents)
    result = await d.capture(
        binds,
        state=state,
        deadline=deadline,
        on_commit=on_commit,
        stop_when=lambda _: all(expected[name] <= captured[name] for name in expected),
    )
    result.raise_for_error()
    assert result.stopped_by == "stop_when", f"not every record arrived within {deadline}s"
    assert (result.rc, result.killed) == (0, False), "the connector did not stop gracefully on SIGTERM"
    return Session(state, result, "none (final)")


async def assert_complete(
    sim: Simulator,
    d: ConnectorDriver,
    sessions: list[Session],
    binds: list[dict[str, Any]],
    start: str,
    expected: dict[str, set[str]],
) -> dict[str, Any]:
    """Every collection matches ground truth; duplicates are only re-read uncheckpointed tails;
    export windows cover the whole range; the connector caused no 429.

    Snapshots the simulator lists are compared with its records; users and events with `expected`;
    any other binding (every binding discover returns is covered) with a reference capture."""
    final_state = sessions[-1].result.state
    report: dict[str, Any] = {}
    stats = request_stats(sim, sessions)  # before the reference capture adds its requests
    others = {b["resourceConfig"]["name"] for b in binds} - set(expected) - set(SIMULATED_SNAPSHOTS)
    sim.faults = FaultConfig()
    reference = await reference_capture(d, binds, others)
    for binding in binds:
        name = binding["resourceConfig"]["name"]
        collection = binding["collection"]["name"]
        docs = [doc for s in sessions for doc in s.result.docs(collection)]
        if name in reference:
            # Keys only: such bindings may carry volatile fields (when a pass ran); their own tests check content.
            key = binding["collection"]["key"]
            got, want = reduced_by_key(docs, key), reduced_by_key(reference[name], key)
            assert set(got) == set(want), _difference(name, got, want)
            report[name] = len(got)
            continue
        if name in SIMULATED_SNAPSHOTS:
            assert reduced_snapshot(docs) == canonical_records(sim.records(name)), name
            report[name] = len(sim.records(name))
            continue
        tally = check_incremental(
            sessions, collection, binding["stateKey"], identity_of(name), expected[name]
        )
        assert not tally.missing, f"{name}: {len(tally.missing)} records never captured: {tally.missing[:5]}"
        assert not tally.bad_duplicates, f"{name}: {tally.bad_duplicates[:5]}"
        gaps = check_windows(sim, timefmt.parse(start), realtime_cursors(final_state, binding["stateKey"]))
        assert not gaps, f"{name}: export windows skipped: {gaps}"
        report[name] = {
            "expected": tally.expected,
            "captured": tally.captured,
            "committed": tally.committed,
            "duplicates": tally.duplicates,
        }
    caused = [
        (round(e["t"], 3), e["method"], e["path"])
        for e in sim.request_log
        if e["status"] == 429 and not e.get("fault")
    ]
    assert not caused, f"the connector caused 429s: {caused}; {stats}"
    report["requests"] = stats
    return report
