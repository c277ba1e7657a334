from collections.abc import Callable

import pytest

from .driver_helpers import SECRET
from flow_driver import ConnectorDriver, ConnectorError, SecretLeakError, parse_log_line

MakeDriver = Callable[..., ConnectorDriver]


@pytest.mark.asyncio
async def test_spec_and_discover(make_driver: MakeDriver) -> None:
    driver = make_driver({"api_key": SECRET}, secrets=[SECRET])
    spec = await driver.spec()
    assert spec.rc == 0 and spec.error is None
    assert spec.response is not None and spec.response["spec"]["resourcePathPointers"] == ["/name"]
    discovered = (await driver.discover()).raise_for_error("discover")
    assert [b["recommendedName"] for b in discovered["discovered"]["bindings"]] == [
        "events",
        "users",
        "list_users",
    ]


@pytest.mark.asyncio
async def test_validate_reports_the_last_error(make_driver: MakeDriver, bindings: list[dict]) -> None:
    driver = make_driver()
    ok = await driver.validate(bindings)
    assert ok.raise_for_error()["validated"]["bindings"] == [
        {"resourcePath": ["events"]},
        {"resourcePath": ["users"]},
    ]
    bad = [{**bindings[0], "resourceConfig": {"name": "nope"}}]
    failed = await driver.validate(bad)
    assert failed.rc == 1 and failed.response is None
    assert failed.error == "Resource 'nope' was not found."
    with pytest.raises(
        ConnectorError, match="validate failed with exit code 1: Resource 'nope' was not found."
    ):
        failed.raise_for_error("validate")


@pytest.mark.asyncio
async def test_discover_failure(make_driver: MakeDriver) -> None:
    result = await make_driver({"discover_error": "Invalid API key"}).discover()
    assert (result.rc, result.response, result.error) == (1, None, "Invalid API key")


@pytest.mark.asyncio
async def test_unary_secret_leak_on_stderr(make_driver: MakeDriver) -> None:
    driver = make_driver({"log_token": f"token={SECRET}"}, secrets=[SECRET])
    with pytest.raises(SecretLeakError) as caught:
        await driver.discover()
    assert caught.value.stream == "stderr"
    assert SECRET not in str(caught.value) and "<redacted>" in str(caught.value)


@pytest.mark.asyncio
async def test_unary_secret_leak_on_stdout(make_driver: MakeDriver) -> None:
    leaky = [
        {"recommendedName": SECRET, "resourceConfig": {"name": "x"}, "documentSchema": {}, "key": ["/id"]}
    ]
    with pytest.raises(SecretLeakError) as caught:
        await make_driver({"discover": leaky}, secrets=[SECRET]).discover()
    assert caught.value.stream == "stdout" and SECRET not in str(caught.value)


def test_parse_log_line_keeps_text_as_warn() -> None:
    assert parse_log_line(b'{"level":"INFO","msg":"hi","fields":{}}\n') == {
        "level": "INFO",
        "msg": "hi",
        "fields": {},
    }
    assert parse_log_line(b"Traceback (most recent call last):\n") == {
        "level": "warn",
        "msg": "Traceback (most recent call last):",
    }
    assert parse_log_line(b"[1, 2]\n") == {"level": "warn", "msg": "[1, 2]"}
