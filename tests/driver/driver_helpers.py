import sys
from pathlib import Path
from typing import Any

from . import fake_connector

FAKE_CONNECTOR = Path(fake_connector.__file__).resolve()
SECRET = "sk-live-7f3a9c2e41d8"
DEFAULT_BINDINGS = fake_connector.DEFAULT_BINDINGS


def fake_command() -> list[str]:
    return [sys.executable, str(FAKE_CONNECTOR)]


def session(*steps: dict[str, Any], **config: Any) -> dict[str, Any]:
    """A fake-connector config running `steps` in a capture."""
    return {"session": list(steps), **config}


def logged(logs: list[dict[str, Any]], msg: str) -> list[dict[str, Any]]:
    return [log for log in logs if log.get("msg") == msg]
