"""Suite-wide settings."""

import os
import tempfile
from pathlib import Path

import pytest

PYCACHE = Path(tempfile.gettempdir()) / "source-iterable-native-pycache"


def pytest_configure(config: pytest.Config) -> None:
    """Let the Python subprocesses the tests start (the connector, the driver's CLI) keep their
    bytecode: where the machine sets PYTHONDONTWRITEBYTECODE, each connector start would compile
    estuary_cdk, aiohttp and pydantic from source again, about a second of CPU per start. The cache
    lives outside the work tree (PYTHONPYCACHEPREFIX), so the tree stays as it was."""
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        os.environ.pop("PYTHONDONTWRITEBYTECODE")
        os.environ.setdefault("PYTHONPYCACHEPREFIX", str(PYCACHE))
