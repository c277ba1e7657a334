import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .driver_helpers import SECRET, fake_command, session
from flow_driver.preview import (
    UUID_PLACEHOLDER,
    PreviewOptions,
    parse_duration,
    parse_sessions,
    run_preview,
    secret_values,
)

PROJECT = Path(__file__).resolve().parents[2]
BUMP_THEN_WAIT = session({"bump": True}, {"wait_stop": 30})


def write_config(tmp_path: Path, config: dict[str, Any]) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def preview(tmp_path: Path, config: dict[str, Any], **options: Any) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    opts = PreviewOptions(
        config_path=write_config(tmp_path, config), command=fake_command(), timeout=0.3, **options
    )
    rc = await run_preview(opts, out, err)
    return rc, out.getvalue(), err.getvalue()


def lines(stdout: str) -> list[Any]:
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.mark.asyncio
async def test_sessions_carry_state_and_print_docs(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    rc, out, err = await preview(tmp_path, BUMP_THEN_WAIT, sessions=[1, -1], output_state=state_file)
    assert rc == 0, err
    assert lines(out) == [
        ["acmeCo/events", {"id": 0, "_meta": {"uuid": UUID_PLACEHOLDER}}],
        ["acmeCo/events", {"id": 1, "_meta": {"uuid": UUID_PLACEHOLDER}}],
    ]
    assert json.loads(state_file.read_text()) == {"count": 2}
    assert "session 1: 1 docs [events=1] 1 checkpoints" in err and "ended by max_checkpoints" in err
    assert "ended by idle" in err


@pytest.mark.asyncio
async def test_initial_state_and_summary(tmp_path: Path) -> None:
    initial = tmp_path / "initial.json"
    initial.write_text(json.dumps({"count": 40}))
    rc, out, err = await preview(
        tmp_path,
        BUMP_THEN_WAIT,
        sessions=[1, 1, 1],
        initial_state=initial,
        output="summary",
        include_disabled=True,
    )
    assert rc == 0, err
    assert "discovered 3 bindings: events, users, list_users" in err
    table = out.splitlines()
    assert table[2].split() == ["acmeCo/events", "3"]
    assert table[3].split() == ["acmeCo/users", "0"]
    assert table[-1].split()[:2] == ["total", "3"]


@pytest.mark.asyncio
async def test_bindings_filter_and_unknown_binding(tmp_path: Path) -> None:
    rc, out, err = await preview(tmp_path, BUMP_THEN_WAIT, bindings=["events"], output="none")
    assert (rc, out) == (0, "")
    assert "discovered 1 bindings: events" in err
    rc, _, err = await preview(tmp_path, BUMP_THEN_WAIT, bindings=["nope"])
    assert rc == 1 and "error: unknown bindings: nope" in err


@pytest.mark.asyncio
async def test_connector_failure_exits_non_zero(tmp_path: Path) -> None:
    rc, out, err = await preview(tmp_path, session({"exit": 1, "error": "Iterable returned 401"}))
    assert (rc, out) == (1, "")
    assert "error: capture failed with exit code 1: Iterable returned 401" in err


@pytest.mark.asyncio
async def test_config_secrets_are_scanned(tmp_path: Path) -> None:
    config = {
        "credentials": {"credentials_title": "Private App Credentials", "access_token": SECRET},
        "log_token": f"using {SECRET}",
    }
    rc, out, err = await preview(tmp_path, config)
    assert rc == 1 and "leaked on stderr" in err
    assert SECRET not in out + err


def test_secret_values() -> None:
    config = {
        "credentials": {"credentials_title": "Private App Credentials", "access_token": "k1"},
        "nested": [{"api_key": "k2"}],
        "project_type": "Email-based",
        "password": "",
    }
    assert secret_values(config) == ["k1", "k2"]


@pytest.mark.parametrize(
    ("text", "seconds"), [("10s", 10), ("500ms", 0.5), ("1m30s", 90), ("2h", 7200), ("3", 3)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10x", "s", "1s2"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_parse_sessions() -> None:
    assert parse_sessions("2,1,-1") == [2, 1, -1]
    with pytest.raises(ValueError):
        parse_sessions("1,x")


def test_cli_end_to_end(tmp_path: Path) -> None:
    config = write_config(tmp_path, BUMP_THEN_WAIT)
    command = " ".join(fake_command())
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "flow_driver",
            "preview",
            "--config",
            str(config),
            "--sessions",
            "1,1",
            "--timeout",
            "5s",
            "--connector-command",
            command,
        ],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert [doc["id"] for _, doc in lines(completed.stdout)] == [0, 1]
    assert "\r" not in completed.stderr and "ended by max_checkpoints" in completed.stderr
