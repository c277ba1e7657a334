import signal
from collections.abc import Callable
from typing import Any

import pytest

from .driver_helpers import SECRET, logged, session
from flow_driver import (
    CaptureProgress,
    ConnectorDriver,
    ConnectorError,
    DocumentError,
    ProtocolError,
    SecretLeakError,
    protocol,
)

MakeDriver = Callable[..., ConnectorDriver]
Bindings = list[dict[str, Any]]


def state_of(events: Any = None, **bindings: Any) -> dict[str, Any]:
    return {"bindingStateV1": {"events": events, **bindings}}


@pytest.mark.asyncio
async def test_folds_state_and_hands_it_to_the_next_open(make_driver: MakeDriver, bindings: Bindings) -> None:
    first = make_driver(
        session(
            {"checkpoint": state_of({"inc": {"cursor": 1}, "backfill": {"cutoff": 9, "next_page": 1}})},
            {"docs": 2},
            {"checkpoint": state_of({"backfill": {"next_page": 2}})},
            {
                "checkpoint": state_of(
                    {"backfill": None, "inc": {"cursor": 2}}, users={"inc": {"cursor": "u"}}
                )
            },
        )
    )
    result = await first.capture(bindings)
    assert (result.rc, result.stopped_by, result.checkpoints) == (0, "exit", 3)
    assert result.state == state_of({"inc": {"cursor": 2}}, users={"inc": {"cursor": "u"}})
    assert result.checkpoint_patches[1] == {
        "updated": state_of({"backfill": {"next_page": 2}}),
        "mergePatch": True,
    }

    second = make_driver(session({"checkpoint": {"bindingStateV1": {"users": None}}}, log_open=True))
    resumed = await second.capture(bindings, result.state, interval_seconds=60)
    opened_with = logged(resumed.logs, "open")[0]["fields"]["open"]
    assert opened_with["state"] == result.state
    assert resumed.state == {"bindingStateV1": {"events": {"inc": {"cursor": 2}}}}
    capture = opened_with["capture"]
    assert (capture["connectorType"], capture["intervalSeconds"], capture["bindings"]) == (
        "LOCAL",
        60,
        bindings,
    )
    assert opened_with["range"] == {} and opened_with["version"]


@pytest.mark.asyncio
async def test_merge_patch_false_replaces_the_state(make_driver: MakeDriver, bindings: Bindings) -> None:
    driver = make_driver(session({"checkpoint": {"fresh": {"a": None, "b": 1}}, "merge": False}))
    result = await driver.capture(bindings, state_of({"inc": {"cursor": 1}}))
    assert result.state == {"fresh": {"a": None, "b": 1}}


@pytest.mark.asyncio
async def test_documents_commit_per_checkpoint_and_uncommitted_are_dropped(
    make_driver: MakeDriver, bindings: Bindings
) -> None:
    driver = make_driver(
        session(
            {"docs": 2, "start": 0},
            {"doc": {"email": "a@example.com"}, "binding": 1},
            {"checkpoint": {}},
            {"docs": 1, "start": 2},
            {"checkpoint": {}},
            {"docs": 3, "start": 10},
        )
    )
    batches: list[list[tuple[str, dict]]] = []
    result = await driver.capture(bindings, on_commit=batches.append)
    assert batches == [
        [
            ("acmeCo/events", {"id": 0}),
            ("acmeCo/events", {"id": 1}),
            ("acmeCo/users", {"email": "a@example.com"}),
        ],
        [("acmeCo/events", {"id": 2})],
    ]
    assert result.documents == batches[0] + batches[1]
    assert result.uncommitted == [("acmeCo/events", {"id": i}) for i in (10, 11, 12)]
    assert result.docs("acmeCo/users") == [{"email": "a@example.com"}]


@pytest.mark.asyncio
async def test_sourced_schemas_apply_at_the_next_checkpoint(
    make_driver: MakeDriver, bindings: Bindings
) -> None:
    driver = make_driver(
        session(
            {"sourced": {"properties": {"email": {"type": "string"}}}, "binding": 1},
            {"checkpoint": {}},
            {"sourced": {"never": "committed"}, "binding": 0},
        )
    )
    result = await driver.capture(bindings)
    assert result.sourced_schemas == {"acmeCo/users": [{"properties": {"email": {"type": "string"}}}]}


LOOP = {"loop": [{"docs": 1}, {"checkpoint": {"n": 1}}, {"sleep": 0.01}]}


@pytest.mark.asyncio
async def test_max_checkpoints_stops_with_sigterm(make_driver: MakeDriver, bindings: Bindings) -> None:
    seen: list[CaptureProgress] = []
    result = await make_driver(session(LOOP)).capture(
        bindings, max_checkpoints=3, on_progress=seen.append, deadline=20
    )
    assert (result.rc, result.stopped_by, result.killed) == (0, "max_checkpoints", False)
    assert result.checkpoints >= 3
    assert logged(result.logs, "stopping on SIGTERM")
    assert [p.checkpoints for p in seen if p.stopped_by is None][-1] == 3


@pytest.mark.asyncio
async def test_graceful_stop_commits_the_final_step(make_driver: MakeDriver, bindings: Bindings) -> None:
    driver = make_driver(
        session(
            {"docs": 1},
            {"checkpoint": {"c": 1}},
            {"wait_stop": 30},
            on_stop=[{"docs": 1, "start": 7}, {"checkpoint": {"c": 2}}],
        )
    )
    result = await driver.capture(bindings, max_checkpoints=1, deadline=20)
    assert (result.rc, result.stopped_by) == (0, "max_checkpoints")
    assert result.docs("acmeCo/events") == [{"id": 0}, {"id": 7}]
    assert result.state == {"c": 2}


@pytest.mark.asyncio
async def test_idle_timeout_stops_with_sigterm(make_driver: MakeDriver, bindings: Bindings) -> None:
    driver = make_driver(session({"docs": 1}, {"checkpoint": {}}, {"wait_stop": 60}))
    result = await driver.capture(bindings, idle_timeout=0.3, deadline=20)
    assert (result.rc, result.stopped_by, result.checkpoints) == (0, "idle", 1)
    assert logged(result.logs, "stopping on SIGTERM")
    assert result.elapsed < 30


@pytest.mark.asyncio
async def test_starting_up_is_not_idle(make_driver: MakeDriver, bindings: Bindings) -> None:
    driver = make_driver(session({"docs": 1}, {"checkpoint": {}}, open_delay=1.0))
    result = await driver.capture(bindings, idle_timeout=0.2, deadline=20)
    assert (result.rc, result.stopped_by, result.checkpoints) == (0, "exit", 1)


@pytest.mark.asyncio
async def test_a_connector_that_never_opens_is_stopped_after_the_startup_allowance(
    make_driver: MakeDriver, bindings: Bindings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(protocol, "STARTUP_ALLOWANCE", 0.5)
    driver = make_driver(session({"wait_stop": 60}, skip_opened=True))
    with pytest.raises(ProtocolError, match="exited without sending `opened`"):
        await driver.capture(bindings, idle_timeout=0.1, deadline=20)


@pytest.mark.asyncio
async def test_deadline_stops_a_busy_connector(make_driver: MakeDriver, bindings: Bindings) -> None:
    # The deadline counts from the process's start, so it leaves a loaded machine time to start
    # the fake and install its SIGTERM handler.
    result = await make_driver(session(LOOP)).capture(bindings, deadline=3, idle_timeout=5)
    assert (result.rc, result.stopped_by) == (0, "deadline")
    assert result.checkpoints > 1 and logged(result.logs, "stopping on SIGTERM")


@pytest.mark.asyncio
async def test_stop_when(make_driver: MakeDriver, bindings: Bindings) -> None:
    result = await make_driver(session(LOOP)).capture(
        bindings, stop_when=lambda p: p.documents >= 4, deadline=20
    )
    assert (result.rc, result.stopped_by) == (0, "stop_when")
    assert len(result.documents) >= 4


@pytest.mark.asyncio
async def test_stop_when_is_asked_while_the_connector_is_silent(
    make_driver: MakeDriver, bindings: Bindings
) -> None:
    # Nothing is written after the first checkpoint: only a timer can notice the condition.
    driver = make_driver(session({"docs": 1}, {"checkpoint": {}}, {"wait_stop": 60}))
    flag: list[bool] = []
    seen: list[CaptureProgress] = []

    def condition(p: CaptureProgress) -> bool:
        seen.append(p)
        if p.checkpoints >= 1 and not flag:
            flag.append(True)  # true from the next time it is asked
            return False
        return bool(flag)

    result = await driver.capture(bindings, stop_when=condition, deadline=20)
    assert (result.rc, result.stopped_by, result.checkpoints) == (0, "stop_when", 1)
    assert result.stop_to_exit is not None and 0 <= result.stop_to_exit < result.elapsed
    assert all(p.since_opened is not None for p in seen)
    assert logged(result.logs, "stopping on SIGTERM")


@pytest.mark.asyncio
async def test_kill_uses_sigkill(make_driver: MakeDriver, bindings: Bindings) -> None:
    result = await make_driver(session(LOOP)).capture(
        bindings, stop_when=lambda p: p.checkpoints >= 2, kill=True, deadline=20
    )
    assert (result.rc, result.stopped_by, result.killed, result.error) == (
        -signal.SIGKILL,
        "kill",
        True,
        None,
    )
    assert not logged(result.logs, "stopping on SIGTERM")
    assert result.raise_for_error() is result


@pytest.mark.asyncio
async def test_ignored_sigterm_escalates_to_sigkill(make_driver: MakeDriver, bindings: Bindings) -> None:
    driver = make_driver(
        session({"docs": 1}, {"checkpoint": {}}, {"sleep": 60}, ignore_sigterm=True), stop_timeout=0.5
    )
    result = await driver.capture(bindings, idle_timeout=0.2)
    assert (result.rc, result.stopped_by, result.killed) == (-signal.SIGKILL, "idle", True)
    assert result.elapsed < 30


@pytest.mark.asyncio
async def test_nonzero_exit_reports_the_last_error(make_driver: MakeDriver, bindings: Bindings) -> None:
    driver = make_driver(
        session(
            {"docs": 1},
            {"checkpoint": {"ok": 1}},
            {"docs": 1, "start": 1},
            {"log": "working"},
            {"raw_stderr": "not json at all"},
            {"exit": 1, "error": "Task capture.events: HTTPError: 500 upstream"},
        )
    )
    result = await driver.capture(bindings)
    assert (result.rc, result.stopped_by) == (1, "exit")
    assert result.error == "Task capture.events: HTTPError: 500 upstream"
    assert {"level": "warn", "msg": "not json at all"} in result.logs
    assert (len(result.documents), len(result.uncommitted), result.state) == (1, 1, {"ok": 1})
    with pytest.raises(ConnectorError, match="capture failed with exit code 1: Task capture.events"):
        result.raise_for_error()


@pytest.mark.asyncio
async def test_secret_in_a_document_is_caught_on_stdout(make_driver: MakeDriver, bindings: Bindings) -> None:
    driver = make_driver(
        session({"doc": {"id": 1, "name": f"key {SECRET}"}}, {"checkpoint": {}}), secrets=[SECRET]
    )
    with pytest.raises(SecretLeakError) as caught:
        await driver.capture(bindings)
    assert caught.value.stream == "stdout" and SECRET not in str(caught.value)


@pytest.mark.asyncio
async def test_the_configs_own_secret_is_always_scanned_for(
    make_driver: MakeDriver, bindings: Bindings
) -> None:
    config = session({"doc": {"id": 1, "name": f"key {SECRET}"}}, {"checkpoint": {}})
    driver = make_driver({**config, "credentials": {"access_token": SECRET}})  # no explicit secrets
    with pytest.raises(SecretLeakError) as caught:
        await driver.capture(bindings)
    assert caught.value.stream == "stdout" and SECRET not in str(caught.value)


@pytest.mark.asyncio
async def test_secret_in_a_log_is_caught_on_stderr(make_driver: MakeDriver, bindings: Bindings) -> None:
    driver = make_driver(
        session({"log": "request", "fields": {"headers": {"Api-Key": SECRET}}}, {"wait_stop": 30}),
        secrets=["unrelated-secret", SECRET],
    )
    with pytest.raises(SecretLeakError) as caught:
        await driver.capture(bindings, deadline=20)
    assert (caught.value.stream, caught.value.secret_index) == ("stderr", 1)
    assert SECRET not in str(caught.value)


@pytest.mark.asyncio
async def test_escaped_secret_in_a_checkpoint_is_caught(make_driver: MakeDriver, bindings: Bindings) -> None:
    secret = "clé-secrète-42"
    driver = make_driver(session({"checkpoint": {"token": secret}, "ascii": True}), secrets=[secret])
    with pytest.raises(SecretLeakError) as caught:
        await driver.capture(bindings)
    assert caught.value.stream == "stdout" and secret not in str(caught.value)


@pytest.mark.asyncio
async def test_secret_in_the_folded_state_is_caught(make_driver: MakeDriver, bindings: Bindings) -> None:
    driver = make_driver(session(), secrets=[SECRET])
    with pytest.raises(SecretLeakError) as caught:
        await driver.capture(bindings, {"cursor": SECRET})
    assert caught.value.stream == "state" and SECRET not in str(caught.value)


@pytest.mark.asyncio
async def test_schema_violation_raises(make_driver: MakeDriver, bindings: Bindings) -> None:
    driver = make_driver(session({"doc": {"id": "seven"}}, {"checkpoint": {}}))
    with pytest.raises(DocumentError) as caught:
        await driver.capture(bindings)
    message = str(caught.value)
    assert "acmeCo/events" in message and "/id" in message and "'seven' is not of type 'integer'" in message
    unchecked = await make_driver(session({"doc": {"id": "seven"}}, {"checkpoint": {}})).capture(
        bindings, validate_documents=False
    )
    assert unchecked.documents == [("acmeCo/events", {"id": "seven"})]


@pytest.mark.asyncio
async def test_unresolvable_key_raises(make_driver: MakeDriver, bindings: Bindings) -> None:
    keyless = [{**bindings[0], "collection": {**bindings[0]["collection"], "key": ["/id", "/meta~1tag"]}}]
    driver = make_driver(session({"doc": {"id": 1, "meta": {"tag": 1}}}, {"checkpoint": {}}))
    with pytest.raises(DocumentError, match="key pointer /meta~1tag does not resolve"):
        await driver.capture(keyless)
    ok = await make_driver(session({"doc": {"id": 1, "meta/tag": 1}}, {"checkpoint": {}})).capture(keyless)
    assert len(ok.documents) == 1


@pytest.mark.asyncio
async def test_acknowledges_each_checkpoint_when_requested(
    make_driver: MakeDriver, bindings: Bindings
) -> None:
    driver = make_driver(
        session(
            {"docs": 1},
            {"checkpoint": {}},
            {"await_acks": 1},
            {"docs": 1},
            {"checkpoint": {}},
            {"await_acks": 2},
            explicit_acks=True,
        )
    )
    result = await driver.capture(bindings, deadline=30)
    assert (result.rc, result.stopped_by, result.error) == (0, "exit", None)
    assert logged(result.logs, "stdin")[0]["fields"]["acks"] == [1, 1]


@pytest.mark.asyncio
async def test_sends_nothing_without_explicit_acknowledgements(
    make_driver: MakeDriver, bindings: Bindings
) -> None:
    driver = make_driver(
        session({"docs": 1}, {"checkpoint": {}}, {"docs": 1}, {"checkpoint": {}}, {"wait_stop": 30})
    )
    result = await driver.capture(bindings, max_checkpoints=2, deadline=20)
    stdin = logged(result.logs, "stdin")[0]["fields"]
    assert stdin == {"acks": [], "other": [], "eof": True}


@pytest.mark.asyncio
async def test_opened_must_come_first(make_driver: MakeDriver, bindings: Bindings) -> None:
    with pytest.raises(ProtocolError, match="expected `opened` as the first message, got `captured`"):
        await make_driver(session({"docs": 1}, skip_opened=True)).capture(bindings)


@pytest.mark.asyncio
async def test_rejects_unknown_binding_and_garbage(make_driver: MakeDriver, bindings: Bindings) -> None:
    with pytest.raises(ProtocolError, match="binding index 5 is out of range"):
        await make_driver(session({"doc": {"id": 1}, "binding": 5})).capture(bindings)
    with pytest.raises(ProtocolError, match="not JSON"):
        await make_driver(session({"raw_stdout": "hello"})).capture(bindings)


@pytest.mark.asyncio
async def test_handles_lines_larger_than_the_default_stream_limit(
    make_driver: MakeDriver, bindings: Bindings
) -> None:
    big = "x" * (4 * 1024 * 1024)
    result = await make_driver(
        session({"doc": {"id": 1, "name": big}}, {"log": big}, {"checkpoint": {}})
    ).capture(bindings)
    assert result.docs("acmeCo/events")[0]["name"] == big
    assert logged(result.logs, big)
