"""spec and discover output, checked against committed expected files.

Refresh the expected files after an intended change with `UPDATE_EXPECTED=1 make test`.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from flow_driver import ConnectorDriver

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = ROOT / "tests" / "expected"
CONFIG = {
    "credentials": {
        "credentials_title": "Private App Credentials",
        "access_token": "ESTUARY_TEST_ACCESS_TOKEN",
    },
    "project_type": "Email-based",
}


def check_expected(name: str, actual: dict[str, Any]) -> None:
    path = EXPECTED / name
    rendered = json.dumps(actual, indent=2, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_EXPECTED"):
        path.write_text(rendered)
    assert path.exists(), f"{path} is missing; run with UPDATE_EXPECTED=1"
    assert rendered == path.read_text(), f"{name} differs from the committed expectation"


@pytest.mark.asyncio
async def test_spec() -> None:
    result = await ConnectorDriver(CONFIG, cwd=str(ROOT)).spec()
    assert result.rc == 0, result.error
    check_expected("spec.json", result.raise_for_error("spec"))


@pytest.mark.asyncio
async def test_discover_makes_no_api_call() -> None:
    # An origin nothing listens on: discover must not need it.
    env = {"ITERABLE_API_BASE_URL": "http://127.0.0.1:9"}
    result = await ConnectorDriver(CONFIG, cwd=str(ROOT), env=env).discover()
    assert result.rc == 0, result.error
    response = result.raise_for_error("discover")
    check_expected("discover.json", response)
    names = [b["recommendedName"] for b in response["discovered"]["bindings"]]
    assert names == sorted(names)


@pytest.mark.parametrize(
    "project_type, key",
    [("Email-based", ["/email"]), ("UserID-based", ["/itblUserId"]), ("Hybrid", ["/itblUserId"])],
)
@pytest.mark.asyncio
async def test_users_key_follows_project_type(project_type: str, key: list[str]) -> None:
    result = await ConnectorDriver({**CONFIG, "project_type": project_type}, cwd=str(ROOT)).discover()
    response = result.raise_for_error("discover")
    users = next(b for b in response["discovered"]["bindings"] if b["recommendedName"] == "users")
    assert users["key"] == key


def test_acmeco_is_current() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "flow_driver", "acmeco", "--out", "acmeCo", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, f"acmeCo/ is stale (run `make acmeco`):\n{proc.stdout}{proc.stderr}"
